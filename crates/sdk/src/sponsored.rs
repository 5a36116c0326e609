//! The sponsored transport: writes go through a paymaster (`../shared/spec/API.md`) as
//! SNIP-9 v2 outside executions, so the wallet pays no gas.
//!
//! The paymaster picks the nonce and the time window and hands back typed data to sign.
//! A compromised or buggy paymaster must not get a signature over anything else than
//! what the user asked for, so [`verify_outside_execution`] checks it first and the SDK
//! signs the hash it computes itself.

use std::time::Duration;

use chipi_core::{ErrorCode, Felt, OutsideExecution};
use serde::Deserialize;
use serde_json::{json, Value};
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

fn mismatch(message: impl Into<String>) -> SessionError {
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
    if typed_chain != chain_id {
        return Err(mismatch(format!(
            "it is for chain {typed_chain:#x}, not {chain_id:#x}"
        )));
    }
    if execution.calls.len() != expected_calls.len() {
        return Err(mismatch(format!(
            "it has {} calls, {} were asked for",
            execution.calls.len(),
            expected_calls.len()
        )));
    }
    for (i, (got, want)) in execution.calls.iter().zip(expected_calls).enumerate() {
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
    Ok(execution)
}

/// What the client signs: the owner's `{r, s, recovery}` or a session's 4 felts.
pub(crate) enum UserSignature {
    Owner { r: Felt, s: Felt, recovery: Felt },
    Session(Vec<Felt>),
}

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
            .field("url", &self.base.as_str())
            .field("api_key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
}

fn hex(felt: Felt) -> String {
    format!("{felt:#x}")
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

    async fn post(&self, path: &str, bearer: &str, body: Value) -> Result<Value, SessionError> {
        let url = self.endpoint(path)?;
        let response = self
            .http
            .post(url)
            .header("x-api-key", &self.api_key)
            .bearer_auth(bearer)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                SessionError::new(
                    ErrorCode::NetworkError,
                    format!("paymaster unreachable ({path}): {}", e.without_url()),
                )
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            SessionError::new(
                ErrorCode::NetworkError,
                format!("paymaster response lost ({path}): {}", e.without_url()),
            )
        })?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|_| {
                SessionError::new(
                    ErrorCode::PaymasterError,
                    format!("the paymaster answered {path} with malformed JSON"),
                )
            });
        }
        let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
        let message = body
            .as_ref()
            .and_then(|b| b.message.clone())
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        // A careless server may echo credentials back; they never enter our errors.
        let message = message
            .replace(bearer, "<redacted>")
            .replace(&self.api_key, "<redacted>");
        let message: String = message.chars().take(500).collect();
        let code = body
            .and_then(|b| b.code)
            .and_then(|c| c.parse::<ErrorCode>().ok());
        let code = match (status.as_u16(), code) {
            (401 | 403, _) => ErrorCode::AuthenticationFailed,
            (_, Some(code)) => code,
            _ => ErrorCode::PaymasterError,
        };
        Err(SessionError::new(
            code,
            format!("the paymaster refused ({}): {message}", status.as_u16()),
        ))
    }

    /// `POST /v1/transactions/prepare-typed-data`: the typed data to sign for `calls`.
    pub(crate) async fn prepare_typed_data(
        &self,
        bearer: &str,
        wallet: Felt,
        calls: &[Call],
    ) -> Result<Value, SessionError> {
        let calls: Vec<Value> = calls
            .iter()
            .map(|call| {
                json!({
                    "contractAddress": hex(call.to),
                    "entrypoint": hex(call.selector),
                    "calldata": call.calldata.iter().map(|f| hex(*f)).collect::<Vec<_>>(),
                })
            })
            .collect();
        let body = json!({
            "publicKey": hex(wallet),
            "calls": calls,
            "walletType": "CHIPI",
        });
        let answer = self
            .post("v1/transactions/prepare-typed-data", bearer, body)
            .await?;
        answer.get("typedData").cloned().ok_or_else(|| {
            SessionError::new(
                ErrorCode::PaymasterError,
                "the paymaster's answer has no typedData",
            )
        })
    }

    /// `POST /v1/transactions/execute-sponsored-transaction`: the transaction hash.
    pub(crate) async fn execute_sponsored(
        &self,
        bearer: &str,
        wallet: Felt,
        execution: &OutsideExecution,
        chain_id: Felt,
        signature: UserSignature,
    ) -> Result<Felt, SessionError> {
        let mut body = json!({
            "publicKey": hex(wallet),
            // Our rendering of what was verified and signed, not the server's bytes.
            "typedData": execution.to_typed_data(chain_id),
            "saveToDatabase": true,
            "walletType": "CHIPI",
        });
        match signature {
            UserSignature::Owner { r, s, recovery } => {
                body["userSignature"] = json!({
                    "r": hex(r),
                    "s": hex(s),
                    "recovery": u64::try_from(recovery).unwrap_or(0),
                });
            }
            UserSignature::Session(felts) => {
                body["userSignature"] = json!(felts.iter().map(|f| hex(*f)).collect::<Vec<_>>());
                body["isSessionSignature"] = json!(true);
            }
        }
        let answer = self
            .post(
                "v1/transactions/execute-sponsored-transaction",
                bearer,
                body,
            )
            .await?;
        answer
            .get("transactionHash")
            .and_then(Value::as_str)
            .and_then(chipi_core::parse_felt_strict)
            .ok_or_else(|| {
                SessionError::new(
                    ErrorCode::PaymasterError,
                    "the paymaster's answer has no valid transactionHash",
                )
            })
    }
}
