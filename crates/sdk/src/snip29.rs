//! The SNIP-29 transport: writes go through any standard paymaster (ours at `POST /`,
//! AVNU's, Cartridge's) as SNIP-9 v2 outside executions.
//!
//! As with Chipi's API, the paymaster builds the typed data and the SDK checks it
//! before signing the hash it computes itself. SNIP-29 adds one thing to check: in
//! `default` fee mode the paymaster appends a final transfer of the gas token (its fee);
//! the SDK accepts exactly one such transfer, of the token it chose, for the amount the
//! paymaster quoted and no more than the caller's maximum.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chipi_core::snip29::{
    self, methods, BuildParams, Built, Executable, ExecuteParams, Executed, FeeEstimate, FeeMode,
    Invoke, Parameters, RpcCall, RpcError, RpcRequest, RpcResponse, SignedInvoke, Transaction,
};
use chipi_core::{selectors, ErrorCode, Felt, OutsideExecution};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use starknet_rust_core::types::Call;
use url::Url;

use crate::sponsored::{check_execution, mismatch, read_bounded, verify_outside_execution};
use crate::SessionError;

/// Who pays a SNIP-29 paymaster for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Snip29Fee {
    /// The paymaster's sponsorship (`fee_mode: sponsored`): the wallet pays nothing.
    #[default]
    Sponsored,
    /// The wallet pays in `gas_token` (`fee_mode: default`): the signed calls end with
    /// one transfer of that token to the paymaster, of at most `max_amount` (in the
    /// token's smallest units). A quote above it is refused before anything is signed.
    PayIn {
        /// The ERC-20 the fee is paid in (one of `paymaster_getSupportedTokens`).
        gas_token: Felt,
        /// The most the SDK agrees to sign for the fee.
        max_amount: u128,
    },
}

impl Snip29Fee {
    fn mode(self) -> FeeMode {
        match self {
            Self::Sponsored => FeeMode::Sponsored { tip: None },
            Self::PayIn { gas_token, .. } => FeeMode::Default {
                gas_token,
                tip: None,
            },
        }
    }
}

/// A SNIP-29 client: the two calls of the write path.
pub(crate) struct Snip29Paymaster {
    http: reqwest::Client,
    url: Url,
    api_key: Option<String>,
    pub(crate) fee: Snip29Fee,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Snip29Paymaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snip29Paymaster")
            .field("url", &crate::config::shown_url(self.url.as_str()))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("fee", &self.fee)
            .finish()
    }
}

/// What a build handed back for the SDK to check and sign.
pub(crate) struct BuiltInvoke {
    pub(crate) typed_data: Value,
    pub(crate) fee: FeeEstimate,
}

