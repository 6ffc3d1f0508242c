//! The ABI version embedded in every plugin.
//!
//! Each export macro ([`export_validator!`](crate::export_validator) and its
//! siblings) adds a WebAssembly custom section named [`ABI_SECTION`]
//! (`luminate-abi`) whose payload is the UTF-8 text of [`ABI_VERSION`]
//! (`0.1.0`), the version of the WIT package `luminate:plugin` that this SDK
//! was generated from.
//!
//! A Rust component keeps its code in a core module nested inside the
//! component, and the section lives in that module. A host reads it without
//! instantiating anything by walking every payload, nested modules
//! included, e.g. with `wasmparser`:
//!
//! ```ignore
//! for payload in wasmparser::Parser::new(0).parse_all(bytes) {
//!     if let wasmparser::Payload::CustomSection(s) = payload? {
//!         if s.name() == "luminate-abi" {
//!             return Ok(Some(std::str::from_utf8(s.data())?.to_owned()));
//!         }
//!     }
//! }
//! ```
//!
//! Components not built with this SDK (another language, or raw
//! `wit-bindgen`) carry no such section; their exported interface names
//! (`luminate:plugin/validator@0.1.0`, ...) still carry the version.

/// The version of the `luminate:plugin` WIT package this SDK implements.
pub const ABI_VERSION: &str = "0.1.0";

/// The name of the custom section that holds [`ABI_VERSION`].
pub const ABI_SECTION: &str = "luminate-abi";

/// The name of the custom section that says whether a validator or an
/// enricher declared `SERIES_ONLY` ([`Validator::SERIES_ONLY`](crate::Validator::SERIES_ONLY)):
/// one byte, 1 or 0. A host that finds 1 may call the plugin once per
/// distinct series and remember the answer. Components without the section
/// (another language, raw `wit-bindgen`) are called for every metric unless
/// their manifest says `series_only = true`.
pub const SERIES_ONLY_SECTION: &str = "luminate-series-only";

/// [`ABI_VERSION`] as a byte array, for the custom section's `static`.
#[doc(hidden)]
pub const fn abi_version_bytes<const N: usize>() -> [u8; N] {
    let version = ABI_VERSION.as_bytes();
    assert!(version.len() == N, "N must be ABI_VERSION.len()");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = version[i];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_version_matches_the_wit_package_version() {
        let wit = include_str!("../wit/plugin.wit");
        let declared = format!("package luminate:plugin@{ABI_VERSION};");
        assert!(
            wit.lines().any(|line| line.trim() == declared),
            "plugin.wit must declare `{declared}`: bump ABI_VERSION with the WIT"
        );
    }

    #[test]
    fn section_name_matches_the_one_the_export_macros_emit() {
        let macros = include_str!("export.rs");
        assert!(macros.contains(&format!("link_section = \"{ABI_SECTION}\"")));
    }

    #[test]
    fn series_only_section_name_matches_the_one_the_export_macros_emit() {
        let macros = include_str!("export.rs");
        assert!(macros.contains(&format!("link_section = \"{SERIES_ONLY_SECTION}\"")));
    }

    #[test]
    fn version_bytes_spell_the_version() {
        let bytes: [u8; ABI_VERSION.len()] = abi_version_bytes();
        assert_eq!(&bytes, ABI_VERSION.as_bytes());
    }
}
