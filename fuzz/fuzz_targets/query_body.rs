//! `POST /api/v1/query` bodies: the typed, bounded decoder, then the
//! checks that build the model query, then every filter run against a few
//! values, on arbitrary bytes.
//!
//! Beyond "never panics": every refusal is a 4xx (a client's mistake is
//! never a 500), a parsed time range is non-empty, and every regex filter
//! that is accepted stays anchored at both ends.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_host::http::query::{ParsedQuery, decode_query_body};
use luminate_host::model::{FilterOp, RegexLimits, Selector};

#[path = "../support/anchoring.rs"]
mod anchoring;

const NOW_MS: i64 = 1_767_225_600_000;

fuzz_target!(|data: &[u8]| {
    let limits = RegexLimits::default();
    let parsed = decode_query_body(data).and_then(|request| request.parse(NOW_MS, &limits));
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            assert!(
                error.status.is_client_error(),
                "{} {}: {}",
                error.status,
                error.code,
                error.message
            );
            return;
        }
    };
    let selector: &Selector = match &parsed {
        ParsedQuery::Aggregate(q) => &q.selector,
        ParsedQuery::PluginAggregate(q) => &q.selector,
        ParsedQuery::Range(q) => &q.selector,
        ParsedQuery::Rate(q) => &q.selector,
    };
    assert!(selector.range.start_ms < selector.range.end_ms);
    // Values to match: the empty one (a missing key), and every string the
    // query itself names, which are the likeliest to hit edge cases.
    let mut values = vec![String::new(), selector.metric.clone()];
    for filter in &selector.filters {
        match &filter.op {
            FilterOp::Eq(v) | FilterOp::NotEq(v) => values.push(v.clone()),
            FilterOp::In(set) => values.extend(set.iter().cloned()),
            FilterOp::Regex(regex) | FilterOp::NotRegex(regex) => {
                anchoring::assert_anchored(regex);
                values.push(regex.pattern().to_owned());
            }
        }
    }
    for filter in &selector.filters {
        for value in &values {
            let _ = filter.matches(Some(value));
        }
        let _ = filter.matches(None);
    }
});
