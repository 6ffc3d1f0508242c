//! The `luminate` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use luminate_host::config::{self, Config, Overrides, StorageBackend};
use luminate_host::server;

#[derive(Parser)]
#[command(name = "luminate", version, about = "A multi-tenant metrics server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 0.0.0.0:8080; 127.0.0.1:8080 with --dev].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Where the embedded backend keeps its data [default: ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML config file; environment variables and flags override it.
    #[arg(long, value_name = "FILE", env = "LUMINATE_CONFIG")]
    config: Option<PathBuf>,
    /// Storage backend [default: embedded].
    #[arg(long, value_enum)]
    storage: Option<StorageBackend>,
    /// Development mode: loopback only, readable logs, a quick-start banner.
    #[arg(long)]
    dev: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let mut overrides = Overrides::default();
    if let Some(listen) = args.listen {
        overrides.set("listen", listen.to_string());
    } else if args.dev {
        overrides.set("listen", "127.0.0.1:8080");
    }
    if let Some(dir) = &args.data_dir {
        overrides.set("data_dir", dir.display().to_string());
    }
    if let Some(storage) = args.storage {
        let name = match storage {
            StorageBackend::Embedded => "embedded",
            StorageBackend::Memory => "memory",
            StorageBackend::Clickhouse => "clickhouse",
        };
        overrides.set("storage.backend", name);
    }
    let config = match config::load(args.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("luminate: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(&config, args.dev) {
        eprintln!("luminate: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("luminate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config, args.dev))
}

async fn run(config: Config, dev: bool) -> ExitCode {
    let running = match server::start(config.clone()).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("luminate: {e}");
            return ExitCode::FAILURE;
        }
    };
    if dev {
        print_dev_banner(&config, running.local_addr());
    }
    let signal = luminate_host::http::shutdown::stop_signal().await;
    tracing::info!(?signal, "stop signal received");
    match running.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("luminate: shutdown: {e}");
            ExitCode::FAILURE
        }
    }
}

/// JSON lines in server mode, readable lines in `--dev`, unless configured.
fn init_logging(
    config: &Config,
    dev: bool,
) -> Result<(), luminate_host::telemetry::logging::LoggingError> {
    use luminate_host::telemetry::LogFormat;
    let default = if dev {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    };
    let format = config.telemetry.log_format.unwrap_or(default);
    luminate_host::telemetry::logging::init(format, &config.telemetry.log_level)
}

fn print_dev_banner(config: &Config, addr: SocketAddr) {
    let url = format!("http://{addr}");
    println!(
        "\nLuminate (dev) on {url}, storage {:?} in {}\n\
         \n  write:  curl -s {url}/api/v1/write -d '{{\"metrics\":[{{\"name\":\"api_latency\",\"value\":0.12,\"dimensions\":{{\"endpoint\":\"/api\"}}}}]}}'\
         \n  query:  curl -s {url}/api/v1/query -d '{{\"queryType\":\"aggregate\",\"metricName\":\"api_latency\",\"aggregation\":\"p95\",\"timeRange\":{{\"relative\":\"1h\"}},\"groupBy\":[\"endpoint\"]}}'\n",
        config.storage.backend,
        config.data_dir.display()
    );
}
