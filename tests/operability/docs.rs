//! docs/operations.md documents every setting the server has.

use serde_json::Value;

fn leaf_paths(prefix: &str, node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_paths(&path, value, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

fn operations_md() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md")).unwrap()
}

#[test]
fn operations_guide_documents_every_setting_and_its_environment_variable() {
    let defaults = serde_json::to_value(luminate_host::config::Config::default()).unwrap();
    let mut settings = Vec::new();
    leaf_paths("", &defaults, &mut settings);
    // Maps keyed by a name the operator chooses are documented once, with a
    // placeholder for the key.
    let mut settings: Vec<String> = settings
        .into_iter()
        .map(|path| match path.strip_prefix("limits.tiers.") {
            Some(rest) => format!(
                "limits.tiers.<tier>.{}",
                rest.split_once('.').map_or(rest, |(_, field)| field)
            ),
            None => path,
        })
        .collect();
    settings.sort();
    settings.dedup();
    assert!(settings.len() > 20, "{settings:?}");
    let doc = operations_md();
    let aliases = luminate_host::config::env_aliases();
    let mut missing = Vec::new();
    for setting in &settings {
        let generic = format!(
            "LUMINATE_{}",
            setting.to_ascii_uppercase().replace('.', "__")
        );
        let env = aliases
            .iter()
            .find(|(_, path)| path == setting)
            .map_or(generic, |(alias, _)| (*alias).to_owned());
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{setting}` |")));
        match row {
            Some(row) if row.contains(&format!("`{env}`")) => {}
            Some(row) => missing.push(format!("{setting}: row does not name {env}: {row}")),
            None => missing.push(format!("{setting}: no row `| `{setting}` | ...`")),
        }
    }
    assert!(
        missing.is_empty(),
        "docs/operations.md is out of date:\n{}",
        missing.join("\n")
    );
}

#[test]
fn operations_guide_lists_every_environment_alias() {
    let doc = operations_md();
    for (alias, path) in luminate_host::config::env_aliases() {
        assert!(
            doc.lines()
                .any(|l| l.starts_with(&format!("| `{alias}` | `{path}` |"))),
            "alias {alias} -> {path} missing from the alias table"
        );
    }
}
