//! PromQL through the Prometheus HTTP API, against Prometheus itself: the
//! same samples are remote-written into Debian's `prometheus` (2.42, its
//! remote-write receiver on) and into Luminate, and every expression of
//! `corpus.promql` is asked of both, as an instant and as a range query;
//! the answers must agree within float tolerance. Then the API's real
//! clients, promtool and prometheus-api-client, query it with a token.

#[path = "../common/mod.rs"]
mod common;

mod clients;
mod compare;
mod data;
mod differential;
mod limits;
mod prometheus;
