//! SNIP-9 v2 outside execution: nonces, time window, caller.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::OutsideExecution;
use starknet_rust::core::types::Felt;

const RECIPIENT: Felt = Felt::from_hex_unchecked("0x5555");

#[tokio::test]
async fn a_nonce_is_used_once() {
    let w = TestWallet::new().await;
    let session = w.new_session(10, &[]).await;
    let execution = w.outside_execution(vec![strk_transfer(RECIPIENT, 1)]).await;
    let nonce_valid = |nonce: Felt| {
        let w = &w;
        async move {
            w.view("is_valid_outside_execution_nonce", vec![nonce])
                .await
                .unwrap()[0]
        }
    };
    assert_eq!(nonce_valid(execution.nonce).await, Felt::ONE);
    let signature = w.session_sign_outside(&session, &execution);
    w.submit_outside(1, &execution, &signature).await.unwrap();
    assert_eq!(nonce_valid(execution.nonce).await, Felt::ZERO);
    assert_fails_with(
        w.submit_outside(2, &execution, &signature).await,
        "SRC9: duplicated nonce",
    );
    // Owner-signed replays are refused the same way.
    let owned = w.outside_execution(vec![strk_transfer(RECIPIENT, 1)]).await;
    let owner_sig = w.owner_sign_outside(&owned);
    w.submit_outside(1, &owned, &owner_sig).await.unwrap();
    assert_fails_with(
        w.submit_outside(1, &owned, &owner_sig).await,
        "SRC9: duplicated nonce",
    );
    assert_eq!(w.balance(RECIPIENT).await, 2);
    assert_eq!(w.calls_used(session.public_key).await, 1);
}

#[tokio::test]
async fn the_time_window_is_exclusive_at_both_ends() {
    let w = TestWallet::new().await;
    let t = w.now().await + 100;
    let execution = |after: u64, before: u64| OutsideExecution {
        caller: chipi_core::ANY_CALLER,
        nonce: random_key(),
        execute_after: after,
        execute_before: before,
        calls: vec![strk_transfer(RECIPIENT, 1)],
    };
    let cases = [
        (t, t + 10, Some("SRC9: now <= execute_after")),
        (t - 10, t, Some("SRC9: now >= execute_before")),
        (t - 1, t + 1, None),
    ];
    for (after, before, error) in cases {
        let e = execution(after, before);
        let signature = w.owner_sign_outside(&e);
        w.devnet.set_time(t).await;
        let result = w.submit_outside(1, &e, &signature).await;
        match error {
            Some(message) => assert_fails_with(result, message),
            None => {
                result.unwrap();
            }
        }
    }
    assert_eq!(w.balance(RECIPIENT).await, 1);
}

#[tokio::test]
async fn a_named_caller_is_the_only_one_who_may_submit() {
    let w = TestWallet::new().await;
    let session = w.new_session(10, &[]).await;
    let mut execution = w.outside_execution(vec![strk_transfer(RECIPIENT, 1)]).await;
    execution.caller = w.devnet.accounts()[1].address;
    let signature = w.session_sign_outside(&session, &execution);
    assert_fails_with(
        w.submit_outside(2, &execution, &signature).await,
        "SRC9: invalid caller",
    );
    w.submit_outside(1, &execution, &signature).await.unwrap();
    // ANY_CALLER: any relayer.
    for relayer in [2, 3] {
        let execution = w.outside_execution(vec![strk_transfer(RECIPIENT, 1)]).await;
        let signature = w.session_sign_outside(&session, &execution);
        w.submit_outside(relayer, &execution, &signature)
            .await
            .unwrap();
    }
    assert_eq!(w.balance(RECIPIENT).await, 3);
}

#[tokio::test]
async fn signatures_of_other_lengths_are_refused_with_a_message() {
    let w = TestWallet::new().await;
    let execution = w.outside_execution(vec![strk_transfer(RECIPIENT, 1)]).await;
    let owner = w.owner_sign_outside(&execution);
    for signature in [
        vec![],
        vec![owner[0]],
        vec![owner[0], owner[1], Felt::ONE],
        vec![Felt::ONE; 5],
    ] {
        assert_fails_with(
            w.submit_outside(1, &execution, &signature).await,
            "Account: invalid sig length",
        );
    }
    let mut bad = owner.clone();
    bad[1] += Felt::ONE;
    assert_fails_with(
        w.submit_outside(1, &execution, &bad).await,
        "Account: invalid signature",
    );
    w.submit_outside(1, &execution, &owner).await.unwrap();
}

#[test]
fn the_hash_the_tests_sign_is_the_starknet_js_hash_for_every_vector() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../../vectors/interop.json")).unwrap();
    for case in vectors["outside_execution"].as_array().unwrap() {
        let (execution, chain_id) = OutsideExecution::from_typed_data(&case["typed_data"]).unwrap();
        let account = Felt::from_hex(case["account"].as_str().unwrap()).unwrap();
        let expected = Felt::from_hex(case["message_hash"].as_str().unwrap()).unwrap();
        assert_eq!(execution.message_hash(chain_id, account), expected);
    }
}
