//! SNIP-29 at `POST /` (API.md section 7): JSON-RPC 2.0 with named params, batches and
//! notifications, over the same engine as the Chipi API. Every answer is HTTP 200 with a
//! JSON-RPC body (a batch of notifications only: 204), errors with JSON-RPC's own codes
//! for malformed requests and SNIP-29's for the rest; a sponsorship refusal or an
//! authentication failure is 163 with the Chipi code in `data`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chipi_core::snip29::{
    methods, BuildParams, Built, Executable, ExecuteParams, Executed, FeeEstimate, FeeMode,
    Parameters, RpcCode, RpcError, RpcRequest, RpcResponse, TokenData, Tracked, TrackingParams,
    TrackingStatus, Transaction, EXECUTION_VERSION,
};
use chipi_core::{ErrorCode, Felt, OutsideExecution};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::auth::{AuthError, Caller};
use crate::engine::{BuildInvoke, EngineError, Payment, Quote, Signed, Tracking};
use crate::policy::RefusalKind;
use crate::state::AppState;

/// The most requests in one batch.
pub const MAX_BATCH: usize = 20;

/// One whole fee token in fri: STRK is priced 1:1.
const ONE_STRK: u128 = crate::policy::ONE_STRK;

/// `POST /`.
pub(super) async fn rpc(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let data = json!({ "message": rejection.body_text() });
            return reply(RpcResponse::error(
                Value::Null,
                RpcError::new(RpcCode::InvalidRequest, Some(data)),
            ));
        }
    };
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return reply(RpcResponse::error(
            Value::Null,
            RpcError::new(RpcCode::ParseError, None),
        ));
    };
    let mut session = Session {
        state: &state,
        headers: &headers,
        caller: None,
    };
    match value {
        Value::Array(items) if items.is_empty() || items.len() > MAX_BATCH => {
            let data = json!({ "message": format!("a batch holds 1 to {MAX_BATCH} requests") });
            reply(RpcResponse::error(
                Value::Null,
                RpcError::new(RpcCode::InvalidRequest, Some(data)),
            ))
        }
        Value::Array(items) => {
            let mut answers = Vec::with_capacity(items.len());
            for item in items {
                answers.extend(session.answer(item).await);
            }
            if answers.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                Json(answers).into_response()
            }
        }
        single => match session.answer(single).await {
            Some(answer) => reply(answer),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    }
}

fn reply(response: RpcResponse) -> Response {
    Json(response).into_response()
}

/// One HTTP request's JSON-RPC requests: they share its headers, so it authenticates once.
struct Session<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    caller: Option<Result<Caller, AuthError>>,
}

