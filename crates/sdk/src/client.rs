//! The configured client: [`ChipiSdk`] and its [`Sessions`], with the seed's method names.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chipi_core::{session_signature, sign_hash_recoverable, ErrorCode, Felt};
use starknet_rust_core::types::Call as StarknetCall;
use starknet_rust_providers::jsonrpc::HttpTransport;
use starknet_rust_providers::{JsonRpcClient, Provider};
use tokio::sync::OnceCell;
use url::Url;

use crate::direct::{execute_with_session_direct, prepare_session};
use crate::owner::{owner_key, register_call, revoke_call, send_as_owner};
use crate::policy::{get_spending_policy, remove_policy_call, set_policy_call};
use crate::read::parse_felt;
use crate::sponsored::{
    verify_outside_execution, Paymaster, UserSignature, DEFAULT_MAX_EXECUTION_WINDOW_SECONDS,
};
use crate::{
    create_session_key, get_session_data, CreateSessionKey, ExecuteWithSession, SessionConfig,
    SessionDataResponse, SessionError, SessionKeyData, SpendingPolicyConfig, SpendingPolicyData,
    WalletData,
};

/// The node client the SDK uses.
pub type RpcClient = JsonRpcClient<HttpTransport>;

/// How writes reach the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Through the paymaster as SNIP-9 outside executions: the user pays no gas (the
    /// seed's default; needs a paymaster URL and an API key).
    Sponsored,
    /// INVOKE v3 transactions through the node, fees paid by the wallet.
    Direct,
}

/// A source of the current unix time, in seconds.
pub trait Clock: Send + Sync {
    /// Now, in unix seconds.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

impl<F: Fn() -> u64 + Send + Sync> Clock for F {
    fn now(&self) -> u64 {
        self()
    }
}

fn invalid(message: impl Into<String>) -> SessionError {
    SessionError::new(ErrorCode::InvalidInput, message)
}

/// Builds a [`ChipiSdk`]. Secrets given here (API key, bearer token) never appear in
/// `Debug` output or errors.
#[must_use]
pub struct ChipiSdkBuilder {
    rpc_url: String,
    chain_id: Option<Felt>,
    paymaster_url: Option<String>,
    api_key: Option<String>,
    bearer_token: Option<String>,
    transport: Option<Transport>,
    clock: Arc<dyn Clock>,
    max_execution_window: u64,
    timeout: Duration,
}

impl std::fmt::Debug for ChipiSdkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipiSdkBuilder")
            .field("rpc_url", &self.rpc_url)
            .field("chain_id", &self.chain_id)
            .field("paymaster_url", &self.paymaster_url)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl ChipiSdkBuilder {
    /// The chain id (e.g. [`chipi_core::chain_id::SEPOLIA`]); read from the node when
    /// not given.
    pub fn chain_id(mut self, chain_id: Felt) -> Self {
        self.chain_id = Some(chain_id);
        self
    }

    /// The paymaster's base URL (the API's `/v1` paths go under it) and the app's API
    /// key (`pk_dev_...` / `pk_prod_...`). Makes [`Transport::Sponsored`] the default.
    pub fn paymaster(mut self, url: impl Into<String>, api_key: impl Into<String>) -> Self {
        self.paymaster_url = Some(url.into());
        self.api_key = Some(api_key.into());
        self
    }

    /// The bearer token (JWT) used when a call passes none.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// The transport for writes; by default sponsored when a paymaster is configured,
    /// direct otherwise.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The time source for session expiry (by default the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The longest time window, in seconds, of an outside execution the SDK agrees to
    /// sign for the paymaster (default one hour).
    pub fn max_execution_window(mut self, seconds: u64) -> Self {
        self.max_execution_window = seconds;
        self
    }

    /// The timeout of each paymaster request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the configuration and builds the client; makes no network call.
    pub fn build(self) -> Result<ChipiSdk, SessionError> {
        let rpc_url = Url::parse(&self.rpc_url)
            .map_err(|e| invalid(format!("bad RPC URL {:?}: {e}", self.rpc_url)))?;
        let paymaster = match (self.paymaster_url, self.api_key) {
            (Some(url), Some(api_key)) => {
                let mut url =
                    Url::parse(&url).map_err(|e| invalid(format!("bad paymaster URL: {e}")))?;
                // `join` keeps the base's last segment only if it ends with '/'.
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                if api_key.is_empty() {
                    return Err(invalid("the paymaster API key is empty"));
                }
                Some(Paymaster::new(url, api_key, self.timeout)?)
            }
            _ => None,
        };
        let transport = self.transport.unwrap_or(if paymaster.is_some() {
            Transport::Sponsored
        } else {
            Transport::Direct
        });
        if transport == Transport::Sponsored && paymaster.is_none() {
            return Err(invalid(
                "the sponsored transport needs a paymaster URL and an API key",
            ));
        }
        Ok(ChipiSdk {
            inner: Arc::new(Inner {
                provider: JsonRpcClient::new(HttpTransport::new(rpc_url)),
                chain_id: match self.chain_id {
                    Some(id) => OnceCell::new_with(Some(id)),
                    None => OnceCell::new(),
                },
                paymaster,
                bearer_token: self.bearer_token,
                transport,
                clock: self.clock,
                max_execution_window: self.max_execution_window,
            }),
        })
    }
}

struct Inner {
    provider: RpcClient,
    chain_id: OnceCell<Felt>,
    paymaster: Option<Paymaster>,
    bearer_token: Option<String>,
    transport: Transport,
    clock: Arc<dyn Clock>,
    max_execution_window: u64,
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
/// let tx_hash = sdk
///     .execute_transaction_with_session(
///         ExecuteWithSession { encrypt_key: user_pin, wallet: &wallet, session: &session, calls: &calls },
///         Some(bearer_token),
///     )
///     .await?;
/// println!("Transfer executed: {tx_hash:#x}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ChipiSdk {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChipiSdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipiSdk")
            .field("transport", &self.inner.transport)
            .field("chain_id", &self.inner.chain_id.get())
            .field("paymaster", &self.inner.paymaster)
            .finish_non_exhaustive()
    }
}

