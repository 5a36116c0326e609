//! No key, token, ciphertext or node URL secret in any log line: the service's logs, at
//! debug level for every crate, captured over a run that touches every route.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use chipi_contract_tests::paymaster::{
    user_token, Options, API_KEY, JWT_SECRET, OTHER_SECRET_KEY, SECRET_KEY,
};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

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

#[tokio::test]
async fn no_secret_reaches_a_log_line() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_writer(capture.clone())
        // Everything at debug, but the in-process devnet's own server logs: those are the
        // node's logs of the requests it receives (its URL included), not the service's.
        .with_env_filter(
            "debug,tower_http=off,rpc=off,starknet_devnet_server=off,starknet_devnet_core=off",
        )
        .with_ansi(false)
        .init();

    let w = chipi_contract_tests::TestWallet::new().await;
    // A node URL with a key in it, as hosted RPC providers hand out.
    let rpc_url = format!("{}?apikey=RPCKEY0123456789", w.devnet.rpc_url());
    let pm = chipi_contract_tests::paymaster::LocalPaymaster::start_with(
        &w.devnet,
        Options {
            rpc_url: Some(rpc_url),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let e = common::Env {
        w,
        pm,
        http: reqwest::Client::new(),
        token: user_token("user-1"),
    };

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
    let class = e.w.devnet.session_class_hash();
    let key = chipi_contract_tests::random_key();
    let owner = chipi_core::public_key_of(&key).unwrap();
    let address = chipi_core::wallet_address(owner, class);
    let prepared = e
        .post(
            "/v1/chipi-wallets/prepare-creation",
            &json!({ "publicKey": format!("{address:#x}"), "starkKeyPubAX": format!("{owner:#x}") }),
        )
        .await;
    let typed_data = &prepared.body["typedData"];
    let (execution, chain) = chipi_core::OutsideExecution::from_typed_data(typed_data).unwrap();
    let (r, s) = chipi_core::sign_hash(&key, execution.message_hash(chain, address)).unwrap();
    let ciphertext = "U2FsdGVkX1+CIPHERTEXTCIPHERTEXTCIPHERTEXT";
    let created = e
        .post(
            "/v1/chipi-wallets",
            &json!({
                "externalUserId": "user-1",
                "publicKey": format!("{address:#x}"),
                "userSignature": { "r": format!("{r:#x}"), "s": format!("{s:#x}") },
                "typedData": typed_data,
                "encryptedPrivateKey": ciphertext,
                "deploymentData": {
                    "class_hash": format!("{class:#x}"), "salt": format!("{owner:#x}"),
                    "unique": "0x0", "calldata": [format!("{owner:#x}")],
                },
            }),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    e.settled(sent.body["transactionHash"].as_str().unwrap())
        .await;
    let _ = e
        .get("/v1/chipi-wallets/by-user?externalUserId=user-1")
        .await;
    let _ = e
        .http
        .get(format!("{}/metrics", e.pm.url))
        .send()
        .await
        .unwrap();
    let _ = e
        .http
        .get(format!("{}/health", e.pm.url))
        .send()
        .await
        .unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("sponsored transaction sent"),
        "the logs were captured"
    );
    assert!(logs.contains("wallet deployment sent"));
    let relayer_key = format!("{:#x}", e.w.devnet.accounts()[3].private_key);
    let relayer_key_digits = relayer_key.trim_start_matches("0x");
    for (name, secret) in [
        ("user token", e.token.as_str()),
        ("forged token", forged_token.as_str()),
        ("secret key", SECRET_KEY),
        ("other app's secret key", OTHER_SECRET_KEY),
        ("JWT secret", JWT_SECRET),
        ("ciphertext", ciphertext),
        ("relayer key", relayer_key_digits),
        ("node URL key", "RPCKEY0123456789"),
    ] {
        let lines: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(secret))
            .take(3)
            .collect();
        assert!(lines.is_empty(), "{name} found in the logs: {lines:#?}");
    }
}
