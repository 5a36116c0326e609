//! Error codes of PROTOCOL.md section 5 (plus this project's own) and the one table that
//! maps the contract's revert messages to them.

use std::fmt;

use starknet_rust_core::types::{ContractExecutionError, Felt};

/// A machine-readable error code, as the JS SDK's `ChipiSessionError.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The wallet is not a session-capable (CHIPI) wallet.
    InvalidWalletTypeForSession,
    /// The session's `validUntil` has passed.
    SessionExpired,
    /// No such session on the wallet.
    SessionNotRegistered,
    /// The owner revoked the session.
    SessionRevoked,
    /// The session has no calls left.
    SessionMaxCallsExceeded,
    /// A call is not whitelisted, is blocklisted, or targets the wallet itself.
    SessionEntrypointNotAllowed,
    /// Wrong encryptKey or damaged ciphertext.
    SessionDecryptionFailed,
    /// Keypair generation or its input failed.
    SessionCreationFailed,
    /// A spending policy the contract would refuse.
    InvalidSpendingPolicy,
    /// A spend over a policy's per-call or per-window limit (ours).
    SpendingLimitExceeded,
    /// A signature the wallet does not accept (ours).
    InvalidSignature,
    /// An outside execution outside its time window, replayed, or for another caller (ours).
    OutsideExecutionRejected,
    /// The caller is not allowed to manage the wallet (ours).
    Unauthorized,
    /// Malformed input (ours).
    InvalidInput,
    /// The node could not be reached or answered with an error (ours).
    NetworkError,
    /// The paymaster refused or failed (ours).
    PaymasterError,
    /// Missing or bad API key or bearer token (ours).
    AuthenticationFailed,
    /// The transaction reverted for a reason with no more precise code (ours).
    TransactionReverted,
    /// The paymaster asked to sign an outside execution other than the one requested:
    /// other calls, chain or caller, or an unsafe time window; nothing was signed (ours).
    TypedDataMismatch,
    /// A hash could not be signed (out of the signable range); nothing was sent (ours).
    SigningFailed,
}

impl ErrorCode {
    /// The wire form, e.g. `SESSION_EXPIRED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidWalletTypeForSession => "INVALID_WALLET_TYPE_FOR_SESSION",
            Self::SessionExpired => "SESSION_EXPIRED",
            Self::SessionNotRegistered => "SESSION_NOT_REGISTERED",
            Self::SessionRevoked => "SESSION_REVOKED",
            Self::SessionMaxCallsExceeded => "SESSION_MAX_CALLS_EXCEEDED",
            Self::SessionEntrypointNotAllowed => "SESSION_ENTRYPOINT_NOT_ALLOWED",
            Self::SessionDecryptionFailed => "SESSION_DECRYPTION_FAILED",
            Self::SessionCreationFailed => "SESSION_CREATION_FAILED",
            Self::InvalidSpendingPolicy => "INVALID_SPENDING_POLICY",
            Self::SpendingLimitExceeded => "SPENDING_LIMIT_EXCEEDED",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::OutsideExecutionRejected => "OUTSIDE_EXECUTION_REJECTED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::InvalidInput => "INVALID_INPUT",
            Self::NetworkError => "NETWORK_ERROR",
            Self::PaymasterError => "PAYMASTER_ERROR",
            Self::AuthenticationFailed => "AUTHENTICATION_FAILED",
            Self::TransactionReverted => "TRANSACTION_REVERTED",
            Self::TypedDataMismatch => "TYPED_DATA_MISMATCH",
            Self::SigningFailed => "SIGNING_FAILED",
        }
    }

    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 20] = [
        Self::InvalidWalletTypeForSession,
        Self::SessionExpired,
        Self::SessionNotRegistered,
        Self::SessionRevoked,
        Self::SessionMaxCallsExceeded,
        Self::SessionEntrypointNotAllowed,
        Self::SessionDecryptionFailed,
        Self::SessionCreationFailed,
        Self::InvalidSpendingPolicy,
        Self::SpendingLimitExceeded,
        Self::InvalidSignature,
        Self::OutsideExecutionRejected,
        Self::Unauthorized,
        Self::InvalidInput,
        Self::NetworkError,
        Self::PaymasterError,
        Self::AuthenticationFailed,
        Self::TransactionReverted,
        Self::TypedDataMismatch,
        Self::SigningFailed,
    ];
}

