//! A proxy in front of the node that traps one JSON-RPC method: holds it, forwards it
//! and never answers, loses its answer, or never forwards it. The crash and shutdown tests use it to put the
//! service exactly where they want it, with no sleeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::response::IntoResponse;
use serde_json::Value;
use tokio::sync::{watch, Notify};

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
    /// Answers 502 with no body without forwarding it (the call never reaches the node).
    Swallow,
}

/// A proxy in front of the node that traps one method.
pub struct Proxy {
    pub url: String,
    trap: Arc<Mutex<Option<(&'static str, Trap)>>>,
    /// How many calls were caught so far, and the count when the trap was last armed:
    /// `reached` waits for a call caught by the trap now armed, never an earlier one.
    caught: watch::Receiver<u64>,
    armed_at: Mutex<u64>,
    release: Arc<Notify>,
}

impl Proxy {
    /// Traps `method` from now on (replacing any trap before).
    pub fn arm(&self, method: &'static str, how: Trap) {
        let mut trap = self.trap.lock().unwrap();
        *self.armed_at.lock().unwrap() = *self.caught.borrow();
        *trap = Some((method, how));
    }

    /// Lets every call through from now on.
    pub fn disarm(&self) {
        *self.trap.lock().unwrap() = None;
    }

    /// Waits until the service has made the call trapped by the latest `arm`.
    pub async fn reached(&self) {
        let since = *self.armed_at.lock().unwrap();
        let mut caught = self.caught.clone();
        tokio::time::timeout(Duration::from_secs(60), caught.wait_for(|n| *n > since))
            .await
            .expect("the service reached the trapped call")
            .expect("the proxy runs");
    }

    /// Lets a call held by `Trap::HoldBefore` go on to the node.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

pub async fn proxy(node: &url::Url) -> Proxy {
    let trap: Arc<Mutex<Option<(&'static str, Trap)>>> = Arc::new(Mutex::new(None));
    let (counter, caught) = watch::channel(0u64);
    let reached = Arc::new(counter);
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
                reached.send_modify(|n| *n += 1);
                go.notified().await;
            }
            if caught.is_some_and(|(_, how)| how == Trap::Swallow) {
                reached.send_modify(|n| *n += 1);
                return axum::http::StatusCode::BAD_GATEWAY.into_response();
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
                    reached.send_modify(|n| *n += 1);
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                Some(Trap::LoseAnswer) => {
                    reached.send_modify(|n| *n += 1);
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
        caught,
        armed_at: Mutex::new(0),
        release,
    }
}