impl Session<'_> {
    /// The answer to one request, `None` for a notification.
    async fn answer(&mut self, item: Value) -> Option<RpcResponse> {
        let id = item.get("id").cloned();
        let request = match serde_json::from_value::<RpcRequest>(item) {
            Ok(request) if request.jsonrpc == "2.0" => request,
            _ => {
                return Some(RpcResponse::error(
                    id.unwrap_or(Value::Null),
                    RpcError::new(RpcCode::InvalidRequest, None),
                ))
            }
        };
        let outcome = self.call(&request.method, request.params).await;
        // Only the methods this API has are labels: a client cannot grow the series.
        let method = [
            methods::IS_AVAILABLE,
            methods::GET_SUPPORTED_TOKENS,
            methods::BUILD_TRANSACTION,
            methods::EXECUTE_TRANSACTION,
            methods::TRACKING_ID_TO_LATEST_HASH,
        ]
        .into_iter()
        .find(|m| *m == request.method)
        .unwrap_or("other");
        let code = match &outcome {
            Ok(_) => "ok".to_string(),
            Err(error) => error.code.to_string(),
        };
        self.state
            .0
            .metrics
            .rpc_calls
            .with_label_values(&[method, code.as_str()])
            .inc();
        let id = request.id?;
        Some(match outcome {
            Ok(result) => RpcResponse::result(id, result),
            Err(error) => RpcResponse::error(id, error),
        })
    }

    async fn caller(&mut self) -> Result<Caller, RpcError> {
        if self.caller.is_none() {
            let caller = self.state.0.apps.authenticate_rpc(self.headers).await;
            self.caller = Some(caller);
        }
        match self.caller.as_ref() {
            Some(Ok(caller)) => Ok(caller.clone()),
            Some(Err(error)) => Err(auth_error(error)),
            None => Err(RpcError::new(RpcCode::InternalError, None)),
        }
    }

    async fn call(&mut self, method: &str, params: Option<Value>) -> Result<Value, RpcError> {
        let engine = &self.state.0;
        match method {
            methods::IS_AVAILABLE => Ok(Value::Bool(true)),
            methods::GET_SUPPORTED_TOKENS => to_value(
                engine
                    .prices()
                    .tokens()
                    .into_iter()
                    .map(|price| TokenData {
                        token_address: price.token,
                        decimals: price.decimals,
                        price_in_strk: price.fri_per_token,
                    })
                    .collect::<Vec<_>>(),
            ),
            methods::BUILD_TRANSACTION => {
                let params: BuildParams = parse(params)?;
                let caller = self.caller().await?;
                to_value(build(self.state, &caller, params).await?)
            }
            methods::EXECUTE_TRANSACTION => {
                let params: ExecuteParams = parse(params)?;
                let caller = self.caller().await?;
                to_value(execute(self.state, &caller, params).await?)
            }
            methods::TRACKING_ID_TO_LATEST_HASH => {
                let params: TrackingParams = parse(params)?;
                let caller = self.caller().await?;
                let (transaction_hash, state) = engine
                    .tracked(&caller, params.tracking_id)
                    .await
                    .map_err(|error| match error {
                    EngineError::NotFound(message) => {
                        RpcError::new(RpcCode::InvalidId, Some(json!({ "message": message })))
                    }
                    other => engine_error(other),
                })?;
                let status = match state {
                    Tracking::Active => TrackingStatus::Active,
                    Tracking::Accepted => TrackingStatus::Accepted,
                    Tracking::Dropped => TrackingStatus::Dropped,
                };
                to_value(Tracked {
                    transaction_hash,
                    status,
                })
            }
            _ => Err(RpcError::new(RpcCode::MethodNotFound, None)),
        }
    }
}

/// Named params of type `T`; missing params read as `{}`.
fn parse<T: DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    let params = match params {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(object)) => Value::Object(object),
        Some(_) => {
            let data = json!({ "message": "params are named (an object)" });
            return Err(RpcError::new(RpcCode::InvalidParams, Some(data)));
        }
    };
    serde_json::from_value(params).map_err(|error| {
        // serde's message names the field and the expected shape; values are not echoed
        // beyond the few characters the wire types quote.
        let data = json!({ "message": error.to_string() });
        RpcError::new(RpcCode::InvalidParams, Some(data))
    })
}

fn to_value<T: serde::Serialize>(value: T) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|_| RpcError::new(RpcCode::InternalError, None))
}

fn check_version(parameters: &Parameters) -> Result<(), RpcError> {
    if parameters.version != EXECUTION_VERSION {
        let data = json!({ "message": format!("parameters.version: only {EXECUTION_VERSION}") });
        return Err(RpcError::new(RpcCode::InvalidParams, Some(data)));
    }
    Ok(())
}

/// The relayer's tip for what the client asked (`-32602` above `snip29.max_tip`).
fn tip(state: &AppState, parameters: &Parameters) -> Result<u64, RpcError> {
    state
        .0
        .config
        .snip29
        .tip(parameters.fee_mode.tip())
        .map_err(|error| {
            let data = json!({ "message": error.to_string() });
            RpcError::new(RpcCode::InvalidParams, Some(data))
        })
}

/// The gas token the user pays in (`default` mode), or `None` when sponsored.
fn payer(parameters: &Parameters) -> Option<Felt> {
    match &parameters.fee_mode {
        FeeMode::Sponsored { .. } => None,
        FeeMode::Default { gas_token, .. } => Some(*gas_token),
    }
}

/// A deployment alone has nothing to sign, so nothing can carry a fee payment.
fn sponsored_only(parameters: &Parameters) -> Result<(), RpcError> {
    if payer(parameters).is_some() {
        let data = json!({
            "message": "a deployment alone is sponsored only: in default mode send it as deploy_and_invoke, whose calls end with the fee transfer",
        });
        return Err(RpcError::new(RpcCode::InvalidParams, Some(data)));
    }
    Ok(())
}