/// A wire name that is not one of [`ErrorCode::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code")]
pub struct UnknownErrorCode;

impl std::str::FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    /// ```
    /// use chipi_core::ErrorCode;
    /// assert_eq!("SESSION_REVOKED".parse(), Ok(ErrorCode::SessionRevoked));
    /// assert!("session_revoked".parse::<ErrorCode>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
            .ok_or(UnknownErrorCode)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every revert message of the session account (`contracts/session_account/src/errors.cairo`)
/// with the code it maps to. A test checks this table against the Cairo file.
pub const REVERT_MESSAGES: &[(&str, ErrorCode)] = &[
    ("Account: invalid caller", ErrorCode::Unauthorized),
    ("Account: unauthorized", ErrorCode::Unauthorized),
    ("Account: invalid signature", ErrorCode::InvalidSignature),
    ("Account: invalid sig length", ErrorCode::InvalidSignature),
    ("Account: zero public key", ErrorCode::InvalidInput),
    ("Account: invalid new key sig", ErrorCode::InvalidSignature),
    ("SRC9: invalid caller", ErrorCode::OutsideExecutionRejected),
    (
        "SRC9: now <= execute_after",
        ErrorCode::OutsideExecutionRejected,
    ),
    (
        "SRC9: now >= execute_before",
        ErrorCode::OutsideExecutionRejected,
    ),
    (
        "SRC9: duplicated nonce",
        ErrorCode::OutsideExecutionRejected,
    ),
    ("Session: bad valid_until", ErrorCode::InvalidSignature),
    ("Session: expired", ErrorCode::SessionExpired),
    ("Session: not registered", ErrorCode::SessionNotRegistered),
    ("Session: revoked", ErrorCode::SessionRevoked),
    // The key is registered with another expiry: this session (key + validUntil) is not.
    (
        "Session: valid_until mismatch",
        ErrorCode::SessionNotRegistered,
    ),
    (
        "Session: max calls exceeded",
        ErrorCode::SessionMaxCallsExceeded,
    ),
    (
        "Session: entrypoint blocked",
        ErrorCode::SessionEntrypointNotAllowed,
    ),
    ("Session: self call", ErrorCode::SessionEntrypointNotAllowed),
    (
        "Session: entrypoint not allowed",
        ErrorCode::SessionEntrypointNotAllowed,
    ),
    ("Session: invalid signature", ErrorCode::InvalidSignature),
    ("Session: tip not allowed", ErrorCode::InvalidInput),
    ("Session: zero key", ErrorCode::SessionCreationFailed),
    ("Session: valid_until in past", ErrorCode::SessionExpired),
    ("Session: zero max_calls", ErrorCode::InvalidInput),
    ("Session: too many entrypoints", ErrorCode::InvalidInput),
    ("Policy: zero token", ErrorCode::InvalidSpendingPolicy),
    ("Policy: zero window", ErrorCode::InvalidSpendingPolicy),
    (
        "Policy: per-call above window",
        ErrorCode::InvalidSpendingPolicy,
    ),
    ("Policy: not found", ErrorCode::InvalidSpendingPolicy),
    (
        "Policy: bad amount calldata",
        ErrorCode::SpendingLimitExceeded,
    ),
    (
        "Policy: per-call limit exceeded",
        ErrorCode::SpendingLimitExceeded,
    ),
    (
        "Policy: window limit exceeded",
        ErrorCode::SpendingLimitExceeded,
    ),
];

/// Finds the contract's revert message in a node's error text (which shows a short
/// string as text, as hex, or both) and returns it with its code.
///
/// ```
/// use chipi_core::{revert_code, ErrorCode};
/// let node = "Execution failed. Failure reason: 0x53657373696f6e3a2065787069726564 ('Session: expired').";
/// assert_eq!(revert_code(node), Some(("Session: expired", ErrorCode::SessionExpired)));
/// assert_eq!(revert_code("out of gas"), None);
/// ```
pub fn revert_code(node_error: &str) -> Option<(&'static str, ErrorCode)> {
    let lower = node_error.to_ascii_lowercase();
    REVERT_MESSAGES.iter().copied().find(|(message, _)| {
        let hex: String = message.bytes().map(|b| format!("{b:02x}")).collect();
        node_error.contains(message) || lower.contains(&hex)
    })
}

