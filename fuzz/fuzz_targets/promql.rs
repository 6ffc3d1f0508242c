//! PromQL text through the parser, the planner and the evaluator, over a
//! small fixed data set: no input may panic, hang or run away with
//! memory; a query either answers or fails with an error.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use luminate_host::promql::eval::{EvalLimits, Evaluator, Fetched};
use luminate_host::promql::{Labels, RawSeries, Steps, plan};

/// Two series per selector, a sample every 15 s over ten minutes.
fn data() -> Vec<RawSeries> {
    (0..2)
        .map(|i| RawSeries {
            labels: Labels::from_pairs([
                ("__name__", "m"),
                ("job", if i == 0 { "a" } else { "b" }),
                ("le", if i == 0 { "1" } else { "+Inf" }),
            ]),
            points: (0..40)
                .map(|t| (t * 15_000, (t * (i + 1)) as f64))
                .collect(),
        })
        .collect()
}

fuzz_target!(|data_in: &[u8]| {
    let Ok(text) = std::str::from_utf8(data_in) else {
        return;
    };
    if text.len() > 512 {
        return;
    }
    let Ok(expr) = promql_parser::parser::parse(text) else {
        return;
    };
    let steps = Steps {
        start_ms: 300_000,
        end_ms: 600_000,
        step_ms: 60_000,
    };
    let Ok(selections) = plan::selections(&expr, &steps, 300_000) else {
        return;
    };
    let fetched: Fetched = selections.into_keys().map(|key| (key, data())).collect();
    let evaluator = Evaluator {
        steps: &steps,
        lookback_ms: 300_000,
        fetched: &fetched,
        limits: EvalLimits {
            max_series: 1_000,
            max_samples: 100_000,
            deadline: Instant::now() + Duration::from_secs(5),
        },
    };
    let _ = evaluator.eval(&expr);
});
