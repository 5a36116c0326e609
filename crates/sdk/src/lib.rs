//! Chipi's session-key API in Rust: the methods of the JS SDK's `sdk.sessions`
//! (`createSessionKey`, `addSessionKeyToContract`, `revokeSessionKey`, `getSessionData`,
//! spending policies) and `executeTransactionWithSession`, with the JS SDK's JSON shapes.
//!
//! A user authenticates once; the app then signs with a short-lived session key that the
//! CHIPI wallet contract polices (expiry, call budget, selector whitelist, spending
//! limits, revocation).
//!
//! | JS SDK | here |
//! |---|---|
//! | `sdk.sessions.createSessionKey({encryptKey, durationSeconds})` | [`Sessions::create_session_key`] |
//! | `sdk.sessions.addSessionKeyToContract({...}, bearerToken)` | [`Sessions::add_session_key_to_contract`] |
//! | `sdk.executeTransactionWithSession({params, bearerToken})` | [`ChipiSdk::execute_transaction_with_session`] |
//! | `sdk.sessions.revokeSessionKey({...}, bearerToken)` | [`Sessions::revoke_session_key`] |
//! | `sdk.sessions.getSessionData({walletAddress, sessionPublicKey})` | [`Sessions::get_session_data`] |
//! | `sdk.executeTransaction({params, bearerToken})` | [`ChipiSdk::execute_transaction`] |
//! | `sdk.sessions.setupSession(...)` (14.14) | [`Sessions::setup_session`] |
//! | `waitForTransaction(hash, options)` | [`ChipiSdk::wait_for_transaction_with`] |
//! | (listing, revoking all) | [`Sessions::list`], [`Sessions::revoke_all`] |
//! | `ChipiSessionError.code` | [`SessionError::code`] ([`ErrorCode`]) |
//!
//! Writes take one of three [`Transport`]s: *sponsored* (through Chipi's paymaster API,
//! gasless; the SDK hashes the outside execution itself and refuses typed data that
//! differs from its request, see [`verify_outside_execution`]), *SNIP-29* (the same
//! through any standard paymaster, ours or AVNU's, sponsored or paying the fee in a
//! token up to a maximum, see [`Snip29Fee`]) or *direct* (an INVOKE v3 the wallet
//! pays for). Before anything is signed the SDK checks what it can, in the contract's
//! order, and returns the precise code: wallet type, local expiry, decryption, then the
//! on-chain session and whitelist.
//!
//! ```no_run
//! use chipi_sdk::{AddSessionKey, Call, ChipiSdk, CreateSessionKey, ExecuteWithSession,
//!     GetSessionData, SessionConfig, WalletData};
//!
//! # async fn example(wallet: WalletData, user_pin: &str, bearer_token: &str)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let sdk = ChipiSdk::builder("https://starknet-sepolia.example/rpc")
//!     .paymaster("https://paymaster.example", "pk_prod_0123456789abcdef0123456789abcdef")
//!     .bearer_token(bearer_token)
//!     .build()?;
//!
//! // A 1-hour session; keep it client side (never in your backend database).
//! let session = sdk.sessions().create_session_key(
//!     CreateSessionKey::new(user_pin).duration_seconds(60 * 60),
//! )?;
//! let stored = serde_json::to_string(&session)?;
//!
//! // The owner registers it: 50 calls, `transfer` only.
//! sdk.sessions()
//!     .add_session_key_to_contract(
//!         AddSessionKey {
//!             encrypt_key: user_pin,
//!             wallet: &wallet,
//!             session_config: &SessionConfig {
//!                 session_public_key: session.public_key.clone(),
//!                 valid_until: session.valid_until,
//!                 max_calls: 50,
//!                 allowed_entrypoints: vec!["transfer".into()],
//!             },
//!         },
//!         None, // the default bearer token
//!     )
//!     .await?;
//!
//! // Popup-free, gasless: the session signs.
//! let calls = [Call {
//!     contract_address: "0x053c91253bc9682c04929ca02ed00b3e423f6710d2ee7e0d5ebb06f3ecf368a8".into(),
//!     entrypoint: "transfer".into(),
//!     calldata: vec!["0x1234".into(), "1000000".into(), "0x0".into()],
//! }];
//! let sent = sdk
//!     .execute_transaction_with_session(
//!         ExecuteWithSession { encrypt_key: user_pin, wallet: &wallet, session: &session, calls: &calls },
//!         None,
//!     )
//!     .await?;
//!
//! let status = sdk.sessions().get_session_data(GetSessionData {
//!     wallet_address: &wallet.public_key,
//!     session_public_key: &session.public_key,
//! }).await?;
//! println!("{sent}: {} calls left", status.remaining_calls);
//! # let _ = stored;
//! # Ok(()) }
//! ```
//!
//! Error handling, as the JS SDK's `ChipiSessionError`:
//!
//! ```
//! use chipi_sdk::{ChipiSdk, CreateSessionKey, ErrorCode};
//!
//! let sdk = ChipiSdk::builder("http://127.0.0.1:5050/rpc").build()?;
//! match sdk.sessions().create_session_key(CreateSessionKey::new("pin").duration_seconds(0)) {
//!     Err(e) if e.code() == ErrorCode::SessionCreationFailed => println!("{}", e.message()),
//!     Err(e) => return Err(e.into()),
//!     Ok(session) => println!("created {}", session.public_key),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every write returns a [`Submitted`] (its hash, the wallet, and for a sponsored write
//! the signed nonce); [`ChipiSdk::wait_for_transaction`] waits for it and checks that
//! the chain ran what was signed. [`WalletAccount`] is the wallet as a starknet-rust
//! account for callers that bring their own provider; the read functions
//! ([`get_session_data`], [`read_session_state`], [`get_spending_policy`]) take any
//! provider too.
#![deny(missing_docs)]

