//! The sponsored transport: writes go through a paymaster (`docs/API.md`) as
//! SNIP-9 v2 outside executions, so the wallet pays no gas.
//!
//! The paymaster picks the nonce and the time window and hands back typed data to sign.
//! A compromised or buggy paymaster must not get a signature over anything else than
//! what the user asked for, so [`verify_outside_execution`] checks it first and the SDK
//! signs the hash it computes itself.

use std::time::Duration;

use chipi_core::{
    ErrorBody, ErrorCode, ExecuteSponsoredRequest, Felt, JsCall, OutsideExecution,
    PrepareTypedDataRequest, TransactionHashResponse, UserSignature,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use starknet_rust_core::types::Call;
use url::Url;

use crate::SessionError;

/// The API version date the client sends as `__chipi_api_version` (the server ignores it).
pub const CHIPI_API_VERSION: &str = "2025-12-30";

/// The longest `execute_before - now` the SDK signs by default: a paymaster may hold a
/// signed outside execution until then, so the window is kept short.
pub const DEFAULT_MAX_EXECUTION_WINDOW_SECONDS: u64 = 3_600;

/// How far `execute_after` may lie ahead of the local clock (clock skew).
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 300;

pub(crate) fn mismatch(message: impl Into<String>) -> SessionError {
    SessionError::new(
        ErrorCode::TypedDataMismatch,
        format!(
            "refused to sign the paymaster's typed data: {}",
            message.into()
        ),
    )
}

/// Checks typed data a paymaster returned against the outside execution the SDK asked
/// for and returns it: the same calls in the same order, the expected chain, caller
/// `ANY_CALLER` or a specific address, and a window that contains `now` (up to
/// [`MAX_CLOCK_SKEW_SECONDS`] of skew) and ends at most `max_window` seconds from now.
///
/// The account is not in the typed data: it enters the hash, which the SDK computes
/// with the wallet address itself.
///
/// ```
/// use chipi_core::{chain_id, selectors, Call, Felt, OutsideExecution, ANY_CALLER};
/// use chipi_sdk::verify_outside_execution;
///
/// let calls = vec![Call { to: Felt::from(0x1234u32), selector: selectors::TRANSFER, calldata: vec![Felt::ONE, Felt::from(100u32), Felt::ZERO] }];
/// let now = 1_800_000_000;
/// let offered = OutsideExecution { caller: ANY_CALLER, nonce: Felt::from(7u32), execute_after: now - 60, execute_before: now + 600, calls: calls.clone() };
/// let typed_data = offered.to_typed_data(chain_id::SEPOLIA);
/// assert_eq!(verify_outside_execution(&typed_data, &calls, chain_id::SEPOLIA, now, 3600)?, offered);
///
/// // The same typed data with the amount changed is refused.
/// let mut evil = offered.clone();
/// evil.calls[0].calldata[1] = Felt::from(1_000_000u32);
/// let error = verify_outside_execution(&evil.to_typed_data(chain_id::SEPOLIA), &calls, chain_id::SEPOLIA, now, 3600).unwrap_err();
/// assert_eq!(error.code().as_str(), "TYPED_DATA_MISMATCH");
/// # Ok::<(), chipi_sdk::SessionError>(())
/// ```
pub fn verify_outside_execution(
    typed_data: &Value,
    expected_calls: &[Call],
    chain_id: Felt,
    now: u64,
    max_window: u64,
) -> Result<OutsideExecution, SessionError> {
    let (execution, typed_chain) =
        OutsideExecution::from_typed_data(typed_data).map_err(|e| mismatch(e.to_string()))?;
    check_execution(
        &execution,
        &execution.calls,
        typed_chain,
        expected_calls,
        chain_id,
        now,
        max_window,
    )?;
    Ok(execution)
}

/// [`verify_outside_execution`]'s checks of a parsed `execution` whose user calls are
/// `calls` (all of its calls, or all but a fee transfer a SNIP-29 paymaster appended).
pub(crate) fn check_execution(
    execution: &OutsideExecution,
    calls: &[Call],
    typed_chain: Felt,
    expected_calls: &[Call],
    chain_id: Felt,
    now: u64,
    max_window: u64,
) -> Result<(), SessionError> {
    if typed_chain != chain_id {
        return Err(mismatch(format!(
            "it is for chain {typed_chain:#x}, not {chain_id:#x}"
        )));
    }
    if calls.len() != expected_calls.len() {
        return Err(mismatch(format!(
            "it has {} calls, {} were asked for",
            calls.len(),
            expected_calls.len()
        )));
    }
    for (i, (got, want)) in calls.iter().zip(expected_calls).enumerate() {
        if got.to != want.to || got.selector != want.selector || got.calldata != want.calldata {
            return Err(mismatch(format!("call {i} differs from the one asked for")));
        }
    }
    if execution.caller == Felt::ZERO {
        return Err(mismatch("its caller is zero"));
    }
    if execution.execute_after >= execution.execute_before {
        return Err(mismatch("its time window is empty"));
    }
    if execution.execute_before <= now {
        return Err(mismatch("its time window has already closed"));
    }
    if execution.execute_after > now.saturating_add(MAX_CLOCK_SKEW_SECONDS) {
        return Err(mismatch("its time window opens in the future"));
    }
    if execution.execute_before > now.saturating_add(max_window) {
        return Err(mismatch(format!(
            "its time window stays open {} s, more than the {max_window} s allowed",
            execution.execute_before - now
        )));
    }
    Ok(())
}

/// The most bytes of a paymaster answer the SDK reads: typed data for a few dozen calls
/// is a few KiB; a hostile server must not make the client buffer without bound.
pub const MAX_PAYMASTER_RESPONSE_BYTES: usize = 256 * 1024;

/// A paymaster client: the two calls of the sponsored write path.
#[derive(Clone)]
pub(crate) struct Paymaster {
    http: reqwest::Client,
    base: Url,
    api_key: String,
}

impl std::fmt::Debug for Paymaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paymaster")
            .field("url", &crate::config::shown_url(self.base.as_str()))
            .field("api_key", &"<redacted>")
            .finish()
    }
}

