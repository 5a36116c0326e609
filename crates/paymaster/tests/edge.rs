//! The HTTP edge with no node at all: the router driven with `oneshot`, no socket, no
//! devnet. Framework rejections, authentication, and the policy refusals that need no
//! chain are answered here; what needs the node is a clean 503.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chipi_contract_tests::paymaster::{temp_database, user_token, API_KEY, JWT_SECRET, SECRET_KEY};
use chipi_core::Felt;
use chipi_paymaster::{app, hash_secret, AppState, Config};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn state() -> AppState {
    state_with("http://127.0.0.1:9/rpc", "").await
}

async fn state_with(rpc_url: &str, top: &str) -> AppState {
    let text = format!(
        r#"
        {top}
        rpc_url = "{rpc_url}"
        database_url = "{}"
        account_classes = ["0x1234"]
        [[relayers]]
        address = "0x99"
        private_key = "0x5"
        [[apps]]
        name = "edge"
        public_key = "{API_KEY}"
        secret_key_sha256 = "{}"
        [apps.jwt]
        hs256_secret = "{JWT_SECRET}"
        [apps.sponsorship]
        deny = [{{ contract = "*", selector = "approve" }}]
        "#,
        temp_database().await.unwrap(),
        hash_secret(SECRET_KEY),
    );
    let config = Config::from_toml_str(&text, std::iter::empty::<(String, String)>()).unwrap();
    // SN_SEPOLIA; nothing asks the node for it.
    AppState::from_parts(config, Felt::from_hex_unchecked("0x534e5f5345504f4c4941"))
        .await
        .unwrap()
}