/// The fee on the wire: in the gas token when the user pays, in STRK (1:1) otherwise.
fn fee(quote: Quote, payment: Option<Payment>) -> FeeEstimate {
    let (price, estimated, suggested) = match payment {
        Some(payment) => (
            payment.price.fri_per_token,
            payment
                .price
                .to_token(quote.estimated_fri)
                .unwrap_or(payment.amount),
            payment.amount,
        ),
        None => (ONE_STRK, quote.estimated_fri, quote.suggested_fri),
    };
    FeeEstimate {
        gas_token_price_in_strk: price,
        estimated_fee_in_strk: quote.estimated_fri,
        estimated_fee_in_gas_token: estimated,
        suggested_max_fee_in_strk: quote.suggested_fri,
        suggested_max_fee_in_gas_token: suggested,
    }
}

async fn build(state: &AppState, caller: &Caller, params: BuildParams) -> Result<Built, RpcError> {
    check_version(&params.parameters)?;
    let tip = tip(state, &params.parameters)?;
    let engine = &state.0;
    let parameters = params.parameters;
    let (invoke, deployment) = match params.transaction {
        Transaction::Invoke { invoke } => (invoke, None),
        Transaction::DeployAndInvoke { deployment, invoke } => (invoke, Some(deployment)),
        Transaction::Deploy { deployment } => {
            sponsored_only(&parameters)?;
            let checked = engine.check_deployment(&deployment).map_err(engine_error)?;
            let quote = engine
                .build_deploy(caller, &checked, tip)
                .await
                .map_err(engine_error)?;
            return Ok(Built::Deploy {
                deployment,
                parameters,
                fee: fee(quote, None),
            });
        }
    };
    let checked = deployment
        .as_ref()
        .map(|d| engine.check_deployment(d))
        .transpose()
        .map_err(engine_error)?;
    let request = BuildInvoke {
        wallet: invoke.user_address,
        calls: invoke.calls.into_iter().map(Into::into).collect(),
        bounds: parameters
            .time_bounds
            .map(|b| (b.execute_after, b.execute_before)),
        payment: payer(&parameters),
        tip,
        deployment: checked,
    };
    let built = engine
        .build_invoke(caller, request)
        .await
        .map_err(engine_error)?;
    let typed_data = built.execution.to_typed_data(engine.chain_id());
    let fee = fee(built.quote, built.payment);
    // An account deployed already: its calls are an invoke, which starknet.js then signs
    // and executes as such.
    Ok(match deployment.filter(|_| built.deploys) {
        Some(deployment) => Built::DeployAndInvoke {
            deployment,
            typed_data,
            parameters,
            fee,
        },
        None => Built::Invoke {
            typed_data,
            parameters,
            fee,
        },
    })
}

async fn execute(
    state: &AppState,
    caller: &Caller,
    params: ExecuteParams,
) -> Result<Executed, RpcError> {
    check_version(&params.parameters)?;
    let tip = tip(state, &params.parameters)?;
    let engine = &state.0;
    let (invoke, deployment) = match params.transaction {
        Executable::Invoke { invoke } => (invoke, None),
        Executable::DeployAndInvoke { deployment, invoke } => (invoke, Some(deployment)),
        Executable::Deploy { deployment } => {
            sponsored_only(&params.parameters)?;
            let checked = engine.check_deployment(&deployment).map_err(engine_error)?;
            let address = checked.address;
            let transaction_hash = engine
                .deploy(caller, checked, tip)
                .await
                .map_err(engine_error)?;
            return Ok(Executed {
                tracking_id: crate::store::tracking_id(address, None),
                transaction_hash,
            });
        }
    };
    let deployment = deployment
        .map(|d| engine.check_deployment(&d))
        .transpose()
        .map_err(engine_error)?;
    let (execution, chain) =
        OutsideExecution::from_typed_data(&invoke.typed_data).map_err(|error| {
            let data = json!({ "message": format!("typed_data: {error}") });
            RpcError::new(RpcCode::InvalidParams, Some(data))
        })?;
    let wallet = invoke.user_address;
    let nonce = execution.nonce;
    // The tip is the one the build quoted, kept with the issued nonce.
    let signed = Signed {
        wallet,
        execution,
        chain,
        signature: invoke.signature,
        payment: payer(&params.parameters),
        deployment,
    };
    let transaction_hash = engine
        .execute_signed(caller, signed)
        .await
        .map_err(engine_error)?;
    Ok(Executed {
        tracking_id: crate::store::tracking_id(wallet, Some(nonce)),
        transaction_hash,
    })
}

