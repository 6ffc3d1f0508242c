//! Plugin uploads: the check every uploaded component passes before the
//! host compiles it (component header, the SDK's ABI section), on
//! arbitrary bytes. Compiling is wasmtime's, which wasmtime fuzzes itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_host::plugins::ABI_VERSION;
use luminate_host::plugins::abi::precheck;

fuzz_target!(|data: &[u8]| {
    if let Ok(sections) = precheck(data)
        && let Some(version) = sections.abi_version
    {
        assert_eq!(version, ABI_VERSION);
    }
});