impl ChipiSdk {
    /// A builder for a client of the node at `rpc_url` (JSON-RPC 0.10).
    pub fn builder(rpc_url: impl Into<String>) -> ChipiSdkBuilder {
        ChipiSdkBuilder {
            rpc_url: rpc_url.into(),
            chain_id: None,
            paymaster_url: None,
            api_key: None,
            bearer_token: None,
            transport: None,
            clock: Arc::new(SystemClock),
            max_execution_window: DEFAULT_MAX_EXECUTION_WINDOW_SECONDS,
            timeout: Duration::from_secs(30),
        }
    }

    /// The session methods (`sdk.sessions` in the JS SDK).
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { sdk: self }
    }

    /// The node client.
    pub fn provider(&self) -> &RpcClient {
        &self.inner.provider
    }

    /// The transport writes use.
    pub fn transport(&self) -> Transport {
        self.inner.transport
    }

    /// The current time of the SDK's clock.
    pub fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    /// The chain id: as configured, or read from the node once.
    pub async fn chain_id(&self) -> Result<Felt, SessionError> {
        self.inner
            .chain_id
            .get_or_try_init(|| async {
                self.inner.provider.chain_id().await.map_err(|e| {
                    SessionError::new(
                        ErrorCode::NetworkError,
                        format!("cannot read the chain id from the node: {e}"),
                    )
                })
            })
            .await
            .copied()
    }

    /// `executeTransactionWithSession`: runs `params.calls` signed by the session key;
    /// returns the transaction hash. `bearer_token` overrides the configured default
    /// (sponsored transport only).
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
    ) -> Result<Felt, SessionError> {
        let chain_id = self.chain_id().await?;
        let now = self.now();
        match self.sponsor(bearer_token)? {
            None => execute_with_session_direct(self.provider(), chain_id, params, now).await,
            Some((paymaster, bearer)) => {
                let prepared = prepare_session(self.provider(), &params, now).await?;
                let typed_data = paymaster
                    .prepare_typed_data(bearer, prepared.wallet, &prepared.calls)
                    .await?;
                let execution = verify_outside_execution(
                    &typed_data,
                    &prepared.calls,
                    chain_id,
                    now,
                    self.inner.max_execution_window,
                )?;
                let hash = execution.message_hash(chain_id, prepared.wallet);
                let signature =
                    session_signature(&prepared.key.to_felt(), hash, prepared.valid_until)
                        .map_err(|e| {
                            SessionError::new(ErrorCode::SessionDecryptionFailed, e.to_string())
                        })?;
                paymaster
                    .execute_sponsored(
                        bearer,
                        prepared.wallet,
                        &execution,
                        chain_id,
                        UserSignature::Session(signature),
                    )
                    .await
            }
        }
    }

    /// The paymaster and bearer token to use, or `None` for the direct transport.
    fn sponsor<'a>(
        &'a self,
        bearer_token: Option<&'a str>,
    ) -> Result<Option<(&'a Paymaster, &'a str)>, SessionError> {
        match (self.inner.transport, &self.inner.paymaster) {
            (Transport::Direct, _) => Ok(None),
            (Transport::Sponsored, None) => Err(invalid("no paymaster is configured")),
            (Transport::Sponsored, Some(paymaster)) => {
                let bearer = bearer_token
                    .or(self.inner.bearer_token.as_deref())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        SessionError::new(
                            ErrorCode::AuthenticationFailed,
                            "a bearer token is required for sponsored transactions",
                        )
                    })?;
                Ok(Some((paymaster, bearer)))
            }
        }
    }

    /// Sends `call` from `wallet` signed by its owner, over the configured transport.
    async fn owner_write(
        &self,
        encrypt_key: &str,
        wallet: &WalletData,
        call: StarknetCall,
        bearer_token: Option<&str>,
    ) -> Result<Felt, SessionError> {
        let chain_id = self.chain_id().await?;
        match self.sponsor(bearer_token)? {
            None => send_as_owner(self.provider(), chain_id, encrypt_key, wallet, call).await,
            Some((paymaster, bearer)) => {
                let (address, key) = owner_key(self.provider(), wallet, encrypt_key).await?;
                let calls = [call];
                let typed_data = paymaster
                    .prepare_typed_data(bearer, address, &calls)
                    .await?;
                let execution = verify_outside_execution(
                    &typed_data,
                    &calls,
                    chain_id,
                    self.now(),
                    self.inner.max_execution_window,
                )?;
                let hash = execution.message_hash(chain_id, address);
                let (r, s, recovery) =
                    sign_hash_recoverable(&key.to_felt(), hash).map_err(|e| {
                        SessionError::new(ErrorCode::SessionDecryptionFailed, e.to_string())
                    })?;
                paymaster
                    .execute_sponsored(
                        bearer,
                        address,
                        &execution,
                        chain_id,
                        UserSignature::Owner { r, s, recovery },
                    )
                    .await
            }
        }
    }
}

