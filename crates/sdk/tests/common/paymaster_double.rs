//! A paymaster test double: the two transaction endpoints of `docs/API.md` over
//! real HTTP on 127.0.0.1, relaying to the embedded devnet from a predeployed account.
//! It stands in for the real service until the paymaster issue lands, and it can be
//! made hostile (tampering with the typed data it hands out, lying about what it sent).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chipi_core::{
    parse_calls, selectors, wallet_revert, wallet_revert_in_text, Call, ExecuteSponsoredRequest,
    Felt, OutsideExecution, PrepareTypedDataRequest, ANY_CALLER,
};
use chipi_devnet::DevnetAccount;
use serde_json::{json, Value};
use starknet_rust_accounts::{Account, AccountError, ConnectedAccount};
use starknet_rust_core::types::{
    BlockId, BlockTag, MaybePreConfirmedBlockWithTxHashes, StarknetError,
};
use starknet_rust_providers::Provider;
use starknet_rust_providers::ProviderError;

pub const API_KEY: &str = "pk_dev_0123456789abcdef0123456789abcdef";
pub const BEARER: &str = "user-jwt-for-tests";

pub type Tamper = Box<dyn Fn(&mut Value) + Send + Sync>;

/// What a lying double answers to an execute request instead of relaying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// A transaction hash that does not exist.
    InventedHash,
    /// The hash of a real transaction of the relayer's that does something else.
    OtherTransaction,
    /// An answer far larger than any real one.
    HugeAnswer,
}

struct DoubleState {
    relayer: DevnetAccount,
    chain_id: Felt,
    issued: Mutex<HashSet<Felt>>,
    tamper: Mutex<Option<Tamper>>,
    lie: Mutex<Option<Lie>>,
    executes: AtomicUsize,
}

/// A running double; dropped with the test's runtime.
#[derive(Clone)]
pub struct PaymasterDouble {
    pub url: String,
    state: Arc<DoubleState>,
}

impl PaymasterDouble {
    /// Serves on a free port, relaying from `relayer`.
    pub async fn start(relayer: DevnetAccount) -> Self {
        let chain_id = relayer.chain_id();
        let state = Arc::new(DoubleState {
            relayer,
            chain_id,
            issued: Mutex::new(HashSet::new()),
            tamper: Mutex::new(None),
            lie: Mutex::new(None),
            executes: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/transactions/prepare-typed-data", post(prepare))
            .route(
                "/v1/transactions/execute-sponsored-transaction",
                post(execute),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{address}"),
            state,
        }
    }

    /// From now on, typed data is altered by `tamper` before it is handed out.
    pub fn tamper(&self, tamper: impl Fn(&mut Value) + Send + Sync + 'static) {
        *self.state.tamper.lock().unwrap() = Some(Box::new(tamper));
    }

    /// From now on, execute requests get `lie` instead of being relayed.
    pub fn lie(&self, lie: Lie) {
        *self.state.lie.lock().unwrap() = Some(lie);
    }

    /// Honest again.
    pub fn honest(&self) {
        *self.state.tamper.lock().unwrap() = None;
        *self.state.lie.lock().unwrap() = None;
    }

    /// How many execute requests arrived.
    pub fn executes(&self) -> usize {
        self.state.executes.load(Ordering::SeqCst)
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"statusCode": status.as_u16(), "code": code, "message": message.into()});
    (status, Json(body)).into_response()
}

fn authorized(headers: &HeaderMap) -> Option<Response> {
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if api_key != Some(API_KEY) || bearer != Some(BEARER) {
        // Careless on purpose: echoes what it got, which the SDK must not repeat.
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            format!("bad API key {api_key:?} or token {bearer:?}"),
        ));
    }
    None
}

async fn chain_time(state: &DoubleState) -> u64 {
    match state
        .relayer
        .provider()
        .get_block_with_tx_hashes(BlockId::Tag(BlockTag::Latest))
        .await
        .unwrap()
    {
        MaybePreConfirmedBlockWithTxHashes::Block(b) => b.timestamp,
        MaybePreConfirmedBlockWithTxHashes::PreConfirmedBlock(b) => b.timestamp,
    }
}

