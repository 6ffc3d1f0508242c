//! The Prometheus API's parameters: from the URL's query string (GET) or
//! a form body (POST), repeated keys kept (`match[]`); times as RFC 3339
//! or Unix seconds, durations as seconds or Prometheus durations (`5m`).

use axum::http::Uri;

use crate::model::parse_duration_ms;
use crate::promql::PromqlError;

/// Every `key=value` of the query string and of a form body.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(uri: &Uri, body: &[u8]) -> Self {
        let query = uri.query().unwrap_or("").as_bytes();
        Self(
            form_urlencoded::parse(query)
                .chain(form_urlencoded::parse(body))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn required(&self, key: &str) -> Result<&str, PromqlError> {
        self.get(key)
            .ok_or_else(|| PromqlError::bad_data(format!("invalid parameter \"{key}\": missing")))
    }

    /// A time parameter in ms, or `default` when absent.
    pub fn time_or(&self, key: &str, default: i64) -> Result<i64, PromqlError> {
        self.get(key).map_or(Ok(default), |text| {
            parse_time(text).ok_or_else(|| {
                PromqlError::bad_data(format!(
                    "invalid parameter \"{key}\": cannot parse {text:?} to a valid timestamp"
                ))
            })
        })
    }

    /// A duration parameter in ms.
    pub fn duration(&self, key: &str) -> Result<Option<i64>, PromqlError> {
        self.get(key)
            .map(|text| {
                parse_duration(text).ok_or_else(|| {
                    PromqlError::bad_data(format!(
                        "invalid parameter \"{key}\": cannot parse {text:?} to a valid duration"
                    ))
                })
            })
            .transpose()
    }
}

/// Unix seconds (fractional) or RFC 3339, in ms.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds.is_finite().then(|| (seconds * 1e3).round() as i64);
    }
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Seconds (fractional) or a Prometheus duration (`1h30m`, `500ms`; no
/// `y`), in ms.
pub fn parse_duration(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        let ms = (seconds * 1e3).round();
        return (seconds.is_finite() && ms >= 0.0 && ms < i64::MAX as f64).then_some(ms as i64);
    }
    // Prometheus' compound form (`1h30m`): each `<integer><unit>` part
    // read as the JSON API reads durations.
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let unit_start = rest.find(|c: char| !c.is_ascii_digit())?;
        let unit_end = rest[unit_start..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| unit_start + i);
        total = total.checked_add(parse_duration_ms(&rest[..unit_end]).ok()?)?;
        rest = &rest[unit_end..];
    }
    (total > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_parse_as_prometheus_does() {
        assert_eq!(parse_time("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_duration("15"), Some(15_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("-1"), None);
    }

    #[test]
    fn repeated_keys_come_from_the_url_and_the_form() {
        let uri: Uri = "/api/v1/series?match[]=up&start=1".parse().unwrap();
        let params = Params::new(&uri, b"match%5B%5D=down");
        assert_eq!(params.all("match[]"), ["up", "down"]);
        assert_eq!(params.get("start"), Some("1"));
        assert!(params.required("end").is_err());
    }
}