/// `addSessionKeyToContract`'s parameters. `Debug` hides the encryptKey.
#[derive(Clone)]
pub struct AddSessionKey<'a> {
    /// The PIN that encrypted the owner's key.
    pub encrypt_key: &'a str,
    /// The user's wallet (`walletType` must be `CHIPI`).
    pub wallet: &'a WalletData,
    /// What to register.
    pub session_config: &'a SessionConfig,
}

/// `revokeSessionKey`'s parameters. `Debug` hides the encryptKey.
#[derive(Clone)]
pub struct RevokeSessionKey<'a> {
    /// The PIN that encrypted the owner's key.
    pub encrypt_key: &'a str,
    /// The user's wallet (`walletType` must be `CHIPI`).
    pub wallet: &'a WalletData,
    /// The session to revoke.
    pub session_public_key: &'a str,
}

/// `getSessionData`'s parameters.
#[derive(Debug, Clone, Copy)]
pub struct GetSessionData<'a> {
    /// The CHIPI wallet address.
    pub wallet_address: &'a str,
    /// The session's public key.
    pub session_public_key: &'a str,
}

/// Parameters to set a spending policy. `Debug` hides the encryptKey.
#[derive(Clone)]
pub struct SetSpendingPolicy<'a> {
    /// The PIN that encrypted the owner's key.
    pub encrypt_key: &'a str,
    /// The user's wallet (`walletType` must be `CHIPI`).
    pub wallet: &'a WalletData,
    /// The policy.
    pub policy: &'a SpendingPolicyConfig,
}

