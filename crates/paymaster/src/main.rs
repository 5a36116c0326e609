//! `chipi-paymaster`: the paymaster service. Configuration from a TOML file with
//! `CHIPI_PAYMASTER_*` environment overrides; see `docs/paymaster.md`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use chipi_paymaster::{hash_secret, serve, AppState, Config};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// A self-hosted gasless relayer for Chipi wallets, speaking the paymaster HTTP API of
/// Chipi's SDKs.
///
/// Every configuration key can be overridden by an environment variable:
/// `CHIPI_PAYMASTER_<KEY>` for a top-level key (`CHIPI_PAYMASTER_RPC_URL`,
/// `CHIPI_PAYMASTER_DATABASE_URL`, `CHIPI_PAYMASTER_LISTEN`, `CHIPI_PAYMASTER_RELAYERS`,
/// `CHIPI_PAYMASTER_APPS`, `CHIPI_PAYMASTER_FEE_MARGIN_PERCENT`, ...) and
/// `CHIPI_PAYMASTER_<TABLE>__<KEY>` for a nested one
/// (`CHIPI_PAYMASTER_WINDOW__VALIDITY_SECONDS`). Values are TOML values or plain strings.
#[derive(Debug, Parser)]
#[command(name = "chipi-paymaster", version)]
struct Cli {
    /// The configuration file (TOML).
    #[arg(
        long,
        short,
        env = "CHIPI_PAYMASTER_CONFIG",
        default_value = "paymaster.toml"
    )]
    config: PathBuf,
    /// Log filter (`info`, `chipi_paymaster=debug`, ...); `RUST_LOG` works too.
    #[arg(long, default_value = "info")]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Validate the configuration and exit.
    CheckConfig,
    /// Print the SHA-256 of a secret key read from standard input, for `secret_key_sha256`.
    HashSecret,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter);
    if cli.log_json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::HashSecret => {
            let mut secret = String::new();
            if std::io::stdin().read_to_string(&mut secret).is_err() {
                eprintln!("cannot read standard input");
                return ExitCode::FAILURE;
            }
            println!("{}", hash_secret(secret.trim()));
            ExitCode::SUCCESS
        }
        Command::CheckConfig => match Config::load(&cli.config) {
            Ok(_) => {
                println!("configuration ok");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        },
        Command::Serve => {
            let config = match Config::load(&cli.config) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::FAILURE;
                }
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("cannot start the runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let state = AppState::new(config).await?;
    tracing::info!(%address, chain = %format!("{:#x}", state.chain_id()), "paymaster listening");
    serve(listener, state, shutdown_signal()).await?;
    tracing::info!("paymaster stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
