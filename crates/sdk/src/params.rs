//! The parameters of the SDK's methods, in the JS SDK's shapes. `Debug` never shows an
//! encryptKey.

use crate::{Call, SessionConfig, SessionKeyData, SpendingPolicyConfig, WalletData};

/// Parameters of `executeTransactionWithSession` (the seed's `params`).
#[derive(Clone)]
pub struct ExecuteWithSession<'a> {
    /// The PIN that encrypted the session key.
    pub encrypt_key: &'a str,
    /// The user's wallet (`walletType` must be `CHIPI`).
    pub wallet: &'a WalletData,
    /// The session from `create_session_key`.
    pub session: &'a SessionKeyData,
    /// The calls to run, atomically.
    pub calls: &'a [Call],
}

/// `addSessionKeyToContract`'s parameters.
#[derive(Clone)]
pub struct AddSessionKey<'a> {
    /// The PIN that encrypted the owner's key.
    pub encrypt_key: &'a str,
    /// The user's wallet (`walletType` must be `CHIPI`).
    pub wallet: &'a WalletData,
    /// What to register.
    pub session_config: &'a SessionConfig,
}

/// `revokeSessionKey`'s parameters.
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

/// Parameters to set a spending policy.
#[derive(Clone)]
pub struct SetSpendingPolicy<'a> {
    /// The PIN that encrypted the owner's key.
    pub encrypt_key: &'a str,
    /// The user's wallet (`walletType` must be `CHIPI`).
    pub wallet: &'a WalletData,
    /// The policy.
    pub policy: &'a SpendingPolicyConfig,
}

/// Parameters to remove a spending policy.
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

/// `executeTransaction`'s parameters: arbitrary calls signed by the owner key.
#[derive(Clone)]
pub struct ExecuteTransaction<'a> {
    /// The PIN that encrypted the owner key.
    pub encrypt_key: &'a str,
    /// The user's wallet.
    pub wallet: &'a WalletData,
    /// The calls to run, atomically.
    pub calls: &'a [Call],
}

/// `setupSession`'s parameters (Chipi 14.14): a session and its spending limits
/// registered in one owner-signed multicall.
#[derive(Clone)]
pub struct SetupSession<'a> {
    /// The PIN that encrypted the owner key.
    pub encrypt_key: &'a str,
    /// The user's wallet.
    pub wallet: &'a WalletData,
    /// The session to register.
    pub session_config: &'a SessionConfig,
    /// Its per-token limits (each naming the same session key), set in the same
    /// transaction.
    pub spending_policies: &'a [SpendingPolicyConfig],
}

/// `revoke_all`'s parameters.
#[derive(Clone)]
pub struct RevokeAllSessions<'a> {
    /// The PIN that encrypted the owner key.
    pub encrypt_key: &'a str,
    /// The user's wallet.
    pub wallet: &'a WalletData,
}

macro_rules! redacted_debug {
    ($name:ident { $($field:ident),* }) => {
        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("encrypt_key", &"<redacted>")
                    $(.field(stringify!($field), &self.$field))*
                    .finish()
            }
        }
    };
}
redacted_debug!(ExecuteWithSession {
    wallet,
    session,
    calls
});
redacted_debug!(AddSessionKey {
    wallet,
    session_config
});
redacted_debug!(RevokeSessionKey {
    wallet,
    session_public_key
});
redacted_debug!(SetSpendingPolicy { wallet, policy });
redacted_debug!(RemoveSpendingPolicy {
    wallet,
    session_public_key,
    token
});
redacted_debug!(ExecuteTransaction { wallet, calls });
redacted_debug!(SetupSession {
    wallet,
    session_config,
    spending_policies
});
redacted_debug!(RevokeAllSessions { wallet });
