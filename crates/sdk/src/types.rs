//! The JS SDK's data shapes (camelCase JSON), so data stored by either SDK loads in the other.

use serde::{Deserialize, Serialize};

/// A session key as `createSessionKey` returns it: stored client side only. `Debug`
/// hides the ciphertext (a compatible-format one falls to a PIN search in seconds).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionKeyData {
    /// Stark public key, `0x` hex.
    pub public_key: String,
    /// The private key encrypted with the user's encryptKey.
    pub encrypted_private_key: String,
    /// Unix seconds after which the session is expired.
    pub valid_until: u64,
}

/// The kind of wallet; only CHIPI wallets support sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum WalletType {
    /// `"CHIPI"`: the session account.
    Chipi,
    /// `"READY"`: an Argent (Ready) account, no sessions.
    Ready,
    /// Any other value, kept as written.
    Other(String),
}

impl From<String> for WalletType {
    fn from(value: String) -> Self {
        match value.as_str() {
            "CHIPI" => Self::Chipi,
            "READY" => Self::Ready,
            _ => Self::Other(value),
        }
    }
}

impl From<WalletType> for String {
    fn from(value: WalletType) -> Self {
        match value {
            WalletType::Chipi => "CHIPI".into(),
            WalletType::Ready => "READY".into(),
            WalletType::Other(other) => other,
        }
    }
}

/// A user's wallet: `publicKey` is the wallet's contract address (Chipi's naming).
/// `Debug` hides the ciphertext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletData {
    /// The wallet contract address.
    pub public_key: String,
    /// The owner private key encrypted with the user's encryptKey.
    pub encrypted_private_key: String,
    /// `"CHIPI"` for session-capable wallets.
    #[serde(default = "default_wallet_type")]
    pub wallet_type: WalletType,
}

fn default_wallet_type() -> WalletType {
    WalletType::Chipi
}

/// What `addSessionKeyToContract` registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionConfig {
    /// The session's public key.
    pub session_public_key: String,
    /// Unix seconds.
    pub valid_until: u64,
    /// Transactions allowed.
    pub max_calls: u32,
    /// Whitelisted entry points, as names or hex selectors; empty allows all.
    pub allowed_entrypoints: Vec<String>,
}

/// What `getSessionData` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionDataResponse {
    /// Registered, not revoked, not expired by chain time, calls left.
    pub is_active: bool,
    /// Unix seconds.
    pub valid_until: u64,
    /// Transactions left.
    pub remaining_calls: u32,
    /// Whitelisted selectors (hex); empty allows all.
    pub allowed_entrypoints: Vec<String>,
}

impl std::fmt::Debug for SessionKeyData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeyData")
            .field("public_key", &self.public_key)
            .field("encrypted_private_key", &"<redacted>")
            .field("valid_until", &self.valid_until)
            .finish()
    }
}

impl std::fmt::Debug for WalletData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletData")
            .field("public_key", &self.public_key)
            .field("encrypted_private_key", &"<redacted>")
            .field("wallet_type", &self.wallet_type)
            .finish()
    }
}
