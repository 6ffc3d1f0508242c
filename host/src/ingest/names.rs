//! Foreign names onto Luminate's: the rule every protocol decoder applies.
//!
//! Metric names must match `^[a-zA-Z_][a-zA-Z0-9_.:]*$` and dimension keys
//! `^[a-zA-Z_][a-zA-Z0-9_.]*$` without a leading `_` (reserved for the
//! server). Agents send names outside that (`http.server.duration`,
//! `cpu-total`, `µs`, a leading digit), and dropping them silently would
//! lose data, so they are mapped, as Prometheus' OTLP translation does:
//!
//! - every character outside the allowed set becomes `_` (one `_` per
//!   character, multi-byte ones included);
//! - a metric name that starts with a digit, `.` or `:` gets a `_` in front;
//! - a dimension key that, once mapped, starts with a digit or `.` gets
//!   `key_` in front, and one that starts with `_` gets `key` in front
//!   (`_id` and `-id` → `key_id`), so no key reaches the reserved `_`
//!   prefix;
//! - an empty name stays empty and is refused by validation.
//!
//! Dots are kept: both the metric name and dimension key rules allow them,
//! so `service.name` stays `service.name`.

use std::borrow::Cow;

/// Maps a metric name (measurement + field, `__name__`, an OTel name).
pub fn metric_name(raw: &str) -> Cow<'_, str> {
    let mapped = map(raw, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':')
    });
    if starts_with_other_than_letter(&mapped, '_') {
        Cow::Owned(format!("_{mapped}"))
    } else {
        mapped
    }
}

/// Maps a dimension key (a tag, a label, an attribute key). The prefix is
/// decided on the mapped key: `-id` and `éid` map to `_id` first, which the
/// server reserves, and so become `key_id`.
pub fn dimension_key(raw: &str) -> Cow<'_, str> {
    let mapped = map(raw, |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'));
    if mapped.starts_with('_') {
        Cow::Owned(format!("key{mapped}"))
    } else if starts_with_other_than_letter(&mapped, '_') {
        Cow::Owned(format!("key_{mapped}"))
    } else {
        mapped
    }
}

/// Whether `name` starts with a character the name rules allow later but
/// not first (a digit, `.`, `:`), other than `also_first`.
fn starts_with_other_than_letter(name: &str, also_first: char) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| !c.is_ascii_alphabetic() && c != also_first)
}

fn map<'a>(raw: &'a str, allowed: impl Fn(char) -> bool) -> Cow<'a, str> {
    if raw.chars().all(&allowed) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(
        raw.chars()
            .map(|c| if allowed(c) { c } else { '_' })
            .collect(),
    )
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{is_valid_key, is_valid_name};

    #[test]
    fn valid_names_are_kept_as_they_are() {
        for name in ["cpu_usage_idle", "http.server.duration", "a:b", "_x"] {
            assert!(matches!(metric_name(name), Cow::Borrowed(n) if n == name));
        }
        for key in ["host", "service.name", "k8s.pod.name"] {
            assert!(matches!(dimension_key(key), Cow::Borrowed(k) if k == key));
        }
    }

    #[test]
    fn other_names_are_mapped_by_the_documented_rule() {
        for (raw, mapped) in [
            ("cpu-total_usage", "cpu_total_usage"),
            ("2xx_count", "_2xx_count"),
            ("latency_µs", "latency__s"),
            ("a b/c", "a_b_c"),
            (".hidden", "_.hidden"),
            (":x", "_:x"),
        ] {
            assert_eq!(metric_name(raw), mapped);
            assert!(is_valid_name(&metric_name(raw)), "{raw}");
        }
        for (raw, mapped) in [
            ("host-name", "host_name"),
            ("_id", "key_id"),
            ("__name__", "key__name__"),
            ("1st", "key_1st"),
            ("a:b", "a_b"),
            ("_1", "key_1"),
            ("-id", "key_id"),
            ("éid", "key_id"),
            ("µ", "key_"),
            (".ob", "key_.ob"),
        ] {
            assert_eq!(dimension_key(raw), mapped);
            assert!(is_valid_key(&dimension_key(raw)), "{raw}");
        }
    }
}