impl Snip29Paymaster {
    pub(crate) fn new(
        url: Url,
        api_key: Option<String>,
        fee: Snip29Fee,
        timeout: Duration,
    ) -> Result<Self, SessionError> {
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
            url,
            api_key,
            fee,
            next_id: AtomicU64::new(1),
        })
    }

    fn parameters(&self) -> Parameters {
        Parameters {
            version: snip29::EXECUTION_VERSION.into(),
            fee_mode: self.fee.mode(),
            time_bounds: None,
        }
    }

    /// One JSON-RPC call; a JSON-RPC error becomes its [`ErrorCode`].
    async fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
        bearer: Option<&str>,
        wallet: Felt,
    ) -> Result<R, SessionError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = RpcRequest {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params: Some(serde_json::to_value(params).map_err(|e| {
                SessionError::new(
                    ErrorCode::InvalidInput,
                    format!("cannot encode {method}: {e}"),
                )
            })?),
            id: Some(Value::from(id)),
        };
        let mut post = self.http.post(self.url.clone()).json(&request);
        if let Some(key) = &self.api_key {
            post = post.header("x-paymaster-api-key", key);
        }
        if let Some(bearer) = bearer {
            post = post.bearer_auth(bearer);
        }
        let response = post.send().await.map_err(|e| {
            SessionError::new(
                ErrorCode::NetworkError,
                format!("paymaster unreachable ({method}): {}", e.without_url()),
            )
        })?;
        let status = response.status().as_u16();
        let text = read_bounded(response, method).await?;
        let credentials = [bearer.unwrap_or(""), self.api_key.as_deref().unwrap_or("")];
        let answer: RpcResponse = match serde_json::from_str(&text) {
            Ok(answer) => answer,
            Err(_) if !(200..300).contains(&status) => {
                let code = match status {
                    401 | 403 => ErrorCode::AuthenticationFailed,
                    _ => ErrorCode::PaymasterError,
                };
                return Err(SessionError::new(
                    code,
                    format!("the paymaster refused {method} (HTTP {status})"),
                ));
            }
            Err(_) => {
                return Err(SessionError::new(
                    ErrorCode::PaymasterError,
                    format!("the paymaster's answer to {method} is not JSON-RPC"),
                ))
            }
        };
        if answer.id != id {
            return Err(SessionError::new(
                ErrorCode::PaymasterError,
                format!("the paymaster answered {method} with another request's id"),
            ));
        }
        match (answer.result, answer.error) {
            (_, Some(error)) => Err(rpc_failure(method, &error, wallet, &credentials)),
            (Some(result), None) => serde_json::from_value(result).map_err(|e| {
                SessionError::new(
                    ErrorCode::PaymasterError,
                    format!("the paymaster's answer to {method} is malformed ({e})"),
                )
            }),
            (None, None) => Err(SessionError::new(
                ErrorCode::PaymasterError,
                format!("the paymaster's answer to {method} has neither result nor error"),
            )),
        }
    }

    /// `paymaster_buildTransaction` for `calls` by `wallet`.
    pub(crate) async fn build_invoke(
        &self,
        bearer: Option<&str>,
        wallet: Felt,
        calls: &[Call],
    ) -> Result<BuiltInvoke, SessionError> {
        let params = BuildParams {
            transaction: Transaction::Invoke {
                invoke: Invoke {
                    user_address: wallet,
                    calls: calls.iter().map(RpcCall::from).collect(),
                },
            },
            parameters: self.parameters(),
        };
        let built: Built = self
            .call(methods::BUILD_TRANSACTION, params, bearer, wallet)
            .await?;
        match built {
            Built::Invoke {
                typed_data, fee, ..
            } => Ok(BuiltInvoke { typed_data, fee }),
            _ => Err(SessionError::new(
                ErrorCode::PaymasterError,
                "the paymaster built a deployment for an invoke",
            )),
        }
    }

    /// `paymaster_executeTransaction` with the typed data the SDK verified and signed.
    pub(crate) async fn execute_invoke(
        &self,
        bearer: Option<&str>,
        wallet: Felt,
        execution: &OutsideExecution,
        chain_id: Felt,
        signature: Vec<Felt>,
    ) -> Result<Executed, SessionError> {
        let params = ExecuteParams {
            transaction: Executable::Invoke {
                invoke: SignedInvoke {
                    user_address: wallet,
                    // Our rendering of what was verified and signed, not the server's bytes.
                    typed_data: execution.to_typed_data(chain_id),
                    signature,
                },
            },
            parameters: self.parameters(),
        };
        self.call(methods::EXECUTE_TRANSACTION, params, bearer, wallet)
            .await
    }
}

