//! No key, token, ciphertext or URL secret in any log line: the service's logs, at debug
//! level for every crate, in the text format and in the JSON format at once, captured
//! over runs that touch every route and the failure paths (a relayer that fails, a JWKS
//! endpoint that fails, a node that loses answers, a broken database, refused status
//! reads). Neither a whole secret nor any 12 characters of one may appear.
//!
//! The tests of this binary share one global subscriber (the service logs from threads
//! of its own runtime, which a thread-local subscriber would not see) and one capture:
//! each test registers its secrets, then checks every registered secret over everything
//! captured so far, so the test that ends last checks everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use chipi_contract_tests::paymaster::{
    now, user_token, Options, API_KEY, JWT_SECRET, OTHER_API_KEY, OTHER_SECRET_KEY, SECRET_KEY,
};
use chipi_contract_tests::TestWallet;
use chipi_core::Felt;
use chipi_paymaster::{AppConfig, JwtConfig, Policy, RelayerConfig, RpcUrl};
use common::proxy::{proxy, Trap};
use common::{Answer, Env};
use serde_json::{json, Value};

/// A node URL with a key in it, as hosted RPC providers hand out.
const RPC_KEY: &str = "RPCKEY0123456789";
/// A JWKS URL with a key in its query and a password in its authority.
const JWKS_KEY: &str = "JWKSKEY0123456789abcdef";
const JWKS_PASSWORD: &str = "JWKSPASSWORD0123456789";
/// The app whose user tokens are verified with keys fetched from a JWKS URL.
const JWKS_APP: &str = "pk_prod_jwksjwksjwksjwksjwksjwksjwksjwks";
/// The shortest run of a secret's characters that must not appear in a log line.
const SLICE: usize = 12;

// ---- The capture ----------------------------------------------------------------

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything logged in this process, in both formats.
#[derive(Default)]
struct Logs {
    text: Capture,
    json: Capture,
}

/// The captures, installed once as the global subscriber: every event goes to the text
/// formatter and to the JSON formatter.
fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let logs = Logs::default();
        tracing_subscriber::registry()
            // Everything at debug, but the in-process devnet's own server logs: those are
            // the node's logs of the requests it receives (its URL included), not the
            // service's.
            .with(tracing_subscriber::EnvFilter::new(
                "debug,tower_http=off,rpc=off,starknet_devnet_server=off,starknet_devnet_core=off",
            ))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(logs.text.clone())
                    .with_ansi(false),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(logs.json.clone()),
            )
            .init();
        logs
    })
}

/// The secrets every test of this binary registered, by name.
fn secrets() -> &'static Mutex<Vec<(String, String)>> {
    static SECRETS: OnceLock<Mutex<Vec<(String, String)>>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        Mutex::new(
            [
                ("secret key", SECRET_KEY),
                ("other app's secret key", OTHER_SECRET_KEY),
                ("JWT secret", JWT_SECRET),
                ("node URL key", RPC_KEY),
                ("JWKS URL key", JWKS_KEY),
                ("JWKS URL password", JWKS_PASSWORD),
            ]
            .into_iter()
            .map(|(name, secret)| (name.to_string(), secret.to_string()))
            .collect(),
        )
    })
}

fn secret(name: impl Into<String>, value: impl Into<String>) {
    secrets().lock().unwrap().push((name.into(), value.into()));
}

/// A private key, in both forms it could be printed in: `0x…` and its bare digits.
fn secret_key(name: &str, key: Felt) {
    let hex = format!("{key:#x}");
    secret(format!("{name} (hex digits)"), hex.trim_start_matches("0x"));
    secret(name, hex);
}

