//! `Content-Encoding` of request bodies, checked before the decompression
//! layer sees it. Content-codings are case-insensitive (RFC 9110 §8.4.1),
//! but tower-http's decoder matches exact lower-case bytes and answers
//! anything else with an empty 415; so the header is rewritten to its
//! canonical spelling here, and what we cannot decode is refused in our
//! error shape.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The codings the router's decompression layer decodes.
const SUPPORTED: [&str; 3] = ["gzip", "zstd", "identity"];

/// Canonicalises a supported `Content-Encoding`; refuses any other with 415.
pub async fn normalize_content_encoding(mut request: Request, next: Next) -> Response {
    let mut values = request.headers().get_all(header::CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return next.run(request).await;
    };
    let canonical = match (canonical_coding(value), values.next()) {
        (Some(coding), None) => coding,
        _ => return unsupported(value).into_response(),
    };
    request.headers_mut().insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(canonical),
    );
    next.run(request).await
}

/// `GZIP`, ` Gzip ` and `x-gzip` (RFC 9110's alias) are gzip. A list of
/// codings (`gzip, zstd`) is not supported.
fn canonical_coding(value: &HeaderValue) -> Option<&'static str> {
    let text = value.to_str().ok()?.trim();
    if text.eq_ignore_ascii_case("x-gzip") {
        return Some("gzip");
    }
    SUPPORTED
        .into_iter()
        .find(|coding| text.eq_ignore_ascii_case(coding))
}

fn unsupported(value: &HeaderValue) -> ApiError {
    let shown = String::from_utf8_lossy(value.as_bytes());
    let shown: String = shown.chars().take(64).collect();
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_encoding",
        format!(
            "Content-Encoding {shown:?} is not supported: send one of gzip, zstd or identity (in any letter case)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codings_match_in_any_case_and_lists_do_not() {
        for (raw, expected) in [
            ("gzip", Some("gzip")),
            ("GZIP", Some("gzip")),
            (" Gzip ", Some("gzip")),
            ("X-GZIP", Some("gzip")),
            ("ZStd", Some("zstd")),
            ("Identity", Some("identity")),
            ("br", None),
            ("gzip, zstd", None),
            ("", None),
        ] {
            assert_eq!(
                canonical_coding(&HeaderValue::from_static(raw)),
                expected,
                "{raw:?}"
            );
        }
    }
}