/// Parameters to remove a spending policy. `Debug` hides the encryptKey.
#[derive(Clone)]
pub struct RemoveSpendingPolicy<'a> {
    /// The PIN that encrypted the owner's key.
    pub encrypt_key: &'a str,
    /// The user's wallet (`walletType` must be `CHIPI`).
    pub wallet: &'a WalletData,
    /// The session the policy binds.
    pub session_public_key: &'a str,
    /// The token it limits.
    pub token: &'a str,
}

/// Parameters to read a spending policy.
#[derive(Debug, Clone, Copy)]
pub struct GetSpendingPolicy<'a> {
    /// The CHIPI wallet address.
    pub wallet_address: &'a str,
    /// The session the policy binds.
    pub session_public_key: &'a str,
    /// The token it limits.
    pub token: &'a str,
}

macro_rules! redacted_debug {
    ($name:ident { $($field:ident),* }) => {
        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("encrypt_key", &"<redacted>")
                    .field("wallet", &self.wallet.public_key)
                    $(.field(stringify!($field), &self.$field))*
                    .finish()
            }
        }
    };
}
redacted_debug!(AddSessionKey { session_config });
redacted_debug!(RevokeSessionKey { session_public_key });
redacted_debug!(SetSpendingPolicy { policy });
redacted_debug!(RemoveSpendingPolicy {
    session_public_key,
    token
});

/// The session methods of a [`ChipiSdk`] (`sdk.sessions` in the JS SDK).
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'a> {
    sdk: &'a ChipiSdk,
}