mod account;
mod client;
mod config;
mod create;
mod error;
mod keys;
mod management;
mod node;
mod params;
mod policy;
mod preflight;
mod read;
mod sessions;
mod signer;
mod snip29;
mod sponsored;
mod types;
mod wallets;

pub use account::WalletAccount;
/// A contract call in the JS SDK's shape (`{contractAddress, entrypoint, calldata}`).
pub use chipi_core::JsCall as Call;
pub use chipi_core::{
    parse_calls, resolve_selector, Argon2Settings, ErrorCode, KdfLimits, KeyFormat, UserSignature,
    WireError,
};
pub use client::{ChipiSdk, Confirmed, RpcClient, Submitted, WaitOptions, CHAIN_TIME_CACHE};
pub use config::{ChipiSdkBuilder, Clock, SystemClock, Transport};
pub use create::{create_session_key, CreateSessionKey, DEFAULT_SESSION_DURATION_SECONDS};
pub use error::SessionError;
pub use management::{register_call, revoke_call, MAX_ALLOWED_ENTRYPOINTS};
pub use params::{
    AddSessionKey, ExecuteTransaction, ExecuteWithSession, GetSessionData, GetSpendingPolicy,
    RemoveSpendingPolicy, RevokeAllSessions, RevokeSessionKey, SetSpendingPolicy, SetupSession,
};
pub use policy::{
    get_spending_policy, remove_policy_call, set_policy_call, SpendingPolicyConfig,
    SpendingPolicyData,
};
pub use preflight::check_session_calls;
pub use read::{
    get_session_data, list_sessions, read_session_state, ListedSession, SessionState, SessionStatus,
};
pub use sessions::Sessions;
pub use signer::{Role, WalletSigner};
pub use snip29::Snip29Fee;
pub use sponsored::{
    verify_outside_execution, CHIPI_API_VERSION, DEFAULT_MAX_EXECUTION_WINDOW_SECONDS,
    MAX_CLOCK_SKEW_SECONDS, MAX_PAYMASTER_RESPONSE_BYTES,
};
pub use types::{SessionConfig, SessionDataResponse, SessionKeyData, WalletData, WalletType};
pub use wallets::{CreateWallet, CreatedWallet};
