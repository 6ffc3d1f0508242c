//! The ABI check, done before a plugin is ever instantiated.
//!
//! Two signals, both read from the component itself:
//! - the SDK embeds the ABI version it was built for in a custom section
//!   ([`ABI_SECTION`]); a mismatch is refused before compilation, with a
//!   message that says which version the plugin wants;
//! - the exported interface names carry the package version
//!   (`luminate:plugin/validator@0.1.0`); they also tell the plugin's kind,
//!   so a bare upload needs no manifest.

use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::Component;

pub const ABI_PACKAGE: &str = "luminate:plugin";
pub const ABI_VERSION: &str = "0.1.0";
/// The custom section the SDK writes the ABI version into.
pub const ABI_SECTION: &str = "luminate-abi";
/// The custom section the SDK writes a validator's or enricher's
/// `SERIES_ONLY` into: one byte, 1 or 0.
pub const SERIES_ONLY_SECTION: &str = "luminate-series-only";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Validator,
    Enricher,
    Aggregator,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validator => "validator",
            Self::Enricher => "enricher",
            Self::Aggregator => "aggregator",
        }
    }

    fn from_interface(name: &str) -> Option<Self> {
        match name {
            "validator" => Some(Self::Validator),
            "enricher" => Some(Self::Enricher),
            "aggregator" => Some(Self::Aggregator),
            _ => None,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::from_interface(text.trim().to_ascii_lowercase().as_str())
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum AbiError {
    #[error(
        "this is a core WebAssembly module, not a component; build the plugin with \
         `cargo build --target wasm32-wasip2 --release` and the luminate-plugin-sdk"
    )]
    CoreModule,
    #[error("not a WebAssembly component: {0}")]
    NotWasm(String),
    #[error(
        "the plugin was built for plugin ABI {found}, but this server supports \
         {ABI_PACKAGE}@{ABI_VERSION}; rebuild it with a luminate-plugin-sdk for ABI {ABI_VERSION}"
    )]
    VersionMismatch { found: String },
    #[error(
        "the component exports none of {ABI_PACKAGE}/validator, /enricher or /aggregator \
         @{ABI_VERSION} (it exports: {exports})"
    )]
    NoPluginExport { exports: String },
    #[error("the component exports more than one plugin interface ({0}); a plugin has one kind")]
    SeveralKinds(String),
    #[error("the manifest declares kind {declared}, but the component is a {detected}")]
    KindMismatch {
        declared: PluginKind,
        detected: PluginKind,
    },
}

/// What the SDK wrote into the component's custom sections.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SdkSections {
    pub abi_version: Option<String>,
    /// The plugin promises its answers depend only on a metric's series
    /// (name and dimensions), so the host may ask about series, not points.
    pub series_only: bool,
}

impl SdkSections {
    /// Searches the component and its nested core modules (where
    /// `#[link_section]` puts them).
    pub fn read(bytes: &[u8]) -> Result<Self, AbiError> {
        let mut found = Self::default();
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| AbiError::NotWasm(e.to_string()))?;
            let wasmparser::Payload::CustomSection(section) = payload else {
                continue;
            };
            match section.name() {
                ABI_SECTION if found.abi_version.is_none() => {
                    let text = String::from_utf8_lossy(section.data());
                    let version = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
                    let version = version.rsplit('@').next().unwrap_or(version);
                    found.abi_version = Some(version.chars().take(64).collect());
                }
                SERIES_ONLY_SECTION => found.series_only = section.data() == [1],
                _ => {}
            }
        }
        Ok(found)
    }
}

/// Checks the bytes before compiling: a component, and, if the SDK's
/// section is present, the ABI version it names.
pub fn precheck(bytes: &[u8]) -> Result<SdkSections, AbiError> {
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(AbiError::CoreModule);
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(AbiError::NotWasm(
            "the bytes do not start with the component header".into(),
        ));
    }
    let sections = SdkSections::read(bytes)?;
    if let Some(found) = &sections.abi_version
        && found != ABI_VERSION
    {
        return Err(AbiError::VersionMismatch {
            found: found.clone(),
        });
    }
    Ok(sections)
}

/// The plugin's kind, from the interfaces the compiled component exports.
pub fn detect_kind(engine: &Engine, component: &Component) -> Result<PluginKind, AbiError> {
    let mut kinds = Vec::new();
    let mut other_versions = Vec::new();
    let mut all = Vec::new();
    for (name, _) in component.component_type().exports(engine) {
        all.push(name.to_owned());
        let Some(rest) = name
            .strip_prefix(ABI_PACKAGE)
            .and_then(|r| r.strip_prefix('/'))
        else {
            continue;
        };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        let Some(kind) = PluginKind::from_interface(interface) else {
            continue;
        };
        if version == ABI_VERSION {
            kinds.push(kind);
        } else {
            other_versions.push(
                if version.is_empty() {
                    "unversioned"
                } else {
                    version
                }
                .to_owned(),
            );
        }
    }
    match kinds.as_slice() {
        [kind] => Ok(*kind),
        [] => match other_versions.into_iter().next() {
            Some(found) => Err(AbiError::VersionMismatch { found }),
            None => Err(AbiError::NoPluginExport {
                exports: if all.is_empty() {
                    "nothing".into()
                } else {
                    all.join(", ")
                },
            }),
        },
        several => Err(AbiError::SeveralKinds(
            several
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_core_modules_and_garbage_with_distinct_errors() {
        let core_module = b"\0asm\x01\0\0\0";
        assert_eq!(precheck(core_module), Err(AbiError::CoreModule));
        assert!(matches!(precheck(b"hello"), Err(AbiError::NotWasm(_))));
    }

    #[test]
    fn kind_names_parse_case_insensitively() {
        assert_eq!(PluginKind::parse("Enricher"), Some(PluginKind::Enricher));
        assert_eq!(PluginKind::parse("reducer"), None);
    }
}
