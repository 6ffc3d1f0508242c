/// Durations in the API are written as `<integer><unit>` with unit one of
/// `ms`, `s`, `m`, `h`, `d`, `w` (e.g. `30s`, `15m`, `7d`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid duration {0:?}: expected a positive integer followed by ms, s, m, h, d or w (e.g. \"30s\", \"1h\")"
)]
pub struct DurationError(pub String);

pub fn parse_duration_ms(text: &str) -> Result<i64, DurationError> {
    let err = || DurationError(text.chars().take(40).collect());
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits.parse().map_err(|_| err())?;
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return Err(err()),
    };
    match n.checked_mul(unit_ms) {
        Some(ms) if ms > 0 => Ok(ms),
        _ => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_nonsense() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("15m"), Ok(900_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        for bad in [
            "",
            "s",
            "0s",
            "-1s",
            "1.5h",
            "10y",
            "99999999999999999999d",
            "1h ",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?}");
        }
    }
}
