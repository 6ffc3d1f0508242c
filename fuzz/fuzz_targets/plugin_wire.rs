//! The plugin wire format (`plugin-sdk/wit/plugin.wit`, `metric-batch` and
//! `enrichment`), from both sides of the boundary:
//!
//! - a hostile enricher's raw answer, as the host checks and reads it;
//! - a malformed batch, as the SDK reads it inside a plugin;
//! - a round trip: the host packs metrics, the SDK reads them, the SDK
//!   packs additions, the host reads them back.
//!
//! Beyond "never panics": every string either side reads lies inside the
//! text it was sent, a plugin never sees a reserved (`_`) dimension, and a
//! round trip gives back what was sent.

#![no_main]

use std::borrow::Cow;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use luminate_host::model::{Dimensions, Metric, RESERVED_PREFIX};
use luminate_host::plugins::wire::{Enrichment, Shown, WireBatch};
use luminate_host::plugins::wit;
use luminate_plugin_sdk::__private::{WitEnrichment, WitMetricBatch, pack_enrichment, read_batch};
use luminate_plugin_sdk::Dimension;

#[derive(Arbitrary, Debug)]
enum Case {
    HostileEnrichment {
        metrics: u8,
        max_per_metric: u8,
        text: String,
        dimension_ends: Vec<u32>,
        dimensions: Vec<u32>,
    },
    MalformedBatch {
        text: String,
        names: Vec<u32>,
        values: Vec<f64>,
        timestamps_ms: Vec<i64>,
        dimension_ends: Vec<u32>,
        dimensions: Vec<u32>,
    },
    RoundTrip {
        metrics: Vec<SentMetric>,
        additions: Vec<Vec<(String, String)>>,
        series_only: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct SentMetric {
    name: String,
    value: f64,
    timestamp_ms: i64,
    dimensions: Vec<(String, String)>,
}

fuzz_target!(|case: Case| match case {
    Case::HostileEnrichment {
        metrics,
        max_per_metric,
        text,
        dimension_ends,
        dimensions,
    } => hostile_enrichment(
        usize::from(metrics),
        usize::from(max_per_metric),
        wit::Enrichment {
            text,
            dimension_ends,
            dimensions,
        },
    ),
    Case::MalformedBatch {
        text,
        names,
        values,
        timestamps_ms,
        dimension_ends,
        dimensions,
    } => malformed_batch(WitMetricBatch {
        text,
        names,
        values,
        timestamps_ms,
        dimension_ends,
        dimensions,
    }),
    Case::RoundTrip {
        metrics,
        additions,
        series_only,
    } => round_trip(metrics, additions, series_only),
});

fn within(text: &str, s: &str) -> bool {
    let (start, end) = (text.as_ptr() as usize, text.as_ptr() as usize + text.len());
    let at = s.as_ptr() as usize;
    s.is_empty() || (at >= start && at + s.len() <= end)
}

fn hostile_enrichment(metrics: usize, max_per_metric: usize, raw: wit::Enrichment) {
    let text = raw.text.clone();
    let Ok(answer) = Enrichment::check(raw, metrics, max_per_metric) else {
        return;
    };
    assert_eq!(answer.len(), metrics);
    for metric in 0..metrics {
        let pairs: Vec<(&str, &str)> = answer.of(metric).collect();
        let expected = match answer.count(metric) <= max_per_metric {
            true => answer.count(metric),
            false => 0,
        };
        assert_eq!(pairs.len(), expected, "metric {metric}");
        for (key, value) in pairs {
            // `of` borrows from the answer's own text: compare by content.
            assert!(text.contains(key) && text.contains(value));
        }
    }
    assert!(answer.all().count() <= answer.len() * max_per_metric);
}

fn malformed_batch(batch: WitMetricBatch) {
    let text = batch.text.as_str();
    let read = read_batch(&batch, |metrics| {
        for m in metrics {
            assert!(within(text, &m.name));
            for d in m.dimensions.iter() {
                assert!(within(text, &d.key) && within(text, &d.value));
            }
        }
        metrics.len()
    });
    if let Ok(count) = read {
        assert_eq!(count, batch.values.len());
    }
}

fn round_trip(sent: Vec<SentMetric>, additions: Vec<Vec<(String, String)>>, series_only: bool) {
    let metrics: Vec<Metric> = sent
        .into_iter()
        .map(|m| Metric {
            name: m.name,
            value: m.value,
            timestamp_ms: m.timestamp_ms,
            dimensions: Dimensions::from_pairs(m.dimensions),
        })
        .collect();
    let shown = if series_only {
        Shown::SeriesOnly
    } else {
        Shown::AsIs
    };
    let packed = WireBatch::shown(&metrics, shown);
    let batch = to_sdk(packed.as_wit());

    read_batch(&batch, |seen| {
        assert_eq!(seen.len(), metrics.len());
        for (seen, sent) in seen.iter().zip(&metrics) {
            assert_eq!(seen.name, sent.name);
            match shown {
                Shown::AsIs => {
                    assert_eq!(seen.value.to_bits(), sent.value.to_bits());
                    assert_eq!(seen.timestamp_ms, sent.timestamp_ms);
                }
                Shown::SeriesOnly => {
                    assert!(seen.value.is_nan());
                    assert_eq!(seen.timestamp_ms, 0);
                }
            }
            let visible: Vec<(&str, &str)> = sent
                .dimensions
                .iter()
                .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
                .collect();
            let got: Vec<(&str, &str)> = seen
                .dimensions
                .iter()
                .map(|d| (d.key.as_ref(), d.value.as_ref()))
                .collect();
            assert_eq!(
                got, visible,
                "a plugin sees exactly the unreserved dimensions"
            );
        }
    })
    .expect("the SDK reads every batch the host packs");

    let additions: Vec<Vec<Dimension<'_>>> = (0..metrics.len())
        .map(|i| {
            additions
                .get(i)
                .into_iter()
                .flatten()
                .map(|(k, v)| Dimension::new(Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
                .collect()
        })
        .collect();
    let answer = Enrichment::check(
        to_host(pack_enrichment(&additions)),
        metrics.len(),
        usize::MAX,
    )
    .expect("the host reads every answer the SDK packs");
    for (metric, added) in additions.iter().enumerate() {
        let got: Vec<(&str, &str)> = answer.of(metric).collect();
        let want: Vec<(&str, &str)> = added
            .iter()
            .map(|d| (d.key.as_ref(), d.value.as_ref()))
            .collect();
        assert_eq!(got, want, "metric {metric}");
    }
}

fn to_sdk(batch: &wit::MetricBatch) -> WitMetricBatch {
    WitMetricBatch {
        text: batch.text.clone(),
        names: batch.names.clone(),
        values: batch.values.clone(),
        timestamps_ms: batch.timestamps_ms.clone(),
        dimension_ends: batch.dimension_ends.clone(),
        dimensions: batch.dimensions.clone(),
    }
}

fn to_host(answer: WitEnrichment) -> wit::Enrichment {
    wit::Enrichment {
        text: answer.text,
        dimension_ends: answer.dimension_ends,
        dimensions: answer.dimensions,
    }
}
