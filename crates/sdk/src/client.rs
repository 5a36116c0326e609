//! The client: [`ChipiSdk`], its one write path and the confirmation of what it sent.

use std::sync::Arc;
use std::time::Duration;

use chipi_core::{decode_calls, selectors, ErrorCode, Felt, KdfLimits};
use starknet_rust_accounts::Account;
use starknet_rust_core::types::{
    Call, ExecutionResult, InvokeTransaction, StarknetError, Transaction,
    TransactionReceiptWithBlockInfo,
};
use starknet_rust_providers::{Provider, ProviderError};
use tokio::sync::OnceCell;

use crate::config::{invalid, Clock};
use crate::management::owner_signer;
use crate::node::{provider_error, reverted, send_error};
use crate::preflight::prepare_session;
use crate::read::view;
use crate::snip29::{verify_build, Snip29Paymaster};
use crate::sponsored::{verify_outside_execution, Paymaster};
use crate::{
    ChipiSdkBuilder, ExecuteTransaction, ExecuteWithSession, Role, SessionError, Sessions,
    Transport, WalletAccount, WalletData, WalletSigner,
};

/// The node client the SDK uses.
pub type RpcClient =
    starknet_rust_providers::JsonRpcClient<starknet_rust_providers::jsonrpc::HttpTransport>;

pub(crate) struct Inner {
    pub(crate) provider: RpcClient,
    pub(crate) rpc_url_shown: String,
    pub(crate) chain_id: OnceCell<Felt>,
    pub(crate) paymaster: Option<Paymaster>,
    pub(crate) snip29: Option<Snip29Paymaster>,
    pub(crate) bearer_token: Option<String>,
    pub(crate) transport: Transport,
    pub(crate) clock: Arc<dyn Clock>,
    /// Whether times are the chain's (no clock was configured): `now()` is the machine
    /// clock plus the offset to the chain's last seen block time.
    pub(crate) chain_clock: bool,
    pub(crate) chain_offset: std::sync::Mutex<Option<(std::time::Instant, i64)>>,
    pub(crate) max_execution_window: u64,
    pub(crate) confirmation_timeout: Duration,
    pub(crate) kdf_limits: KdfLimits,
}

/// A transaction the SDK sent, with what it needs to confirm it: the hash, the wallet,
/// and for a sponsored write the outside-execution nonce the SDK signed (the paymaster
/// chose the transaction; [`ChipiSdk::wait_for_transaction`] checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// The transaction hash (the relayer's transaction for a sponsored write).
    pub transaction_hash: Felt,
    /// The wallet that signed.
    pub wallet: Felt,
    /// The SNIP-9 nonce signed, for a sponsored write; `None` for a direct one.
    pub outside_nonce: Option<Felt>,
}

impl std::fmt::Display for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.transaction_hash)
    }
}

/// Chipi's session-key SDK, configured for one network (and one paymaster). Cheap to
/// clone; share one per app.
///
/// ```no_run
/// use chipi_sdk::{ChipiSdk, ExecuteWithSession, Call};
/// # async fn example(wallet: chipi_sdk::WalletData, session: chipi_sdk::SessionKeyData,
/// #     user_pin: &str, bearer_token: &str) -> Result<(), chipi_sdk::SessionError> {
/// let sdk = ChipiSdk::builder("https://starknet-sepolia.example/rpc")
///     .paymaster("https://paymaster.example", "pk_prod_0123456789abcdef0123456789abcdef")
///     .build()?;
/// let calls = [Call {
///     contract_address: "0x04718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d".into(),
///     entrypoint: "transfer".into(),
///     calldata: vec!["0x1234".into(), "100".into(), "0x0".into()],
/// }];
/// let sent = sdk
///     .execute_transaction_with_session(
///         ExecuteWithSession { encrypt_key: user_pin, wallet: &wallet, session: &session, calls: &calls },
///         Some(bearer_token),
///     )
///     .await?;
/// println!("Transfer sent: {sent}");
/// // Confirmed on chain, and it is the outside execution the session signed.
/// sdk.wait_for_transaction(&sent).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ChipiSdk {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ChipiSdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipiSdk")
            .field("rpc_url", &self.inner.rpc_url_shown)
            .field("transport", &self.inner.transport)
            .field("chain_id", &self.inner.chain_id.get())
            .field("paymaster", &self.inner.paymaster)
            .finish_non_exhaustive()
    }
}

