//! The Prometheus API under hostile queries: a tenant whose override
//! lowers its PromQL limits asks for every series, too many samples,
//! absurd steps, huge expressions and regexes, beside a quiet tenant on
//! the server's limits. Each gets Prometheus' `bad_data` (400) or
//! `execution` (422), never a 5xx; the quiet tenant's answers are whole.

use serde_json::{Value, json};

use crate::common::{Api, Reply, TestServer, api_for, now_ms};

const SERIES: usize = 120;
const POINTS_PER_SERIES: usize = 5;

async fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.limits.tenants.insert(
            "greedy".into(),
            luminate_host::limits::TenantOverride {
                promql_max_series: Some(luminate_host::limits::Limit::Max(50)),
                promql_max_samples: Some(luminate_host::limits::Limit::Max(1_000)),
                ..Default::default()
            },
        );
    })
    .await
}

/// `SERIES` series of `load`, one a minute over the last few minutes.
async fn write_data(api: &Api, now: i64) {
    let metrics: Vec<Value> = (0..SERIES)
        .flat_map(|i| {
            (0..POINTS_PER_SERIES).map(move |k| {
                json!({
                    "name": "load",
                    "value": (i * 10 + k) as f64,
                    "timestamp": now - 60_000 * (POINTS_PER_SERIES - k) as i64,
                    "dimensions": {"i": format!("{i:03}")},
                })
            })
        })
        .collect();
    let reply = api.write(json!(metrics)).await;
    assert_eq!(
        reply.body["accepted"],
        SERIES * POINTS_PER_SERIES,
        "{reply:?}"
    );
}

async fn prometheus(api: &Api, path: &str, params: &[(&str, String)]) -> Reply {
    let url = format!("{}/prometheus/api/v1/{path}", api.base);
    api.send(api.http.post(url).form(params)).await
}