fn hex(felt: Felt) -> String {
    format!("{felt:#x}")
}

/// A paymaster's answer to `path`: the JSON of a success, or the error its body
/// carries (status 401/403 → `AUTHENTICATION_FAILED`, a known code → that code, else
/// `PAYMASTER_ERROR`). `credentials` a careless server echoes never enter the message.
pub(crate) fn read_answer(
    path: &str,
    status: u16,
    text: &str,
    credentials: &[&str],
) -> Result<Value, SessionError> {
    if (200..300).contains(&status) {
        return serde_json::from_str(text).map_err(|_| {
            SessionError::new(
                ErrorCode::PaymasterError,
                format!("the paymaster answered {path} with malformed JSON"),
            )
        });
    }
    let body: Option<ErrorBody> = serde_json::from_str(text).ok();
    let mut message = body
        .as_ref()
        .map(|b| b.message.clone())
        .unwrap_or_else(|| format!("HTTP {status}"));
    for credential in credentials.iter().filter(|c| !c.is_empty()) {
        message = message.replace(credential, "<redacted>");
    }
    let message: String = message.chars().take(500).collect();
    let code = body.and_then(|b| b.code.parse::<ErrorCode>().ok());
    let code = match (status, code) {
        (401 | 403, _) => ErrorCode::AuthenticationFailed,
        (_, Some(code)) => code,
        _ => ErrorCode::PaymasterError,
    };
    Err(SessionError::new(
        code,
        format!("the paymaster refused ({status}): {message}"),
    ))
}

/// The `typedData` of a `prepare-typed-data` answer.
pub(crate) fn typed_data_of(mut answer: Value) -> Result<Value, SessionError> {
    answer.get_mut("typedData").map(Value::take).ok_or_else(|| {
        SessionError::new(
            ErrorCode::PaymasterError,
            "the paymaster's answer has no typedData",
        )
    })
}

/// The `transactionHash` of an `execute-sponsored-transaction` answer.
pub(crate) fn transaction_hash_of(answer: &Value) -> Result<Felt, SessionError> {
    TransactionHashResponse::deserialize(answer)
        .ok()
        .and_then(|answer| chipi_core::parse_felt_strict(&answer.transaction_hash))
        .ok_or_else(|| {
            SessionError::new(
                ErrorCode::PaymasterError,
                "the paymaster's answer has no valid transactionHash",
            )
        })
}

/// The body of `response`, refused past [`MAX_PAYMASTER_RESPONSE_BYTES`].
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    path: &str,
) -> Result<String, SessionError> {
    let too_large = || {
        SessionError::new(
            ErrorCode::PaymasterError,
            format!("the paymaster's answer to {path} is larger than {MAX_PAYMASTER_RESPONSE_BYTES} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_PAYMASTER_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        SessionError::new(
            ErrorCode::NetworkError,
            format!("paymaster response lost ({path}): {}", e.without_url()),
        )
    })? {
        if body.len() + chunk.len() > MAX_PAYMASTER_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| {
        SessionError::new(
            ErrorCode::PaymasterError,
            format!("the paymaster answered {path} with text that is not UTF-8"),
        )
    })
}

