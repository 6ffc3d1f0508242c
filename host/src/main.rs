//! The `luminate` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use luminate_host::config::{self, Config, Overrides, StorageBackend};
use luminate_host::{ServerAllocator, server};

#[global_allocator]
static ALLOCATOR: ServerAllocator = ServerAllocator;

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
    /// Mint an HS256 token with the configured secret (auth.hs256_secret or
    /// LUMINATE_JWT_HS256_SECRET) and print it.
    Token(TokenCommandArgs),
}

#[derive(Args)]
struct TokenCommandArgs {
    #[command(flatten)]
    token: luminate_host::auth::cli::TokenArgs,
    /// A TOML config file (for the secret, issuer and audience).
    #[arg(long, value_name = "FILE", env = "LUMINATE_CONFIG")]
    config: Option<PathBuf>,
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
    /// ClickHouse HTTP URL, with `--storage clickhouse` [default: http://127.0.0.1:8123].
    #[arg(long, value_name = "URL")]
    clickhouse_url: Option<String>,
    /// ClickHouse cluster (from `remote_servers`) to shard the tables over.
    #[arg(long, value_name = "NAME")]
    clickhouse_cluster: Option<String>,
    /// Development mode: loopback only, readable logs, a quick-start banner.
    #[arg(long)]
    dev: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Token(args) => token(args),
    }
}

fn token(args: TokenCommandArgs) -> ExitCode {
    let config = match config::load(args.config.as_deref(), &Overrides::default()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("luminate: {e}");
            return ExitCode::from(2);
        }
    };
    match luminate_host::auth::cli::token_command(&config.auth, &args.token) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("luminate token: {e}");
            ExitCode::from(2)
        }
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
    if args.dev && args.storage.is_none() {
        overrides.set("storage.backend", "embedded");
    }
    if let Some(storage) = args.storage {
        let name = match storage {
            StorageBackend::Embedded => "embedded",
            StorageBackend::Memory => "memory",
            StorageBackend::Clickhouse => "clickhouse",
        };
        overrides.set("storage.backend", name);
    }
    if let Some(url) = &args.clickhouse_url {
        overrides.set("storage.clickhouse.url", url.as_str());
    }
    if let Some(cluster) = &args.clickhouse_cluster {
        overrides.set("storage.clickhouse.cluster", cluster.as_str());
    }
    let mut config = match config::load(args.config.as_deref(), &overrides) {
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
    let secret_generated = args.dev && luminate_host::auth::cli::prepare_dev(&mut config.auth);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("luminate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config, args.dev, secret_generated))
}

async fn run(config: Config, dev: bool, secret_generated: bool) -> ExitCode {
    let running = match server::start(config.clone()).await {
        Ok(running) => running,
        Err(e @ server::StartError::Auth(_)) => {
            eprintln!("luminate: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("luminate: {e}");
            return ExitCode::FAILURE;
        }
    };
    if dev {
        print_dev_banner(&config, running.local_addr(), secret_generated);
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

fn print_dev_banner(config: &Config, addr: SocketAddr, secret_generated: bool) {
    println!(
        "\nLuminate (dev) on http://{addr}, storage {:?} in {}",
        config.storage.backend,
        config.data_dir.display()
    );
    match luminate_host::auth::cli::dev_banner(&config.auth, addr, secret_generated) {
        Ok(banner) => println!("{banner}"),
        Err(e) => eprintln!("luminate: cannot mint a development token: {e}"),
    }
}