impl ChipiSdk {
    /// A builder for a client of the node at `rpc_url` (JSON-RPC 0.10).
    pub fn builder(rpc_url: impl Into<String>) -> ChipiSdkBuilder {
        ChipiSdkBuilder::new(rpc_url.into())
    }

    /// The session methods (`sdk.sessions` in the JS SDK).
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions::new(self)
    }

    /// The node client.
    pub fn provider(&self) -> &RpcClient {
        &self.inner.provider
    }

    /// The transport writes use.
    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The current time: the configured [`Clock`]'s, or (by default) the chain's as last
    /// seen by [`ChipiSdk::chain_now`] and carried forward by the machine's clock; the
    /// machine's clock alone before the chain was ever read.
    pub fn now(&self) -> u64 {
        let machine = self.inner.clock.now();
        if !self.inner.chain_clock {
            return machine;
        }
        match *lock(&self.inner.chain_offset) {
            Some((_, offset)) => machine.saturating_add_signed(offset),
            None => machine,
        }
    }

    /// The chain's time: the latest block's timestamp (read at most every
    /// [`CHAIN_TIME_CACHE`], carried forward by the machine's clock in between), which is
    /// what the wallet and the paymaster judge windows and expiry by. Falls back to
    /// [`ChipiSdk::now`] when the node cannot be read; the configured [`Clock`] when one
    /// was given.
    pub async fn chain_now(&self) -> u64 {
        if !self.inner.chain_clock {
            return self.inner.clock.now();
        }
        let fresh = lock(&self.inner.chain_offset)
            .is_some_and(|(read, _)| read.elapsed() < CHAIN_TIME_CACHE);
        if !fresh {
            if let Ok(chain) = crate::read::chain_time(self.provider()).await {
                let offset = i64::try_from(chain).unwrap_or(i64::MAX)
                    - i64::try_from(self.inner.clock.now()).unwrap_or(i64::MAX);
                *lock(&self.inner.chain_offset) = Some((std::time::Instant::now(), offset));
            }
        }
        self.now()
    }

    /// The chain id: as configured, or read from the node once.
    pub async fn chain_id(&self) -> Result<Felt, SessionError> {
        self.inner
            .chain_id
            .get_or_try_init(|| async {
                self.inner
                    .provider
                    .chain_id()
                    .await
                    .map_err(|e| provider_error(e, "reading the chain id"))
            })
            .await
            .copied()
    }

    /// `executeTransactionWithSession`: runs `params.calls` signed by the session key.
    /// `bearer_token` overrides the configured default (sponsored transport only).
    ///
    /// Checks before anything is signed, each with its code: wallet type
    /// (`INVALID_WALLET_TYPE_FOR_SESSION`), local expiry (`SESSION_EXPIRED`), decryption
    /// (`SESSION_DECRYPTION_FAILED`), then the on-chain session (`SESSION_NOT_REGISTERED`,
    /// `SESSION_REVOKED`, `SESSION_EXPIRED`, `SESSION_MAX_CALLS_EXCEEDED`) and whitelist
    /// (`SESSION_ENTRYPOINT_NOT_ALLOWED`).
    pub async fn execute_transaction_with_session(
        &self,
        params: ExecuteWithSession<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        let now = self.chain_now().await;
        let prepared =
            prepare_session(self.provider(), &params, now, self.inner.kdf_limits).await?;
        let signer = WalletSigner::session(prepared.key, prepared.valid_until);
        self.write(prepared.wallet, signer, prepared.calls, bearer_token)
            .await
    }

    /// `executeTransaction`: runs `params.calls` signed by the owner key (any calls,
    /// the wallet's own entry points included), over the configured transport with the
    /// same checks before signing as a session write.
    ///
    /// ```no_run
    /// use chipi_sdk::{Call, ChipiSdk, ExecuteTransaction};
    /// # async fn example(sdk: ChipiSdk, wallet: chipi_sdk::WalletData, user_pin: &str)
    /// #     -> Result<(), chipi_sdk::SessionError> {
    /// let calls = [Call {
    ///     contract_address: format!("{:#x}", chipi_core::STRK_ADDRESS),
    ///     entrypoint: "approve".into(),
    ///     calldata: vec!["0x1234".into(), "1000".into(), "0".into()],
    /// }];
    /// let sent = sdk
    ///     .execute_transaction(ExecuteTransaction { encrypt_key: user_pin, wallet: &wallet, calls: &calls }, None)
    ///     .await?;
    /// sdk.wait_for_transaction(&sent).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_transaction(
        &self,
        params: ExecuteTransaction<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        let calls = chipi_core::parse_calls(params.calls)?;
        if calls.is_empty() {
            return Err(invalid("calls must not be empty"));
        }
        self.owner_write(
            params.encrypt_key,
            params.wallet,
            |_| Ok(calls),
            bearer_token,
        )
        .await
    }

    /// Sends the calls `calls` builds for the wallet's address, signed by the owner
    /// (after checking that the decrypted key is the wallet's owner key).
    pub(crate) async fn owner_write(
        &self,
        encrypt_key: &str,
        wallet: &WalletData,
        calls: impl FnOnce(Felt) -> Result<Vec<Call>, SessionError>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        let calls = calls(crate::read::parse_felt(
            &wallet.public_key,
            "wallet.publicKey",
        )?)?;
        let (address, signer) =
            owner_signer(self.provider(), wallet, encrypt_key, self.inner.kdf_limits).await?;
        self.write(address, signer, calls, bearer_token).await
    }

    /// Where a write goes, with the bearer token to send.
    pub(crate) fn route<'a>(
        &'a self,
        bearer_token: Option<&'a str>,
    ) -> Result<Route<'a>, SessionError> {
        let bearer = bearer_token
            .or(self.inner.bearer_token.as_deref())
            .filter(|t| !t.is_empty());
        match (
            &self.inner.transport,
            &self.inner.paymaster,
            &self.inner.snip29,
        ) {
            (Transport::Direct, _, _) => Ok(Route::Direct),
            (Transport::Sponsored, Some(paymaster), _) => {
                let bearer = bearer.ok_or_else(|| {
                    SessionError::new(
                        ErrorCode::AuthenticationFailed,
                        "a bearer token is required for sponsored transactions",
                    )
                })?;
                Ok(Route::Chipi(paymaster, bearer))
            }
            (Transport::Snip29 { .. }, _, Some(snip29)) => Ok(Route::Snip29(snip29, bearer)),
            _ => Err(invalid("no paymaster is configured")),
        }
    }

    /// The one write path: `calls` from `wallet`, signed by `signer`, over the
    /// configured transport.
    ///
    /// - sponsored: the paymaster's typed data is checked against `calls` before
    ///   anything is signed, then the SDK signs the SNIP-12 hash it computes itself;
    /// - direct: an INVOKE v3 the wallet pays for (a session sends no tip: the wallet
    ///   refuses tipped session transactions, and starknet-rust would otherwise take
    ///   the latest block's median tip).
    pub(crate) async fn write(
        &self,
        wallet: Felt,
        signer: WalletSigner,
        calls: Vec<Call>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        let chain_id = self.chain_id().await?;
        match self.route(bearer_token)? {
            Route::Chipi(paymaster, bearer) => {
                let typed_data = paymaster.prepare_typed_data(bearer, wallet, &calls).await?;
                let execution = verify_outside_execution(
                    &typed_data,
                    &calls,
                    chain_id,
                    self.chain_now().await,
                    self.inner.max_execution_window,
                )?;
                let signature = signer.sign(execution.message_hash(chain_id, wallet))?;
                let transaction_hash = paymaster
                    .execute_sponsored(bearer, wallet, &execution, chain_id, &signature)
                    .await?;
                Ok(Submitted {
                    transaction_hash,
                    wallet,
                    outside_nonce: Some(execution.nonce),
                })
            }
            Route::Snip29(paymaster, bearer) => {
                let built = paymaster.build_invoke(bearer, wallet, &calls).await?;
                let execution = verify_build(
                    &built,
                    &calls,
                    paymaster.fee,
                    chain_id,
                    self.chain_now().await,
                    self.inner.max_execution_window,
                )?;
                let signature = signer.sign(execution.message_hash(chain_id, wallet))?;
                let executed = paymaster
                    .execute_invoke(bearer, wallet, &execution, chain_id, signature.to_felts())
                    .await?;
                Ok(Submitted {
                    transaction_hash: executed.transaction_hash,
                    wallet,
                    outside_nonce: Some(execution.nonce),
                })
            }
            Route::Direct => {
                let session = matches!(signer.role(), Role::Session { .. });
                let account = WalletAccount::new(self.provider().clone(), wallet, chain_id, signer);
                let mut execution = account.execute_v3(calls);
                if session {
                    execution = execution.tip(0);
                }
                let sent = execution.send().await.map_err(|e| send_error(e, wallet))?;
                Ok(Submitted {
                    transaction_hash: sent.transaction_hash,
                    wallet,
                    outside_nonce: None,
                })
            }
        }
    }

    /// Waits until `sent` is in a block and checks that it did what was signed: it
    /// succeeded, and it is the wallet's own transaction (direct) or a transaction that
    /// ran `execute_from_outside_v2` on the wallet with the nonce the SDK signed, which
    /// the wallet now marks used (sponsored). A paymaster that drops a write and answers
    /// with another transaction's hash, or an invented one, is caught here.
    ///
    /// A revert maps to its code as for a refused send (`SESSION_REVOKED`, ...).
    pub async fn wait_for_transaction(
        &self,
        sent: &Submitted,
    ) -> Result<TransactionReceiptWithBlockInfo, SessionError> {
        let options = WaitOptions {
            timeout: self.inner.confirmation_timeout,
            ..WaitOptions::default()
        };
        Ok(self.wait_for_transaction_with(sent, options).await?.receipt)
    }

    /// [`ChipiSdk::wait_for_transaction`] with its own timeout and poll interval (Chipi
    /// 14.13's `waitForTransaction(hash, {timeoutMs, retryIntervalMs})`), returning the
    /// block, the fee and the receipt. Unlike the JS SDK, a revert is an error (its code,
    /// as for a refused send) rather than `success: false`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use chipi_sdk::{ChipiSdk, WaitOptions};
    /// # async fn example(sdk: ChipiSdk, sent: chipi_sdk::Submitted) -> Result<(), chipi_sdk::SessionError> {
    /// let confirmed = sdk
    ///     .wait_for_transaction_with(&sent, WaitOptions { timeout: Duration::from_secs(60), poll_interval: Duration::from_secs(1) })
    ///     .await?;
    /// println!("in block {}, fee {} fri", confirmed.block_number, confirmed.fee);
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_transaction_with(
        &self,
        sent: &Submitted,
        options: WaitOptions,
    ) -> Result<Confirmed, SessionError> {
        let receipt = self.receipt(sent, options).await?;
        if let ExecutionResult::Reverted { reason } = receipt.receipt.execution_result() {
            return Err(reverted(reason, sent.wallet));
        }
        let transaction = self
            .provider()
            .get_transaction_by_hash(sent.transaction_hash, None)
            .await
            .map_err(|e| provider_error(e, "reading the transaction"))?;
        let (sender, calldata) = match &transaction {
            Transaction::Invoke(InvokeTransaction::V3(tx)) => (tx.sender_address, &tx.calldata),
            Transaction::Invoke(InvokeTransaction::V1(tx)) => (tx.sender_address, &tx.calldata),
            _ => return Err(not_ours(sent, "it is not an invoke transaction")),
        };
        match sent.outside_nonce {
            None if sender == sent.wallet => Ok(receipt),
            None => Err(not_ours(sent, "another account sent it")),
            Some(nonce) => {
                let runs_it = decode_calls(calldata).is_some_and(|calls| {
                    calls.iter().any(|call| {
                        call.to == sent.wallet
                            && call.selector == selectors::EXECUTE_FROM_OUTSIDE_V2
                            && call.calldata.get(1) == Some(&nonce)
                    })
                });
                if !runs_it {
                    return Err(not_ours(
                        sent,
                        "it does not run the outside execution the SDK signed",
                    ));
                }
                let unused = view(
                    self.provider(),
                    sent.wallet,
                    "is_valid_outside_execution_nonce",
                    vec![nonce],
                )
                .await?;
                if unused.first() != Some(&Felt::ZERO) {
                    return Err(not_ours(sent, "the wallet has not used the signed nonce"));
                }
                Ok(receipt)
            }
        }
        .map(Confirmed::of)
    }

    /// Polls for the receipt until the timeout: every `poll_interval`, or from 100 ms
    /// doubling to 2 s when it is zero.
    async fn receipt(
        &self,
        sent: &Submitted,
        options: WaitOptions,
    ) -> Result<TransactionReceiptWithBlockInfo, SessionError> {
        let deadline = tokio::time::Instant::now() + options.timeout;
        let fixed = !options.poll_interval.is_zero();
        let mut pause = if fixed {
            options.poll_interval
        } else {
            Duration::from_millis(100)
        };
        loop {
            match self
                .provider()
                .get_transaction_receipt(sent.transaction_hash)
                .await
            {
                Ok(receipt) => return Ok(receipt),
                Err(ProviderError::StarknetError(StarknetError::TransactionHashNotFound)) => {}
                Err(e) => return Err(provider_error(e, "reading the receipt")),
            }
            if tokio::time::Instant::now() + pause > deadline {
                let code = if sent.outside_nonce.is_some() {
                    ErrorCode::PaymasterError
                } else {
                    ErrorCode::NetworkError
                };
                return Err(SessionError::new(
                    code,
                    format!(
                        "transaction {:#x} is not on chain after {} s",
                        sent.transaction_hash,
                        options.timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            if !fixed {
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// How long the chain's time, once read, is carried forward by the machine's clock
/// before it is read again.
pub const CHAIN_TIME_CACHE: Duration = Duration::from_secs(10);

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How [`ChipiSdk::wait_for_transaction_with`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// The most to wait for the receipt (default 120 s).
    pub timeout: Duration,
    /// Between two reads of the receipt; zero (the default) starts at 100 ms and
    /// doubles up to 2 s.
    pub poll_interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            poll_interval: Duration::ZERO,
        }
    }
}

/// A transaction in a block that did what was signed.
#[derive(Debug, Clone)]
pub struct Confirmed {
    /// The block it is in.
    pub block_number: u64,
    /// The fee it paid, in its unit's smallest denomination (fri for STRK).
    pub fee: u128,
    /// The receipt.
    pub receipt: TransactionReceiptWithBlockInfo,
}

impl Confirmed {
    fn of(receipt: TransactionReceiptWithBlockInfo) -> Self {
        use starknet_rust_core::types::TransactionReceipt as R;
        let fee = match &receipt.receipt {
            R::Invoke(r) => r.actual_fee.amount,
            R::L1Handler(r) => r.actual_fee.amount,
            R::Declare(r) => r.actual_fee.amount,
            R::Deploy(r) => r.actual_fee.amount,
            R::DeployAccount(r) => r.actual_fee.amount,
        };
        Self {
            block_number: receipt.block.block_number(),
            fee: u128::try_from(fee).unwrap_or(u128::MAX),
            receipt,
        }
    }
}

/// Where a write goes.
pub(crate) enum Route<'a> {
    /// INVOKE v3 through the node.
    Direct,
    /// Chipi's paymaster API, with the bearer token.
    Chipi(&'a Paymaster, &'a str),
    /// A SNIP-29 paymaster, with the bearer token if there is one.
    Snip29(&'a Snip29Paymaster, Option<&'a str>),
}

fn not_ours(sent: &Submitted, why: &str) -> SessionError {
    let code = if sent.outside_nonce.is_some() {
        ErrorCode::PaymasterError
    } else {
        ErrorCode::TransactionReverted
    };
    SessionError::new(
        code,
        format!(
            "transaction {:#x} is not the one signed: {why}",
            sent.transaction_hash
        ),
    )
}