/// Checks a SNIP-29 build against the request: [`verify_outside_execution`]'s checks
/// for the user's calls, and in `default` mode exactly one final transfer of the chosen
/// gas token for the quoted `suggested_max_fee_in_gas_token`, at most `max_amount`.
pub(crate) fn verify_build(
    built: &BuiltInvoke,
    calls: &[Call],
    fee: Snip29Fee,
    chain_id: Felt,
    now: u64,
    max_window: u64,
) -> Result<OutsideExecution, SessionError> {
    let Snip29Fee::PayIn {
        gas_token,
        max_amount,
    } = fee
    else {
        return verify_outside_execution(&built.typed_data, calls, chain_id, now, max_window);
    };
    let (execution, typed_chain) = OutsideExecution::from_typed_data(&built.typed_data)
        .map_err(|e| mismatch(e.to_string()))?;
    let Some((transfer, users)) = execution
        .calls
        .split_last()
        .filter(|(_, users)| users.len() == calls.len())
    else {
        return Err(mismatch(format!(
            "it has {} calls; {} were asked for, plus the fee transfer",
            execution.calls.len(),
            calls.len()
        )));
    };
    check_execution(
        &execution,
        users,
        typed_chain,
        calls,
        chain_id,
        now,
        max_window,
    )?;
    let amount = match transfer.calldata.as_slice() {
        [recipient, low, high]
            if transfer.to == gas_token
                && transfer.selector == selectors::TRANSFER
                && *recipient != Felt::ZERO
                && *high == Felt::ZERO =>
        {
            u128::try_from(*low).ok()
        }
        _ => None,
    }
    .ok_or_else(|| {
        mismatch(format!(
            "its last call is not a transfer of the gas token {gas_token:#x} to the paymaster"
        ))
    })?;
    if amount != built.fee.suggested_max_fee_in_gas_token {
        return Err(mismatch(format!(
            "its fee transfer of {amount} is not the {} it quoted",
            built.fee.suggested_max_fee_in_gas_token
        )));
    }
    if amount > max_amount {
        return Err(mismatch(format!(
            "its fee transfer of {amount} is more than the {max_amount} allowed"
        )));
    }
    Ok(execution)
}

