//! "Never pays twice" where it matters: the service killed (its runtime dropped, as a
//! killed process) between the claim and the send, and after the send reached the node
//! but before its answer was recorded; the node's answer to a send lost on the way back.
//! A send that never reached the node, sent again by the follower. In each, a retry of
//! the same signed request gets the first transaction or sends the only one, the chain
//! has exactly one, and its fee is recorded once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chipi_contract_tests::paymaster::{LocalPaymaster, Options};
use chipi_core::Felt;
use chipi_paymaster::TxStatus;
use common::proxy::{proxy, Proxy, Trap};
use serde_json::{json, Value};

/// The service on `database`, through `rpc_url` (the devnet's when `None`).
async fn service(
    w: &chipi_contract_tests::TestWallet,
    database: &str,
    rpc_url: Option<String>,
) -> LocalPaymaster {
    LocalPaymaster::start_with(
        &w.devnet,
        Options {
            database: Some(database.to_string()),
            rpc_url,
            ..Options::default()
        }
        .configure(|config| {
            config.relaying.instance_ttl_seconds = 3;
            // A send lost on the way is sent again after 2 s of quiet.
            config.relaying.send_timeout_seconds = 2;
            config.relaying.lease_seconds = 4;
        }),
    )
    .await
    .unwrap()
}

/// Sets up a wallet, a service behind the proxy, and a signed execute body.
async fn setup() -> (common::Env, Proxy, String, Value) {
    let w = chipi_contract_tests::TestWallet::new().await;
    let proxy = proxy(w.devnet.rpc_url()).await;
    let database = chipi_contract_tests::paymaster::temp_database()
        .await
        .unwrap();
    let pm = service(&w, &database, Some(proxy.url.clone())).await;
    let e = common::Env {
        w,
        pm,
        http: reqwest::Client::new(),
        token: chipi_contract_tests::paymaster::user_token(chipi_contract_tests::paymaster::USER),
    };
    let prepared = e.prepare(json!([e.transfer("0x5a", 7)])).await;
    assert_eq!(prepared.status, 200, "{:?}", prepared.body);
    let body = e.execute_body(&prepared.body["typedData"]);
    (e, proxy, database, body)
}

/// Sends `body` in the background (its answer is not awaited: the service may die).
fn fire(e: &common::Env, body: &Value) {
    let request = e
        .http
        .post(format!(
            "{}/v1/transactions/execute-sponsored-transaction",
            e.pm.url
        ))
        .header("x-api-key", chipi_contract_tests::paymaster::API_KEY)
        .bearer_auth(&e.token)
        .json(body);
    tokio::spawn(async move {
        let _ = request.send().await;
    });
}

