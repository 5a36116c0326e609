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

/// `__validate__`: the entry point an account validates its own transactions with.
const VALIDATE_SELECTOR: Felt =
    Felt::from_hex_unchecked("0x162da33a4585851fe8d3af3c2a9c60b557814e221e0d4f30ff0b2189d9c7775");

fn deepest(error: &ContractExecutionError) -> &str {
    match error {
        ContractExecutionError::Nested(frame) => deepest(&frame.error),
        ContractExecutionError::Message(text) => failure_reason(text),
    }
}

/// The outermost `Error in contract (contract address: 0x…, class hash: 0x…, selector:
/// 0x…)` of a node's error text (devnet writes validation failures so), as (address,
/// selector).
fn outer_frame_in_text(text: &str) -> Option<(Felt, Felt)> {
    let frame = &text[text.find("Error in contract (")?..];
    let field = |name: &str| {
        let start = frame.find(name)? + name.len();
        let hex: String = frame[start..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == 'x')
            .collect();
        Felt::from_hex(&hex).ok()
    };
    Some((field("contract address: ")?, field("selector: ")?))
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
            // The relayer's own `__validate__` (its key, its class): never the request's
            // fault, so never the user's refusal; the relayer is the one that failed.
            let outer = match &data.execution_error {
                ContractExecutionError::Nested(frame) => {
                    Some((frame.contract_address, frame.selector))
                }
                ContractExecutionError::Message(text) => outer_frame_in_text(text),
            };
            if outer.is_some_and(|(address, selector)| {
                selector == VALIDATE_SELECTOR && address != wallet
            }) {
                return Failure::Relayer(format!(
                    "the relayer's own validation failed: {}",
                    deepest(&data.execution_error)
                ));
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
    fn the_validate_selector_is_right() {
        assert_eq!(
            starknet_rust_core::utils::get_selector_from_name("__validate__").unwrap(),
            VALIDATE_SELECTOR
        );
    }

    #[test]
    fn a_relayer_failing_its_own_validation_is_the_relayer_s_failure() {
        use starknet_rust_core::types::{
            InnerContractExecutionError, TransactionExecutionErrorData,
        };
        let relayer = Felt::from(0x99u8);
        let wallet = Felt::from(0x77u8);
        let error = |address| {
            ProviderError::StarknetError(StarknetError::TransactionExecutionError(
                TransactionExecutionErrorData {
                    transaction_index: 0,
                    execution_error: ContractExecutionError::Nested(InnerContractExecutionError {
                        contract_address: address,
                        class_hash: Felt::ONE,
                        selector: VALIDATE_SELECTOR,
                        error: ContractExecutionError::Message("Account: invalid signature".into())
                            .into(),
                    }),
                },
            ))
        };
        assert!(matches!(
            classify_provider(&error(relayer), wallet),
            Failure::Relayer(reason) if reason.contains("invalid signature")
        ));
        // The same failure in the wallet's frame is the request's.
        assert!(matches!(
            classify_provider(&error(wallet), wallet),
            Failure::Revert { .. }
        ));
        // Devnet's words for it: one message naming the frame.
        let text = |address: Felt| {
            ProviderError::StarknetError(StarknetError::TransactionExecutionError(
                TransactionExecutionErrorData {
                    transaction_index: 0,
                    execution_error: ContractExecutionError::Message(format!(
                        "Account validation failed: The `validate` entry point panicked with:\n\
                         Error in contract (contract address: {address:#066x}, class hash: \
                         0x05b4b5, selector: {VALIDATE_SELECTOR:#066x}):\n\
                         0x4163636f756e743a20696e76616c6964207369676e6174757265 \
                         ('Account: invalid signature').\n"
                    )),
                },
            ))
        };
        assert!(matches!(
            classify_provider(&text(relayer), wallet),
            Failure::Relayer(reason) if reason.contains("invalid signature")
        ));
        assert!(matches!(
            classify_provider(&text(wallet), wallet),
            Failure::Revert { .. }
        ));
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
