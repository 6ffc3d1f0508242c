//! A plugin's manifest: optional facts about a `.wasm` that the component
//! itself does not carry (a human version, resource limits). In the watched
//! directory it is `<name>.toml` beside `<name>.wasm`; on upload it comes in
//! `Plugin-*` headers. Everything is optional: a bare component works.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::abi::PluginKind;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Manifest {
    /// Defaults to `sha256:<first 12 hex digits of the content hash>`.
    pub version: Option<String>,
    /// If set, must match what the component exports.
    pub kind: Option<PluginKind>,
    /// The memory cap of one call; defaults to the server's (16 MiB).
    pub memory_limit_bytes: Option<u64>,
    /// The deadline of one call; defaults to the server's (50 ms).
    pub deadline_ms: Option<u64>,
    /// The plugin's answers depend only on a metric's name and dimensions,
    /// so the server may ask about series rather than points and remember
    /// the answers.
    /// Defaults to what the SDK embedded (`SERIES_ONLY`); set it for
    /// components built without the SDK, or to `false` to turn caching off
    /// for a plugin.
    pub series_only: Option<bool>,
    pub description: Option<String>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ManifestError {
    #[error("invalid plugin manifest: {0}")]
    Syntax(String),
    #[error("invalid plugin manifest: {0}")]
    Value(String),
}

/// Longest accepted version string.
const MAX_VERSION_LEN: usize = 64;

impl Manifest {
    pub fn from_toml(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Range checks; `max_memory_bytes` is the server's ceiling.
    pub fn check(&self) -> Result<(), ManifestError> {
        if let Some(version) = &self.version {
            let ok = !version.is_empty()
                && version.len() <= MAX_VERSION_LEN
                && version.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_' | b':')
                });
            if !ok {
                return Err(ManifestError::Value(format!(
                    "version must be 1-{MAX_VERSION_LEN} characters of [A-Za-z0-9.+-_:]"
                )));
            }
        }
        if let Some(0) = self.memory_limit_bytes {
            return Err(ManifestError::Value(
                "memory_limit_bytes must be positive".into(),
            ));
        }
        if let Some(ms) = self.deadline_ms
            && !(1..=60_000).contains(&ms)
        {
            return Err(ManifestError::Value(
                "deadline_ms must be within 1..=60000".into(),
            ));
        }
        Ok(())
    }

    pub fn deadline(&self) -> Option<Duration> {
        self.deadline_ms.map(Duration::from_millis)
    }
}

/// Hex SHA-256 of the plugin's bytes: its identity.
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The version a plugin without a declared one gets.
pub fn hash_version(hash: &str) -> String {
    format!("sha256:{}", &hash[..hash.len().min(12)])
}

/// Plugin names are path-safe: `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn is_valid_plugin_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && matches!(bytes.next(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_manifest_and_rejects_unknown_fields() {
        let m = Manifest::from_toml(
            "version = \"1.2.0\"\nkind = \"enricher\"\nmemory_limit_bytes = 1048576\ndeadline_ms = 20\n",
        )
        .unwrap();
        assert_eq!(m.kind, Some(PluginKind::Enricher));
        assert_eq!(m.deadline(), Some(Duration::from_millis(20)));
        assert!(Manifest::from_toml("colour = \"red\"").is_err());
        assert!(Manifest::from_toml("deadline_ms = 0").is_err());
        assert!(Manifest::from_toml("version = \"../x\"").is_err());
    }

    #[test]
    fn names_cannot_escape_a_directory() {
        assert!(is_valid_plugin_name("name-policy"));
        assert!(is_valid_plugin_name("apdex_2"));
        for bad in ["", "..", "a/b", "Name", "-x", &"a".repeat(65)] {
            assert!(!is_valid_plugin_name(bad), "{bad:?}");
        }
    }
}
