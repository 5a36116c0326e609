//! The session-key protocol without I/O: constants and selectors, the SNIP-12
//! (revision 1) hash of a SNIP-9 v2 OutsideExecution, and the owner and session
//! signatures (PROTOCOL.md sections 3.2 and 4). Shared by the SDK, the paymaster, the
//! devnet harness and the tests.
//!
//! ```
//! use chipi_core::{selectors, session_signature, Call, Felt, OutsideExecution, ANY_CALLER};
//!
//! let oe = OutsideExecution {
//!     caller: ANY_CALLER,
//!     nonce: Felt::from(7u8),
//!     execute_after: 100,
//!     execute_before: 200,
//!     calls: vec![Call {
//!         to: Felt::from(0x1234u16),
//!         selector: selectors::TRANSFER,
//!         calldata: vec![Felt::ONE, Felt::TWO, Felt::ZERO],
//!     }],
//! };
//! let hash = oe.message_hash(chipi_core::chain_id::SEPOLIA, Felt::from(0xabcu16));
//! let signature = session_signature(&Felt::from(42u8), hash, 1_900_000_000).unwrap();
//! assert_eq!(signature.len(), 4);
//! ```
#![deny(missing_docs)]

mod codes;
mod constants;
mod ecdsa;
mod felt;
mod keystore;
mod signature;
mod snip12;
pub mod snip29;
mod wire;

pub use codes::{
    failure_reason, revert_code, wallet_revert, wallet_revert_in_text, ErrorCode, UnknownErrorCode,
    REVERT_MESSAGES,
};
pub use constants::{
    chain_id, is_blocked_selector, selectors, ANY_CALLER, BLOCKED_ENTRYPOINTS, CALL_TYPE_HASH,
    ISESSION_KEY_MANAGER_ID, ISRC5_ID, ISRC6_ID, ISRC9_V2_ID, OUTSIDE_EXECUTION_DOMAIN_NAME,
    OUTSIDE_EXECUTION_TYPE_HASH, STARKNET_DOMAIN_TYPE_HASH, STARKNET_MESSAGE_PREFIX, STRK_ADDRESS,
    VALIDATED,
};
pub use felt::parse_felt_strict;
#[doc(hidden)]
pub use keystore::kdf_runs;
pub use keystore::{
    decrypt_private_key, decrypt_private_key_with_limits, decrypt_text, decrypt_text_with_limits,
    encrypt_private_key, Argon2Settings, KdfLimits, KeyFormat, KeystoreError, SecretKey,
};
pub use signature::{
    accept_ownership_hash, owner_signature, public_key_of, session_signature, sign_hash,
    sign_hash_recoverable, verify_signature, SignatureError,
};
pub use snip12::{decode_calls, encode_calls, OutsideExecution, TypedDataError};
pub use starknet_rust_core::types::{Call, Felt};
pub use wire::{
    felt_field, parse_calls, resolve_selector, wallet_address, Ciphertext, CreateWalletRequest,
    DeploymentData, ErrorBody, ExecuteRawRequest, ExecuteSponsoredRequest, JsCall,
    PrepareTypedDataRequest, PrepareTypedDataResponse, PrepareWalletCreationRequest,
    PrepareWalletCreationResponse, TransactionHashResponse, TransactionStatusResponse,
    UserSignature, WalletRecord, WalletSummary, WireError,
};
