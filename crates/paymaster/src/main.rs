//! `chipi-paymaster`: the paymaster service. Configuration from a TOML file with
//! `CHIPI_PAYMASTER_*` environment overrides; see `docs/paymaster.md`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use chipi_paymaster::{hash_secret, serve, AppState, Config, Store};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// A self-hosted gasless relayer for Chipi wallets, speaking the paymaster HTTP API of
/// Chipi's SDKs.
///
/// It reads one TOML file (`--config`); every key can be overridden from the environment
/// (below).
#[derive(Debug, Parser)]
#[command(name = "chipi-paymaster", version, after_long_help = CONFIG_HELP)]
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
    /// Accept the local stack's well-known test keys (a development configuration);
    /// without it they are refused, so such a configuration cannot reach a real network.
    #[arg(long)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

const CONFIG_HELP: &str = "\
Configuration keys (TOML; defaults in brackets; docs/paymaster.md has an example):
  listen                            address to serve on [127.0.0.1:8787]
  operations_listen                 serve /health and /metrics here only (operator network)
  rpc_url                           Starknet node JSON-RPC URL (required; never logged)
  database_url                      sqlite://<file>, or postgres://user:pw@host/db for
                                    several instances [sqlite://chipi-paymaster.db]
  database_max_connections          database connection pool size [8]
  account_classes                   class hashes deployed and relayed for (required)
  fee_token                         token relayer balances are read in [STRK]
  fee_margin_percent                margin over the fee estimate [50]
  max_fee_fri                       largest fee bound of one transaction, every app [1 STRK]
  window.after_slack_seconds        execute_after = chain time - this [60]
  window.validity_seconds           execute_before = chain time + this; nonce lifetime [600]
  window.max_outstanding            prepared, unexecuted nonces per user and per wallet [128]
  window.chain_time_cache_ms        how long a chain time read is reused [1000]
  http.body_limit_bytes             larger request bodies get 413 [65536]
  http.request_timeout_seconds      slower requests get 503 [30]
  http.max_concurrent_requests      more at once get 503 OVERLOADED [1024]
  http.max_concurrent_per_user      one user's requests at once; more get 429 [8]
  http.header_read_timeout_seconds  clients slower to send headers are cut off [10]
  relaying.nonce_retries            re-syncs after a stale relayer nonce [3]
  relaying.park_after_failures      failures in a row that park a relayer [3]
  relaying.park_seconds             how long a parked relayer rests [30]
  relaying.min_balance_fri          /health floor per relayer [1 STRK]
  relaying.follow_interval_ms       how often sent transactions are checked [250]
  relaying.max_waiting              requests waiting for a relayer at once; more: 503 [256]
  relaying.abandon_claims_after_seconds  a claimed row untouched this long is given up [120]
  relaying.instance_ttl_seconds     an instance silent this long is dead; its claims go [15]
  relaying.lease_seconds            a relayer lease unrenewed this long passes on [30]
  relaying.send_timeout_seconds     the longest one send to the node may take [10]
  [[relayers]] address, private_key the accounts that pay (required)
  [estimator] address, private_key  an account of the relayers' class that never sends:
                                    fee estimates run from it and hold no relayer
  [snip29] fee_collector [the first relayer]    SNIP-29 default mode: who is paid
  [[snip29.gas_tokens]] address, decimals, price_in_strk (fri per whole token)
                                    tokens fees may be paid in besides STRK (1:1)
  snip29.tips                       SNIP-29 tips, fri per L2 gas unit of the relayer
                                    transaction: {slow [0], normal [100000000],
                                    fast [1000000000]}; no tip asked: none
  snip29.max_tip                    largest {custom} tip; above it -32602 [10000000000]
  snip29.sponsored_quote_cache_seconds  a sponsored build reuses the quote of the same
                                    wallet, tip and call shape this long; 0: always
                                    simulate (default mode always does) [30]
  [[apps]] name, public_key, secret_key_sha256, jwt.{hs256_secret | jwks_file | jwks_url,
           jwks_cache_seconds [300], jwks_refetch_seconds [10], issuer, audience,
           leeway_seconds [30]}  (required)
  [apps.sponsorship]                who may make the relayers pay, and how much:
           active [true], starts_at, ends_at, max_fee_fri, max_calls, max_calldata_felts,
           in_flight_per_wallet [1], account_classes, own_wallet_only [false],
           anonymous [true],
           allow, deny, trigger ({contract, selector}), reverts {max, window},
           [[apps.sponsorship.limits]] {scope = app|user, window = minute|hour|day|month,
           max_transactions, max_fee_fri}, webhook {url, secret, timeout_ms [2000],
           on_error = refuse|sponsor}

Environment overrides: CHIPI_PAYMASTER_<KEY> (e.g. CHIPI_PAYMASTER_RPC_URL,
CHIPI_PAYMASTER_DATABASE_URL, CHIPI_PAYMASTER_LISTEN, CHIPI_PAYMASTER_FEE_MARGIN_PERCENT,
CHIPI_PAYMASTER_RELAYERS='[{address = \"0x..\", private_key = \"0x..\"}]',
CHIPI_PAYMASTER_APPS='[...]') and CHIPI_PAYMASTER_<TABLE>__<KEY> for nested keys
(CHIPI_PAYMASTER_WINDOW__VALIDITY_SECONDS=300). Values are TOML when they parse,
strings otherwise.

Endpoints: POST / (SNIP-29 JSON-RPC), POST /v1/transactions/prepare-typed-data, POST
/v1/transactions/execute-sponsored-transaction, GET /v1/transactions/{hash}/status, POST
/v1/chipi-wallets/prepare-creation, POST /v1/chipi-wallets, GET
/v1/chipi-wallets/by-user?externalUserId=.., GET /v1/sponsorship/usage, GET /health,
GET /metrics.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Validate the configuration and exit.
    CheckConfig,
    /// Print the SHA-256 of a secret key read from standard input, for `secret_key_sha256`.
    HashSecret,
    /// Create or update the database's tables (`database_url`) and exit; `serve` does the
    /// same at start, this lets a deployment migrate once before starting instances.
    Migrate,
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
        Command::Migrate => {
            let Some(config) = load(&cli.config) else {
                return ExitCode::FAILURE;
            };
            let Some(runtime) = runtime() else {
                return ExitCode::FAILURE;
            };
            match runtime.block_on(Store::migrate_only(config.database_url.expose())) {
                Ok(()) => {
                    println!("database {} migrated", config.database_url);
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("database {}: {error}", config.database_url);
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            let Some(config) = load(&cli.config) else {
                return ExitCode::FAILURE;
            };
            if let Some(key) = config.dev_keys_used().filter(|_| !cli.dev) {
                eprintln!(
                    "configuration: `{key}` is one of the local stack's public test keys; \
                     use keys of your own, or run with --dev on a development network"
                );
                return ExitCode::FAILURE;
            }
            let Some(runtime) = runtime() else {
                return ExitCode::FAILURE;
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

/// The configuration at `path`, or `None` once the error is printed.
fn load(path: &std::path::Path) -> Option<Config> {
    Config::load(path)
        .map_err(|error| eprintln!("{error}"))
        .ok()
}

/// A Tokio runtime, or `None` once the error is printed.
fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
        .map_err(|error| eprintln!("cannot start the runtime: {error}"))
        .ok()
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