/// Asserts that each of `expected` was logged (so a test cannot pass by capturing
/// nothing), in both formats; then that no registered secret, nor any 12 consecutive
/// characters of one, is in any line captured so far.
fn assert_logged_without_secrets(expected: &[&str]) {
    let logs = logs();
    let secrets = secrets().lock().unwrap().clone();
    // Runs of a secret that a public value (an app's public key) also holds are not
    // secret: `sk_dev_otherother…` shares all but its first characters with
    // `pk_dev_otherother…`.
    let public = [API_KEY, OTHER_API_KEY, JWKS_APP];
    let mut slices: HashMap<&[u8], &str> = HashMap::new();
    for (name, secret) in &secrets {
        for slice in secret.as_bytes().windows(SLICE) {
            if !public
                .iter()
                .any(|p| p.as_bytes().windows(SLICE).any(|w| w == slice))
            {
                slices.insert(slice, name);
            }
        }
    }
    for (format, capture) in [("text", &logs.text), ("json", &logs.json)] {
        let captured = capture.text();
        for line in expected {
            assert!(
                captured.contains(line),
                "the {format} logs lack {line:?}: the failure path was not taken"
            );
        }
        for line in captured.lines() {
            for (name, secret) in &secrets {
                assert!(
                    !line.contains(secret.as_str()),
                    "{name} found in a {format} log line: {line}"
                );
            }
            for slice in line.as_bytes().windows(SLICE) {
                if let Some(name) = slices.get(slice) {
                    panic!(
                        "12 characters of the {name} ({:?}) found in a {format} log line: {line}",
                        String::from_utf8_lossy(slice)
                    );
                }
            }
        }
    }
}

// ---- Requests ---------------------------------------------------------------------