struct Reply {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

async fn send(state: &AppState, request: Request<Body>) -> Reply {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        retry_after,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn post(path: &str, bearer: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header("x-api-key", API_KEY)
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn prepare(call: &str) -> String {
    json!({
        "publicKey": "0x777",
        "calls": [{ "contractAddress": "0x4718", "entrypoint": call, "calldata": ["0x1", "2", "0"] }],
    })
    .to_string()
}

fn assert_body(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body["statusCode"], status, "{}", reply.body);
    assert_eq!(reply.body["code"], code, "{}", reply.body);
    assert!(reply.body["message"].is_string(), "{}", reply.body);
}

#[tokio::test]
async fn framework_rejections_are_the_json_error_body() {
    let state = state().await;
    let token = user_token("alice");
    let reply = send(
        &state,
        Request::get("/nowhere").body(Body::empty()).unwrap(),
    )
    .await;
    assert_body(&reply, 404, "NOT_FOUND");
    let reply = send(
        &state,
        Request::get("/v1/transactions/prepare-typed-data")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_body(&reply, 405, "METHOD_NOT_ALLOWED");
    let mut request = post(
        "/v1/transactions/prepare-typed-data",
        &token,
        prepare("transfer"),
    );
    request.headers_mut().remove("content-type");
    assert_body(&send(&state, request).await, 415, "UNSUPPORTED_MEDIA_TYPE");
    let big = format!("{{\"publicKey\": \"{}\"}}", "1".repeat(70 * 1024));
    let reply = send(
        &state,
        post("/v1/transactions/prepare-typed-data", &token, big),
    )
    .await;
    assert_body(&reply, 413, "PAYLOAD_TOO_LARGE");
    let reply = send(
        &state,
        post("/v1/transactions/prepare-typed-data", &token, "{".into()),
    )
    .await;
    assert_body(&reply, 400, "INVALID_INPUT");
    let reply = send(
        &state,
        post(
            "/v1/transactions/prepare-typed-data",
            &token,
            json!({ "publicKey": 5, "calls": [] }).to_string(),
        ),
    )
    .await;
    assert_body(&reply, 400, "INVALID_INPUT");
    assert!(reply.body["message"]
        .as_str()
        .unwrap()
        .contains("publicKey"));
}

#[tokio::test]
async fn callers_are_authenticated_before_anything_else() {
    let state = state().await;
    let no_key = Request::post("/v1/transactions/prepare-typed-data")
        .header("content-type", "application/json")
        .body(Body::from(prepare("transfer")))
        .unwrap();
    assert_body(&send(&state, no_key).await, 401, "AUTHENTICATION_FAILED");
    for bearer in [
        "not-a-token",
        "sk_dev_wrongwrongwrongwrongwrongwrong0",
        &chipi_contract_tests::paymaster::token(json!({ "sub": "alice", "exp": 1 })),
    ] {
        let reply = send(
            &state,
            post(
                "/v1/transactions/prepare-typed-data",
                bearer,
                prepare("transfer"),
            ),
        )
        .await;
        assert_body(&reply, 401, "AUTHENTICATION_FAILED");
        assert!(!reply.body.to_string().contains(bearer));
    }
}

#[tokio::test]
async fn what_needs_no_chain_is_decided_without_the_node() {
    let state = state().await;
    let token = user_token("alice");
    // A denied call: refused by the policy, before the node would be asked anything.
    let reply = send(
        &state,
        post(
            "/v1/transactions/prepare-typed-data",
            &token,
            prepare("approve"),
        ),
    )
    .await;
    assert_body(&reply, 403, "CALL_NOT_SPONSORED");
    assert_eq!(reply.body["limit"], "deny");
    assert_eq!(reply.retry_after, None);
    // A sponsored call needs the chain: a clean 503, nothing issued.
    let reply = send(
        &state,
        post(
            "/v1/transactions/prepare-typed-data",
            &token,
            prepare("transfer"),
        ),
    )
    .await;
    assert_body(&reply, 503, "NETWORK_ERROR");
    assert_eq!(state.store().issued_count().await.unwrap(), 0);
    // The operator's usage page and a status lookup read the database only.
    let usage = Request::get("/v1/sponsorship/usage?externalUserId=alice")
        .header("x-api-key", API_KEY)
        .header("authorization", format!("Bearer {SECRET_KEY}"))
        .body(Body::empty())
        .unwrap();
    let reply = send(&state, usage).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["app"], "edge");
    assert_eq!(reply.body["sent"], 0);
    let status = Request::get("/v1/transactions/0x1234/status")
        .header("x-api-key", API_KEY)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    assert_body(&send(&state, status).await, 404, "NOT_FOUND");
}

#[tokio::test]
async fn operations_routes_move_to_their_own_listener() {
    let state = state_with(
        "http://127.0.0.1:9/rpc",
        "operations_listen = \"127.0.0.1:9\"",
    )
    .await;
    let health = || Request::get("/health").body(Body::empty()).unwrap();
    assert_body(&send(&state, health()).await, 404, "NOT_FOUND");
    let metrics = Request::get("/metrics").body(Body::empty()).unwrap();
    assert_eq!(send(&state, metrics).await.status, StatusCode::NOT_FOUND);
    let reply = chipi_paymaster::operations_app(state.clone())
        .oneshot(health())
        .await
        .unwrap();
    // The node is away: degraded, said in JSON.
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
    let metrics = chipi_paymaster::operations_app(state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
}

#[tokio::test]
async fn past_the_concurrency_limit_requests_are_shed_at_once() {
    // A node that accepts connections and never answers: a prepare waits on it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rpc", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let state = state_with(
        &url,
        "http = { max_concurrent_requests = 1, request_timeout_seconds = 2 }",
    )
    .await;
    let router = app(state.clone());
    let token = user_token("alice");
    let first = tokio::spawn({
        let (router, token) = (router.clone(), token.clone());
        async move {
            router
                .oneshot(post(
                    "/v1/transactions/prepare-typed-data",
                    &token,
                    prepare("transfer"),
                ))
                .await
                .unwrap()
                .status()
        }
    });
    // Wait until the first request holds the only slot (it is waiting on the node).
    let mut shed = None;
    for _ in 0..200 {
        let response = router
            .clone()
            .oneshot(Request::get("/nowhere").body(Body::empty()).unwrap())
            .await
            .unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(response);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let shed = shed.expect("a second request is shed while the first holds the slot");
    assert_eq!(
        shed.headers().get("retry-after").unwrap().to_str().unwrap(),
        "1"
    );
    let bytes = axum::body::to_bytes(shed.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["code"], "OVERLOADED");
    // The first one times out cleanly (503 TIMEOUT), and the slot is free again.
    assert_eq!(first.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    let after = router
        .oneshot(Request::get("/nowhere").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
    held.abort();
}

#[tokio::test]
async fn a_user_past_its_concurrency_limit_is_refused_and_others_are_not() {
    // A node that accepts connections and never answers: a prepare inside the engine waits
    // on it, each on a connection of its own, so the connections count them.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rpc", silent.local_addr().unwrap());
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
            let _ = arrived.send(());
        }
    });
    let state = state_with(
        &url,
        "http = { max_concurrent_per_user = 2, request_timeout_seconds = 3 }",
    )
    .await;
    let waiting = |user: &str| {
        let (state, token) = (state.clone(), user_token(user));
        tokio::spawn(async move {
            send(
                &state,
                post(
                    "/v1/transactions/prepare-typed-data",
                    &token,
                    prepare("transfer"),
                ),
            )
            .await
            .status
        })
    };
    let alice = [waiting("alice"), waiting("alice")];
    for _ in 0..2 {
        arrivals.recv().await.unwrap();
    }
    // Both of alice's requests wait inside: a third is refused at once.
    let refused = send(
        &state,
        post(
            "/v1/transactions/prepare-typed-data",
            &user_token("alice"),
            prepare("transfer"),
        ),
    )
    .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body["code"], "RATE_LIMITED");
    assert_eq!(refused.body["limit"], "http.max_concurrent_per_user");
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    // Bob is not alice: his request goes in and waits on the node like hers (and times
    // out with 503, never 429).
    let bob = waiting("bob");
    arrivals.recv().await.unwrap();
    assert_eq!(bob.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    for request in alice {
        assert_eq!(request.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    }
    // Alice's requests are over: she is let in again.
    let again = waiting("alice");
    arrivals.recv().await.unwrap();
    assert_eq!(again.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    held.abort();
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let state = state_with(
        "http://127.0.0.1:9/rpc",
        "http = { header_read_timeout_seconds = 1 }",
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(chipi_paymaster::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    // Half a request, then nothing: the service hangs up instead of waiting for ever.
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        slow.read_to_end(&mut answer),
    )
    .await
    .expect("the connection is still open");
    // Closed, with nothing or a bare 408 before the close.
    assert!(read.is_err() || answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"));

    // A client that sends its request whole is served on the same listener.
    let mut quick = tokio::net::TcpStream::connect(address).await.unwrap();
    quick
        .write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    quick.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 404"), "{answer:?}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
