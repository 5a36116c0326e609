//! The relay engine: issue a nonce, check the sponsorship policy, reserve, simulate,
//! lease, send, settle. It speaks `Felt`, typed requests and its own [`EngineError`]; it
//! knows nothing about HTTP, so every front end (the Chipi API today, SNIP-29 and the raw
//! execute next) parses, calls it, and maps the error to its wire.

mod build;
mod deploy;
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
use crate::prices::{FixedPrices, PriceSource};
use crate::relayers::{Estimator, Node, Relayers};
use crate::store::Store;

pub use build::{
    BuildInvoke, BuiltInvoke, Payment, Quote, Tracking, DEPLOY_OVERHEAD_L2_GAS,
    RELAY_OVERHEAD_L2_GAS,
};
pub use deploy::{AccountDeployment, DEPLOYMENT_VERSION};
pub use execute::{calls_hash, Signed, MAX_CALLS, RAW_MAX_WINDOW_SECONDS};
pub use relay::Bounds;
pub use sponsorship::{sign_webhook, UsageLimit, UsageReport, WEBHOOK_SIGNATURE_HEADER};
pub use wallets::{CreateWallet, UDC_ADDRESS};

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
    /// The client's time bounds cannot be used (a front end answers 400 `INVALID_INPUT`,
    /// SNIP-29 157).
    #[error("{0}")]
    TimeBounds(String),
    /// An account class this service does not deploy or relay for (a front end answers
    /// 400 `INVALID_INPUT`, SNIP-29 155).
    #[error("{0}")]
    ClassNotServed(String),
    /// Deployment data that cannot be sent: not giving its address, an unknown version,
    /// an address deployed already (a front end answers 400 `INVALID_INPUT`, SNIP-29 158).
    #[error("{0}")]
    Deployment(String),
    /// Fees cannot be paid in that token (SNIP-29 151).
    #[error("fees cannot be paid in token {0:#x} here")]
    TokenNotSupported(Felt),
    /// The user's fee payment does not cover the fee now (SNIP-29 154); nothing was sent.
    #[error("{0}")]
    PaymentTooLow(String),
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
/// How long a relayer's balance read for `/health` and `/metrics` is reused (probes and
/// scrapes do not each cost the node a call per relayer).
const BALANCE_CACHE_TTL: Duration = Duration::from_secs(1);
/// A wallet whose open transactions were just looked at, with nothing final found, is not
/// looked at again on a request sooner (the follower's pass comes anyway).
const FOLLOW_WALLET_EVERY: Duration = Duration::from_millis(250);

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
    /// Where fee estimates run, when configured (otherwise from a leased relayer).
    pub(crate) estimator: Option<Estimator>,
    pub(crate) metrics: Metrics,
    /// Prices of the tokens users may pay fees in (replaceable while serving).
    prices: std::sync::RwLock<Arc<dyn PriceSource>>,
    /// Work that must finish even when its request is gone (sends, records).
    pub(crate) tasks: TaskTracker,
    /// Sponsored quotes by wallet, tip and call shape, with when they were made.
    quotes: Mutex<HashMap<Felt, (build::Quote, Instant)>>,
    /// Classes at addresses, with when they were read (a cache: losing it costs a call).
    classes: Mutex<HashMap<Felt, (Felt, Instant)>>,
    /// Wallets known to execute from outside.
    outside_capable: Mutex<std::collections::HashSet<Felt>>,
    /// The webhook client (no redirects, bounded time).
    webhook: reqwest::Client,
    /// The latest block's timestamp, with when it was read.
    chain_time: Mutex<Option<(u64, Instant)>>,
    /// Relayer balances, with when they were read.
    balances: Mutex<HashMap<Felt, (u128, Instant)>>,
    /// The last look at each wallet's open transactions on a request.
    followed: Mutex<HashMap<Felt, Followed>>,
    /// Requests in the engine now, per (app, user).
    in_service: Mutex<HashMap<(String, String), usize>>,
    /// The follower's last call to the node went unanswered.
    pub(crate) node_away: std::sync::atomic::AtomicBool,
}

/// The last look at a wallet's open transactions on a request.
#[derive(Debug, Clone, Copy)]
struct Followed {
    at: Instant,
    /// A request is looking now.
    busy: bool,
    /// The look found a transaction final.
    finished: bool,
}

/// A request's look at a wallet's open transactions; dropping it (done, failed or
/// cancelled with its request) lets the next one look.
pub(crate) struct Looking<'a> {
    engine: &'a Engine,
    wallet: Felt,
    /// Set when the look found a transaction final.
    pub(crate) finished: bool,
}

impl Drop for Looking<'_> {
    fn drop(&mut self) {
        lock(&self.engine.followed).insert(
            self.wallet,
            Followed {
                at: Instant::now(),
                busy: false,
                finished: self.finished,
            },
        );
    }
}

/// One of a user's requests in the engine; dropping it leaves.
pub(crate) struct InService<'a> {
    engine: &'a Engine,
    key: (String, String),
}