async fn prepare(
    State(state): State<Arc<DoubleState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = authorized(&headers) {
        return response;
    }
    let calls = serde_json::from_value::<PrepareTypedDataRequest>(body)
        .ok()
        .and_then(|request| parse_calls(&request.calls).ok());
    let Some(calls) = calls else {
        return error(StatusCode::BAD_REQUEST, "INVALID_INPUT", "bad calls");
    };
    let nonce = Felt::from(rand::random::<u64>());
    state.issued.lock().unwrap().insert(nonce);
    let now = chain_time(&state).await;
    let execution = OutsideExecution {
        caller: ANY_CALLER,
        nonce,
        execute_after: now - 60,
        execute_before: now + 600,
        calls,
    };
    let mut typed_data = execution.to_typed_data(state.chain_id);
    if let Some(tamper) = state.tamper.lock().unwrap().as_ref() {
        tamper(&mut typed_data);
    }
    Json(json!({"typedData": typed_data, "walletType": "CHIPI"})).into_response()
}

async fn execute(
    State(state): State<Arc<DoubleState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.executes.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = authorized(&headers) {
        return response;
    }
    let Ok(request) = serde_json::from_value::<ExecuteSponsoredRequest>(body) else {
        return error(StatusCode::BAD_REQUEST, "INVALID_INPUT", "bad request");
    };
    let Some(wallet) = chipi_core::parse_felt_strict(&request.public_key) else {
        return error(StatusCode::BAD_REQUEST, "INVALID_INPUT", "bad publicKey");
    };
    let Ok((execution, chain)) = OutsideExecution::from_typed_data(&request.typed_data) else {
        return error(StatusCode::BAD_REQUEST, "INVALID_INPUT", "bad typedData");
    };
    if chain != state.chain_id || !state.issued.lock().unwrap().remove(&execution.nonce) {
        return error(
            StatusCode::BAD_REQUEST,
            "OUTSIDE_EXECUTION_REJECTED",
            "nonce not issued here",
        );
    }
    let signature = request.user_signature.to_felts();
    let call = Call {
        to: wallet,
        selector: selectors::EXECUTE_FROM_OUTSIDE_V2,
        calldata: execution.calldata(&signature),
    };
    let lie = *state.lie.lock().unwrap();
    match lie {
        None => {}
        Some(Lie::InventedHash) => {
            return Json(
                json!({"transactionHash": format!("{:#x}", Felt::from(rand::random::<u64>()))}),
            )
            .into_response();
        }
        Some(Lie::OtherTransaction) => {
            let transfer = Call {
                to: chipi_devnet::STRK_ADDRESS,
                selector: selectors::TRANSFER,
                calldata: vec![Felt::from(0x1234u32), Felt::ONE, Felt::ZERO],
            };
            let sent = state
                .relayer
                .execute_v3(vec![transfer])
                .send()
                .await
                .unwrap();
            return Json(json!({"transactionHash": format!("{:#x}", sent.transaction_hash)}))
                .into_response();
        }
        Some(Lie::HugeAnswer) => {
            let padding = "0".repeat(2 * 1024 * 1024);
            return Json(json!({"transactionHash": "0x1", "padding": padding})).into_response();
        }
    }
    // `send` estimates the fee first: a reverting execution is refused, never submitted.
    match state.relayer.execute_v3(vec![call]).send().await {
        Ok(sent) => Json(json!({"transactionHash": format!("{:#x}", sent.transaction_hash)}))
            .into_response(),
        Err(e) => {
            // Only the wallet's own revert maps to a session code.
            let own = match &e {
                AccountError::Provider(ProviderError::StarknetError(
                    StarknetError::TransactionExecutionError(data),
                )) => wallet_revert(&data.execution_error, wallet),
                AccountError::Provider(ProviderError::StarknetError(
                    StarknetError::ValidationFailure(text),
                )) => wallet_revert_in_text(text, wallet),
                _ => None,
            };
            match own {
                Some((message, code)) => error(StatusCode::BAD_REQUEST, code.as_str(), message),
                None => error(
                    StatusCode::BAD_GATEWAY,
                    "PAYMASTER_ERROR",
                    "simulation failed",
                ),
            }
        }
    }
}
