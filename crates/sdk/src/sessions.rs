//! The [`Sessions`] facade: the JS SDK's `sdk.sessions` methods, each a thin call of
//! the client's one write path or of a read.

use chipi_core::{ErrorCode, Felt};
use starknet_rust_core::types::Call;

use crate::management::{register_call, revoke_call};
use crate::policy::{get_spending_policy, remove_policy_call, set_policy_call};
use crate::read::{list_sessions, parse_felt, ListedSession, SessionStatus};
use crate::{
    create_session_key, get_session_data, AddSessionKey, ChipiSdk, CreateSessionKey,
    GetSessionData, GetSpendingPolicy, RemoveSpendingPolicy, RevokeAllSessions, RevokeSessionKey,
    SessionDataResponse, SessionError, SessionKeyData, SetSpendingPolicy, SetupSession,
    SpendingPolicyData, Submitted, WalletData,
};

/// The session methods of a [`ChipiSdk`] (`sdk.sessions` in the JS SDK).
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'a> {
    sdk: &'a ChipiSdk,
}

impl<'a> Sessions<'a> {
    pub(crate) fn new(sdk: &'a ChipiSdk) -> Self {
        Self { sdk }
    }

    /// Sends the owner-only `call` (built for the wallet's address) signed by the owner.
    async fn owner_write(
        self,
        encrypt_key: &str,
        wallet: &WalletData,
        call: impl FnOnce(Felt) -> Result<Call, SessionError>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        self.sdk
            .owner_write(
                encrypt_key,
                wallet,
                |address| Ok(vec![call(address)?]),
                bearer_token,
            )
            .await
    }

