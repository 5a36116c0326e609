//! Relaying under load and under faults: many wallets at once over two relayers, a
//! restart with a transaction pending, a node that goes away mid-request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use chipi_contract_tests::paymaster::{user_token, LocalPaymaster, Options, USER};
use chipi_core::Felt;
use chipi_paymaster::TxStatus;
use common::load::{post, signed_body, sponsored, transfer, wallets, Cable, Wallet};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_transactions_from_ten_wallets_over_two_relayers_all_land_once() {
    // Five at once from each wallet: the in-flight cap allows it.
    let e = common::env_with(
        Options {
            relayers: vec![3, 4],
            ..Options::default()
        }
        .policy(|policy| policy.in_flight_per_wallet = 5)
        // One user drives the ten wallets: 50 of its requests at once.
        .configure(|config| config.http.max_concurrent_per_user = 64),
    )
    .await;
    let wallets = wallets(&e, 9).await;
    let nonces_before = e.relayer_nonce(3).await + e.relayer_nonce(4).await;
    let wallets = Arc::new(wallets);
    let mut tasks = Vec::new();
    for i in 0..50usize {
        let wallets = wallets.clone();
        let http = e.http.clone();
        let base = e.pm.url.clone();
        tasks.push(tokio::spawn(async move {
            // Recipient 0xabc0000 + i receives i + 1.
            sponsored(
                &http,
                &base,
                &wallets[i % 10],
                transfer(0xabc_0000 + i as u64, i as u64 + 1),
            )
            .await
        }));
    }
    let mut hashes = HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        hashes.insert(body["transactionHash"].as_str().unwrap().to_string());
    }
    assert_eq!(hashes.len(), 50);
    for hash in &hashes {
        e.settled(hash).await;
    }
    let rows = e.pm.state.store().transactions().await.unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows
        .iter()
        .all(|r| r.status() == TxStatus::Accepted && r.fee.is_some_and(|f| f > 0)));
    let relayers: HashSet<_> = rows.iter().map(|r| r.relayer.unwrap()).collect();
    assert_eq!(relayers.len(), 2, "both relayers paid");
    assert_eq!(
        e.relayer_nonce(3).await + e.relayer_nonce(4).await,
        nonces_before + Felt::from(50u8)
    );
    for i in 0..50u64 {
        assert_eq!(e.balance(Felt::from(0xabc_0000 + i)).await, i as u128 + 1);
    }
}

