//! The cases, one `pub async fn` each, grouped by what they exercise. Each
//! takes a fresh, empty store. Add a case here AND to the list in
//! `conformance_suite!` so every backend runs it.

mod aggregate;
mod budget;
mod discovery;
mod filters;
mod isolation;
mod range;
mod rate;
mod retention;
mod robustness;

pub use aggregate::*;
pub use budget::*;
pub use discovery::*;
pub use filters::*;
pub use isolation::*;
pub use range::*;
pub use rate::*;
pub use retention::*;
pub use robustness::*;
