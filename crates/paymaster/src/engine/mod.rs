//! The relay engine: issue a nonce, check the sponsorship policy, reserve, simulate,
//! lease, send, settle. It speaks `Felt`, typed requests and its own [`EngineError`]; it
//! knows nothing about HTTP, so every front end (the Chipi API today, SNIP-29 and the raw
//! execute next) parses, calls it, and maps the error to its wire.

mod execute;
mod relay;
mod settle;
mod sponsorship;
mod wallets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chipi_core::{ErrorCode, Felt, ISRC9_V2_ID};
use starknet_rust_core::types::{
    BlockId, BlockTag, FunctionCall, MaybePreConfirmedBlockWithTxHashes, StarknetError,
};
use starknet_rust_providers::{Provider, ProviderError};
use tokio_util::task::TaskTracker;

use crate::auth::Apps;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::policy::Refusal;
use crate::relayers::{Node, Relayers};
use crate::store::Store;

pub use execute::{calls_hash, MAX_CALLS};
pub use relay::Bounds;
pub use sponsorship::{sign_webhook, UsageLimit, UsageReport, WEBHOOK_SIGNATURE_HEADER};
pub use wallets::{iso_now, CreateWallet, UDC_ADDRESS};

/// Why the engine did not do what it was asked. Front ends map each variant to their wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Malformed or inconsistent input (a front end answers 400 `INVALID_INPUT`).
    #[error("{0}")]
    Invalid(String),
    /// Refused with a protocol code (a revert's code, `OUTSIDE_EXECUTION_REJECTED`, ...).
    #[error("{code}: {message}")]
    Rejected {
        /// The protocol code.
        code: ErrorCode,
        /// What went wrong.
        message: String,
    },
    /// The app's sponsorship policy refused (API.md section 10).
    #[error(transparent)]
    Refused(Refusal),
    /// The caller may not act for that user.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// No such record for this caller.
    #[error("{0}")]
    NotFound(&'static str),
    /// The user already has a wallet at another address.
    #[error("this user already has a wallet at another address")]
    WalletExists,
    /// The node could not be reached; nothing was sent.
    #[error("the Starknet node is unreachable; nothing was sent, retry later")]
    NodeUnavailable,
    /// The node did not answer the submission: the transaction may still land.
    #[error("the node did not answer the submission; it may still land: retry the same request to learn its hash")]
    SubmissionUnknown,
    /// Nothing was sent for a reason of this service's side (relayers, a concurrent
    /// duplicate still being sent); the same request may be retried.
    #[error("{0}")]
    Unavailable(String),
    /// Every relayer is busy and too many requests wait, or none was free before the
    /// request's deadline: nothing was sent; retry shortly.
    #[error("every relayer is busy; nothing was sent, retry shortly")]
    Busy,
    /// The node refused the relayer's transaction.
    #[error("the node refused the relayer's transaction; retry the same request")]
    RelayerRefused,
    /// A bug or a database failure (logged; nothing internal is shown).
    #[error("internal error")]
    Internal,
}

impl EngineError {
    /// `OUTSIDE_EXECUTION_REJECTED` with `message`.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::Rejected {
            code: ErrorCode::OutsideExecutionRejected,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for EngineError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(error = %error, "database error");
        Self::Internal
    }
}

impl From<chipi_core::WireError> for EngineError {
    fn from(error: chipi_core::WireError) -> Self {
        Self::Invalid(error.to_string())
    }
}

impl From<Refusal> for EngineError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// How long the class at an address is trusted (an owner may upgrade the wallet).
const CLASS_CACHE_TTL: Duration = Duration::from_secs(60);