/// A request's parameters.
type Params = Vec<(&'static str, String)>;
/// A request and how it must be refused: path, parameters, status, error
/// type, and words its message holds.
type Refusal = (&'static str, Params, u16, &'static str, &'static str);

#[track_caller]
fn assert_refused(reply: &Reply, status: u16, error_type: &str, mentions: &str) {
    assert_eq!(reply.status.as_u16(), status, "{reply:?}");
    assert_eq!(reply.body["status"], "error", "{reply:?}");
    assert_eq!(reply.body["errorType"], error_type, "{reply:?}");
    let message = reply.body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
}

fn result_len(reply: &Reply) -> usize {
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    reply.body["data"]["result"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_promql_limits_refuse_its_greedy_queries_and_spare_its_neighbour() {
    let server = server().await;
    let now = now_ms() / 1000 * 1000;
    let greedy = api_for(&server, "greedy");
    let quiet = api_for(&server, "quiet");
    write_data(&greedy, now).await;
    write_data(&quiet, now).await;
    let at = (now / 1000).to_string();
    let hour_ago = (now / 1000 - 3600).to_string();

    // Every series: past the greedy tenant's 50, within the quiet one's.
    let everything = [("query", "count(load)".to_owned()), ("time", at.clone())];
    let reply = prometheus(&greedy, "query", &everything).await;
    assert_refused(&reply, 422, "execution", "more than 50 series");
    let reply = prometheus(&quiet, "query", &everything).await;
    assert_eq!(
        reply.body["data"]["result"][0]["value"][1],
        SERIES.to_string()
    );

    let match_all = [
        ("match[]", r#"{__name__=~".+"}"#.to_owned()),
        ("start", hour_ago.clone()),
        ("end", at.clone()),
    ];
    let reply = prometheus(&greedy, "series", &match_all).await;
    assert_refused(&reply, 422, "execution", "more than 50 series");
    let reply = prometheus(&quiet, "series", &match_all).await;
    assert_eq!(reply.body["data"].as_array().map(Vec::len), Some(SERIES));

    // A matcher that matches the empty string selects nothing at all.
    let reply = prometheus(
        &quiet,
        "series",
        &[("match[]", r#"{__name__=~".*"}"#.to_owned())],
    )
    .await;
    assert_refused(&reply, 400, "bad_data", "non-empty matcher");

    // One series at a 1 s step over an hour: 3 601 samples in its result.
    let fine_steps = [
        ("query", r#"load{i="007"}"#.to_owned()),
        ("start", hour_ago.clone()),
        ("end", at.clone()),
        ("step", "1".to_owned()),
    ];
    let reply = prometheus(&greedy, "query_range", &fine_steps).await;
    assert_refused(&reply, 422, "execution", "too many samples");
    assert_eq!(
        result_len(&prometheus(&quiet, "query_range", &fine_steps).await),
        1
    );

    // Within its limits the greedy tenant is answered: 40 series' raw
    // points (200 samples) reduced to one.
    let windowed = [
        ("query", r#"sum(rate(load{i=~"0[0-3].*"}[10m]))"#.to_owned()),
        ("time", at.clone()),
    ];
    let reply = prometheus(&greedy, "query", &windowed).await;
    assert_eq!(result_len(&reply), 1, "{reply:?}");

    // The quiet tenant's data is whole and its own.
    let reply = prometheus(
        &quiet,
        "query",
        &[("query", "sum(load)".to_owned()), ("time", at.clone())],
    )
    .await;
    let expected: usize = (0..SERIES).map(|i| i * 10 + POINTS_PER_SERIES - 1).sum();
    assert_eq!(
        reply.body["data"]["result"][0]["value"][1],
        expected.to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_steps_ranges_expressions_and_regexes_are_client_errors() {
    let server = server().await;
    let now = now_ms() / 1000 * 1000;
    let quiet = api_for(&server, "quiet");
    write_data(&quiet, now).await;
    let at = (now / 1000).to_string();
    let range = |query: &str, start: &str, end: &str, step: &str| {
        vec![
            ("query", query.to_owned()),
            ("start", start.to_owned()),
            ("end", end.to_owned()),
            ("step", step.to_owned()),
        ]
    };
    let year_ago = (now / 1000 - 365 * 86_400).to_string();
    let cases: Vec<Refusal> = vec![
        (
            "query_range",
            range("load", &year_ago, &at, "0.001"),
            400,
            "bad_data",
            "maximum resolution",
        ),
        (
            "query_range",
            range("load", &year_ago, &at, "1"),
            400,
            "bad_data",
            "maximum resolution",
        ),
        (
            "query_range",
            range("load", &at, &at, "0"),
            400,
            "bad_data",
            "step",
        ),
        (
            "query_range",
            range("load", &at, &at, "-5"),
            400,
            "bad_data",
            "step",
        ),
        (
            "query_range",
            range("load", &at, &at, "1e400"),
            400,
            "bad_data",
            "step",
        ),
        (
            "query_range",
            range("load", &at, &year_ago, "60"),
            400,
            "bad_data",
            "end",
        ),
        (
            "query_range",
            range("load", "yesterday", &at, "60"),
            400,
            "bad_data",
            "start",
        ),
        (
            "query_range",
            range("load", "-1e300", "1e300", "1e290"),
            400,
            "bad_data",
            "step",
        ),
        (
            "query_range",
            range("load", "-1e300", "1e300", "1e10"),
            400,
            "bad_data",
            "resolution",
        ),
        (
            "query",
            vec![("query", "sum(load".to_owned())],
            400,
            "bad_data",
            "query",
        ),
        (
            "query",
            vec![("query", "load".to_owned()), ("time", "1e400".to_owned())],
            400,
            "bad_data",
            "time",
        ),
        (
            "query",
            vec![("query", "load".to_owned()), ("timeout", "soon".to_owned())],
            400,
            "bad_data",
            "timeout",
        ),
        (
            "query",
            vec![("query", format!("load + {}", "1 + ".repeat(20_000)) + "1")],
            400,
            "bad_data",
            "bytes long",
        ),
        (
            "query",
            vec![(
                "query",
                format!(r#"load{{i=~"{}"}}"#, "(a|b)".repeat(2_000)),
            )],
            400,
            "bad_data",
            "regular expression",
        ),
        (
            "query",
            vec![
                ("query", "rate(load[1000y])".to_owned()),
                ("time", at.clone()),
            ],
            422,
            "execution",
            "",
        ),
        ("series", vec![], 400, "bad_data", "match[]"),
        (
            "series",
            vec![("match[]", "sum(load)".to_owned())],
            400,
            "bad_data",
            "selector",
        ),
    ];
    for (path, params, status, error_type, mentions) in &cases {
        let reply = prometheus(&quiet, path, params).await;
        assert!(
            reply.status.as_u16() < 500,
            "{path} {params:?} answered {reply:?}"
        );
        assert_refused(&reply, *status, error_type, mentions);
    }
    // Times at the ends of the representable range: answered (empty) or
    // refused, never a server error.
    for params in [
        vec![("query", "load".to_owned()), ("time", "1e300".to_owned())],
        vec![
            ("query", "load offset -10y".to_owned()),
            ("time", "-1e300".to_owned()),
        ],
        vec![
            ("query", "rate(load[5m] offset 1000y)".to_owned()),
            ("time", "-1e300".to_owned()),
        ],
        vec![("query", "load @ 1e300".to_owned()), ("time", at.clone())],
        vec![
            ("query", "timestamp(load @ -1e300)".to_owned()),
            ("time", at.clone()),
        ],
        range("sum(load)", "9.2e15", "9.3e15", "1000000000000"),
        range("load offset 1y", "-9.3e15", "-9.2e15", "1000000000000"),
    ] {
        for path in ["query", "query_range"] {
            if (path == "query_range") != params.iter().any(|(k, _)| *k == "step") {
                continue;
            }
            let reply = prometheus(&quiet, path, &params).await;
            assert!(
                reply.status.as_u16() < 500 && reply.body["status"].is_string(),
                "{path} {params:?} answered {reply:?}"
            );
        }
    }
    // None of it harmed the server.
    let reply = prometheus(
        &quiet,
        "query",
        &[("query", "count(load)".to_owned()), ("time", at)],
    )
    .await;
    assert_eq!(
        reply.body["data"]["result"][0]["value"][1],
        SERIES.to_string()
    );
}
