//! Where the token sits in an `Authorization` header.
//!
//! Agents cannot all send a bearer token: Prometheus' `basic_auth`, Grafana,
//! Telegraf's InfluxDB v1 output and URL userinfo send HTTP Basic auth, and
//! the Influx clients send `Token <token>`. All three carry the same JWT; the
//! verifier does not care how it arrived.

use std::borrow::Cow;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::AuthError;
use super::verifier::MAX_TOKEN_BYTES;

/// The token of a request and, for Basic auth, the username sent with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub token: Cow<'a, str>,
    /// `None` for Bearer and Token; the (possibly empty) user-id for Basic.
    pub username: Option<String>,
}

/// Some clients leave off the padding (RFC 7617 has it, not everyone reads it).
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A Basic header longer than this cannot hold a token we would accept;
/// refused before it is decoded. (Base64 grows 3 bytes to 4; the slack is
/// for the username.)
const MAX_BASIC_BYTES: usize = MAX_TOKEN_BYTES / 3 * 4 + 1024;

/// Parses `Bearer <token>`, `Token <token>` or `Basic base64(user:token)`
/// (schemes in any letter case).
pub fn parse_authorization(header: Option<&[u8]>) -> Result<Credentials<'_>, AuthError> {
    let header = header.ok_or(AuthError::MissingToken)?;
    let header = std::str::from_utf8(header)
        .map_err(|_| AuthError::MalformedToken("the Authorization header is not text"))?
        .trim();
    if header.is_empty() {
        return Err(AuthError::MissingToken);
    }
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let rest = rest.trim_start();
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        if rest.is_empty() {
            return Err(AuthError::MissingToken);
        }
        return Ok(Credentials {
            token: Cow::Borrowed(rest),
            username: None,
        });
    }
    if scheme.eq_ignore_ascii_case("basic") {
        return parse_basic(rest);
    }
    Err(AuthError::MalformedToken(
        "the Authorization scheme must be Bearer, Token or Basic",
    ))
}

fn parse_basic(encoded: &str) -> Result<Credentials<'static>, AuthError> {
    if encoded.len() > MAX_BASIC_BYTES {
        return Err(AuthError::MalformedToken("the token is too long"));
    }
    let decoded = BASIC
        .decode(encoded)
        .map_err(|_| AuthError::MalformedToken("the Basic credentials are not base64"))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| AuthError::MalformedToken("the Basic credentials are not UTF-8"))?;
    // RFC 7617: the user-id cannot contain a colon, the password can.
    let Some((username, password)) = decoded.split_once(':') else {
        return Err(AuthError::MalformedToken(
            "the Basic credentials have no `:` between username and password",
        ));
    };
    if password.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(Credentials {
        token: Cow::Owned(password.to_owned()),
        username: Some(username.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn parse(header: &str) -> Result<Credentials<'_>, &'static str> {
        parse_authorization(Some(header.as_bytes())).map_err(|e| e.code())
    }

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(user_pass))
    }

    #[test]
    fn bearer_and_token_schemes_carry_the_token_as_is() {
        for header in [
            "Bearer a.b.c",
            "bearer   a.b.c",
            "Token a.b.c",
            "TOKEN a.b.c ",
        ] {
            let c = parse(header).unwrap();
            assert_eq!((c.token.as_ref(), c.username), ("a.b.c", None), "{header}");
        }
    }

    #[test]
    fn basic_carries_the_token_as_password_and_keeps_the_username() {
        let header = basic("acme:a.b.c");
        let c = parse(&header).unwrap();
        assert_eq!(c.token, "a.b.c");
        assert_eq!(c.username.as_deref(), Some("acme"));
        let header = basic(":a.b:c");
        let c = parse(&header).unwrap();
        assert_eq!(
            (c.token.as_ref(), c.username.as_deref()),
            ("a.b:c", Some(""))
        );
        let unpadded = format!("basic {}", STANDARD.encode("u:a.b.c").trim_end_matches('='));
        assert_eq!(parse(&unpadded).unwrap().token, "a.b.c");
    }

    #[test]
    fn broken_headers_say_why() {
        assert_eq!(
            parse_authorization(None).unwrap_err().code(),
            "missing_token"
        );
        for (header, code) in [
            ("", "missing_token"),
            ("Bearer", "missing_token"),
            ("Token ", "missing_token"),
            ("Basic", "malformed_token"),
            ("Basic !!!", "malformed_token"),
            (&basic("no-colon"), "malformed_token"),
            (&basic("user:"), "missing_token"),
            ("Digest x", "malformed_token"),
        ] {
            assert_eq!(parse(header).err(), Some(code), "{header:?}");
        }
        let not_utf8 = format!("Basic {}", STANDARD.encode([b'u', b':', 0xff]));
        assert_eq!(parse(&not_utf8).err(), Some("malformed_token"));
        let huge = format!("Basic {}", "A".repeat(MAX_BASIC_BYTES + 4));
        assert_eq!(parse(&huge).err(), Some("malformed_token"));
    }
}
