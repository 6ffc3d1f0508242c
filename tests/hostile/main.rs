//! The hostile-tenant suite: one tenant (or an anonymous client) attacks a
//! real `luminate` process on loopback while a quiet tenant keeps writing
//! and querying. Each test asserts that the quiet tenant saw no error and
//! kept its latency, that the server stayed up, and that its memory stayed
//! within a bound. Tests take a lock so that only one server is measured at
//! a time on a small machine.

#[path = "../common/mod.rs"]
mod common;
/// Path constants of the components the root build.rs compiles.
#[allow(dead_code)]
mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}
mod support;

mod agent_bodies;
mod baseline;
mod bodies;
mod cardinality;
mod connections;
mod plugin_attacks;
mod queries;
