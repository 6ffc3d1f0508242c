//! The two host imports, and their native stand-ins: off wasm the host does
//! not exist, so logs go to stderr and params are whatever a test passes.

use crate::log::Level;

#[cfg(target_arch = "wasm32")]
pub(crate) fn log(level: Level, message: &str) {
    use crate::export::bindings::validator::luminate::plugin::host::{self, LogLevel};
    let level = match level {
        Level::Trace => LogLevel::Trace,
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    };
    host::log(level, message);
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn log(level: Level, message: &str) {
    eprintln!("[plugin {level}] {message}");
}

/// The params of the current call, as JSON text.
#[cfg(target_arch = "wasm32")]
pub(crate) fn params() -> String {
    crate::export::bindings::validator::luminate::plugin::host::params()
}

/// Natively nobody calls the exports: tests pass their params directly
/// (see `testing`), so this only keeps the glue compiling.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn params() -> String {
    String::from("{}")
}
