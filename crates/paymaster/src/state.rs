//! Everything a request needs, built once from the configuration.

use std::sync::Arc;

use chipi_core::Felt;
use starknet_rust_providers::jsonrpc::{HttpTransport, JsonRpcClient};
use starknet_rust_providers::Provider;

use crate::auth::Apps;
use crate::config::{Config, ConfigError};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::relayers::{Node, Relayers};
use crate::store::Store;

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database cannot be opened or migrated (its URL shown without its password).
    #[error("database {url}: {source}")]
    Database {
        /// [`crate::DatabaseUrl::redacted`].
        url: String,
        /// What went wrong.
        source: sqlx::Error,
    },
    /// The node did not answer (its URL is not shown: it may hold a key).
    #[error("the Starknet node at {0} does not answer")]
    Node(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The service's state, shared by every request (cheap to clone): the engine, which
/// every front end calls.
#[derive(Debug, Clone)]
pub struct AppState(pub(crate) Arc<Engine>);

impl AppState {
    /// Opens the database, reads the chain id from the node and sets up relayers and apps.
    pub async fn new(config: Config) -> Result<Self, StartError> {
        let node = node_client(&config);
        let chain_id = node
            .chain_id()
            .await
            .map_err(|_| StartError::Node(crate::config::redact_url(&config.rpc_url.0)))?;
        Self::from_parts(config, chain_id).await
    }

    /// The state for `chain_id` without asking the node anything: the HTTP edge, the
    /// authentication and the refusals that need no chain work; what needs the node
    /// answers 503 `NETWORK_ERROR` while it is away.
    pub async fn from_parts(config: Config, chain_id: Felt) -> Result<Self, StartError> {
        config.validate()?;
        let apps = Apps::from_config(&config.apps)?;
        let store = Store::open_with(
            config.database_url.expose(),
            config.database_max_connections,
        )
        .await
        .map_err(|source| StartError::Database {
            url: config.database_url.redacted(),
            source,
        })?;
        let node = node_client(&config);
        let relayers = Relayers::new(
            &config.relayers,
            config.relaying.clone(),
            node.clone(),
            chain_id,
            store.clone(),
        );
        let metrics = Metrics::new()?;
        Ok(Self(Arc::new(Engine::new(
            config, apps, store, node, chain_id, relayers, metrics,
        ))))
    }

    /// The engine under the front ends.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.0
    }

    /// The chain this service relays on.
    pub fn chain_id(&self) -> Felt {
        self.0.chain_id
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The metrics page.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The relayers' addresses.
    pub fn relayer_addresses(&self) -> Vec<Felt> {
        self.0.relayers.addresses()
    }

    /// Waits for work started by requests (sends, records) to finish; call after the
    /// server stopped accepting requests.
    pub async fn drain(&self) {
        self.0.drain().await
    }
}

fn node_client(config: &Config) -> Node {
    Arc::new(JsonRpcClient::new(HttpTransport::new(
        config.rpc_url.0.clone(),
    )))
}
