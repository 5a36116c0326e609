//! The review's attacks, with contracts made for them (`contracts/test_contracts`): a
//! contract that answers SRC-5 like a wallet, calls that burn gas, and a call that passes
//! every simulation and reverts on chain. Each is refused or bounded, on the embedded
//! devnet, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chipi_contract_tests::paymaster::{Options, API_KEY, ESTIMATOR, SECRET_KEY};
use chipi_core::Felt;
use chipi_paymaster::{RevertLimit, TxStatus, Window};
use common::proxy::{proxy, Trap};
use serde_json::{json, Value};

fn call_to(contract: Felt, entrypoint: &str, calldata: &[String]) -> Value {
    json!({
        "contractAddress": format!("{contract:#x}"),
        "entrypoint": entrypoint,
        "calldata": calldata,
    })
}

#[tokio::test]
async fn a_contract_that_answers_src5_like_a_wallet_is_not_relayed_for() {
    let e = common::env().await;
    let impostor =
        e.w.devnet
            .deploy(chipi_contracts::src5_impostor(), vec![], Felt::from(11u8))
            .await
            .unwrap();
    // It does claim SNIP-9 v2: SRC-5 alone would let it through.
    let answer = e
        .post(
            "/v1/transactions/prepare-typed-data",
            &json!({ "publicKey": format!("{impostor:#x}"), "calls": [e.transfer("0x55", 1)] }),
        )
        .await;
    assert_eq!(answer.status, 403, "{:?}", answer.body);
    assert_eq!(answer.code(), "WALLET_NOT_SPONSORED");
    assert_eq!(answer.body["limit"], "account_classes");
    assert_eq!(e.pm.state.store().issued_count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_call_heavier_than_the_cap_is_refused_after_simulation_and_costs_nothing() {
    let e = common::env().await;
    let burner =
        e.w.devnet
            .deploy(chipi_contracts::gas_burner(), vec![], Felt::from(12u8))
            .await
            .unwrap();
    // A light burn passes under the default cap; note its bound.
    let light = e.run(json!([call_to(burner, "burn", &["2".into()])])).await;
    assert_eq!(light.status, 200, "{:?}", light.body);
    let row = e
        .settled(light.body["transactionHash"].as_str().unwrap())
        .await;
    let light_bound = row.max_fee.unwrap();
    let mut e = e;
    let restarted = chipi_contract_tests::paymaster::LocalPaymaster::start_with(
        &e.w.devnet,
        Options::default().policy(move |policy| policy.max_fee_fri = Some(light_bound * 2)),
    )
    .await
    .unwrap();
    std::mem::replace(&mut e.pm, restarted).stop().await;
    let nonce = e.relayer_nonce(3).await;
    // A burn of 300 storage writes is far above twice the light one.
    let heavy = e
        .run(json!([call_to(burner, "burn", &["300".into()])]))
        .await;
    assert_eq!(heavy.status, 402, "{:?}", heavy.body);
    assert_eq!(heavy.code(), "SPONSORSHIP_BUDGET_EXCEEDED");
    assert_eq!(heavy.body["limit"], "max_fee_fri");
    assert_eq!(e.relayer_nonce(3).await, nonce, "nothing sent");
    let rows = e.pm.state.store().transactions().await.unwrap();
    assert_eq!(rows.last().unwrap().status(), TxStatus::Refused);
    // Nothing stays reserved: the wallet's in-flight slot is free again.
    let again = e.run(json!([call_to(burner, "burn", &["2".into()])])).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
}

#[tokio::test]
async fn reverts_on_chain_are_paid_charged_and_stop_the_user_at_the_limit() {
    let e = common::env_with(Options::default().policy(|policy| {
        policy.reverts = Some(RevertLimit {
            max: 2,
            window: Window::Month,
        });
    }))
    .await;
    let trap =
        e.w.devnet
            .deploy(
                chipi_contracts::reverts_on_chain(),
                vec![],
                Felt::from(13u8),
            )
            .await
            .unwrap();
    let relayer = e.w.devnet.accounts()[3].address;
    let before = e.balance(relayer).await;
    let mut paid = 0u128;
    for _ in 0..2 {
        // The simulation passes (a query transaction); on chain it reverts.
        let answer = e.run(json!([call_to(trap, "poke", &[])])).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let row = e
            .settled(answer.body["transactionHash"].as_str().unwrap())
            .await;
        assert_eq!(row.status(), TxStatus::Reverted, "{row:?}");
        let fee = row.fee.unwrap();
        assert!(fee > 0);
        paid += fee;
    }
    // The relayer paid for both, and the records say so.
    assert_eq!(before - e.balance(relayer).await, paid);
    let answer = e.prepare(json!([e.transfer("0x55", 1)])).await;
    assert_eq!(answer.status, 403, "{:?}", answer.body);
    assert_eq!(answer.code(), "WALLET_NOT_SPONSORED");
    assert_eq!(answer.body["limit"], "reverts.user");
    assert!(answer.body["retryAfter"].as_u64().unwrap() > 0);
    let usage = e
        .http
        .get(format!("{}/v1/sponsorship/usage", e.pm.url))
        .header("x-api-key", API_KEY)
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(usage["reverted"], 2, "{usage}");
    assert_eq!(usage["feesPaidFri"], paid.to_string(), "{usage}");
}

/// A simulation the node takes its time over (a heavy call, a slow node) holds no
/// relayer: with the estimator account (the stack's default) the relayer stays idle to
/// pay for others meanwhile. Without one, the same simulation holds the only relayer.
#[tokio::test]
async fn a_slow_simulation_holds_no_relayer() {
    for (estimator, idle_while_simulating) in [(Some(ESTIMATOR), 1), (None, 0)] {
        let w = chipi_contract_tests::TestWallet::new().await;
        let node = proxy(w.devnet.rpc_url()).await;
        let options = Options {
            rpc_url: Some(node.url.clone()),
            estimator,
            ..Options::default()
        };
        let e = common::env_on(w, options).await;
        let prepared = e.prepare(json!([e.transfer("0x77", 1)])).await;
        assert_eq!(prepared.status, 200, "{:?}", prepared.body);
        let body = e.execute_body(&prepared.body["typedData"]);
        node.arm("starknet_estimateFee", Trap::HoldBefore);
        let relayers = e.pm.state.engine().relayers().clone();
        let (answer, ()) = tokio::join!(e.execute(&body), async {
            node.reached().await;
            assert_eq!(
                relayers.idle(),
                idle_while_simulating,
                "estimator {estimator:?}: relayers idle while the simulation runs"
            );
            node.disarm();
            node.release();
        });
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let row = e
            .settled(answer.body["transactionHash"].as_str().unwrap())
            .await;
        assert_eq!(row.status(), TxStatus::Accepted);
    }
}
