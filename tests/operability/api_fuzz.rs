//! Schemathesis (PyPI) generates requests from the OpenAPI document, valid
//! and invalid, against the real binary: no answer may be a 5xx, and every
//! answer must be one the document allows (status, content type, schema).
//! `scripts/test` installs it; by hand: `pip install schemathesis`.
//! `schemathesis_hooks.py` beside this file teaches it to send plugin uploads.

use std::process::Command;

use crate::server::{Server, ServerOptions, token};

/// Examples per operation: enough to reach every documented parameter and
/// error path in about a minute; `LUMINATE_API_FUZZ_EXAMPLES` runs longer.
const EXAMPLES_PER_OPERATION: &str = "40";

#[test]
fn generated_requests_get_documented_answers_and_no_server_error() {
    let schemathesis = which_schemathesis();
    // The unlimited tier: the fuzzer's request rate is not what is tested.
    let server =
        Server::start(ServerOptions::default().env("LUMINATE_LIMITS__DEFAULT_TIER", "unlimited"));
    let token = token("fuzzed", "read,write,admin");
    let report = tempfile::tempdir().unwrap();
    let examples = std::env::var("LUMINATE_API_FUZZ_EXAMPLES")
        .unwrap_or_else(|_| EXAMPLES_PER_OPERATION.to_owned());
    let hooks_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/operability");
    let output = Command::new(schemathesis)
        .current_dir(report.path())
        .env("PYTHONPATH", hooks_dir)
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .arg("run")
        .arg(server.url("/api/v1/openapi.json"))
        .args(["--url", &server.url("")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", &examples])
        .args(["--seed", "1729", "--no-color", "--workers", "2"])
        .args(["--wait-for-schema", "60"])
        .args(["--generation-database", "none", "--request-timeout", "30"])
        .arg("--report-dir")
        .arg(report.path())
        .output()
        .expect("cannot run schemathesis");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn which_schemathesis() -> &'static str {
    let found = Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "schemathesis is not installed: `pip install schemathesis` (scripts/test does)"
    );
    "schemathesis"
}