/// The wallet's own revert in a node's structured execution error: the message of the
/// deepest frame, mapped only when that frame is `wallet`'s.
///
/// A contract the wallet calls may revert with any text, including one that imitates
/// the wallet's (`'Session: revoked'`); taking it for the wallet's would make an app drop
/// a live session. So a revert maps to a code only when it comes from the wallet itself.
///
/// ```
/// use chipi_core::{wallet_revert, ErrorCode, Felt};
/// use starknet_rust_core::types::{ContractExecutionError, InnerContractExecutionError};
///
/// let frame = |address: u64, error: ContractExecutionError| ContractExecutionError::Nested(InnerContractExecutionError {
///     contract_address: Felt::from(address),
///     class_hash: Felt::ONE,
///     selector: Felt::TWO,
///     error: Box::new(error).into(),
/// });
/// let message = ContractExecutionError::Message("0x53657373696f6e3a207265766f6b6564 ('Session: revoked')".into());
/// let wallet = Felt::from(0xa11e7u64);
/// // Raised by the wallet: mapped.
/// let own = frame(0xa11e7, message.clone());
/// assert_eq!(wallet_revert(&own, wallet), Some(("Session: revoked", ErrorCode::SessionRevoked)));
/// // Raised by a contract the wallet called, with the same text: not the wallet's.
/// let third_party = frame(0xa11e7, frame(0xbad, message));
/// assert_eq!(wallet_revert(&third_party, wallet), None);
/// ```
pub fn wallet_revert(
    error: &ContractExecutionError,
    wallet: Felt,
) -> Option<(&'static str, ErrorCode)> {
    let mut origin = None;
    let mut current = error;
    loop {
        match current {
            ContractExecutionError::Nested(frame) => {
                origin = Some(frame.contract_address);
                current = &frame.error;
            }
            ContractExecutionError::Message(text) => {
                return match origin {
                    Some(address) if address != wallet => None,
                    Some(_) => revert_code(text),
                    // No frame: the text may still name them (older nodes, validation).
                    None => wallet_revert_in_text(text, wallet),
                };
            }
        }
    }
}

/// The failure reason in a node's error text: what follows the last frame header
/// (`Error in contract (contract address: …, class hash: …, selector: …):`), trimmed;
/// the whole text when it names no frame.
///
/// ```
/// let text = "0: Error in the called contract (contract address: 0x1, class hash: 0x2, selector: 0x3):\n\
///             Error in contract (contract address: 0x4, class hash: 0x5, selector: 0x6):\n\
///             0x4f4f50 ('OOP').\n";
/// assert_eq!(chipi_core::failure_reason(text), "0x4f4f50 ('OOP').");
/// ```
pub fn failure_reason(text: &str) -> &str {
    const FRAME: &str = "contract address: ";
    let Some(at) = text.rfind(FRAME) else {
        return text.trim();
    };
    match text[at..].find("):") {
        Some(end) => text[at + end + 2..].trim(),
        None => text.trim(),
    }
}

