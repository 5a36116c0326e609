//! A proxy in front of the node that traps one JSON-RPC method: holds it, forwards it
//! and never answers, or loses its answer. The crash and shutdown tests use it to put the
//! service exactly where they want it, with no sleeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::response::IntoResponse;
use serde_json::Value;
use tokio::sync::Notify;

/// What the proxy does to one JSON-RPC method.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    /// Holds it until `Proxy::release`, then forwards it (the service waits, as on a
    /// slow node; never released, as on a node that hangs).
    HoldBefore,
    /// Forwards it, then never answers.
    HoldAfter,
    /// Forwards it, then answers 502 with no body (the answer is lost).
    LoseAnswer,
}

/// A proxy in front of the node that traps one method.
pub struct Proxy {
    pub url: String,
    pub trap: Arc<Mutex<Option<(&'static str, Trap)>>>,
    reached: Arc<Notify>,
    release: Arc<Notify>,
}

impl Proxy {
    /// Waits until the service has made the trapped call.
    pub async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(60), self.reached.notified())
            .await
            .expect("the service reached the trapped call");
    }

    /// Lets a call held by `Trap::HoldBefore` go on to the node.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

pub async fn proxy(node: &url::Url) -> Proxy {
    let trap: Arc<Mutex<Option<(&'static str, Trap)>>> = Arc::new(Mutex::new(None));
    let reached = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (node, t, r, go) = (node.clone(), trap.clone(), reached.clone(), release.clone());
    let client = reqwest::Client::new();
    let router = axum::Router::new().fallback(move |body: Bytes| {
        let (node, trap, reached, go, client) = (
            node.clone(),
            t.clone(),
            r.clone(),
            go.clone(),
            client.clone(),
        );
        async move {
            let method = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["method"].as_str().map(str::to_string));
            let armed = *trap.lock().unwrap();
            let caught = armed.filter(|(m, _)| method.as_deref() == Some(*m));
            if caught.is_some_and(|(_, how)| how == Trap::HoldBefore) {
                reached.notify_one();
                go.notified().await;
            }
            let answer = client
                .post(node)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            match caught.map(|(_, how)| how) {
                Some(Trap::HoldAfter) => {
                    reached.notify_one();
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                Some(Trap::LoseAnswer) => {
                    reached.notify_one();
                    axum::http::StatusCode::BAD_GATEWAY.into_response()
                }
                _ => (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    answer,
                )
                    .into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rpc", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Proxy {
        url,
        trap,
        reached,
        release,
    }
}
