//! Request ids: taken from the client's `X-Request-Id` when it is sane,
//! generated otherwise, echoed in the response and stamped on every log line
//! of the request.

use std::fmt;

/// The longest client-supplied id kept; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// A fresh random id (UUID v4, 32 hex digits without dashes).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The client's id if it is 1-128 visible ASCII characters; anything
    /// else (empty, control characters, spaces, huge) is not trusted into
    /// logs and headers.
    pub fn from_client(value: &[u8]) -> Option<Self> {
        let acceptable = !value.is_empty()
            && value.len() <= MAX_REQUEST_ID_LEN
            && value.iter().all(|b| b.is_ascii_graphic());
        acceptable.then(|| Self(String::from_utf8_lossy(value).into_owned()))
    }

    /// The client's id when acceptable, else a generated one.
    pub fn from_client_or_generate(value: Option<&[u8]>) -> Self {
        value
            .and_then(Self::from_client)
            .unwrap_or_else(Self::generate)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_sane_client_id() {
        let id = RequestId::from_client(b"req-42.abc:x").unwrap();
        assert_eq!(id.as_str(), "req-42.abc:x");
    }

    #[test]
    fn replaces_empty_long_or_unprintable_ids() {
        assert!(RequestId::from_client(b"").is_none());
        assert!(RequestId::from_client(b"has space").is_none());
        assert!(RequestId::from_client(b"line\nbreak").is_none());
        assert!(RequestId::from_client("caf\u{e9}".as_bytes()).is_none());
        assert!(RequestId::from_client(&[b'a'; MAX_REQUEST_ID_LEN + 1]).is_none());
        let generated = RequestId::from_client_or_generate(Some(b"bad id"));
        assert_eq!(generated.as_str().len(), 32);
        assert_ne!(generated, RequestId::generate());
    }
}
