//! API.md sections 3-5: prepare an outside execution (issuing its nonce), execute it
//! sponsored (simulated first, sent once), and report a sent transaction's status.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chipi_core::{
    encode_calls, felt_field, parse_calls, selectors, Call, ErrorCode, ExecuteSponsoredRequest,
    Felt, OutsideExecution, PrepareTypedDataRequest, PrepareTypedDataResponse,
    TransactionHashResponse, TransactionStatusResponse, ANY_CALLER,
};
use starknet_rust_accounts::Account;
use starknet_rust_core::types::FeeEstimate;
use starknet_rust_crypto::poseidon_hash_many;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::ApiJson;
use crate::node::{classify, Failure};
use crate::state::{AppState, Inner};
use crate::store::{felt_text, now, Claim, IssuedNonce, TxRecord, TxStatus};

/// The most calls one outside execution may carry.
pub const MAX_CALLS: usize = 64;

/// Poseidon over the encoded calls: what an issued nonce is bound to.
pub fn calls_hash(calls: &[Call]) -> String {
    felt_text(poseidon_hash_many(&encode_calls(calls)))
}

fn rejected(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::OutsideExecutionRejected, message)
}

/// Issues a nonce for `wallet` bound to `calls` and returns the outside execution.
pub(crate) async fn issue(
    state: &Inner,
    caller: &Caller,
    wallet: Felt,
    calls: Vec<Call>,
) -> Result<OutsideExecution, ApiError> {
    let chain_time = state.chain_time().await?;
    let window = &state.config.window;
    let execution = OutsideExecution {
        caller: ANY_CALLER,
        nonce: Felt::from(rand::random::<u128>()),
        execute_after: chain_time.saturating_sub(window.after_slack_seconds),
        execute_before: chain_time + window.validity_seconds,
        calls,
    };
    let wallet_text = felt_text(wallet);
    let created_at = now();
    state
        .store
        .issue(&IssuedNonce {
            user_id: caller.user_or(&wallet_text),
            wallet: wallet_text,
            nonce: felt_text(execution.nonce),
            app: caller.app.public_key.clone(),
            calls_hash: calls_hash(&execution.calls),
            execute_before: execution.execute_before as i64,
            expires_at: created_at + window.validity_seconds as i64,
            created_at,
        })
        .await?;
    Ok(execution)
}

/// `POST /v1/transactions/prepare-typed-data`.
pub(crate) async fn prepare(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PrepareTypedDataRequest>,
) -> Result<Json<PrepareTypedDataResponse>, ApiError> {
    let state = &state.0;
    let wallet = felt_field(&request.public_key, "publicKey")?;
    let calls = parse_calls(&request.calls)?;
    if calls.is_empty() || calls.len() > MAX_CALLS {
        return Err(ApiError::invalid(format!(
            "`calls`: between 1 and {MAX_CALLS} calls"
        )));
    }
    state.check_outside_capable(wallet).await?;
    let execution = issue(state, &caller, wallet, calls).await?;
    tracing::info!(app = %caller.app.name, wallet = %felt_text(wallet), "outside execution prepared");
    Ok(Json(PrepareTypedDataResponse {
        typed_data: execution.to_typed_data(state.chain_id),
        wallet_type: "CHIPI".into(),
    }))
}

/// `POST /v1/transactions/execute-sponsored-transaction`.
pub(crate) async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ExecuteSponsoredRequest>,
) -> Result<Json<TransactionHashResponse>, ApiError> {
    let wallet = felt_field(&request.public_key, "publicKey")?;
    let (execution, chain) = OutsideExecution::from_typed_data(&request.typed_data)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let inner = &state.0;
    if chain != inner.chain_id {
        return Err(rejected("the typed data is for another chain"));
    }
    let wallet_text = felt_text(wallet);
    let nonce_text = felt_text(execution.nonce);
    // Everything below up to the claim reads only this service's database.
    let issued = inner
        .store
        .issued(&wallet_text, &nonce_text)
        .await?
        .filter(|issued| issued.app == caller.app.public_key)
        .ok_or_else(|| rejected("this paymaster did not issue that nonce for this wallet"))?;
    if issued.calls_hash != calls_hash(&execution.calls)
        || issued.execute_before != execution.execute_before as i64
        || execution.caller != ANY_CALLER
    {
        return Err(rejected(
            "the typed data differs from the one this paymaster issued",
        ));
    }
    let timeout = Duration::from_secs(inner.config.http.request_timeout_seconds);
    if let Some(row) = inner.store.transaction(&wallet_text, &nonce_text).await? {
        if !row.status().retryable() {
            // A retry or a concurrent duplicate: the first request's transaction.
            return outcome(inner, row, timeout).await;
        }
    }
    if issued.expires_at < now() {
        return Err(rejected(
            "the typed data expired; prepare the transaction again",
        ));
    }
    let user = caller.user_or(&wallet_text);
    let id = match inner
        .store
        .claim(
            "execute",
            &caller.app.public_key,
            &user,
            &wallet_text,
            &nonce_text,
        )
        .await?
    {
        Claim::Owned(id) => id,
        Claim::Taken(row) => return outcome(inner, *row, timeout).await,
    };
    let call = Call {
        to: wallet,
        selector: selectors::EXECUTE_FROM_OUTSIDE_V2,
        calldata: execution.calldata(&request.user_signature.to_felts()),
    };
    // The send runs to its end even if the client goes away or the request times out:
    // a transaction is never half-recorded.
    let task_state = state.clone();
    let hash = inner
        .tasks
        .spawn(async move { send(&task_state.0, id, wallet, vec![call]).await })
        .await
        .map_err(|_| ApiError::internal())??;
    tracing::info!(
        app = %caller.app.name,
        wallet = %wallet_text,
        transaction = %felt_text(hash),
        "sponsored transaction sent"
    );
    Ok(Json(TransactionHashResponse {
        transaction_hash: felt_text(hash),
    }))
}

