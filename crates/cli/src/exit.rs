//! Exit codes: one per family of error codes, so scripts can branch without parsing.

use chipi_core::ErrorCode;

/// Success.
pub const OK: u8 = 0;
/// A demo step did not behave as expected, or an unexpected failure.
pub const FAILED: u8 = 1;
/// Bad usage (unknown flag, missing argument): clap's own code.
pub const USAGE: u8 = 2;
/// The node, the paymaster or the local stack could not be reached or started.
pub const NETWORK: u8 = 3;
/// Missing or refused credentials (API key, token).
pub const AUTHENTICATION: u8 = 4;
/// Bad input: a malformed argument or file, an unreadable file, a refused spending policy.
pub const INPUT: u8 = 5;
/// A key could not be decrypted (wrong PIN, damaged file), made or used to sign.
pub const KEY: u8 = 6;
/// The wallet refused: the session is not registered, revoked, expired, out of calls,
/// not allowed this call or over its spending limit; a bad signature; not a CHIPI wallet.
pub const REFUSED: u8 = 7;
/// The paymaster failed or lied, or the transaction reverted for another reason.
pub const TRANSACTION: u8 = 8;

/// The exit code of an SDK error code.
pub fn of(code: ErrorCode) -> u8 {
    use ErrorCode::*;
    match code {
        NetworkError => NETWORK,
        AuthenticationFailed => AUTHENTICATION,
        InvalidInput | InvalidSpendingPolicy => INPUT,
        SessionDecryptionFailed | SessionCreationFailed | SigningFailed => KEY,
        InvalidWalletTypeForSession
        | SessionExpired
        | SessionNotRegistered
        | SessionRevoked
        | SessionMaxCallsExceeded
        | SessionEntrypointNotAllowed
        | SpendingLimitExceeded
        | InvalidSignature
        | OutsideExecutionRejected
        | Unauthorized => REFUSED,
        PaymasterError | TransactionReverted | TypedDataMismatch => TRANSACTION,
    }
}

/// The table `chipi --help` prints.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  a demo step did not behave as expected; an unexpected failure
  2  bad usage (unknown flag, missing argument)
  3  NETWORK_ERROR: the node, the paymaster or the local stack is unreachable
  4  AUTHENTICATION_FAILED: missing or refused API key or token
  5  INVALID_INPUT, INVALID_SPENDING_POLICY: a malformed argument or file
  6  SESSION_DECRYPTION_FAILED, SESSION_CREATION_FAILED, SIGNING_FAILED: a key problem
  7  SESSION_NOT_REGISTERED, SESSION_REVOKED, SESSION_EXPIRED, SESSION_MAX_CALLS_EXCEEDED,
     SESSION_ENTRYPOINT_NOT_ALLOWED, SPENDING_LIMIT_EXCEEDED, INVALID_SIGNATURE,
     OUTSIDE_EXECUTION_REJECTED, UNAUTHORIZED, INVALID_WALLET_TYPE_FOR_SESSION: refused
  8  PAYMASTER_ERROR, TRANSACTION_REVERTED, TYPED_DATA_MISMATCH: the transaction failed";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_family_and_the_help_names_it() {
        for code in ErrorCode::ALL {
            let exit = of(code);
            assert!((3..=8).contains(&exit), "{code:?}");
            assert!(
                HELP.contains(code.as_str()),
                "{code:?} missing from the help"
            );
        }
    }
}
