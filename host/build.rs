//! Generates the Prometheus remote write types (`prometheus.rs` in
//! `OUT_DIR`) from the upstream `.proto` files in `proto/prometheus/`.
//! protox compiles them in Rust, so the build needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["remote.proto"], ["proto/prometheus"])?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
