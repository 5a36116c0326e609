//! Node failures as SDK errors. Two rules: a node URL may carry an API key
//! (`https://host/v2/<KEY>`), so no transport error text (which quotes the URL) reaches a
//! message; and a revert maps to a session code only when the wallet itself raised it.

use std::fmt::Display;

use chipi_core::{wallet_revert, wallet_revert_in_text, ErrorCode, Felt};
use starknet_rust_accounts::AccountError;
use starknet_rust_core::types::{ContractExecutionError, StarknetError};
use starknet_rust_providers::jsonrpc::{HttpTransportError, JsonRpcClientError};
use starknet_rust_providers::ProviderError;

use crate::SessionError;

/// The longest node text an error message quotes.
const MAX_QUOTE: usize = 500;

fn quote(text: &str) -> String {
    text.chars().take(MAX_QUOTE).collect()
}

/// What went wrong talking to the node, without its URL.
fn transport(error: &dyn std::any::Any) -> String {
    match error.downcast_ref::<JsonRpcClientError<HttpTransportError>>() {
        Some(JsonRpcClientError::TransportError(e)) => http(e),
        Some(JsonRpcClientError::JsonError(e)) => format!("its answer is not JSON-RPC ({e})"),
        Some(JsonRpcClientError::JsonRpcError(e)) => {
            format!("it answered error {}: {}", e.code, quote(&e.message))
        }
        None => match error.downcast_ref::<HttpTransportError>() {
            Some(e) => http(e),
            None => "the transport failed".into(),
        },
    }
}

fn http(error: &HttpTransportError) -> String {
    match error {
        HttpTransportError::Reqwest(e) if e.is_timeout() => "the request timed out".into(),
        HttpTransportError::Reqwest(e) if e.is_connect() => "cannot connect".into(),
        HttpTransportError::Reqwest(e) => match e.status() {
            Some(status) => format!("it answered HTTP {}", status.as_u16()),
            None if e.is_decode() || e.is_body() => "its answer could not be read".into(),
            None => "the request failed".into(),
        },
        HttpTransportError::Json(e) => format!("its answer is not JSON-RPC ({e})"),
        HttpTransportError::UnexpectedResponseId(_) => {
            "it answered with another request's id".into()
        }
    }
}

/// A failed node request (`what` says which) as a `NETWORK_ERROR`.
pub(crate) fn provider_error(error: ProviderError, what: &str) -> SessionError {
    match error {
        ProviderError::StarknetError(e) => SessionError::new(
            ErrorCode::NetworkError,
            format!("{what}: the node answered {}", quote(&e.to_string())),
        )
        .with_source(e),
        ProviderError::RateLimited => SessionError::new(
            ErrorCode::NetworkError,
            format!("{what}: the node rate-limited the request"),
        ),
        ProviderError::ArrayLengthMismatch => SessionError::new(
            ErrorCode::NetworkError,
            format!("{what}: the node answered for another number of transactions"),
        ),
        ProviderError::Other(e) => SessionError::new(
            ErrorCode::NetworkError,
            format!("{what}: node unreachable: {}", transport(e.as_any())),
        ),
    }
}

/// The message of the deepest frame of an execution error, without the frame headers
/// the node may repeat in it.
fn deepest_message(error: &ContractExecutionError) -> &str {
    match error {
        ContractExecutionError::Nested(frame) => deepest_message(&frame.error),
        ContractExecutionError::Message(text) => chipi_core::failure_reason(text),
    }
}

/// A transaction refused by the node (fee estimation, simulation or validation):
/// the wallet's own revert maps to its code with the contract's message; any other
/// revert is `TRANSACTION_REVERTED` with the reverting contract's text.
pub(crate) fn refusal(error: StarknetError, wallet: Felt) -> SessionError {
    let (own, text) = match &error {
        StarknetError::TransactionExecutionError(data) => (
            wallet_revert(&data.execution_error, wallet),
            deepest_message(&data.execution_error).to_owned(),
        ),
        StarknetError::ValidationFailure(text) => (
            wallet_revert_in_text(text, wallet),
            chipi_core::failure_reason(text).to_owned(),
        ),
        _ => return provider_error(ProviderError::StarknetError(error), "sending"),
    };
    match own {
        Some((message, code)) => {
            SessionError::new(code, format!("the wallet refused: {message}")).with_source(error)
        }
        None => SessionError::new(
            ErrorCode::TransactionReverted,
            format!("the transaction would revert: {}", quote(&text)),
        )
        .with_source(error),
    }
}

/// A reverted receipt's reason, mapped as [`refusal`] does.
pub(crate) fn reverted(reason: &str, wallet: Felt) -> SessionError {
    match wallet_revert_in_text(reason, wallet) {
        Some((message, code)) => SessionError::new(code, format!("the wallet reverted: {message}")),
        None => SessionError::new(
            ErrorCode::TransactionReverted,
            format!(
                "the transaction reverted: {}",
                quote(chipi_core::failure_reason(reason))
            ),
        ),
    }
}

/// A failed `send()` of starknet-rust's account API.
pub(crate) fn send_error<S: Display>(error: AccountError<S>, wallet: Felt) -> SessionError {
    match error {
        AccountError::Provider(ProviderError::StarknetError(e)) => refusal(e, wallet),
        AccountError::Provider(e) => provider_error(e, "sending"),
        AccountError::Signing(e) => SessionError::new(ErrorCode::SigningFailed, e.to_string()),
        AccountError::ClassHashCalculation(e) => {
            SessionError::new(ErrorCode::InvalidInput, e.to_string())
        }
        AccountError::FeeOutOfRange => SessionError::new(
            ErrorCode::NetworkError,
            "the node's fee estimate is out of range",
        ),
    }
}
