use std::fmt;
use std::sync::Arc;

/// A tenant's identity. Every storage call takes one, so no call can run
/// without a tenant. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("tenant id must be 1-64 characters of [A-Za-z0-9_.-], got {0:?}")]
pub struct TenantIdError(pub String);

impl TenantId {
    pub const MAX_LEN: usize = 64;

    pub fn new(id: &str) -> Result<Self, TenantIdError> {
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if valid {
            Ok(Self(Arc::from(id)))
        } else {
            Err(TenantIdError(id.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids_and_rejects_separators() {
        assert!(TenantId::new("acme-prod_1.eu").is_ok());
        for bad in ["", "a/b", "a b", "a\0b", &"x".repeat(65), "ümlaut"] {
            assert!(TenantId::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
