//! The agents' protocols end to end, each spoken by its real client
//! (installed by `scripts/test`) against a real server on a loopback port:
//! the values stored are read back exactly through `/api/v1/query`, and a
//! second tenant sees none of them.

#[path = "../common/mod.rs"]
mod common;

mod support;

mod influx;
mod otlp;
mod remote_write;
mod self_metrics;
