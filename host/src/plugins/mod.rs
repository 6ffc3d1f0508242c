//! WebAssembly plugins: runtime, registry, bindings and hot reload (issue 4).