impl Sessions<'_> {
    /// `createSessionKey`: a new key pair, its private key encrypted with the encryptKey,
    /// valid for the duration (default 6 hours) from the SDK's clock. Stores nothing.
    ///
    /// Synchronous, as in the JS SDK. With [`KeyFormat::Strong`](crate::KeyFormat) the
    /// Argon2id derivation takes ~170 ms of CPU: inside async code, call it through
    /// `tokio::task::spawn_blocking`.
    ///
    /// ```
    /// use chipi_sdk::{ChipiSdk, CreateSessionKey};
    ///
    /// let sdk = ChipiSdk::builder("http://127.0.0.1:5050/rpc").build()?;
    /// // Create a 1-hour gaming session.
    /// let session = sdk
    ///     .sessions()
    ///     .create_session_key(CreateSessionKey::new("user-secure-pin").duration_seconds(60 * 60))?;
    /// // Store in client-side secure storage (not your database).
    /// let stored = serde_json::to_string(&session)?;
    /// println!("Session expires at: {}", session.valid_until);
    /// # let _ = stored;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_session_key(
        self,
        params: CreateSessionKey<'_>,
    ) -> Result<SessionKeyData, SessionError> {
        let params = if params.has_now() {
            params
        } else {
            params.now(self.sdk.now())
        };
        create_session_key(params)
    }

    /// `addSessionKeyToContract`: registers the session on the wallet, signed by the
    /// owner; returns the transaction hash.
    ///
    /// ```no_run
    /// use chipi_sdk::{AddSessionKey, ChipiSdk, SessionConfig};
    /// # async fn example(sdk: ChipiSdk, wallet: chipi_sdk::WalletData,
    /// #     session: chipi_sdk::SessionKeyData, user_pin: &str, bearer_token: &str)
    /// #     -> Result<(), chipi_sdk::SessionError> {
    /// // Register a session with restricted permissions.
    /// let tx_hash = sdk
    ///     .sessions()
    ///     .add_session_key_to_contract(
    ///         AddSessionKey {
    ///             encrypt_key: user_pin,
    ///             wallet: &wallet,
    ///             session_config: &SessionConfig {
    ///                 session_public_key: session.public_key.clone(),
    ///                 valid_until: session.valid_until,
    ///                 max_calls: 50,
    ///                 allowed_entrypoints: vec![
    ///                     "0x83afd3f4caedc6eebf44246fe54e38c95e3179a5ec9ea81740eca5b482d12e".into(), // transfer
    ///                 ],
    ///             },
    ///         },
    ///         Some(bearer_token),
    ///     )
    ///     .await?;
    /// println!("Session registered: {tx_hash:#x}");
    /// # Ok(()) }
    /// ```
    pub async fn add_session_key_to_contract(
        self,
        params: AddSessionKey<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Felt, SessionError> {
        let address = parse_felt(&params.wallet.public_key, "wallet.publicKey")?;
        let call = register_call(address, params.session_config, self.sdk.now())?;
        self.sdk
            .owner_write(params.encrypt_key, params.wallet, call, bearer_token)
            .await
    }

    /// `revokeSessionKey`: removes the session's authorization, signed by the owner;
    /// returns the transaction hash. A key that is absent gives `SESSION_NOT_REGISTERED`,
    /// one already revoked `SESSION_REVOKED`.
    ///
    /// ```no_run
    /// use chipi_sdk::{ChipiSdk, RevokeSessionKey};
    /// # async fn example(sdk: ChipiSdk, wallet: chipi_sdk::WalletData,
    /// #     session: chipi_sdk::SessionKeyData, user_pin: &str, bearer_token: &str)
    /// #     -> Result<(), chipi_sdk::SessionError> {
    /// // Revoke the session on logout.
    /// sdk.sessions()
    ///     .revoke_session_key(
    ///         RevokeSessionKey { encrypt_key: user_pin, wallet: &wallet, session_public_key: &session.public_key },
    ///         Some(bearer_token),
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_session_key(
        self,
        params: RevokeSessionKey<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Felt, SessionError> {
        let address = parse_felt(&params.wallet.public_key, "wallet.publicKey")?;
        let call = revoke_call(address, params.session_public_key)?;
        self.sdk
            .owner_write(params.encrypt_key, params.wallet, call, bearer_token)
            .await
    }

    /// `getSessionData`: the session's on-chain status, read through the node.
    ///
    /// ```no_run
    /// use chipi_sdk::{ChipiSdk, GetSessionData};
    /// # async fn example(sdk: ChipiSdk, wallet: chipi_sdk::WalletData,
    /// #     session: chipi_sdk::SessionKeyData) -> Result<(), chipi_sdk::SessionError> {
    /// let session_data = sdk
    ///     .sessions()
    ///     .get_session_data(GetSessionData {
    ///         wallet_address: &wallet.public_key,
    ///         session_public_key: &session.public_key,
    ///     })
    ///     .await?;
    /// if !session_data.is_active {
    ///     println!("Session expired or revoked - need to create new session");
    /// } else if session_data.remaining_calls < 5 {
    ///     println!("Warning: Only {} calls remaining", session_data.remaining_calls);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_session_data(
        self,
        params: GetSessionData<'_>,
    ) -> Result<SessionDataResponse, SessionError> {
        get_session_data(
            self.sdk.provider(),
            params.wallet_address,
            params.session_public_key,
        )
        .await
    }

    /// Sets a per-token spending limit for a session, signed by the owner; returns the
    /// transaction hash. A policy the contract would refuse gives
    /// `INVALID_SPENDING_POLICY` before anything is sent.
    pub async fn set_spending_policy(
        self,
        params: SetSpendingPolicy<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Felt, SessionError> {
        let address = parse_felt(&params.wallet.public_key, "wallet.publicKey")?;
        let call = set_policy_call(address, params.policy)?;
        self.sdk
            .owner_write(params.encrypt_key, params.wallet, call, bearer_token)
            .await
    }

    /// Removes a spending limit, signed by the owner; returns the transaction hash.
    pub async fn remove_spending_policy(
        self,
        params: RemoveSpendingPolicy<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Felt, SessionError> {
        let address = parse_felt(&params.wallet.public_key, "wallet.publicKey")?;
        let call = remove_policy_call(address, params.session_public_key, params.token)?;
        self.sdk
            .owner_write(params.encrypt_key, params.wallet, call, bearer_token)
            .await
    }

    /// Reads a spending policy (all zero when there is none).
    pub async fn get_spending_policy(
        self,
        params: GetSpendingPolicy<'_>,
    ) -> Result<SpendingPolicyData, SessionError> {
        get_spending_policy(
            self.sdk.provider(),
            params.wallet_address,
            params.session_public_key,
            params.token,
        )
        .await
    }
}
