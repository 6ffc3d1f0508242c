//! Authentication: who is calling, for which tenant, allowed to do what.
//!
//! - [`config`]: the `[auth]` section (algorithms, keys, issuer, audience).
//! - [`keys`]: loading keys, each bound to one allowed algorithm.
//! - [`claims`]: strict claim checks producing a [`Principal`].
//! - [`scope`]: `read`, `write`, `admin`.
//! - [`credentials`]: the token in an `Authorization` header (Bearer, Token, Basic).
//! - [`verifier`]: token → [`Principal`], with a [`cache`] of verified tokens.
//! - [`mint`]: HS256 tokens; [`cli`]: `luminate token` and the `serve --dev` banner.
//! - [`error`]: one code per failure.
//!
//! Invariant: the tenant of a request comes only from a verified token
//! (or, with `auth.enabled = false`, from `default_tenant`).

pub mod cache;
pub mod claims;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod error;
pub mod keys;
pub mod mint;
pub mod scope;
pub mod verifier;

#[cfg(test)]
mod tests;

pub use claims::{ClaimsPolicy, Principal};
pub use config::{AuthConfig, PublicKeyConfig, Secret};
pub use error::AuthError;
pub use keys::KeyError;
pub use mint::{MintError, TokenSpec, mint_hs256, random_secret};
pub use scope::{Scope, Scopes};
pub use verifier::Verifier;
