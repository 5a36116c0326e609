//! A self-hosted paymaster speaking the HTTP API of Chipi's SDKs (`docs/API.md`
//! sections 1-6 and 8): it issues outside-execution nonces, simulates every sponsored
//! transaction before a relayer pays for it, sends each (wallet, nonce) at most once,
//! deploys wallets, and follows what it sent to the end.
//!
//! The library gives the router ([`app`]) so tests drive it with or without a socket;
//! the `chipi-paymaster` binary is a thin shell around [`serve`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use chipi_paymaster::{serve, AppState, Config};
//!
//! let config = Config::load(std::path::Path::new("paymaster.toml"))?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let state = AppState::new(config).await?;
//! serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod auth;
mod config;
pub mod dev;
mod engine;
mod error;
mod follower;
mod http;
mod metrics;
mod node;
mod policy;
mod prices;
mod relayers;
mod state;
mod store;
mod values;

use std::future::Future;

pub use auth::{hash_secret, secret_digest, App, Apps, AuthError, Caller, Principal};
pub use config::{
    is_public_key, is_secret_key, redact_url, AppConfig, Config, ConfigError, DatabaseUrl,
    GasTokenConfig, HttpConfig, JwtConfig, RelayerConfig, RelayingConfig, RpcUrl, Secret,
    Snip29Config, TipTooHigh, TipsConfig, WindowConfig, ENV_PREFIX,
};
pub use engine::{
    calls_hash, sign_webhook, AccountDeployment, Bounds, BuildInvoke, BuiltInvoke, CreateWallet,
    Engine, EngineError, Payment, Quote, Signed, Tracking, UsageLimit, UsageReport,
    DEPLOYMENT_VERSION, DEPLOY_OVERHEAD_L2_GAS, MAX_CALLS, RAW_MAX_WINDOW_SECONDS,
    RELAY_OVERHEAD_L2_GAS, UDC_ADDRESS, WEBHOOK_SIGNATURE_HEADER,
};
pub use error::ApiError;
pub use http::{app, operations_app, ApiJson};
pub use metrics::Metrics;
pub use node::{classify, classify_provider, Failure};
pub use policy::{
    CallRule, Charge, Knob, Limit, OnError, Policy, Refusal, RefusalKind, RevertLimit, Scope,
    WebhookConfig, Window, FEE_UNIT_FRI, ONE_STRK,
};
pub use prices::{FixedPrices, PriceSource, TokenPrice};
pub use relayers::{Lease, NoRelayer, Node, RelayerAccount, RelayerKey, Relayers};
pub use state::{AppState, StartError};
pub use store::{
    felt_text, iso_now, tracking_id, Attempt, Backend, End, IssuedNonce, Outcome, Sending, Store,
    TxKind, TxRecord, TxStatus, Usage, WalletRow, DEFAULT_MAX_CONNECTIONS,
};

/// Serves `state` on `listener` until `shutdown` resolves, with the follower running
/// beside it. On shutdown: no new connections, in-flight requests finish, started
/// sends finish and are recorded, the follower stops, the database closes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = tokio_util::sync::CancellationToken::new();
    let header_timeout =
        std::time::Duration::from_secs(state.engine().config.http.header_read_timeout_seconds);
    let follower = tokio::spawn(follower::follow(state.engine().clone(), stop.clone()));
    let heartbeat = tokio::spawn(follower::heartbeat(state.engine().clone(), stop.clone()));
    let operations = match state.engine().config.operations_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address).await?;
            let stopped = stop.clone();
            Some(tokio::spawn(http::listen::serve(
                listener,
                http::operations_app(state.clone()),
                header_timeout,
                async move { stopped.cancelled().await },
            )))
        }
        None => None,
    };
    let result = http::listen::serve(listener, app(state.clone()), header_timeout, shutdown).await;
    state.drain().await;
    state.engine().relayers().close().await;
    stop.cancel();
    let _ = follower.await;
    let _ = heartbeat.await;
    if let Err(error) = state.store().release_follows().await {
        tracing::warn!(%error, "cannot hand the followed transactions to the other instances");
    }
    if let Some(operations) = operations {
        let _ = operations.await;
    }
    state.store().close().await;
    result
}

/// Runs the follower until `stop` is cancelled (for embedding without [`serve`]).
pub async fn follow(state: AppState, stop: tokio_util::sync::CancellationToken) {
    follower::follow(state.engine().clone(), stop).await
}
