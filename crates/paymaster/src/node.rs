//! What the node's answers mean to the service: a refusal with a protocol code (taken
//! from the wallet's own frame), a stale relayer nonce, an unreachable node.

use chipi_core::{failure_reason, wallet_revert, wallet_revert_in_text, ErrorCode, Felt};
use starknet_rust_accounts::AccountError;
use starknet_rust_core::types::{ContractExecutionError, StarknetError};
use starknet_rust_providers::ProviderError;

/// A node failure, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The transaction would revert (or reverted): the code and a message for the client.
    Revert {
        /// The protocol code.
        code: ErrorCode,
        /// The contract's reason.
        message: String,
    },
    /// The relayer's nonce is not what the node expects.
    StaleNonce,
    /// The relayer cannot pay (balance, resources).
    Relayer(String),
    /// The node could not be reached, rate-limited us, or failed.
    Unreachable,
}

fn deepest(error: &ContractExecutionError) -> &str {
    match error {
        ContractExecutionError::Nested(frame) => deepest(&frame.error),
        ContractExecutionError::Message(text) => failure_reason(text),
    }
}

fn mentions_stale_nonce(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("invalid transaction nonce")
        || text.contains("invalidtransactionnonce")
        || text.contains("transaction nonce is invalid")
}

fn nested_text(error: &ContractExecutionError) -> String {
    match error {
        ContractExecutionError::Nested(frame) => nested_text(&frame.error),
        ContractExecutionError::Message(text) => text.clone(),
    }
}

/// Classifies a node error about a transaction sent for `wallet`.
pub fn classify_provider(error: &ProviderError, wallet: Felt) -> Failure {
    let starknet = match error {
        ProviderError::StarknetError(e) => e,
        _ => return Failure::Unreachable,
    };
    match starknet {
        StarknetError::InvalidTransactionNonce(_) => Failure::StaleNonce,
        StarknetError::TransactionExecutionError(data) => {
            if mentions_stale_nonce(&nested_text(&data.execution_error)) {
                return Failure::StaleNonce;
            }
            let (code, message) = match wallet_revert(&data.execution_error, wallet) {
                Some((message, code)) => (code, message.to_string()),
                None => (
                    ErrorCode::TransactionReverted,
                    deepest(&data.execution_error).to_string(),
                ),
            };
            Failure::Revert { code, message }
        }
        StarknetError::ValidationFailure(text) => {
            if mentions_stale_nonce(text) {
                return Failure::StaleNonce;
            }
            match wallet_revert_in_text(text, wallet) {
                Some((message, code)) => Failure::Revert {
                    code,
                    message: message.to_string(),
                },
                None => Failure::Relayer(format!(
                    "the relayer's transaction failed validation: {}",
                    failure_reason(text)
                )),
            }
        }
        StarknetError::InsufficientAccountBalance
        | StarknetError::InsufficientResourcesForValidate => {
            Failure::Relayer("the relayer cannot pay the fee".into())
        }
        other => Failure::Relayer(format!("the node refused the transaction: {other}")),
    }
}

/// Classifies a failed estimate or send of starknet-rust's account API.
pub fn classify<S>(error: &AccountError<S>, wallet: Felt) -> Failure {
    match error {
        AccountError::Provider(e) => classify_provider(e, wallet),
        AccountError::Signing(_) => Failure::Relayer("the relayer could not sign".into()),
        AccountError::ClassHashCalculation(_) => {
            Failure::Relayer("cannot compute a class hash".into())
        }
        AccountError::FeeOutOfRange => {
            Failure::Relayer("the node's fee estimate is out of range".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_unreachable_and_nonce_answers_are_stale() {
        assert_eq!(
            classify_provider(&ProviderError::RateLimited, Felt::ONE),
            Failure::Unreachable
        );
        let nonce = ProviderError::StarknetError(StarknetError::InvalidTransactionNonce(
            "expected 3".into(),
        ));
        assert_eq!(classify_provider(&nonce, Felt::ONE), Failure::StaleNonce);
        let text = ProviderError::StarknetError(StarknetError::ValidationFailure(
            "Invalid transaction nonce of contract at address 0x1. Account nonce: 0x3; got: 0x2."
                .into(),
        ));
        assert_eq!(classify_provider(&text, Felt::ONE), Failure::StaleNonce);
        // The devnet's words.
        let text = ProviderError::StarknetError(StarknetError::ValidationFailure(
            "Account transaction nonce is invalid.".into(),
        ));
        assert_eq!(classify_provider(&text, Felt::ONE), Failure::StaleNonce);
    }

    #[test]
    fn a_validation_failure_in_the_wallet_maps_to_its_code() {
        let text = ProviderError::StarknetError(StarknetError::ValidationFailure(
            "Session: revoked".into(),
        ));
        assert!(matches!(
            classify_provider(&text, Felt::ONE),
            Failure::Revert {
                code: ErrorCode::SessionRevoked,
                ..
            }
        ));
    }
}
