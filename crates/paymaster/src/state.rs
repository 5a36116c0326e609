//! Everything a request needs, built once from the configuration.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chipi_core::{Felt, ISRC9_V2_ID};
use starknet_rust_core::types::{
    BlockId, BlockTag, FunctionCall, MaybePreConfirmedBlockWithTxHashes,
};
use starknet_rust_providers::jsonrpc::{HttpTransport, JsonRpcClient};
use starknet_rust_providers::{Provider, ProviderError};
use tokio_util::task::TaskTracker;

use crate::auth::Apps;
use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::relayers::{Node, Relayers};
use crate::store::Store;

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database cannot be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The node did not answer (its URL is not shown: it may hold a key).
    #[error("the Starknet node at {0} does not answer")]
    Node(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The service's state, shared by every request (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: Config,
    pub apps: Apps,
    pub store: Store,
    pub node: Node,
    pub chain_id: Felt,
    pub classes: Vec<Felt>,
    pub fee_token: Felt,
    pub relayers: Arc<Relayers>,
    pub metrics: Metrics,
    /// Work that must finish even when its request is gone (sends, records).
    pub tasks: TaskTracker,
    /// Wallets known to execute from outside (a cache: losing it costs one call).
    pub outside_capable: Mutex<HashSet<Felt>>,
}

impl AppState {
    /// Opens the database, reads the chain id and sets up relayers and apps.
    pub async fn new(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let apps = Apps::from_config(&config.apps)?;
        let store = Store::open(&config.database_url).await?;
        let node: Node = Arc::new(JsonRpcClient::new(HttpTransport::new(
            config.rpc_url.0.clone(),
        )));
        let chain_id = node
            .chain_id()
            .await
            .map_err(|_| StartError::Node(crate::config::redact_url(&config.rpc_url.0)))?;
        let relayers = Relayers::new(
            &config.relayers,
            config.relaying.clone(),
            node.clone(),
            chain_id,
        )?;
        let fee_token = chipi_core::parse_felt_strict(&config.fee_token)
            .ok_or_else(|| ConfigError("`fee_token`: not a felt".into()))?;
        Ok(Self(Arc::new(Inner {
            classes: config.classes(),
            fee_token,
            apps,
            store,
            node,
            chain_id,
            relayers,
            metrics: Metrics::new()?,
            tasks: TaskTracker::new(),
            outside_capable: Mutex::new(HashSet::new()),
            config,
        })))
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
        self.0.tasks.close();
        self.0.tasks.wait().await;
    }
}

impl Inner {
    /// The latest block's timestamp (chain time).
    pub async fn chain_time(&self) -> Result<u64, ApiError> {
        let block = self
            .node
            .get_block_with_tx_hashes(BlockId::Tag(BlockTag::Latest))
            .await
            .map_err(|_| ApiError::node_unavailable())?;
        Ok(match block {
            MaybePreConfirmedBlockWithTxHashes::Block(b) => b.timestamp,
            MaybePreConfirmedBlockWithTxHashes::PreConfirmedBlock(b) => b.timestamp,
        })
    }

    /// Whether `wallet` is deployed and executes SNIP-9 v2 outside executions (SRC-5).
    pub async fn check_outside_capable(&self, wallet: Felt) -> Result<(), ApiError> {
        if self
            .outside_capable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&wallet)
        {
            return Ok(());
        }
        let answer = self
            .node
            .call(
                FunctionCall {
                    contract_address: wallet,
                    entry_point_selector: selector("supports_interface"),
                    calldata: vec![ISRC9_V2_ID],
                },
                BlockId::Tag(BlockTag::Latest),
            )
            .await;
        match answer {
            Ok(result) if result.first() == Some(&Felt::ONE) => {
                self.outside_capable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(wallet);
                Ok(())
            }
            Ok(_) => Err(ApiError::bad_request(
                chipi_core::ErrorCode::InvalidWalletTypeForSession,
                "the wallet does not support outside execution (SNIP-9 v2)",
            )),
            Err(ProviderError::StarknetError(e)) => {
                use starknet_rust_core::types::StarknetError;
                match e {
                    StarknetError::ContractNotFound => Err(ApiError::invalid(
                        "no contract is deployed at this wallet address",
                    )),
                    _ => Err(ApiError::bad_request(
                        chipi_core::ErrorCode::InvalidWalletTypeForSession,
                        "the wallet does not support outside execution (SNIP-9 v2)",
                    )),
                }
            }
            Err(_) => Err(ApiError::node_unavailable()),
        }
    }
}

/// The selector of `name` (names are ASCII literals of this crate).
pub(crate) fn selector(name: &str) -> Felt {
    starknet_rust_core::utils::get_selector_from_name(name).unwrap_or_default()
}