/// The service's state below the front ends: configuration, apps, database, node,
/// relayers, metrics, and the work that must outlive its request.
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) apps: Apps,
    pub(crate) store: Store,
    pub(crate) node: Node,
    pub(crate) chain_id: Felt,
    pub(crate) relayers: Arc<Relayers>,
    pub(crate) metrics: Metrics,
    /// Work that must finish even when its request is gone (sends, records).
    pub(crate) tasks: TaskTracker,
    /// Classes at addresses, with when they were read (a cache: losing it costs a call).
    classes: Mutex<HashMap<Felt, (Felt, Instant)>>,
    /// Wallets known to execute from outside.
    outside_capable: Mutex<std::collections::HashSet<Felt>>,
    /// The webhook client (no redirects, bounded time).
    webhook: reqwest::Client,
}

impl Engine {
    /// An engine over its parts (nothing is contacted).
    pub(crate) fn new(
        config: Config,
        apps: Apps,
        store: Store,
        node: Node,
        chain_id: Felt,
        relayers: Arc<Relayers>,
        metrics: Metrics,
    ) -> Self {
        let webhook = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            config,
            apps,
            store,
            node,
            chain_id,
            relayers,
            metrics,
            tasks: TaskTracker::new(),
            classes: Mutex::new(HashMap::new()),
            outside_capable: Mutex::new(Default::default()),
            webhook,
        }
    }

    /// The chain this engine relays on.
    pub fn chain_id(&self) -> Felt {
        self.chain_id
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The latest block's timestamp (chain time).
    pub async fn chain_time(&self) -> Result<u64, EngineError> {
        let block = self
            .node
            .get_block_with_tx_hashes(BlockId::Tag(BlockTag::Latest))
            .await
            .map_err(|_| EngineError::NodeUnavailable)?;
        Ok(match block {
            MaybePreConfirmedBlockWithTxHashes::Block(b) => b.timestamp,
            MaybePreConfirmedBlockWithTxHashes::PreConfirmedBlock(b) => b.timestamp,
        })
    }

    /// The class deployed at `wallet` (cached for a minute).
    pub async fn class_at(&self, wallet: Felt) -> Result<Felt, EngineError> {
        if let Some((class, at)) = lock(&self.classes).get(&wallet) {
            if at.elapsed() < CLASS_CACHE_TTL {
                return Ok(*class);
            }
        }
        match self
            .node
            .get_class_hash_at(BlockId::Tag(BlockTag::PreConfirmed), wallet)
            .await
        {
            Ok(class) => {
                lock(&self.classes).insert(wallet, (class, Instant::now()));
                Ok(class)
            }
            Err(ProviderError::StarknetError(StarknetError::ContractNotFound)) => Err(
                EngineError::Invalid("no contract is deployed at this wallet address".into()),
            ),
            Err(_) => Err(EngineError::NodeUnavailable),
        }
    }

    /// Whether `wallet` executes SNIP-9 v2 outside executions (SRC-5; cached).
    pub async fn check_outside_capable(&self, wallet: Felt) -> Result<(), EngineError> {
        if lock(&self.outside_capable).contains(&wallet) {
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
        let not_capable = || EngineError::Rejected {
            code: ErrorCode::InvalidWalletTypeForSession,
            message: "the wallet does not support outside execution (SNIP-9 v2)".into(),
        };
        match answer {
            Ok(result) if result.first() == Some(&Felt::ONE) => {
                lock(&self.outside_capable).insert(wallet);
                Ok(())
            }
            Ok(_) => Err(not_capable()),
            Err(ProviderError::StarknetError(StarknetError::ContractNotFound)) => Err(
                EngineError::Invalid("no contract is deployed at this wallet address".into()),
            ),
            Err(ProviderError::StarknetError(_)) => Err(not_capable()),
            Err(_) => Err(EngineError::NodeUnavailable),
        }
    }

    /// One pass over the open transactions (the follower's step).
    pub(crate) async fn follow_once(&self) -> Result<(), sqlx::Error> {
        settle::follow_once(self).await
    }

    /// Waits for work started by requests (sends, records) to finish.
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The selector of `name` (names are ASCII literals of this crate).
pub(crate) fn selector(name: &str) -> Felt {
    starknet_rust_core::utils::get_selector_from_name(name).unwrap_or_default()
}