/// [`wallet_revert`] for a node's error as text (a reverted receipt's `revert_reason`, a
/// validation failure): the failing frame is the last `contract address: 0x…` the text
/// names, and its message follows it. Text that names no frame comes from the wallet's
/// own validation (an account's `__validate__` calls no other contract).
pub fn wallet_revert_in_text(text: &str, wallet: Felt) -> Option<(&'static str, ErrorCode)> {
    const FRAME: &str = "contract address: ";
    match text.rfind(FRAME) {
        None => revert_code(text),
        Some(at) => {
            let rest = &text[at + FRAME.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_hexdigit() || c == 'x' || c == 'X'))
                .unwrap_or(rest.len());
            let address = Felt::from_hex(&rest[..end]).ok()?;
            if address != wallet {
                return None;
            }
            revert_code(&rest[end..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_exactly_the_contracts_messages() {
        let cairo = include_str!("../../../contracts/session_account/src/errors.cairo");
        let from_cairo: Vec<&str> = cairo
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub const "))
            .map(|rest| {
                let start = rest.find('\'').unwrap() + 1;
                let end = rest.rfind('\'').unwrap();
                &rest[start..end]
            })
            .collect();
        let table: Vec<&str> = REVERT_MESSAGES.iter().map(|(m, _)| *m).collect();
        assert_eq!(from_cairo, table);
        for message in table {
            assert!(message.len() <= 31, "{message} is not a short string");
        }
    }

    /// A devnet 0.10.1 revert reason: relayer `__execute__`, then the wallet's
    /// `execute_from_outside_v2`, which failed with its own message.
    const RELAYED: &str = "Transaction execution has failed:\n0: Error in the called contract (contract address: 0x078662e7352d062084b0010068b99288486c2d8b914f6e2a55ce945f8792c8b1, class hash: 0x05b4b537eaa2399e3aa99c4e2e0208ebd6c71bc1467938cd52c798c601e43564, selector: 0x015d40a3d6ca2ac30f4031e42be28da9b056fef9bb7357ac5e85627ee876e5ad):\nExecution failed. Failure reason:\nError in contract (contract address: 0x078662e7352d062084b0010068b99288486c2d8b914f6e2a55ce945f8792c8b1, class hash: 0x05b4b537eaa2399e3aa99c4e2e0208ebd6c71bc1467938cd52c798c601e43564, selector: 0x015d40a3d6ca2ac30f4031e42be28da9b056fef9bb7357ac5e85627ee876e5ad):\nError in contract (contract address: 0x077cc8dba144e57161cb1bd73d2dfb0752d0473c08145c644a8c37e7034f4664, class hash: 0x0561fd5acc342156918fe1f4c5e599d1def8bd6d4b904d4afdd4296fa6e914cb, selector: 0x034cc13b274446654ca3233ed2c1620d4c5d1d32fd20b47146a3371064bdc57d):\n0x53657373696f6e3a2065787069726564 ('Session: expired').\n [\"0x53657373696f6e3a2065787069726564\"]";

    #[test]
    fn a_node_text_maps_only_from_the_failing_frame() {
        let wallet =
            Felt::from_hex("0x077cc8dba144e57161cb1bd73d2dfb0752d0473c08145c644a8c37e7034f4664")
                .unwrap();
        let relayer =
            Felt::from_hex("0x078662e7352d062084b0010068b99288486c2d8b914f6e2a55ce945f8792c8b1")
                .unwrap();
        assert_eq!(
            wallet_revert_in_text(RELAYED, wallet),
            Some(("Session: expired", ErrorCode::SessionExpired))
        );
        // Seen from another wallet (the relayer, say), the same text is a third party's.
        assert_eq!(wallet_revert_in_text(RELAYED, relayer), None);
        assert!(failure_reason(RELAYED)
            .starts_with("0x53657373696f6e3a2065787069726564 ('Session: expired')"));
        // A validation failure names no frame: it is the account's own.
        assert_eq!(
            wallet_revert_in_text("Account validation failed: 'Session: revoked'", wallet),
            Some(("Session: revoked", ErrorCode::SessionRevoked))
        );
        assert_eq!(
            wallet_revert_in_text("contract address: 0xzz", wallet),
            None
        );
    }

    #[test]
    fn no_message_is_a_prefix_of_another() {
        // `revert_code` returns the first match: a prefix would shadow a longer message.
        for (a, _) in REVERT_MESSAGES {
            for (b, _) in REVERT_MESSAGES {
                assert!(a == b || !b.contains(a), "{a} inside {b}");
            }
        }
    }

    #[test]
    fn codes_have_their_wire_names() {
        assert_eq!(
            ErrorCode::SessionEntrypointNotAllowed.to_string(),
            "SESSION_ENTRYPOINT_NOT_ALLOWED"
        );
        assert_eq!(
            ErrorCode::InvalidWalletTypeForSession.as_str(),
            "INVALID_WALLET_TYPE_FOR_SESSION"
        );
    }
}
