//! What a plugin can reach: nothing but the two host functions of the ABI.
//!
//! Components built with Rust's std import WASI (`wasi:cli`, `wasi:io`,
//! `wasi:filesystem`, ...), so WASI p2 is linked, but with a context that
//! grants nothing:
//! - no preopened directories, so every path lookup fails;
//! - no environment variables, no arguments, no working directory;
//! - stdin is empty and stdout/stderr discard (nothing inherited);
//! - sockets: no address passes the check and TCP, UDP and name lookup are
//!   disabled;
//! - clocks are frozen at zero, and waiting on a clock (sleep, poll with a
//!   timeout) traps, because a guest blocked inside a host call cannot be
//!   interrupted by the epoch deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::clocks::{HostMonotonicClock, HostWallClock};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limits::CallLimiter;
use super::logging::PluginLogger;
use super::memory_budget::MemoryAccount;
use super::wit::{self, host_api, types_api};

/// The WASI version whose clock interface is shadowed; wasmtime-wasi 48
/// defines `0.2.12`, and the linker serves every `0.2.x` import from it.
const MONOTONIC_CLOCK_INTERFACE: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// The data of one call's `Store`. Built fresh for every call and dropped
/// with the store, so nothing survives from one call to the next.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    params: Arc<str>,
    pub(crate) logger: PluginLogger,
    /// When the running export call (or instantiation) must have finished;
    /// checked at every epoch tick.
    pub(crate) deadline_at: Instant,
}

impl CallState {
    pub fn new(
        max_memory_bytes: u64,
        memory: MemoryAccount,
        params: Arc<str>,
        logger: PluginLogger,
    ) -> Self {
        Self {
            wasi: sealed_wasi_ctx(),
            table: ResourceTable::new(),
            limiter: CallLimiter::new(max_memory_bytes, memory),
            params,
            logger,
            deadline_at: Instant::now(),
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types_api::Host for CallState {}

impl host_api::Host for CallState {
    fn log(&mut self, level: wit::LogLevel, message: String) {
        self.logger.log(level, &message);
    }

    fn params(&mut self) -> String {
        self.params.to_string()
    }
}

/// A clock that never moves: plugins get no time source from the host.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

fn sealed_wasi_ctx() -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .max_random_size(64 * 1024);
    builder.build()
}

/// The one linker every plugin is instantiated against.
pub fn sandboxed_linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    // The async flavour: calls run on the request's task (see engine.rs),
    // where the sync flavour's blocking would stall the executor.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    linker.allow_shadowing(true);
    {
        let mut clock = linker.instance(MONOTONIC_CLOCK_INTERFACE)?;
        for name in ["subscribe-duration", "subscribe-instant"] {
            clock.func_new(name, |_, _, _, _| {
                Err(wasmtime::format_err!(
                    "plugins cannot sleep or wait: the sandbox has no clocks"
                ))
            })?;
        }
    }
    linker.allow_shadowing(false);
    // `host` and `types` are shared by the three worlds; linking them once
    // serves validators, enrichers and aggregators alike.
    wit::ValidatorPlugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)?;
    Ok(linker)
}
