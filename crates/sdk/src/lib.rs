//! Chipi's session-key API (`sessions.createSessionKey`, `addSessionKeyToContract`,
//! `executeTransactionWithSession`, `revokeSessionKey`, `getSessionData`) in Rust, with
//! the JS SDK's JSON shapes.
//!
//! So far: the types, [`create_session_key`], [`get_session_data`], the pre-flight
//! [`check_session_calls`], and over the direct transport [`add_session_key_direct`],
//! [`execute_with_session_direct`], [`revoke_session_key_direct`] and the spending-policy
//! methods. The sponsored transport and a configured client follow (see the issues).
//!
//! ```
//! use chipi_sdk::{create_session_key, CreateSessionKey, SessionKeyData};
//!
//! let session = create_session_key(CreateSessionKey::new("user-secure-pin").duration_seconds(3600))?;
//! let stored = serde_json::to_string(&session)?;           // what a client keeps
//! let loaded: SessionKeyData = serde_json::from_str(&stored)?;
//! assert_eq!(loaded, session);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod calls;
mod client;
mod direct;
mod error;
mod owner;
mod policy;
mod preflight;
mod read;
mod sessions;
mod signer;
mod sponsored;
mod types;

pub use calls::{resolve_selector, to_starknet_calls};
pub use chipi_core::{Argon2Settings, ErrorCode, KeyFormat};
pub use client::{
    AddSessionKey, ChipiSdk, ChipiSdkBuilder, Clock, GetSessionData, GetSpendingPolicy,
    RemoveSpendingPolicy, RevokeSessionKey, RpcClient, Sessions, SetSpendingPolicy, SystemClock,
    Transport,
};
pub use direct::{execute_with_session_direct, ExecuteWithSession};
pub use error::SessionError;
pub use owner::{
    add_session_key_direct, register_call, revoke_call, revoke_session_key_direct,
    MAX_ALLOWED_ENTRYPOINTS,
};
pub use policy::{
    get_spending_policy, remove_policy_call, remove_spending_policy_direct, set_policy_call,
    set_spending_policy_direct, SpendingPolicyConfig, SpendingPolicyData,
};
pub use preflight::check_session_calls;
pub use read::{get_session_data, read_session_state, SessionState};
pub use sessions::{create_session_key, CreateSessionKey, DEFAULT_SESSION_DURATION_SECONDS};
pub use signer::{SessionAccount, SessionSignError};
pub use sponsored::{
    verify_outside_execution, CHIPI_API_VERSION, DEFAULT_MAX_EXECUTION_WINDOW_SECONDS,
    MAX_CLOCK_SKEW_SECONDS,
};
pub use types::{Call, SessionConfig, SessionDataResponse, SessionKeyData, WalletData, WalletType};
