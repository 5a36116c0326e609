//! Every refusal of the wallet's own, met in the service's simulation, is a 4xx with its
//! PROTOCOL.md section 5 code, and costs the relayer nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chipi_contract_tests::{selectors, Session};
use chipi_core::OutsideExecution;
use serde_json::{json, Value};

fn session_signature(e: &common::Env, session: &Session, typed_data: &Value) -> Value {
    let (execution, _) = OutsideExecution::from_typed_data(typed_data).unwrap();
    let felts = e.w.session_sign_outside(session, &execution);
    json!(felts.iter().map(|f| format!("{f:#x}")).collect::<Vec<_>>())
}

/// Prepare `calls` and execute them signed by `session`: the answer.
async fn as_session(e: &common::Env, session: &Session, calls: Value) -> common::Answer {
    let prepared = e.prepare(calls).await;
    assert_eq!(prepared.status, 200, "{:?}", prepared.body);
    let typed_data = &prepared.body["typedData"];
    e.execute(&json!({
        "publicKey": e.wallet(),
        "typedData": typed_data,
        "userSignature": session_signature(e, session, typed_data),
        "isSessionSignature": true,
    }))
    .await
}

#[tokio::test]
async fn each_wallet_refusal_has_its_code_and_sends_nothing() {
    let e = common::env().await;
    let relayer = e.w.devnet.accounts()[3].address;
    let transfer = || json!([e.transfer("0x77", 10)]);

    // Not registered.
    let stranger = Session::random(e.w.now().await + 3600);
    let mut cases = vec![(
        "SESSION_NOT_REGISTERED",
        as_session(&e, &stranger, transfer()).await,
    )];

    // Not whitelisted.
    let approve_only = e.w.new_session(5, &[selectors::APPROVE]).await;
    cases.push((
        "SESSION_ENTRYPOINT_NOT_ALLOWED",
        as_session(&e, &approve_only, transfer()).await,
    ));

    // Out of calls: the one allowed call goes through, the next is refused.
    let once = e.w.new_session(1, &[]).await;
    let first = as_session(&e, &once, transfer()).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    e.settled(first.body["transactionHash"].as_str().unwrap())
        .await;
    cases.push((
        "SESSION_MAX_CALLS_EXCEEDED",
        as_session(&e, &once, transfer()).await,
    ));

    // Over the spending policy.
    let limited = e.w.new_session(5, &[]).await;
    let policy = e.w.policy_call(
        limited.public_key,
        chipi_devnet::STRK_ADDRESS,
        (5, 0),
        (100, 0),
        3600,
    );
    e.w.owner_invoke(vec![policy]).await.unwrap();
    cases.push((
        "SPENDING_LIMIT_EXCEEDED",
        as_session(&e, &limited, transfer()).await,
    ));

    // Revoked.
    let revoked = e.w.new_session(5, &[]).await;
    let revoke =
        e.w.self_call("revoke_session_key", vec![revoked.public_key]);
    e.w.owner_invoke(vec![revoke]).await.unwrap();
    cases.push((
        "SESSION_REVOKED",
        as_session(&e, &revoked, transfer()).await,
    ));

    // A session signing with another key than the one it claims.
    let claimed = e.w.new_session(5, &[]).await;
    let impostor = Session {
        private_key: chipi_contract_tests::random_key(),
        ..claimed
    };
    cases.push((
        "INVALID_SIGNATURE",
        as_session(&e, &impostor, transfer()).await,
    ));

    // Expired: registered for a minute, then the chain moves two minutes on.
    let short = Session::random(e.w.now().await + 60);
    e.w.register(&short, 5, &[]).await;
    e.w.devnet.increase_time(120).await;
    let relayer_nonce = e.relayer_nonce(3).await;
    let relayer_balance = e.balance(relayer).await;
    cases.push(("SESSION_EXPIRED", as_session(&e, &short, transfer()).await));

    for (code, answer) in &cases {
        assert_eq!(answer.status, 400, "{code}: {:?}", answer.body);
        assert_eq!(answer.code(), *code, "{:?}", answer.body);
        assert_eq!(answer.body["statusCode"], 400);
    }
    // The last refusal cost nothing, and no refusal was sent.
    assert_eq!(e.relayer_nonce(3).await, relayer_nonce);
    assert_eq!(e.balance(relayer).await, relayer_balance);
    let rows = e.pm.state.store().transactions().await.unwrap();
    let refused = rows.iter().filter(|r| r.hash.is_none()).count();
    assert_eq!(refused, cases.len());
    assert_eq!(
        rows.len(),
        cases.len() + 1,
        "one transaction sent: the first call"
    );
}