/// After everything: one transaction on chain, one record, its fee recorded once.
async fn exactly_once(e: &common::Env, nonce_before: Felt, hash: &str) {
    let row = e.settled(hash).await;
    assert_eq!(row.status(), TxStatus::Accepted);
    assert!(row.fee.unwrap() > 0);
    assert_eq!(e.relayer_nonce(3).await, nonce_before + Felt::ONE);
    let rows = e.pm.state.store().transactions().await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(e.balance(Felt::from(0x5au8)).await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_claim_and_the_send_a_retry_sends_the_only_one() {
    let (mut e, proxy, database, body) = setup().await;
    let nonce_before = e.relayer_nonce(3).await;
    proxy.arm("starknet_estimateFee", Trap::HoldBefore);
    fire(&e, &body);
    proxy.reached().await;
    let rows = e.pm.state.store().transactions().await.unwrap();
    assert_eq!(rows[0].status(), TxStatus::Claimed, "{rows:#?}");

    e.pm.kill();
    e.pm = service(&e.w, &database, None).await;
    // The claim of a dead process: nothing was sent, so it may be retried. On SQLite the
    // restart gives it up at once (one process); on PostgreSQL a claim may be another
    // live instance's, so it goes once its instance is unseen for the TTL (3 s here).
    let given_up = async {
        loop {
            let rows = e.pm.state.store().transactions().await.unwrap();
            if rows[0].status() != TxStatus::Claimed {
                return rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let rows = tokio::time::timeout(std::time::Duration::from_secs(30), given_up)
        .await
        .expect("the dead instance's claim was never given up");
    assert_eq!(rows[0].status(), TxStatus::Failed, "{rows:#?}");
    assert_eq!(e.relayer_nonce(3).await, nonce_before);
    let answer = e.execute(&body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    exactly_once(
        &e,
        nonce_before,
        answer.body["transactionHash"].as_str().unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_send_reached_the_node_a_retry_gets_the_first_hash() {
    let (mut e, proxy, database, body) = setup().await;
    let nonce_before = e.relayer_nonce(3).await;
    proxy.arm("starknet_addInvokeTransaction", Trap::HoldAfter);
    fire(&e, &body);
    proxy.reached().await;
    // The hash is on record before the send's answer; the follower may even have seen
    // the transaction land already (the devnet mines it at once).
    let rows = e.pm.state.store().transactions().await.unwrap();
    assert!(
        matches!(rows[0].status(), TxStatus::Submitting | TxStatus::Accepted),
        "{rows:#?}"
    );
    let first = chipi_paymaster::felt_text(rows[0].hash.unwrap());

    e.pm.kill();
    e.pm = service(&e.w, &database, None).await;
    let answer = e.execute(&body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["transactionHash"], first.as_str());
    exactly_once(&e, nonce_before, &first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_answer_is_lost_is_not_sent_again() {
    let (e, proxy, _database, body) = setup().await;
    let nonce_before = e.relayer_nonce(3).await;
    proxy.arm("starknet_addInvokeTransaction", Trap::LoseAnswer);
    let answer = e.execute(&body).await;
    // The service cannot know whether it landed: a retryable 503 that says so.
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.code(), "NETWORK_ERROR");
    let rows = e.pm.state.store().transactions().await.unwrap();
    let first = chipi_paymaster::felt_text(rows[0].hash.unwrap());
    proxy.disarm();
    let answer = e.execute(&body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["transactionHash"], first.as_str());
    exactly_once(&e, nonce_before, &first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_never_reached_the_node_is_sent_again_by_the_follower() {
    let (e, proxy, _database, body) = setup().await;
    let nonce_before = e.relayer_nonce(3).await;
    proxy.arm("starknet_addInvokeTransaction", Trap::Swallow);
    let answer = e.execute(&body).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.code(), "NETWORK_ERROR");
    let rows = e.pm.state.store().transactions().await.unwrap();
    assert_eq!(rows[0].status(), TxStatus::Submitting, "{rows:#?}");
    let first = chipi_paymaster::felt_text(rows[0].hash.unwrap());
    proxy.disarm();
    // Nothing else is sent, so the relayer's nonce would never move past it: the
    // follower sends the very same signed transaction again, and it lands once.
    exactly_once(&e, nonce_before, &first).await;
    let attempts = e.pm.state.store().attempts(rows[0].id).await.unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0].outcome, chipi_paymaster::Outcome::Sent);
    // The client's retry gets that transaction.
    let answer = e.execute(&body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["transactionHash"], first.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_landing_while_the_follower_looks_is_recorded_paid_not_dropped() {
    // The hash is on record before the send leaves, so the follower can ask for a
    // receipt that is not there yet (the send is held), then for the relayer's nonce,
    // with the transaction landing in between: the nonce has moved, and by this very
    // transaction. It must be recorded paid, never "dropped".
    let (e, proxy, _database, body) = setup().await;
    let nonce_before = e.relayer_nonce(3).await;
    proxy.arm("starknet_addInvokeTransaction", Trap::HoldBefore);
    fire(&e, &body);
    proxy.reached().await;
    // The send waits at the proxy; the follower asks for its receipt (none yet), then
    // for the nonce, and waits there.
    proxy.arm("starknet_getNonce", Trap::HoldBefore);
    proxy.reached().await;
    // The oldest held call first: the send goes on and the transaction lands.
    proxy.release();
    while e.relayer_nonce(3).await == nonce_before {
        tokio::task::yield_now().await;
    }
    // Now the follower learns that the nonce moved.
    proxy.disarm();
    proxy.release();
    let rows = e.pm.state.store().transactions().await.unwrap();
    let hash = chipi_paymaster::felt_text(rows[0].hash.unwrap());
    exactly_once(&e, nonce_before, &hash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stuck_at_the_node_is_stopped_given_up_and_its_retry_sends_once() {
    // The simulation hangs at the node. The client gets a 503 at its timeout; the work
    // stops by itself before the follower gives the claimed row up (reservations back);
    // the client's retry of the same request then sends the only transaction.
    let w = chipi_contract_tests::TestWallet::new().await;
    let proxy = proxy(w.devnet.rpc_url()).await;
    let options = Options {
        rpc_url: Some(proxy.url.clone()),
        ..Options::default()
    }
    .configure(|config| {
        config.http.request_timeout_seconds = 1;
        config.relaying.abandon_claims_after_seconds = 3;
    });
    let e = common::env_on(w, options).await;
    let prepared = e.prepare(json!([e.transfer("0x5a", 7)])).await;
    assert_eq!(prepared.status, 200, "{:?}", prepared.body);
    let body = e.execute_body(&prepared.body["typedData"]);
    let nonce_before = e.relayer_nonce(3).await;

    proxy.arm("starknet_estimateFee", Trap::HoldBefore);
    let (answer, ()) = tokio::join!(e.execute(&body), proxy.reached());
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    // The work goes on after the 503, held at the node, then stops by itself (the node
    // still holds the call).
    let engine = e.pm.state.engine();
    assert_eq!(engine.work_running(), 1);
    for _ in 0..200 {
        if engine.work_running() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(engine.work_running(), 0, "the stuck work never stopped");
    // Given up by the follower (bounded wait on the record, not a sleep for its own sake).
    let store = e.pm.state.store();
    let mut row = store.transactions().await.unwrap().remove(0);
    for _ in 0..200 {
        if row.status() == TxStatus::Failed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        row = store.transactions().await.unwrap().remove(0);
    }
    assert_eq!(row.status(), TxStatus::Failed, "{row:#?}");
    assert_eq!(row.reason.as_deref(), Some("abandoned before it was sent"));
    assert!(store.attempts(row.id).await.unwrap().is_empty());

    proxy.disarm();
    let answer = e.execute(&body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let hash = answer.body["transactionHash"].as_str().unwrap().to_string();
    exactly_once(&e, nonce_before, &hash).await;
    assert_eq!(store.attempts(row.id).await.unwrap().len(), 1);
}