/// What a duplicate request answers: the first one's hash, or its refusal.
async fn outcome(
    state: &Inner,
    mut row: TxRecord,
    timeout: Duration,
) -> Result<Json<TransactionHashResponse>, ApiError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match (row.status(), &row.hash) {
            (TxStatus::Refused, _) => {
                let code = row.code.as_deref().unwrap_or("TRANSACTION_REVERTED");
                let code = ErrorCode::ALL
                    .iter()
                    .find(|c| c.as_str() == code)
                    .copied()
                    .unwrap_or(ErrorCode::TransactionReverted);
                return Err(ApiError::bad_request(
                    code,
                    format!(
                        "the transaction would revert: {}",
                        row.reason.as_deref().unwrap_or("")
                    ),
                ));
            }
            (TxStatus::Failed, _) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::PaymasterError.as_str(),
                    format!(
                        "not sent: {}; retry the same request",
                        row.reason.as_deref().unwrap_or("unknown")
                    ),
                ))
            }
            (TxStatus::Claimed, _) | (_, None) => {}
            (_, Some(hash)) => {
                return Ok(Json(TransactionHashResponse {
                    transaction_hash: hash.clone(),
                }))
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::PaymasterError.as_str(),
                "the same transaction is still being sent; retry the same request",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        row = state
            .store
            .transaction(&row.wallet, &row.nonce)
            .await?
            .ok_or_else(ApiError::internal)?;
    }
}

/// Resource bounds: the estimate plus the margin, on amounts and on prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// L1 gas.
    pub l1_gas: u64,
    /// L1 gas price.
    pub l1_gas_price: u128,
    /// L2 gas.
    pub l2_gas: u64,
    /// L2 gas price.
    pub l2_gas_price: u128,
    /// L1 data gas.
    pub l1_data_gas: u64,
    /// L1 data gas price.
    pub l1_data_gas_price: u128,
}

impl Bounds {
    /// `estimate` with `margin_percent` on every amount and price.
    pub fn new(estimate: &FeeEstimate, margin_percent: u32) -> Self {
        let up = |x: u128| x.saturating_mul(100 + margin_percent as u128) / 100;
        let up64 = |x: u64| u64::try_from(up(x as u128)).unwrap_or(u64::MAX);
        Self {
            l1_gas: up64(estimate.l1_gas_consumed),
            l1_gas_price: up(estimate.l1_gas_price),
            l2_gas: up64(estimate.l2_gas_consumed),
            l2_gas_price: up(estimate.l2_gas_price),
            l1_data_gas: up64(estimate.l1_data_gas_consumed),
            l1_data_gas_price: up(estimate.l1_data_gas_price),
        }
    }

    /// The most the transaction can cost.
    pub fn max_fee(&self) -> u128 {
        (self.l1_gas as u128)
            .saturating_mul(self.l1_gas_price)
            .saturating_add((self.l2_gas as u128).saturating_mul(self.l2_gas_price))
            .saturating_add((self.l1_data_gas as u128).saturating_mul(self.l1_data_gas_price))
    }
}

async fn record(state: &Inner, id: i64, status: TxStatus, code: Option<&str>, reason: &str) {
    if let Err(error) = state.store.set_status(id, status, code, Some(reason)).await {
        tracing::error!(%error, id, "cannot record a transaction's status");
    }
}