/// `data` of a 163: the Chipi code and message, and a refusal's `limit` and `retryAfter`.
fn unknown(code: &str, message: String) -> RpcError {
    RpcError::new(
        RpcCode::UnknownError,
        Some(json!({ "code": code, "message": message })),
    )
}

fn auth_error(error: &AuthError) -> RpcError {
    match error {
        AuthError::Refused(why) => unknown("AUTHENTICATION_FAILED", (*why).to_string()),
        AuthError::KeysUnavailable => unknown("AUTHENTICATION_UNAVAILABLE", error.to_string()),
    }
}

/// The engine's refusals and failures on the SNIP-29 wire.
fn engine_error(error: EngineError) -> RpcError {
    let message = error.to_string();
    match error {
        EngineError::Invalid(message) => RpcError::new(
            RpcCode::InvalidParams,
            Some(json!({ "code": ErrorCode::InvalidInput.as_str(), "message": message })),
        ),
        EngineError::ClassNotServed(message) => RpcError::new(
            RpcCode::ClassHashNotSupported,
            Some(json!({ "message": message })),
        ),
        EngineError::Deployment(message) => RpcError::new(
            RpcCode::InvalidDeploymentData,
            Some(json!({ "message": message })),
        ),
        EngineError::TokenNotSupported(_) => RpcError::new(
            RpcCode::TokenNotSupported,
            Some(json!({ "message": message })),
        ),
        EngineError::PaymentTooLow(message) => RpcError::new(
            RpcCode::MaxAmountTooLow,
            Some(json!({ "message": message })),
        ),
        EngineError::TimeBounds(message) => RpcError::new(
            RpcCode::InvalidTimeBounds,
            Some(json!({ "message": message })),
        ),
        EngineError::Rejected { code, message } => match code {
            ErrorCode::InvalidSignature => RpcError::new(
                RpcCode::InvalidSignature,
                Some(json!({ "code": code.as_str(), "message": message })),
            ),
            ErrorCode::OutsideExecutionRejected
            | ErrorCode::InvalidInput
            | ErrorCode::InvalidWalletTypeForSession => unknown(code.as_str(), message),
            // A revert in simulation: the transaction would fail.
            _ => RpcError::new(
                RpcCode::TransactionExecutionError,
                Some(json!({ "execution_error": message, "code": code.as_str() })),
            ),
        },
        EngineError::Refused(refusal) => {
            let rpc_code = if refusal.kind == RefusalKind::WalletNotSponsored
                && refusal.limit == "account_classes"
            {
                RpcCode::ClassHashNotSupported
            } else {
                RpcCode::UnknownError
            };
            let mut data = json!({
                "code": refusal.kind.code(),
                "message": refusal.message,
                "limit": refusal.limit,
            });
            if let Some(after) = refusal.retry_after {
                data["retryAfter"] = after.into();
            }
            RpcError::new(rpc_code, Some(data))
        }
        EngineError::Unauthorized(why) => unknown("UNAUTHORIZED", why.to_string()),
        EngineError::NotFound(why) => unknown("NOT_FOUND", why.to_string()),
        EngineError::WalletExists => unknown("WALLET_ALREADY_EXISTS", message),
        EngineError::NodeUnavailable | EngineError::SubmissionUnknown => {
            unknown(ErrorCode::NetworkError.as_str(), message)
        }
        EngineError::Unavailable(message) => unknown(ErrorCode::PaymasterError.as_str(), message),
        EngineError::Busy => {
            let mut error = unknown(ErrorCode::PaymasterError.as_str(), message);
            if let Some(data) = error.data.as_mut() {
                data["retryAfter"] = 1.into();
            }
            error
        }
        EngineError::RelayerRefused => unknown(ErrorCode::PaymasterError.as_str(), message),
        EngineError::Internal => RpcError::new(RpcCode::UnknownError, None),
    }
}