impl Drop for InService<'_> {
    fn drop(&mut self) {
        let mut users = lock(&self.engine.in_service);
        if let Some(count) = users.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                users.remove(&self.key);
            }
        }
    }
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
        let estimator = config
            .estimator
            .as_ref()
            .map(|estimator| Estimator::new(estimator, node.clone(), chain_id));
        let prices = Arc::new(FixedPrices::new(
            config.fee_token,
            &config.snip29.gas_tokens,
        ));
        Self {
            prices: std::sync::RwLock::new(prices),
            config,
            apps,
            store,
            node,
            chain_id,
            relayers,
            estimator,
            metrics,
            tasks: TaskTracker::new(),
            quotes: Mutex::new(HashMap::new()),
            classes: Mutex::new(HashMap::new()),
            outside_capable: Mutex::new(Default::default()),
            webhook,
            chain_time: Mutex::new(None),
            balances: Mutex::new(HashMap::new()),
            followed: Mutex::new(HashMap::new()),
            in_service: Mutex::new(HashMap::new()),
            node_away: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The price source quotes and payment checks read now.
    pub fn prices(&self) -> Arc<dyn PriceSource> {
        self.prices
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the price source (by default the configuration's fixed prices): an
    /// oracle of the operator's, installed at start, or a test's moving prices. Builds
    /// and executes from then on read it; a transfer signed at an older price must still
    /// cover the fee at the new one.
    pub fn set_price_source(&self, source: Arc<dyn PriceSource>) {
        *self
            .prices
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = source;
    }

    /// For work claimed now: when it stops wherever it is. Three quarters of
    /// `relaying.abandon_claims_after_seconds`, so the follower never gives up a row whose
    /// request could still send it.
    pub(crate) fn give_up_at(&self) -> tokio::time::Instant {
        let after = self.config.relaying.abandon_claims_after_seconds;
        tokio::time::Instant::now() + Duration::from_millis(after.saturating_mul(750))
    }

    /// Sends (and records) running now, whether or not their requests still wait.
    pub fn work_running(&self) -> usize {
        self.tasks.len()
    }

    /// The relayers.
    pub fn relayers(&self) -> &Arc<Relayers> {
        &self.relayers
    }

    /// The chain this engine relays on.
    pub fn chain_id(&self) -> Felt {
        self.chain_id
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The latest block's timestamp (chain time), reused for `window.chain_time_cache_ms`.
    pub async fn chain_time(&self) -> Result<u64, EngineError> {
        let fresh = Duration::from_millis(self.config.window.chain_time_cache_ms);
        if let Some((time, at)) = *lock(&self.chain_time) {
            if at.elapsed() < fresh {
                return Ok(time);
            }
        }
        let block = self
            .node
            .get_block_with_tx_hashes(BlockId::Tag(BlockTag::Latest))
            .await
            .map_err(|_| EngineError::NodeUnavailable)?;
        let time = match block {
            MaybePreConfirmedBlockWithTxHashes::Block(b) => b.timestamp,
            MaybePreConfirmedBlockWithTxHashes::PreConfirmedBlock(b) => b.timestamp,
        };
        *lock(&self.chain_time) = Some((time, Instant::now()));
        Ok(time)
    }

    /// A relayer's balance in the fee token (read at most once a second), also published
    /// as a gauge; `None` when the node does not answer.
    pub async fn relayer_balance(&self, address: Felt) -> Option<u128> {
        if let Some((balance, at)) = lock(&self.balances).get(&address) {
            if at.elapsed() < BALANCE_CACHE_TTL {
                return Some(*balance);
            }
        }
        let result = self
            .node
            .call(
                FunctionCall {
                    contract_address: self.config.fee_token,
                    entry_point_selector: selector("balance_of"),
                    calldata: vec![address],
                },
                BlockId::Tag(BlockTag::Latest),
            )
            .await
            .ok()?;
        let low = u128::try_from(*result.first()?).ok()?;
        let high = result.get(1).copied().unwrap_or_default();
        let balance = if high == Felt::ZERO { low } else { u128::MAX };
        lock(&self.balances).insert(address, (balance, Instant::now()));
        self.metrics
            .relayer_balance
            .with_label_values(&[format!("{address:#x}").as_str()])
            .set(balance as f64);
        Some(balance)
    }

    /// Enters one request of `user` (of `caller`'s app), or refuses it when the user has
    /// `http.max_concurrent_per_user` in the engine already: a flooding user is turned
    /// away before it costs the database or the node anything.
    pub(crate) fn enter(
        &self,
        caller: &crate::auth::Caller,
        user: &str,
    ) -> Result<InService<'_>, EngineError> {
        let key = (caller.app.public_key.clone(), user.to_string());
        let mut users = lock(&self.in_service);
        let count = users.entry(key.clone()).or_insert(0);
        if *count >= self.config.http.max_concurrent_per_user {
            drop(users);
            let refusal = Refusal::new(
                crate::policy::RefusalKind::RateLimited,
                "http.max_concurrent_per_user",
                "too many requests of this user at once; wait for the ones under way",
            )
            .after(1);
            return Err(self.refused(caller, refusal));
        }
        *count += 1;
        Ok(InService { engine: self, key })
    }

    /// Whether `wallet`'s open transactions may be looked at on a request now: not while
    /// another request looks, and, when the last look found nothing final, not within
    /// `FOLLOW_WALLET_EVERY` of it. A user sending back to back is never held up; a flood
    /// refused for a transaction in flight costs the node a few calls a second at most.
    pub(crate) fn may_follow(&self, wallet: Felt) -> Option<Looking<'_>> {
        let mut followed = lock(&self.followed);
        if let Some(last) = followed.get(&wallet) {
            if last.busy || (!last.finished && last.at.elapsed() < FOLLOW_WALLET_EVERY) {
                return None;
            }
        }
        if followed.len() >= 4096 {
            followed.retain(|_, last| last.busy || last.at.elapsed() < FOLLOW_WALLET_EVERY);
        }
        followed.insert(
            wallet,
            Followed {
                at: Instant::now(),
                busy: true,
                finished: false,
            },
        );
        Some(Looking {
            engine: self,
            wallet,
            finished: false,
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

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The selector of `name` (names are ASCII literals of this crate).
pub(crate) fn selector(name: &str) -> Felt {
    starknet_rust_core::utils::get_selector_from_name(name).unwrap_or_default()
}