/// A JSON-RPC error as a [`SessionError`]: the Chipi code a service put in `data.code`
/// when it is one (ours does), a revert in `data.execution_error` mapped as the node's,
/// else by the SNIP-29 code. Credentials a careless server echoes are removed.
fn rpc_failure(method: &str, error: &RpcError, wallet: Felt, credentials: &[&str]) -> SessionError {
    let data = error.data.as_ref();
    let text = |key: &str| data.and_then(|d| d.get(key)).and_then(Value::as_str);
    let mut detail = text("message")
        .or(text("execution_error"))
        .unwrap_or(&error.message)
        .to_string();
    for credential in credentials.iter().filter(|c| !c.is_empty()) {
        detail = detail.replace(credential, "<redacted>");
    }
    let detail: String = detail.chars().take(500).collect();
    let chipi = text("code").and_then(|c| c.parse::<ErrorCode>().ok());
    let kind = error.kind();
    if kind == Some(snip29::RpcCode::TransactionExecutionError) {
        let reverted = crate::node::reverted(&detail, wallet);
        if reverted.code() != ErrorCode::TransactionReverted || chipi.is_none() {
            return reverted;
        }
    }
    let code = chipi.unwrap_or(match kind {
        Some(snip29::RpcCode::InvalidSignature) => ErrorCode::InvalidSignature,
        Some(snip29::RpcCode::TransactionExecutionError) => ErrorCode::TransactionReverted,
        _ => ErrorCode::PaymasterError,
    });
    let refusal = text("code")
        .filter(|_| chipi.is_none())
        .map(|c| format!(" [{}]", c.chars().take(64).collect::<String>()))
        .unwrap_or_default();
    SessionError::new(
        code,
        format!(
            "the paymaster refused {method} ({}{refusal}): {detail}",
            error.code
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chipi_core::{chain_id, OutsideExecution, ANY_CALLER};
    use serde_json::json;

    const TOKEN: Felt = Felt::from_hex_unchecked("0x4718");
    const NOW: u64 = 1_800_000_000;

    fn user_call() -> Call {
        Call {
            to: Felt::from(0x1234u32),
            selector: selectors::TRANSFER,
            calldata: vec![Felt::ONE, Felt::from(100u32), Felt::ZERO],
        }
    }

    fn built(fee_call: Call, quoted: u128) -> BuiltInvoke {
        let execution = OutsideExecution {
            caller: ANY_CALLER,
            nonce: Felt::from(7u32),
            execute_after: NOW - 60,
            execute_before: NOW + 600,
            calls: vec![user_call(), fee_call],
        };
        BuiltInvoke {
            typed_data: execution.to_typed_data(chain_id::SEPOLIA),
            fee: FeeEstimate {
                gas_token_price_in_strk: 1,
                estimated_fee_in_strk: quoted,
                estimated_fee_in_gas_token: quoted,
                suggested_max_fee_in_strk: quoted,
                suggested_max_fee_in_gas_token: quoted,
            },
        }
    }

    fn fee_transfer(token: Felt, amount: u128) -> Call {
        Call {
            to: token,
            selector: selectors::TRANSFER,
            calldata: vec![Felt::from(0xfeeu32), Felt::from(amount), Felt::ZERO],
        }
    }

    fn check(built: &BuiltInvoke, max_amount: u128) -> Result<OutsideExecution, SessionError> {
        let fee = Snip29Fee::PayIn {
            gas_token: TOKEN,
            max_amount,
        };
        verify_build(built, &[user_call()], fee, chain_id::SEPOLIA, NOW, 3600)
    }

    #[test]
    fn a_fee_transfer_as_quoted_within_the_maximum_is_accepted() {
        let execution = check(&built(fee_transfer(TOKEN, 500), 500), 500).unwrap();
        assert_eq!(execution.calls.len(), 2);
    }

    #[test]
    fn fee_transfers_that_differ_are_refused() {
        let refused = [
            ("above the maximum", built(fee_transfer(TOKEN, 501), 501)),
            ("not the quote", built(fee_transfer(TOKEN, 400), 300)),
            (
                "another token",
                built(fee_transfer(Felt::from(9u32), 500), 500),
            ),
            ("a high word", {
                let mut call = fee_transfer(TOKEN, 500);
                call.calldata[2] = Felt::ONE;
                built(call, 500)
            }),
            ("approve", {
                let mut call = fee_transfer(TOKEN, 500);
                call.selector = selectors::APPROVE;
                built(call, 500)
            }),
            ("no fee transfer", {
                let mut b = built(fee_transfer(TOKEN, 500), 500);
                let mut execution = OutsideExecution::from_typed_data(&b.typed_data).unwrap().0;
                execution.calls.pop();
                b.typed_data = execution.to_typed_data(chain_id::SEPOLIA);
                b
            }),
        ];
        for (name, built) in refused {
            let error = check(&built, 500).unwrap_err();
            assert_eq!(
                error.code(),
                ErrorCode::TypedDataMismatch,
                "{name}: {error}"
            );
        }
        // A changed user call is caught under the fee transfer too.
        let mut b = built(fee_transfer(TOKEN, 500), 500);
        b.typed_data["message"]["Calls"][0]["Calldata"][1] = json!("0xf4240");
        assert_eq!(
            check(&b, 500).unwrap_err().code(),
            ErrorCode::TypedDataMismatch
        );
        // And so is another chain.
        let mut b = built(fee_transfer(TOKEN, 500), 500);
        b.typed_data["domain"]["chainId"] = json!("SN_MAIN");
        assert_eq!(
            check(&b, 500).unwrap_err().code(),
            ErrorCode::TypedDataMismatch
        );
    }

    #[test]
    fn rpc_errors_carry_the_chipi_code_and_no_credential() {
        let error = RpcError::new(
            snip29::RpcCode::UnknownError,
            Some(json!({"code": "AUTHENTICATION_FAILED", "message": "bad key pk_dev_secret"})),
        );
        let failure = rpc_failure("m", &error, Felt::ONE, &["pk_dev_secret"]);
        assert_eq!(failure.code(), ErrorCode::AuthenticationFailed);
        assert!(!failure.message().contains("pk_dev_secret"));

        let error = RpcError::new(snip29::RpcCode::InvalidSignature, None);
        assert_eq!(
            rpc_failure("m", &error, Felt::ONE, &[]).code(),
            ErrorCode::InvalidSignature
        );
        // A refusal code that is not one of the SDK's stays in the message.
        let error = RpcError::new(
            snip29::RpcCode::UnknownError,
            Some(json!({"code": "USER_BUDGET_EXCEEDED", "message": "spent"})),
        );
        let failure = rpc_failure("m", &error, Felt::ONE, &[]);
        assert_eq!(failure.code(), ErrorCode::PaymasterError);
        assert!(failure.message().contains("USER_BUDGET_EXCEEDED"));
    }
}