#[tokio::test]
async fn a_transaction_pending_at_shutdown_is_followed_after_a_restart() {
    let w = chipi_contract_tests::TestWallet::new().await;
    let database = chipi_contract_tests::paymaster::temp_database()
        .await
        .unwrap();
    // A follower that, after its first pass, sleeps for an hour: nothing gets followed.
    let sleepy = Options {
        database: Some(database.clone()),
        ..Options::default()
    }
    .configure(|config| config.relaying.follow_interval_ms = 3_600_000);
    let pm = LocalPaymaster::start_with(&w.devnet, sleepy).await.unwrap();
    // Its first pass is over (it counts its passes) before anything is sent.
    let first_pass = async {
        while pm.state.metrics().follower_passes.get() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), first_pass)
        .await
        .expect("the follower never made its first pass");
    let wallet = Wallet {
        key: w.owner_key,
        address: w.address,
    };
    let http = reqwest::Client::new();
    let first_body = signed_body(&http, &pm.url, &wallet, transfer(0x99, 3)).await;
    let (status, body) = post(
        &http,
        &format!("{}/v1/transactions/execute-sponsored-transaction", pm.url),
        &user_token(USER),
        &first_body,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let hash = body["transactionHash"].as_str().unwrap().to_string();
    pm.stop().await;

    // The row is still pending on disk.
    let store = chipi_paymaster::Store::open(&database).await.unwrap();
    let row = store.transactions().await.unwrap().pop().unwrap();
    assert_eq!(row.status(), TxStatus::Pending);
    assert!(row.fee.is_none());
    store.close().await;

    // A new service on the same database follows it to its end.
    let pm = LocalPaymaster::start_with(
        &w.devnet,
        Options {
            database: Some(database),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let e = common::Env {
        w,
        pm,
        http,
        token: user_token(USER),
    };
    let row = e.settled(&hash).await;
    assert_eq!(row.status(), TxStatus::Accepted);
    assert!(row.fee.is_some());
    // The same request replayed after the restart: the first transaction, nothing sent.
    let relayer_nonce = e.relayer_nonce(3).await;
    let (status, again) = post(
        &e.http,
        &format!("{}/v1/transactions/execute-sponsored-transaction", e.pm.url),
        &e.token,
        &first_body,
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["transactionHash"], json!(hash));
    assert_eq!(e.relayer_nonce(3).await, relayer_nonce);
    // And a replay of the same request is still the same transaction, across the restart.
    let status = e.get(&format!("/v1/transactions/{hash}/status")).await;
    assert_eq!(status.body["status"], "ACCEPTED");
}

#[tokio::test]
async fn a_node_gone_mid_request_is_a_503_and_the_record_says_so() {
    let w = chipi_contract_tests::TestWallet::new().await;
    let cable = Cable::to(w.devnet.rpc_url()).await;
    let pm = LocalPaymaster::start_with(
        &w.devnet,
        Options {
            rpc_url: Some(cable.url.clone()),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let e = common::Env {
        w,
        pm,
        http: reqwest::Client::new(),
        token: user_token(USER),
    };
    let prepared = e.prepare(json!([e.transfer("0x55", 4)])).await;
    assert_eq!(prepared.status, 200);
    let body = e.execute_body(&prepared.body["typedData"]);

    cable.cut();
    // What the database alone can refuse is refused with the node gone: no node call.
    let mut forged = prepared.body["typedData"].clone();
    forged["message"]["Nonce"] = json!("0x5151");
    let answer = e.execute(&e.execute_body(&forged)).await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    assert_eq!(answer.code(), "OUTSIDE_EXECUTION_REJECTED");
    let answer = e.execute(&body).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.code(), "NETWORK_ERROR");
    let message = answer.body["message"].as_str().unwrap();
    assert!(!message.contains("127.0.0.1"), "{message}");
    let row =
        e.pm.state
            .store()
            .transactions()
            .await
            .unwrap()
            .pop()
            .unwrap();
    assert_eq!(row.status(), TxStatus::Failed);
    assert_eq!(row.reason.as_deref(), Some("node unreachable"));
    assert!(row.hash.is_none());
    // A new prepare cannot read the chain either.
    assert_eq!(e.prepare(json!([e.transfer("0x55", 1)])).await.status, 503);
    let health = e
        .http
        .get(format!("{}/health", e.pm.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);

    // Back: the same request goes through, once.
    cable.restore();
    let answer = e.execute(&body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    e.settled(answer.body["transactionHash"].as_str().unwrap())
        .await;
    assert_eq!(e.balance(Felt::from(0x55u8)).await, 4);
    let health = e
        .http
        .get(format!("{}/health", e.pm.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_relayer_whose_key_is_wrong_is_passed_over_and_the_user_is_not_refused() {
    // Relayer 0 is account 4's address with account 5's key: its own `__validate__` fails.
    // That is the relayer's failure, not the user's: another relayer pays, and the bad
    // one is parked.
    let w = chipi_contract_tests::TestWallet::new().await;
    let accounts = w.devnet.accounts();
    let key = |i: usize| {
        chipi_core::SecretKey::from_hex(&format!("{:#x}", accounts[i].private_key)).unwrap()
    };
    let relayers = vec![
        chipi_paymaster::RelayerConfig {
            address: accounts[4].address,
            private_key: key(5),
        },
        chipi_paymaster::RelayerConfig {
            address: accounts[3].address,
            private_key: key(3),
        },
    ];
    let e = common::env_on(
        w,
        Options::default().configure(move |config| {
            config.relayers = relayers.clone();
            config.relaying.park_after_failures = 1;
        }),
    )
    .await;
    for amount in 1..=3 {
        let answer = e.run(json!([e.transfer("0x7d", amount)])).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        e.settled(answer.body["transactionHash"].as_str().unwrap())
            .await;
    }
    assert_eq!(e.balance(Felt::from(0x7du8)).await, 6);
    let rows = e.pm.state.store().transactions().await.unwrap();
    let good = e.w.devnet.accounts()[3].address;
    assert!(rows.iter().all(|r| r.relayer == Some(good)), "{rows:#?}");
}
