# Shared by scripts/serve and scripts/test: install what the build needs when
# it is missing, so both work on a fresh Debian/Ubuntu machine.

# Build artifacts live outside the clone so repeated runs (and CI on the same
# machine) reuse them; cargo's fingerprints keep that correct.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/luminate/target}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=false
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing ${missing[*]}"
    if ! $apt_updated; then
        as_root apt-get update -qq
        apt_updated=true
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# RocksDB's bindings are generated with bindgen, which needs libclang;
# RocksDB (C++) and mimalloc (C) are compiled from source, which needs a
# C/C++ toolchain.
ensure_build_deps() {
    command -v cargo >/dev/null || { echo "cargo not found: install Rust from rustup.rs" >&2; exit 1; }
    apt_install libclang-dev clang g++ make
}

ensure_wasm_target() {
    rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
}

# Installs the PyPI package $1 when its command $2 is missing.
ensure_pip_package() {
    local package=$1 command=$2
    command -v "$command" >/dev/null && return 0
    command -v python3 >/dev/null || apt_install python3
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    echo "==> installing $package"
    python3 -m pip install --quiet "$package" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "$package"
    command -v "$command" >/dev/null || {
        echo "$package installed but $command is not on PATH ($(python3 -m site --user-base)/bin?)" >&2
        exit 1
    }
}

# Installs the PyPI package $1 when the Python module $2 cannot be imported
# (client libraries have no command to look for).
ensure_pip_module() {
    local package=$1 module=$2
    python3 -c "import $module" >/dev/null 2>&1 && return 0
    command -v python3 >/dev/null || apt_install python3
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    echo "==> installing $package"
    python3 -m pip install --quiet "$package" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "$package"
    python3 -c "import $module" || {
        echo "$package installed but the module $module does not import" >&2
        exit 1
    }
}

# The agents' real clients, for tests/protocols and tests/promql: Debian's
# Prometheus (remote write, promtool, and the reference for PromQL), the
# OpenTelemetry SDK with its OTLP/HTTP exporter, the InfluxDB 2 client and
# prometheus-api-client.
ensure_protocol_clients() {
    apt_install prometheus
    ensure_pip_module opentelemetry-sdk opentelemetry.sdk.metrics
    ensure_pip_module opentelemetry-exporter-otlp-proto-http \
        opentelemetry.exporter.otlp.proto.http.metric_exporter
    ensure_pip_module influxdb-client influxdb_client
    # The Prometheus HTTP API's clients (tests/promql): promtool comes
    # with Debian's prometheus; this is the Python one.
    ensure_pip_module prometheus-api-client prometheus_api_client
}

# deploy/ manifests are validated against the Kubernetes API schemas, which
# this PyPI package ships (no cluster needed).
ensure_kubernetes_validate() {
    ensure_pip_package kubernetes-validate kubernetes-validate
}

# The API fuzzer run against the OpenAPI document (tests/operability/api_fuzz.rs).
ensure_schemathesis() {
    ensure_pip_package schemathesis schemathesis
}

# cargo-fuzz and the nightly toolchain it needs (scripts/fuzz).
ensure_cargo_fuzz() {
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    # scripts/test lints the fuzz crate with the toolchain that builds it.
    cargo +nightly clippy --version >/dev/null 2>&1 || rustup component add clippy --toolchain nightly
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
}
