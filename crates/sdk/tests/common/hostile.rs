//! A hostile front for the real paymaster service: it forwards every request to the
#![allow(dead_code)]
//! service and can tamper with the typed data handed out, lie about what it sent, or
//! echo credentials in its refusals. The SDK must catch each.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chipi_core::{selectors, Call, Felt};
use chipi_devnet::DevnetAccount;
use serde_json::{json, Value};
use starknet_rust_accounts::Account;

pub type Tamper = Box<dyn Fn(&mut Value) + Send + Sync>;

/// What a lying front answers to an execute request instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// A transaction hash that does not exist.
    InventedHash,
    /// The hash of a real transaction of another account's that does something else.
    OtherTransaction,
    /// An answer far larger than any real one.
    HugeAnswer,
}

struct Front {
    upstream: String,
    http: reqwest::Client,
    other: DevnetAccount,
    tamper: Mutex<Option<Tamper>>,
    lie: Mutex<Option<Lie>>,
    executes: AtomicUsize,
}

/// A running front; dropped with the test's runtime.
#[derive(Clone)]
pub struct Hostile {
    pub url: String,
    front: Arc<Front>,
}

impl Hostile {
    /// Serves on a free port in front of `upstream`; `other` sends the
    /// [`Lie::OtherTransaction`] transfers.
    pub async fn start(upstream: &str, other: DevnetAccount) -> Self {
        let front = Arc::new(Front {
            upstream: upstream.to_string(),
            http: reqwest::Client::new(),
            other,
            tamper: Mutex::new(None),
            lie: Mutex::new(None),
            executes: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(forward).with_state(front.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{address}"),
            front,
        }
    }

    /// From now on, typed data (of transactions and wallet creations) is altered by
    /// `tamper` before it is handed out.
    pub fn tamper(&self, tamper: impl Fn(&mut Value) + Send + Sync + 'static) {
        *self.front.tamper.lock().unwrap() = Some(Box::new(tamper));
    }

    /// From now on, execute requests get `lie` instead of being forwarded.
    pub fn lie(&self, lie: Lie) {
        *self.front.lie.lock().unwrap() = Some(lie);
    }

    /// Honest again.
    pub fn honest(&self) {
        *self.front.tamper.lock().unwrap() = None;
        *self.front.lie.lock().unwrap() = None;
    }

    /// How many execute requests arrived.
    pub fn executes(&self) -> usize {
        self.front.executes.load(Ordering::SeqCst)
    }
}

async fn forward(State(front): State<Arc<Front>>, request: Request) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = request.method().clone();
    let headers = request.headers().clone();
    let body: Bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    // Chipi's API by path; SNIP-29's JSON-RPC at `/` by method.
    let rpc: Option<Value> = (path.split('?').next() == Some("/"))
        .then(|| serde_json::from_slice(&body).unwrap_or(Value::Null));
    let rpc_method = rpc.as_ref().and_then(|r| r["method"].as_str());
    let execute = path.starts_with("/v1/transactions/execute-sponsored-transaction")
        || rpc_method == Some("paymaster_executeTransaction");
    if execute {
        front.executes.fetch_add(1, Ordering::SeqCst);
        let lie = *front.lie.lock().unwrap();
        if let Some(lie) = lie {
            let answer = lie_answer(&front, lie).await;
            return match &rpc {
                // The same lie in a JSON-RPC result.
                Some(request) => Json(json!({
                    "jsonrpc": "2.0",
                    "id": request["id"],
                    "result": {"tracking_id": "0x1", "transaction_hash": answer["transactionHash"]},
                    "padding": answer.get("padding"),
                }))
                .into_response(),
                None => Json(answer).into_response(),
            };
        }
    }
    let mut upstream = front
        .http
        .request(method, format!("{}{path}", front.upstream))
        .body(body);
    for name in [
        "x-api-key",
        "x-paymaster-api-key",
        "authorization",
        "content-type",
    ] {
        if let Some(value) = headers.get(name) {
            upstream = upstream.header(name, value.as_bytes());
        }
    }
    let response = upstream.send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let mut answer: Value = response.json().await.unwrap_or(Value::Null);
    if status == StatusCode::UNAUTHORIZED {
        // Careless on purpose: echoes what it got, which the SDK must not repeat.
        let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        let token = headers.get("authorization").and_then(|v| v.to_str().ok());
        answer["message"] = json!(format!("bad API key {key:?} or token {token:?}"));
    }
    let prepare = path.starts_with("/v1/transactions/prepare-typed-data")
        || path.starts_with("/v1/chipi-wallets/prepare-creation");
    if status.is_success() && prepare {
        if let Some(tamper) = front.tamper.lock().unwrap().as_ref() {
            tamper(&mut answer["typedData"]);
        }
    }
    if rpc_method == Some("paymaster_buildTransaction") && answer["result"].is_object() {
        if let Some(tamper) = front.tamper.lock().unwrap().as_ref() {
            tamper(&mut answer["result"]["typed_data"]);
        }
    }
    (status, Json(answer)).into_response()
}

/// The body of a lying answer to Chipi's execute (`{transactionHash}`).
async fn lie_answer(front: &Front, lie: Lie) -> Value {
    match lie {
        Lie::InventedHash => {
            json!({"transactionHash": format!("{:#x}", Felt::from(rand::random::<u64>()))})
        }
        Lie::OtherTransaction => {
            let transfer = Call {
                to: chipi_devnet::STRK_ADDRESS,
                selector: selectors::TRANSFER,
                calldata: vec![Felt::from(0x1234u32), Felt::ONE, Felt::ZERO],
            };
            let sent = front.other.execute_v3(vec![transfer]).send().await.unwrap();
            json!({"transactionHash": format!("{:#x}", sent.transaction_hash)})
        }
        Lie::HugeAnswer => {
            let padding = "0".repeat(2 * 1024 * 1024);
            json!({"transactionHash": "0x1", "padding": padding})
        }
    }
}

pub fn set_last_calldata(typed_data: &mut Value, value: Value) {
    let calldata = typed_data["message"]["Calls"][0]["Calldata"]
        .as_array_mut()
        .unwrap();
    *calldata.last_mut().unwrap() = value;
}

/// Ways a hostile paymaster could try to get a signature over something else.
pub fn tampers() -> Vec<(&'static str, Tamper)> {
    vec![
        (
            "amount",
            Box::new(|td: &mut Value| set_last_calldata(td, json!("0xf4240"))),
        ),
        (
            "recipient",
            Box::new(|td: &mut Value| td["message"]["Calls"][0]["Calldata"][0] = json!("0x666")),
        ),
        (
            "token",
            Box::new(|td: &mut Value| td["message"]["Calls"][0]["To"] = json!("0x999")),
        ),
        (
            "selector",
            Box::new(|td: &mut Value| {
                td["message"]["Calls"][0]["Selector"] = json!(format!("{:#x}", selectors::APPROVE))
            }),
        ),
        (
            "extra call",
            Box::new(|td: &mut Value| {
                let call = td["message"]["Calls"][0].clone();
                td["message"]["Calls"].as_array_mut().unwrap().push(call);
            }),
        ),
        (
            "chain",
            Box::new(|td: &mut Value| td["domain"]["chainId"] = json!("SN_MAIN")),
        ),
        (
            "window far ahead",
            Box::new(|td: &mut Value| td["message"]["Execute Before"] = json!("0xffffffffff")),
        ),
        (
            "window closed",
            Box::new(|td: &mut Value| td["message"]["Execute Before"] = json!("0x1")),
        ),
        (
            "zero caller",
            Box::new(|td: &mut Value| td["message"]["Caller"] = json!("0x0")),
        ),
        (
            "felt above the prime",
            Box::new(|td: &mut Value| {
                set_last_calldata(
                    td,
                    json!("0x800000000000011000000000000000000000000000000000000000000000065"),
                )
            }),
        ),
        (
            "timestamps typed as felt",
            Box::new(|td: &mut Value| td["types"]["OutsideExecution"][2]["type"] = json!("felt")),
        ),
    ]
}