/// `GET path` as `api_key` with `bearer`.
async fn get_as(e: &Env, path: &str, api_key: &str, bearer: Option<&str>) -> Answer {
    let mut request = e
        .http
        .get(format!("{}{path}", e.pm.url))
        .header("x-api-key", api_key);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("service answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer { status, body }
}

/// A wallet creation's body for a fresh owner key, prepared by the service: it carries
/// a ciphertext. The owner key and the ciphertext are registered as secrets.
async fn wallet_creation(e: &Env, test: &str, user: &str, ciphertext: &str) -> Value {
    let class = e.w.devnet.session_class_hash();
    let key = chipi_contract_tests::random_key();
    secret_key(&format!("new wallet's owner key ({test})"), key);
    secret(format!("ciphertext ({test})"), ciphertext);
    let owner = chipi_core::public_key_of(&key).unwrap();
    let address = chipi_core::wallet_address(owner, class);
    let prepared = e
        .post(
            "/v1/chipi-wallets/prepare-creation",
            &json!({ "publicKey": format!("{address:#x}"), "starkKeyPubAX": format!("{owner:#x}") }),
        )
        .await;
    assert_eq!(prepared.status, 200, "{:?}", prepared.body);
    let typed_data = &prepared.body["typedData"];
    let (execution, chain) = chipi_core::OutsideExecution::from_typed_data(typed_data).unwrap();
    let (r, s) = chipi_core::sign_hash(&key, execution.message_hash(chain, address)).unwrap();
    json!({
        "externalUserId": user,
        "publicKey": format!("{address:#x}"),
        "userSignature": { "r": format!("{r:#x}"), "s": format!("{s:#x}") },
        "typedData": typed_data,
        "encryptedPrivateKey": ciphertext,
        "deploymentData": {
            "class_hash": format!("{class:#x}"), "salt": format!("{owner:#x}"),
            "unique": "0x0", "calldata": [format!("{owner:#x}")],
        },
    })
}

/// The environment's own secrets: its user token and the wallet owner's key.
fn env_secrets(e: &Env, test: &str) {
    secret(format!("user token ({test})"), e.token.clone());
    secret(format!("forged token ({test})"), format!("{}x", e.token));
    secret_key(&format!("wallet owner key ({test})"), e.w.owner_key);
}

// ---- Successful routes ------------------------------------------------------------

#[tokio::test]
async fn no_secret_reaches_a_log_line() {
    logs();
    let w = TestWallet::new().await;
    let rpc_url = format!("{}?apikey={RPC_KEY}", w.devnet.rpc_url());
    secret_key("relayer key (routes)", w.devnet.accounts()[3].private_key);
    let e = common::env_on(
        w,
        Options {
            rpc_url: Some(rpc_url),
            ..Options::default()
        },
    )
    .await;
    env_secrets(&e, "routes");

    // A sponsored transaction with a user token, one with the secret key, refusals.
    let sent = e.run(json!([e.transfer("0x77", 1)])).await;
    assert_eq!(sent.status, 200);
    let prepared = e.prepare(json!([e.transfer("0x77", 2)])).await;
    let answer = e
        .post_as(
            "/v1/transactions/execute-sponsored-transaction",
            &e.execute_body(&prepared.body["typedData"]),
            API_KEY,
            Some(SECRET_KEY),
        )
        .await;
    assert_eq!(answer.status, 200);
    let bad = e
        .post_as(
            "/v1/transactions/prepare-typed-data",
            &json!({}),
            API_KEY,
            Some(OTHER_SECRET_KEY),
        )
        .await;
    assert_eq!(bad.status, 401);
    let forged_token = format!("{}x", e.token);
    let bad = e
        .post_as(
            "/v1/transactions/prepare-typed-data",
            &json!({}),
            API_KEY,
            Some(&forged_token),
        )
        .await;
    assert_eq!(bad.status, 401);
    // A wallet creation carries a ciphertext.
    let creation = wallet_creation(
        &e,
        "routes",
        "user-1",
        "U2FsdGVkX1+CIPHERTEXTCIPHERTEXTCIPHERTEXT",
    )
    .await;
    let created = e.post("/v1/chipi-wallets", &creation).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let hash = sent.body["transactionHash"].as_str().unwrap();
    e.settled(hash).await;
    let status = e.get(&format!("/v1/transactions/{hash}/status")).await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    let _ = e
        .get("/v1/chipi-wallets/by-user?externalUserId=user-1")
        .await;
    let usage = get_as(
        &e,
        "/v1/sponsorship/usage?externalUserId=user-1",
        API_KEY,
        Some(SECRET_KEY),
    )
    .await;
    assert_eq!(usage.status, 200, "{:?}", usage.body);
    let _ = e.metrics().await;
    let _ = e
        .http
        .get(format!("{}/health", e.pm.url))
        .send()
        .await
        .unwrap();

    assert_logged_without_secrets(&[
        "sponsored transaction sent",
        "wallet deployment sent",
        "transaction final",
        "/v1/transactions/{hash}/status",
    ]);
}

// ---- A relayer that fails ---------------------------------------------------------

/// A node in front of the devnet that says `broke` cannot pay whenever a fee is
/// estimated for it (as a node says of a drained account); everything else is the
/// devnet's own answer.
async fn node_saying_cannot_pay(node: &url::Url, broke: Felt) -> String {
    use axum::body::Bytes;
    use axum::response::IntoResponse;
    let client = reqwest::Client::new();
    let node = node.clone();
    let router = axum::Router::new().fallback(move |body: Bytes| {
        let (client, node) = (client.clone(), node.clone());
        async move {
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if request["method"] == "starknet_estimateFee" {
                let params = &request["params"];
                let transactions = if params.is_array() {
                    &params[0]
                } else {
                    &params["request"]
                };
                let sender = transactions[0]["sender_address"]
                    .as_str()
                    .and_then(chipi_core::parse_felt_strict);
                if sender == Some(broke) {
                    let error = json!({
                        "jsonrpc": "2.0",
                        "id": request["id"],
                        "error": {
                            "code": 54,
                            "message": "Account balance is smaller than the transaction's maximal fee",
                        },
                    });
                    return axum::Json(error).into_response();
                }
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
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                answer,
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rpc", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn relayer(address: Felt, key: Felt) -> RelayerConfig {
    RelayerConfig {
        address,
        private_key: chipi_core::SecretKey::from_hex(&format!("{key:#x}")).unwrap(),
    }
}

#[tokio::test]
async fn a_failing_relayer_logs_no_secret() {
    logs();
    let w = TestWallet::new().await;
    let accounts = w.devnet.accounts().to_vec();
    for i in [3, 5, 6] {
        secret_key(&format!("relayer key {i}"), accounts[i].private_key);
    }
    let node = node_saying_cannot_pay(w.devnet.rpc_url(), accounts[5].address).await;
    let configured = accounts.clone();
    // Estimates run from the relayers here (no estimator), so that one fails at estimate.
    let options = Options {
        rpc_url: Some(format!("{node}?apikey={RPC_KEY}")),
        estimator: None,
        ..Options::default()
    }
    .configure(move |config| {
        let accounts = &configured;
        // Account 5, which the node says cannot pay (an estimate from it fails: "relayer
        // failed; trying another"); account 3, which works; account 4's address with
        // account 6's key, whose transaction the devnet refuses as badly signed when it
        // is sent ("relayer parked", and another relayer sends it).
        config.relayers = vec![
            relayer(accounts[5].address, accounts[5].private_key),
            relayer(accounts[3].address, accounts[3].private_key),
            relayer(accounts[4].address, accounts[6].private_key),
        ];
        config.relaying.park_after_failures = 1;
    });
    let e = common::env_on(w, options).await;
    env_secrets(&e, "relayers");

    // Three requests lease the three relayers in turn; the failing ones are passed over
    // and no failure reaches the user.
    let mut hash = String::new();
    for amount in 1..=3 {
        let answer = e.run(json!([e.transfer("0x77", amount)])).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        hash = answer.body["transactionHash"].as_str().unwrap().to_string();
        e.settled(&hash).await;
    }
    let status = e.get(&format!("/v1/transactions/{hash}/status")).await;
    assert_eq!(status.body["status"], "ACCEPTED", "{:?}", status.body);

    assert_logged_without_secrets(&[
        "relayer failed; trying another",
        "the relayer cannot pay the fee",
        "relayer parked",
        &format!("{:#x}", accounts[4].address),
        "sponsored transaction sent",
    ]);
}

// ---- A JWKS endpoint that fails ----------------------------------------------------

/// How a fake identity provider answers.
#[derive(Clone, Copy)]
enum Jwks {
    /// 500.
    Fails,
    /// 200 with a body that is no JWKS document.
    Garbage,
    /// Takes the connection and closes it at once.
    Hangs,
}

/// A JWKS URL served by a local identity provider that answers as `how`; the URL has a
/// password and a key in it.
async fn jwks_url(how: Jwks) -> RpcUrl {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    match how {
        Jwks::Fails | Jwks::Garbage => {
            let router = axum::Router::new().fallback(move || async move {
                match how {
                    Jwks::Fails => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                    _ => "<html>not a key set</html>".into_response(),
                }
            });
            tokio::spawn(async move { axum::serve(listener, router).await });
        }
        Jwks::Hangs => {
            tokio::spawn(async move {
                while let Ok((connection, _)) = listener.accept().await {
                    drop(connection);
                }
            });
        }
    }
    RpcUrl::parse(&format!(
        "http://jwks:{JWKS_PASSWORD}@{address}/.well-known/jwks.json?key={JWKS_KEY}"
    ))
    .unwrap()
}

/// An RS256 user token for the JWKS app, signed with the test key.
fn jwks_token(sub: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let der = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/rsa-private.der"),
    )
    .unwrap();
    let claims = json!({ "sub": sub, "iss": "https://issuer.test", "aud": "chipi-tests", "exp": now() + 600, "iat": now() });
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(&der),
    )
    .unwrap()
}

fn jwks_app(name: &str, public_key: &str, url: RpcUrl) -> AppConfig {
    AppConfig {
        name: name.into(),
        public_key: public_key.into(),
        secret_key_sha256: None,
        jwt: Some(JwtConfig {
            hs256_secret: None,
            jwks_file: None,
            jwks_url: Some(url),
            jwks_cache_seconds: 300,
            jwks_refetch_seconds: 10,
            issuer: Some("https://issuer.test".into()),
            audience: Some("chipi-tests".into()),
            leeway_seconds: 30,
        }),
        sponsorship: Policy::default(),
    }
}

#[tokio::test]
async fn a_failing_jwks_endpoint_logs_no_secret() {
    logs();
    let apps = [
        ("jwks-fails", JWKS_APP, jwks_url(Jwks::Fails).await),
        (
            "jwks-garbage",
            "pk_prod_garbagegarbagegarbagegarbage0001",
            jwks_url(Jwks::Garbage).await,
        ),
        (
            "jwks-hangs",
            "pk_prod_hangshangshangshangshangshangs01",
            jwks_url(Jwks::Hangs).await,
        ),
    ];
    let configured = apps.clone();
    let options = Options::default().configure(move |config| {
        for (name, public_key, url) in &configured {
            config.apps.push(jwks_app(name, public_key, url.clone()));
        }
    });
    let e = common::env_with(options).await;
    env_secrets(&e, "jwks");

    let body = json!({ "publicKey": e.wallet(), "calls": [e.transfer("0x77", 1)] });
    for (name, public_key, _) in &apps {
        let token = jwks_token(&format!("user-of-{name}"));
        secret(format!("JWKS user token ({name})"), token.clone());
        let answer = e
            .post_as(
                "/v1/transactions/prepare-typed-data",
                &body,
                public_key,
                Some(&token),
            )
            .await;
        assert_eq!(answer.status, 503, "{name}: {:?}", answer.body);
        assert_eq!(answer.code(), "AUTHENTICATION_UNAVAILABLE");
        // A status read with such a token is refused the same way.
        let status = get_as(
            &e,
            &format!("/v1/transactions/{:#x}/status", Felt::from(7u8)),
            public_key,
            Some(&token),
        )
        .await;
        assert_eq!(status.status, 503, "{name}: {:?}", status.body);
    }

    assert_logged_without_secrets(&[
        "JWKS endpoint unavailable",
        "not a success status",
        "not a JWKS document",
        "no answer",
        "AUTHENTICATION_UNAVAILABLE",
    ]);
}

// ---- A node that loses answers, a broken database, refused status reads -------------

#[tokio::test]
async fn node_and_database_failures_log_no_secret() {
    logs();
    let w = TestWallet::new().await;
    secret_key(
        "relayer key (node and database)",
        w.devnet.accounts()[3].private_key,
    );
    let node = proxy(w.devnet.rpc_url()).await;
    let e = common::env_on(
        w,
        Options {
            rpc_url: Some(format!("{}?apikey={RPC_KEY}", node.url)),
            ..Options::default()
        },
    )
    .await;
    env_secrets(&e, "node and database");

    // The node loses its answer to the fee estimate: the request fails, 503.
    node.arm("starknet_estimateFee", Trap::LoseAnswer);
    let lost = e.run(json!([e.transfer("0x77", 1)])).await;
    assert_eq!(lost.status, 503, "{:?}", lost.body);
    // The follower's receipts are lost for a while, then the node answers again.
    node.arm("starknet_getTransactionReceipt", Trap::LoseAnswer);
    let sent = e.run(json!([e.transfer("0x77", 2)])).await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    node.reached().await;
    node.disarm();
    let hash = sent.body["transactionHash"].as_str().unwrap().to_string();
    e.settled(&hash).await;

    // Status reads: the owner's, and refused ones.
    let path = format!("/v1/transactions/{hash}/status");
    let forged = format!("{}x", e.token);
    let other_user = user_token("someone-else");
    secret("another user's token", other_user.clone());
    let reads = [
        ("the user", API_KEY, Some(e.token.as_str()), 200),
        ("the app's secret key", API_KEY, Some(SECRET_KEY), 200),
        ("a forged token", API_KEY, Some(forged.as_str()), 401),
        ("no token", API_KEY, None, 401),
        ("another app's key", API_KEY, Some(OTHER_SECRET_KEY), 401),
        ("another app", OTHER_API_KEY, Some(OTHER_SECRET_KEY), 404),
        ("another user", API_KEY, Some(other_user.as_str()), 404),
    ];
    for (who, api_key, bearer, expected) in reads {
        let answer = get_as(&e, &path, api_key, bearer).await;
        assert_eq!(answer.status, expected, "{who}: {:?}", answer.body);
    }
    let creation = wallet_creation(
        &e,
        "node and database",
        "user-1",
        "U2FsdGVkX1+DATABASEDOWNCIPHERTEXTXYZ",
    )
    .await;

    // The database breaks under the running service: its tables are gone.
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&e.pm.database)
        .await
        .unwrap();
    for table in ["issued_nonces", "transactions", "wallets"] {
        sqlx::query(&format!("ALTER TABLE {table} RENAME TO {table}_gone"))
            .execute(&mut connection)
            .await
            .unwrap();
    }
    let prepared = e.prepare(json!([e.transfer("0x77", 3)])).await;
    assert_eq!(prepared.status, 500, "{:?}", prepared.body);
    let created = e.post("/v1/chipi-wallets", &creation).await;
    assert_eq!(created.status, 500, "{:?}", created.body);
    let status = e.get(&path).await;
    assert_eq!(status.status, 500, "{:?}", status.body);
    let status = get_as(&e, &path, API_KEY, Some(SECRET_KEY)).await;
    assert_eq!(status.status, 500, "{:?}", status.body);
    // The follower's pass fails too: wait (bounded) until it said so.
    for _ in 0..600 {
        if logs().text.text().contains("following transactions failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    assert_logged_without_secrets(&[
        "NETWORK_ERROR",
        "the node does not answer; sent transactions wait to be followed",
        "transaction final",
        "database error",
        // SQLite's words, or PostgreSQL's (`relation "…" does not exist`).
        if e.pm.database.starts_with("sqlite:") {
            "no such table"
        } else {
            "does not exist"
        },
        "following transactions failed; retrying",
    ]);
}