impl Paymaster {
    pub(crate) fn new(base: Url, api_key: String, timeout: Duration) -> Result<Self, SessionError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| {
                SessionError::new(
                    ErrorCode::NetworkError,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Self {
            http,
            base,
            api_key,
        })
    }

    fn endpoint(&self, path: &str) -> Result<Url, SessionError> {
        let mut url = self.base.join(path).map_err(|e| {
            SessionError::new(ErrorCode::InvalidInput, format!("bad paymaster URL: {e}"))
        })?;
        url.query_pairs_mut()
            .append_pair("__chipi_api_version", CHIPI_API_VERSION);
        Ok(url)
    }

    async fn post(
        &self,
        path: &str,
        bearer: &str,
        body: &impl Serialize,
    ) -> Result<Value, SessionError> {
        let url = self.endpoint(path)?;
        let response = self
            .http
            .post(url)
            .header("x-api-key", &self.api_key)
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                SessionError::new(
                    ErrorCode::NetworkError,
                    format!("paymaster unreachable ({path}): {}", e.without_url()),
                )
            })?;
        let status = response.status();
        let text = read_bounded(response, path).await?;
        read_answer(path, status.as_u16(), &text, &[bearer, &self.api_key])
    }

    /// `POST /v1/transactions/prepare-typed-data`: the typed data to sign for `calls`.
    pub(crate) async fn prepare_typed_data(
        &self,
        bearer: &str,
        wallet: Felt,
        calls: &[Call],
    ) -> Result<Value, SessionError> {
        let body = PrepareTypedDataRequest {
            public_key: hex(wallet),
            calls: calls.iter().map(JsCall::from_call).collect(),
            account_class_hash: None,
            wallet_type: Some("CHIPI".into()),
        };
        let answer = self
            .post("v1/transactions/prepare-typed-data", bearer, &body)
            .await?;
        typed_data_of(answer)
    }

    /// `POST /v1/transactions/execute-sponsored-transaction`: the transaction hash.
    pub(crate) async fn execute_sponsored(
        &self,
        bearer: &str,
        wallet: Felt,
        execution: &OutsideExecution,
        chain_id: Felt,
        signature: &UserSignature,
    ) -> Result<Felt, SessionError> {
        let body = ExecuteSponsoredRequest {
            public_key: hex(wallet),
            // Our rendering of what was verified and signed, not the server's bytes.
            typed_data: execution.to_typed_data(chain_id),
            user_signature: *signature,
            is_session_signature: signature.is_session().then_some(true),
            save_to_database: Some(true),
            wallet_type: Some("CHIPI".into()),
        };
        let answer = self
            .post(
                "v1/transactions/execute-sponsored-transaction",
                bearer,
                &body,
            )
            .await?;
        transaction_hash_of(&answer)
    }
}

impl Paymaster {
    /// `POST /v1/chipi-wallets/prepare-creation`: the typed data the new owner key signs
    /// and the class the paymaster will deploy.
    pub(crate) async fn prepare_wallet_creation(
        &self,
        bearer: &str,
        request: &chipi_core::PrepareWalletCreationRequest,
    ) -> Result<chipi_core::PrepareWalletCreationResponse, SessionError> {
        let answer = self
            .post("v1/chipi-wallets/prepare-creation", bearer, request)
            .await?;
        serde_json::from_value(answer).map_err(|_| {
            SessionError::new(
                ErrorCode::PaymasterError,
                "the paymaster's answer to prepare-creation is malformed",
            )
        })
    }

    /// `POST /v1/chipi-wallets`: deploys the wallet; its record.
    pub(crate) async fn create_wallet(
        &self,
        bearer: &str,
        request: &chipi_core::CreateWalletRequest,
    ) -> Result<chipi_core::WalletRecord, SessionError> {
        let answer = self.post("v1/chipi-wallets", bearer, request).await?;
        serde_json::from_value(answer).map_err(|_| {
            SessionError::new(
                ErrorCode::PaymasterError,
                "the paymaster's wallet record is malformed",
            )
        })
    }
}

#[cfg(test)]
mod no_panic_tests;