    /// `createSessionKey`: a new key pair, its private key encrypted with the encryptKey,
    /// valid for the duration (default 6 hours) from the later of the chain's time as
    /// last seen ([`ChipiSdk::now`]) and the machine's. Stores nothing.
    ///
    /// Synchronous, as in the JS SDK. With [`KeyFormat::Strong`](crate::KeyFormat) the
    /// Argon2id derivation takes ~120 ms of CPU: inside async code, call it through
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
            // The later of the chain's time and this machine's: a chain that mines on
            // demand (a devnet) keeps an old last block, which must not shorten it.
            params.now(self.sdk.now().max(self.sdk.inner.clock.now()))
        };
        create_session_key(params)
    }

    /// `addSessionKeyToContract`: registers the session on the wallet, signed by the
    /// owner.
    ///
    /// ```no_run
    /// use chipi_sdk::{AddSessionKey, ChipiSdk, SessionConfig};
    /// # async fn example(sdk: ChipiSdk, wallet: chipi_sdk::WalletData,
    /// #     session: chipi_sdk::SessionKeyData, user_pin: &str, bearer_token: &str)
    /// #     -> Result<(), chipi_sdk::SessionError> {
    /// // Register a session with restricted permissions.
    /// let sent = sdk
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
    /// println!("Session registered: {sent}");
    /// # Ok(()) }
    /// ```
    pub async fn add_session_key_to_contract(
        self,
        params: AddSessionKey<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        let now = self.sdk.chain_now().await;
        let config = params.session_config;
        self.owner_write(
            params.encrypt_key,
            params.wallet,
            |wallet| register_call(wallet, config, now),
            bearer_token,
        )
        .await
    }

    /// `revokeSessionKey`: removes the session's authorization, signed by the owner. A
    /// key that is absent gives `SESSION_NOT_REGISTERED`, one already revoked
    /// `SESSION_REVOKED`.
    ///
    /// ```no_run
    /// use chipi_sdk::{ChipiSdk, RevokeSessionKey};
    /// # async fn example(sdk: ChipiSdk, wallet: chipi_sdk::WalletData,
    /// #     session: chipi_sdk::SessionKeyData, user_pin: &str, bearer_token: &str)
    /// #     -> Result<(), chipi_sdk::SessionError> {
    /// // Revoke the session on logout, and make sure it happened.
    /// let sent = sdk
    ///     .sessions()
    ///     .revoke_session_key(
    ///         RevokeSessionKey { encrypt_key: user_pin, wallet: &wallet, session_public_key: &session.public_key },
    ///         Some(bearer_token),
    ///     )
    ///     .await?;
    /// sdk.wait_for_transaction(&sent).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_session_key(
        self,
        params: RevokeSessionKey<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        let key = params.session_public_key;
        self.owner_write(
            params.encrypt_key,
            params.wallet,
            |wallet| revoke_call(wallet, key),
            bearer_token,
        )
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

    /// `setupSession` (Chipi 14.14): registers a session and its spending limits in one
    /// multicall, one owner signature, one fee. Each policy must name the session's key;
    /// every check of [`Sessions::add_session_key_to_contract`] and
    /// [`Sessions::set_spending_policy`] applies before anything is signed.
    ///
    /// ```no_run
    /// use chipi_sdk::{ChipiSdk, SessionConfig, SetupSession, SpendingPolicyConfig};
    /// # async fn example(sdk: ChipiSdk, wallet: chipi_sdk::WalletData,
    /// #     session: chipi_sdk::SessionKeyData, user_pin: &str) -> Result<(), chipi_sdk::SessionError> {
    /// // 20 transfers of at most 5 STRK each and 50 STRK a day, registered at once.
    /// let sent = sdk.sessions().setup_session(SetupSession {
    ///     encrypt_key: user_pin,
    ///     wallet: &wallet,
    ///     session_config: &SessionConfig {
    ///         session_public_key: session.public_key.clone(),
    ///         valid_until: session.valid_until,
    ///         max_calls: 20,
    ///         allowed_entrypoints: vec!["transfer".into()],
    ///     },
    ///     spending_policies: &[SpendingPolicyConfig {
    ///         session_public_key: session.public_key.clone(),
    ///         token: format!("{:#x}", chipi_core::STRK_ADDRESS),
    ///         max_per_call: "5000000000000000000".into(),
    ///         max_per_window: "50000000000000000000".into(),
    ///         window_seconds: 86_400,
    ///     }],
    /// }, None).await?;
    /// sdk.wait_for_transaction(&sent).await?;
    /// # Ok(()) }
    /// ```
    pub async fn setup_session(
        self,
        params: SetupSession<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        let now = self.sdk.chain_now().await;
        let config = params.session_config;
        let key = parse_felt(&config.session_public_key, "sessionPublicKey")?;
        self.sdk
            .owner_write(
                params.encrypt_key,
                params.wallet,
                |wallet| {
                    let mut calls = vec![register_call(wallet, config, now)?];
                    for policy in params.spending_policies {
                        if parse_felt(&policy.session_public_key, "sessionPublicKey")? != key {
                            return Err(SessionError::new(
                                ErrorCode::InvalidSpendingPolicy,
                                "a spending policy names another session key",
                            ));
                        }
                        calls.push(set_policy_call(wallet, policy)?);
                    }
                    Ok(calls)
                },
                bearer_token,
            )
            .await
    }

    /// Every session the wallet ever registered, from its events, each with its state
    /// read now ([`ListedSession::status`]).
    pub async fn list(self, wallet_address: &str) -> Result<Vec<ListedSession>, SessionError> {
        list_sessions(self.sdk.provider(), wallet_address).await
    }

    /// Revokes every active session of the wallet in one owner-signed multicall; `None`
    /// when none is active (nothing is sent). Expired, used-up and revoked sessions
    /// cannot sign anyway and are left as they are.
    pub async fn revoke_all(
        self,
        params: RevokeAllSessions<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Option<Submitted>, SessionError> {
        let active: Vec<String> = self
            .list(&params.wallet.public_key)
            .await?
            .into_iter()
            .filter(|session| session.status() == SessionStatus::Active)
            .map(|session| session.session_public_key)
            .collect();
        if active.is_empty() {
            return Ok(None);
        }
        self.sdk
            .owner_write(
                params.encrypt_key,
                params.wallet,
                |wallet| active.iter().map(|key| revoke_call(wallet, key)).collect(),
                bearer_token,
            )
            .await
            .map(Some)
    }

    /// Sets a per-token spending limit for a session, signed by the owner. A policy the
    /// contract would refuse gives `INVALID_SPENDING_POLICY` before anything is sent.
    /// Changing an existing policy keeps its current window and what was spent in it.
    pub async fn set_spending_policy(
        self,
        params: SetSpendingPolicy<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        let policy = params.policy;
        self.owner_write(
            params.encrypt_key,
            params.wallet,
            |wallet| set_policy_call(wallet, policy),
            bearer_token,
        )
        .await
    }

    /// Removes a spending limit, signed by the owner.
    pub async fn remove_spending_policy(
        self,
        params: RemoveSpendingPolicy<'_>,
        bearer_token: Option<&str>,
    ) -> Result<Submitted, SessionError> {
        let (key, token) = (params.session_public_key, params.token);
        self.owner_write(
            params.encrypt_key,
            params.wallet,
            |wallet| remove_policy_call(wallet, key, token),
            bearer_token,
        )
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
