use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A timestamp as a request may give it: integer ms since the epoch, or an
/// RFC 3339 string (`2026-01-02T03:04:05Z`, `...+02:00`, fractional seconds).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid timestamp {0:?}: expected milliseconds since the epoch or an RFC 3339 time such as \"2026-01-02T03:04:05Z\""
)]
pub struct TimestampError(pub String);

pub fn parse_timestamp_text(text: &str) -> Result<i64, TimestampError> {
    let err = || TimestampError(text.chars().take(64).collect());
    let trimmed = text.trim();
    if !trimmed.is_empty()
        && trimmed
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
    {
        return trimmed.parse().map_err(|_| err());
    }
    let t = OffsetDateTime::parse(trimmed, &Rfc3339).map_err(|_| err())?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| err())
}

pub fn parse_timestamp_json(value: &serde_json::Value) -> Result<i64, TimestampError> {
    match value {
        serde_json::Value::String(s) => parse_timestamp_text(s),
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| TimestampError(n.to_string())),
        other => Err(TimestampError(other.to_string().chars().take(64).collect())),
    }
}

/// The server's clock, in ms since the epoch.
pub fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ms_and_rfc3339() {
        assert_eq!(parse_timestamp_text("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_timestamp_text("1970-01-01T00:00:01.5Z"), Ok(1_500));
        assert_eq!(parse_timestamp_text("1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(parse_timestamp_json(&serde_json::json!(42)), Ok(42));
        assert_eq!(parse_timestamp_json(&serde_json::json!("42")), Ok(42));
    }

    #[test]
    fn rejects_other_text() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "1.5",
            "99999999999999999999",
        ] {
            assert!(parse_timestamp_text(bad).is_err(), "{bad:?}");
        }
        assert!(parse_timestamp_json(&serde_json::json!(true)).is_err());
        assert!(parse_timestamp_json(&serde_json::json!(1.5)).is_err());
    }
}
