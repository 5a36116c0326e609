//! Error codes of PROTOCOL.md section 5 (plus this project's own) and the one table that
//! maps the contract's revert messages to them.

use std::fmt;

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
        }
    }

    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 19] = [
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
