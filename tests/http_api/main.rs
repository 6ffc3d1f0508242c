//! End-to-end tests of the HTTP API: a real server (embedded RocksDB in a
//! temp dir) on a loopback port, spoken to over HTTP.

#[path = "../common/mod.rs"]
mod common;

mod discovery;
mod probes;
mod query;
mod retention;
mod write;