/// Simulates (the fee estimate runs the exact transaction: same sender, nonce, calldata)
/// and, if it succeeds, sends `calls` from a leased relayer. Row `id` follows every step.
pub(crate) async fn send(
    state: &Inner,
    id: i64,
    wallet: Felt,
    calls: Vec<Call>,
) -> Result<Felt, ApiError> {
    let retries = state.config.relaying.nonce_retries;
    let mut attempt = 0;
    loop {
        let Ok(mut lease) = state.relayers.lease().await else {
            record(state, id, TxStatus::Failed, None, "no relayer available").await;
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::PaymasterError.as_str(),
                "no relayer is available; retry later",
            ));
        };
        let Ok(nonce) = lease.nonce(&state.node).await else {
            record(state, id, TxStatus::Failed, None, "node unreachable").await;
            return Err(ApiError::node_unavailable());
        };
        let account = lease.account();
        let execution = account.execute_v3(calls.clone()).nonce(nonce).tip(0);
        let estimate = match execution.estimate_fee().await {
            Ok(estimate) => estimate,
            Err(error) => match classify(&error, wallet) {
                Failure::StaleNonce if attempt < retries => {
                    attempt += 1;
                    lease.resync();
                    state.metrics.nonce_resyncs.inc();
                    continue;
                }
                Failure::Revert { code, message } => {
                    lease.worked();
                    state
                        .metrics
                        .simulation_refusals
                        .with_label_values(&[code.as_str()])
                        .inc();
                    record(state, id, TxStatus::Refused, Some(code.as_str()), &message).await;
                    return Err(ApiError::bad_request(
                        code,
                        format!("the transaction would revert: {message}"),
                    ));
                }
                Failure::Unreachable => {
                    lease.resync();
                    record(state, id, TxStatus::Failed, None, "node unreachable").await;
                    return Err(ApiError::node_unavailable());
                }
                Failure::Relayer(reason) if attempt < retries => {
                    tracing::warn!(%reason, "relayer failed; trying another");
                    attempt += 1;
                    lease.failed();
                    continue;
                }
                Failure::StaleNonce | Failure::Relayer(_) => {
                    lease.failed();
                    record(state, id, TxStatus::Failed, None, "no relayer could pay").await;
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorCode::PaymasterError.as_str(),
                        "no relayer could send the transaction; retry later",
                    ));
                }
            },
        };
        let bounds = Bounds::new(&estimate, state.config.fee_margin_percent);
        let max_fee = bounds.max_fee();
        if max_fee > state.config.max_fee_fri {
            lease.worked();
            let reason = "the fee is above this paymaster's bound";
            record(
                state,
                id,
                TxStatus::Refused,
                Some("PAYMASTER_ERROR"),
                reason,
            )
            .await;
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::PaymasterError.as_str(),
                reason,
            ));
        }
        let prepared = execution
            .l1_gas(bounds.l1_gas)
            .l1_gas_price(bounds.l1_gas_price)
            .l2_gas(bounds.l2_gas)
            .l2_gas_price(bounds.l2_gas_price)
            .l1_data_gas(bounds.l1_data_gas)
            .l1_data_gas_price(bounds.l1_data_gas_price)
            .prepared()
            .map_err(|_| ApiError::internal())?;
        let hash = prepared.transaction_hash(false);
        // The hash is on record before the transaction leaves: a crash after this point
        // leaves a row the follower resolves, never a payment nobody knows about.
        state
            .store
            .submitting(id, hash, account.address(), nonce, max_fee)
            .await?;
        match prepared.send().await {
            Ok(_) => {
                lease.sent();
                // The relayer is free for the next request while this one is recorded.
                drop(lease);
                state.metrics.transactions_sent.inc();
                record(state, id, TxStatus::Pending, None, "").await;
                return Ok(hash);
            }
            Err(error) => match classify(&error, wallet) {
                Failure::StaleNonce if attempt < retries => {
                    attempt += 1;
                    lease.resync();
                    state.metrics.nonce_resyncs.inc();
                    state.store.unsubmit(id).await?;
                    continue;
                }
                Failure::Unreachable => {
                    // Its fate is unknown: the row keeps the hash and the follower decides.
                    lease.resync();
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorCode::NetworkError.as_str(),
                        "the node did not answer the submission; it may still land: retry the same request to learn its hash",
                    ));
                }
                failure => {
                    lease.failed();
                    let reason = match failure {
                        Failure::Revert { message, .. } => message,
                        Failure::Relayer(reason) => reason,
                        _ => "the relayer's nonce kept changing".into(),
                    };
                    state.store.unsubmit(id).await?;
                    record(state, id, TxStatus::Failed, None, &reason).await;
                    return Err(ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        ErrorCode::PaymasterError.as_str(),
                        "the node refused the relayer's transaction; retry the same request",
                    ));
                }
            },
        }
    }
}

/// `GET /v1/transactions/{hash}/status`.
pub(crate) async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
) -> Result<Json<TransactionStatusResponse>, ApiError> {
    let hash = chipi_core::parse_felt_strict(&hash)
        .ok_or_else(|| ApiError::invalid("the transaction hash is not a felt"))?;
    let row = state
        .0
        .store
        .by_hash(&caller.app.public_key, &felt_text(hash))
        .await?
        .ok_or_else(|| {
            ApiError::not_found("no transaction with this hash was sent for this app")
        })?;
    let status = row.status();
    Ok(Json(TransactionStatusResponse {
        transaction_hash: felt_text(hash),
        status: status.api().into(),
        block_number: row.block_number.map(|b| b as u64),
        revert_reason: match status {
            TxStatus::Reverted | TxStatus::Failed | TxStatus::Refused => row.reason,
            _ => None,
        },
    }))
}
