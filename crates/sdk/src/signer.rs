//! The one signer of the SDK: a wallet key in zeroizing memory and its role. Every
//! write (direct or sponsored, owner or session) signs through it, with chipi-core's
//! ECDSA; the key is never copied into another library's types.

use chipi_core::{sign_hash_recoverable, ErrorCode, Felt, SecretKey, UserSignature};

use crate::SessionError;

/// Who signs for the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The owner: signatures `[r, s]`.
    Owner,
    /// A session registered until `valid_until`: signatures `[key, r, s, valid_until]`.
    Session {
        /// The session's expiry as registered on the wallet (unix seconds).
        valid_until: u64,
    },
}

/// A wallet key and its role. `Debug` shows the role and the public key only.
///
/// ```
/// use chipi_core::{Felt, SecretKey, UserSignature};
/// use chipi_sdk::WalletSigner;
///
/// let key = SecretKey::random();
/// let digits = key.to_hex().trim_start_matches("0x").to_string();
/// let signer = WalletSigner::session(key, 1_900_000_000);
/// let signature = signer.sign(Felt::from(42u8))?;
/// // The felts the wallet checks, and the paymaster API's `userSignature`.
/// assert_eq!(signature.to_felts()[0], signer.public_key());
/// assert!(matches!(signature, UserSignature::Session { .. }));
/// assert!(!format!("{signer:?}").contains(&digits));
/// # Ok::<(), chipi_sdk::SessionError>(())
/// ```
pub struct WalletSigner {
    key: SecretKey,
    public_key: Felt,
    role: Role,
}

impl WalletSigner {
    /// The owner's signer.
    pub fn owner(key: SecretKey) -> Self {
        Self::new(key, Role::Owner)
    }

    /// A session's signer, for the session registered until `valid_until`.
    pub fn session(key: SecretKey, valid_until: u64) -> Self {
        Self::new(key, Role::Session { valid_until })
    }

    fn new(key: SecretKey, role: Role) -> Self {
        let public_key = key.public_key();
        Self {
            key,
            public_key,
            role,
        }
    }

    /// The public key.
    pub fn public_key(&self) -> Felt {
        self.public_key
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Signs `hash` (an outside execution's SNIP-12 hash or a transaction hash).
    pub fn sign(&self, hash: Felt) -> Result<UserSignature, SessionError> {
        let (r, s, v) = sign_hash_recoverable(&self.key.to_felt(), hash).map_err(|e| {
            SessionError::new(ErrorCode::SigningFailed, format!("cannot sign: {e}")).with_source(e)
        })?;
        Ok(match self.role {
            Role::Owner => UserSignature::Owner {
                r,
                s,
                recovery: Some(u8::from(v != Felt::ZERO)),
            },
            Role::Session { valid_until } => UserSignature::Session {
                public_key: self.public_key,
                r,
                s,
                valid_until: Felt::from(valid_until),
            },
        })
    }
}

impl std::fmt::Debug for WalletSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletSigner")
            .field("role", &self.role)
            .field("public_key", &format_args!("{:#x}", self.public_key))
            .finish_non_exhaustive()
    }
}
