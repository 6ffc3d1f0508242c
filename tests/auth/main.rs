//! End-to-end tests of authentication, tenant isolation and per-tenant
//! limits: a real server on a loopback port, real tokens, real HTTP.

#[path = "../common/mod.rs"]
mod common;

mod support;

mod cardinality;
mod cli;
mod isolation;
mod rate_limits;
mod scopes;
mod tokens;
