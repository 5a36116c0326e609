//! `POST /v1/transactions/execute-sponsored-raw` (API.md section 7): an outside execution
//! the client built and signed itself, sent as complete `execute_from_outside_v2`
//! calldata the way Chipi's JS SDK 14.13 serializes it (its own nonce, caller
//! ANY_CALLER, a window of up to two hours), over real HTTP on the embedded devnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chipi_contract_tests::paymaster::{Options, API_KEY, SECRET_KEY, USER};
use chipi_contract_tests::{selector, strk_transfer};
use chipi_core::{Felt, OutsideExecution, ANY_CALLER};
use common::{env_with, Env};
use serde_json::{json, Value};

/// An outside execution of `calls` with a nonce of the client's, open from a minute ago
/// for `minutes`.
async fn outside(e: &Env, calls: Vec<chipi_core::Call>, minutes: u64) -> OutsideExecution {
    let now = e.w.now().await;
    OutsideExecution {
        caller: ANY_CALLER,
        nonce: Felt::from(rand::random::<u64>()),
        execute_after: now - 60,
        execute_before: now + minutes * 60,
        calls,
    }
}

/// The request body: the calldata as hex strings, as the JS SDK sends it.
fn body(e: &Env, execution: &OutsideExecution, signature: &[Felt]) -> Value {
    let calldata: Vec<String> = execution
        .calldata(signature)
        .iter()
        .map(|f| format!("{f:#x}"))
        .collect();
    json!({ "accountAddress": e.wallet(), "calldata": calldata, "signerKind": "STARK" })
}

async fn send(e: &Env, body: &Value) -> common::Answer {
    e.post("/v1/transactions/execute-sponsored-raw", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_signed_outside_execution_is_sent_once_and_policed() {
    let options = Options::default().policy(|policy| {
        policy.deny = vec![chipi_paymaster::CallRule {
            contract: None,
            selector: Some(selector("approve")),
        }];
    });
    let e = env_with(options).await;
    let to = Felt::from(0x7e1u16);
    // Open for almost two hours, as the JS SDK's default window.
    let execution = outside(&e, vec![strk_transfer(to, 11)], 119).await;
    let signature = e.w.owner_sign_outside(&execution);
    let sent = send(&e, &body(&e, &execution, &signature)).await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let hash = sent.body["transactionHash"].as_str().unwrap().to_string();
    let row = e.settled(&hash).await;
    assert_eq!(e.balance(to).await, 11);
    assert_eq!(row.user_id, USER);
    assert_eq!(row.nonce, Some(execution.nonce));

    // The same payload again: the first hash, nothing sent.
    let again = send(&e, &body(&e, &execution, &signature)).await;
    assert_eq!(again.body["transactionHash"], hash.as_str());
    // Another payload with the same nonce: refused (and the wallet would refuse it).
    let mut other = execution.clone();
    other.calls = vec![strk_transfer(to, 12)];
    let refused = send(&e, &body(&e, &other, &e.w.owner_sign_outside(&other))).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.code(), "OUTSIDE_EXECUTION_REJECTED");
    assert_eq!(e.pm.state.store().transactions().await.unwrap().len(), 1);

    // The policy applies: a denied call, before any simulation.
    let approve = chipi_contract_tests::call(
        chipi_devnet::STRK_ADDRESS,
        "approve",
        vec![to, Felt::ONE, Felt::ZERO],
    );
    let execution = outside(&e, vec![approve], 10).await;
    let refused = send(
        &e,
        &body(&e, &execution, &e.w.owner_sign_outside(&execution)),
    )
    .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(refused.code(), "CALL_NOT_SPONSORED");

    // A signature the wallet refuses: its code, nothing paid.
    let execution = outside(&e, vec![strk_transfer(to, 1)], 10).await;
    let refused = send(&e, &body(&e, &execution, &[Felt::ONE, Felt::TWO])).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(e.balance(to).await, 11);
}

#[tokio::test]
async fn malformed_or_unusable_calldata_is_refused_before_anything_else() {
    let e = env_with(Options::default()).await;
    let to = Felt::from(0x7e2u16);
    let execution = outside(&e, vec![strk_transfer(to, 1)], 10).await;
    let signature = e.w.owner_sign_outside(&execution);
    let good = body(&e, &execution, &signature);

    // Cut short, a length that lies, not felts.
    let mut cut = good.clone();
    cut["calldata"].as_array_mut().unwrap().pop();
    let mut lying = good.clone();
    lying["calldata"][4] = json!("0x9");
    let mut not_felts = good.clone();
    not_felts["calldata"][0] = json!("0xzz");
    for (name, body) in [("cut", cut), ("lying", lying), ("not felts", not_felts)] {
        let answer = send(&e, &body).await;
        assert_eq!(answer.status, 400, "{name}: {:?}", answer.body);
        assert_eq!(answer.code(), "INVALID_INPUT", "{name}");
    }
    // A named caller: only ANY_CALLER, since any relayer submits it.
    let mut named = execution.clone();
    named.caller = Felt::from(0x1234u16);
    let answer = send(&e, &body(&e, &named, &e.w.owner_sign_outside(&named))).await;
    assert_eq!(
        answer.code(),
        "OUTSIDE_EXECUTION_REJECTED",
        "{:?}",
        answer.body
    );
    // A window that has closed, and one open longer than two hours.
    let mut closed = execution.clone();
    closed.execute_before = e.w.now().await - 1;
    let answer = send(&e, &body(&e, &closed, &e.w.owner_sign_outside(&closed))).await;
    assert_eq!(
        answer.code(),
        "OUTSIDE_EXECUTION_REJECTED",
        "{:?}",
        answer.body
    );
    let long = outside(&e, vec![strk_transfer(to, 1)], 180).await;
    let answer = send(&e, &body(&e, &long, &e.w.owner_sign_outside(&long))).await;
    assert_eq!(answer.code(), "INVALID_INPUT", "{:?}", answer.body);
    // A user token for one user cannot act for another.
    let mut for_other = good.clone();
    for_other["externalUserId"] = json!("someone-else");
    let answer = send(&e, &for_other).await;
    assert_eq!(answer.status, 401, "{:?}", answer.body);
    // Nothing of these was recorded or sent.
    assert!(e.pm.state.store().transactions().await.unwrap().is_empty());
    // The app's secret key may name the user.
    let mut named_user = good;
    named_user["externalUserId"] = json!("server-side-user");
    let answer = e
        .post_as(
            "/v1/transactions/execute-sponsored-raw",
            &named_user,
            API_KEY,
            Some(SECRET_KEY),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let row = e
        .settled(answer.body["transactionHash"].as_str().unwrap())
        .await;
    assert_eq!(row.user_id, "server-side-user");
}
