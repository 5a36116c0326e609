//! Session validation, PROTOCOL.md 3.3 steps 1-8, on both paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_devnet::STRK_ADDRESS;
use starknet_rust::core::types::Felt;

const RECIPIENT: Felt = Felt::from_hex_unchecked("0x1234");

#[tokio::test]
async fn a_session_transfers_on_both_paths_and_each_transaction_consumes_one_call() {
    let w = TestWallet::new().await;
    let session = w.new_session(10, &[]).await;
    for (i, path) in PATHS.into_iter().enumerate() {
        let before = w.balance(RECIPIENT).await;
        // Two calls in one transaction: one call of the budget.
        w.session_exec(
            path,
            &session,
            vec![strk_transfer(RECIPIENT, 5), strk_transfer(RECIPIENT, 7)],
        )
        .await
        .unwrap();
        assert_eq!(w.balance(RECIPIENT).await, before + 12, "{path:?}");
        assert_eq!(
            w.calls_used(session.public_key).await,
            i as u32 + 1,
            "{path:?}"
        );
    }
}

#[tokio::test]
async fn an_expired_session_is_refused_and_now_equal_to_valid_until_is_still_valid() {
    let w = TestWallet::new().await;
    for path in PATHS {
        let now = w.now().await;
        let session = Session::random(now + 1000);
        w.register(&session, 10, &[]).await;
        // Exactly at valid_until: still valid.
        w.devnet.set_time(session.valid_until).await;
        w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 1)])
            .await
            .unwrap();
        // One second later: expired, and nothing consumed.
        w.devnet.set_time(session.valid_until + 1).await;
        assert_fails_with(
            w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 1)])
                .await,
            "Session: expired",
        );
        assert_eq!(w.calls_used(session.public_key).await, 1);
    }
}

#[tokio::test]
async fn unregistered_and_revoked_sessions_are_told_apart_and_revoking_one_leaves_another() {
    let w = TestWallet::new().await;
    let stranger = Session::random(w.now().await + 3600);
    let revoked = w.new_session(10, &[]).await;
    let kept = w.new_session(10, &[]).await;
    w.owner_invoke(vec![
        w.self_call("revoke_session_key", vec![revoked.public_key])
    ])
    .await
    .unwrap();
    for path in PATHS {
        assert_fails_with(
            w.session_exec(path, &stranger, vec![strk_transfer(RECIPIENT, 1)])
                .await,
            "Session: not registered",
        );
        assert_fails_with(
            w.session_exec(path, &revoked, vec![strk_transfer(RECIPIENT, 1)])
                .await,
            "Session: revoked",
        );
        w.session_exec(path, &kept, vec![strk_transfer(RECIPIENT, 1)])
            .await
            .unwrap();
    }
    assert_eq!(w.session_data(revoked.public_key).await, (0, 0, 0, 0));
    assert_eq!(
        w.view("is_session_revoked", vec![revoked.public_key])
            .await
            .unwrap(),
        vec![Felt::ONE]
    );
    assert_eq!(w.calls_used(kept.public_key).await, 2);
    // Registering the key again clears the revocation.
    w.register(&revoked, 3, &[]).await;
    assert_eq!(
        w.view("is_session_revoked", vec![revoked.public_key])
            .await
            .unwrap(),
        vec![Felt::ZERO]
    );
    w.session_exec(Path::Outside, &revoked, vec![strk_transfer(RECIPIENT, 1)])
        .await
        .unwrap();
}

#[tokio::test]
async fn max_calls_one_works_exactly_once_on_each_path() {
    let w = TestWallet::new().await;
    for path in PATHS {
        let session = w.new_session(1, &[]).await;
        w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 1)])
            .await
            .unwrap();
        assert_fails_with(
            w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 1)])
                .await,
            "Session: max calls exceeded",
        );
        assert_eq!(
            w.session_data(session.public_key).await,
            (session.valid_until, 1, 1, 0)
        );
    }
}

use chipi_core::BLOCKED_ENTRYPOINTS as BLOCKED;

#[tokio::test]
async fn blocklisted_selectors_are_refused_anywhere_even_when_whitelisted() {
    let w = TestWallet::new().await;
    let open = w.new_session(100, &[]).await;
    let all: Vec<Felt> = BLOCKED.iter().map(|name| selector(name)).collect();
    let whitelisted = w.new_session(100, &all).await;
    for path in PATHS {
        for name in BLOCKED {
            for session in [&open, &whitelisted] {
                for target in [w.address, STRK_ADDRESS] {
                    assert_fails_with(
                        w.session_exec(path, session, vec![call(target, name, vec![])])
                            .await,
                        "Session: entrypoint blocked",
                    );
                }
            }
        }
    }
    assert_eq!(w.calls_used(open.public_key).await, 0);
    assert_eq!(w.calls_used(whitelisted.public_key).await, 0);
}

#[tokio::test]
async fn a_session_cannot_call_the_wallet_whatever_the_whitelist() {
    let w = TestWallet::new().await;
    let open = w.new_session(100, &[]).await;
    let whitelisted = w
        .new_session(100, &[selector("get_public_key"), selector("transfer")])
        .await;
    for path in PATHS {
        for session in [&open, &whitelisted] {
            assert_fails_with(
                w.session_exec(path, session, vec![w.self_call("get_public_key", vec![])])
                    .await,
                "Session: self call",
            );
            // Hidden behind an allowed call too.
            assert_fails_with(
                w.session_exec(
                    path,
                    session,
                    vec![
                        strk_transfer(RECIPIENT, 1),
                        w.self_call("get_public_key", vec![]),
                    ],
                )
                .await,
                "Session: self call",
            );
        }
    }
}

#[tokio::test]
async fn a_selector_outside_the_whitelist_is_refused_alone_and_inside_a_multicall() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[selectors::TRANSFER]).await;
    let approve = call(
        STRK_ADDRESS,
        "approve",
        vec![RECIPIENT, Felt::ONE, Felt::ZERO],
    );
    for path in PATHS {
        assert_fails_with(
            w.session_exec(path, &session, vec![approve.clone()]).await,
            "Session: entrypoint not allowed",
        );
        assert_fails_with(
            w.session_exec(
                path,
                &session,
                vec![
                    strk_transfer(RECIPIENT, 1),
                    approve.clone(),
                    strk_transfer(RECIPIENT, 1),
                ],
            )
            .await,
            "Session: entrypoint not allowed",
        );
        w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 1)])
            .await
            .unwrap();
    }
    assert_eq!(w.calls_used(session.public_key).await, 2);
}

#[tokio::test]
async fn wrong_keys_and_signatures_over_other_calls_are_refused() {
    let w = TestWallet::new().await;
    let a = w.new_session(100, &[]).await;
    let b = w.new_session(100, &[]).await;
    // B's public key, A's private key: key A's signature presented as key B's.
    let impostor = Session {
        private_key: a.private_key,
        ..b
    };
    let transfer = vec![strk_transfer(RECIPIENT, 1)];
    for path in PATHS {
        assert_fails_with(
            w.session_exec(path, &impostor, transfer.clone()).await,
            "Session: invalid signature",
        );
    }
    // Direct: a signature over another transaction's calls.
    let tampered = w
        .session_account(&a)
        .signing_other_calls(vec![strk_transfer(RECIPIENT, 2)]);
    assert_fails_with(
        w.send(&tampered, transfer.clone()).await,
        "Session: invalid signature",
    );
    // Outside: calldata changed after signing.
    let execution = w.outside_execution(transfer.clone()).await;
    let signature = w.session_sign_outside(&a, &execution);
    let mut changed = execution.clone();
    changed.calls[0].calldata[1] = Felt::from(1000u32);
    assert_fails_with(
        w.submit_outside(1, &changed, &signature).await,
        "Session: invalid signature",
    );
    // Another call list entirely.
    let mut other = execution.clone();
    other.calls.push(strk_transfer(RECIPIENT, 1));
    assert_fails_with(
        w.submit_outside(1, &other, &signature).await,
        "Session: invalid signature",
    );
    assert_eq!(w.calls_used(a.public_key).await, 0);
    assert_eq!(w.calls_used(b.public_key).await, 0);
}

#[tokio::test]
async fn signed_valid_until_must_fit_u64_and_equal_the_stored_one() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    let transfer = vec![strk_transfer(RECIPIENT, 1)];
    let above_u64 = Felt::from(u64::MAX) + Felt::ONE;
    // Direct.
    let overflow = w.session_account(&session).with_raw_valid_until(above_u64);
    assert_fails_with(
        w.send(&overflow, transfer.clone()).await,
        "Session: bad valid_until",
    );
    let later = session.with_valid_until(session.valid_until + 1);
    assert_fails_with(
        w.session_invoke(&later, transfer.clone()).await,
        "Session: valid_until mismatch",
    );
    let earlier = session.with_valid_until(session.valid_until - 1);
    assert_fails_with(
        w.session_invoke(&earlier, transfer.clone()).await,
        "Session: valid_until mismatch",
    );
    // Outside.
    let execution = w.outside_execution(transfer.clone()).await;
    let mut signature = w.session_sign_outside(&session, &execution);
    signature[3] = above_u64;
    assert_fails_with(
        w.submit_outside(1, &execution, &signature).await,
        "Session: bad valid_until",
    );
    assert_fails_with(
        w.session_outside(&later, transfer.clone()).await,
        "Session: valid_until mismatch",
    );
    assert_eq!(w.calls_used(session.public_key).await, 0);
}

#[tokio::test]
async fn valid_until_may_be_u64_max() {
    let w = TestWallet::new().await;
    let session = Session::random(u64::MAX);
    w.register(&session, 2, &[]).await;
    for path in PATHS {
        w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 1)])
            .await
            .unwrap();
    }
    assert_eq!(
        w.session_data(session.public_key).await,
        (u64::MAX, 2, 2, 0)
    );
}

#[tokio::test]
async fn a_refused_attempt_changes_nothing() {
    let w = TestWallet::new().await;
    let session = w.new_session(5, &[selectors::TRANSFER]).await;
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 1)])
        .await
        .unwrap();
    let balance = w.balance(RECIPIENT).await;
    for path in PATHS {
        let approve = call(
            STRK_ADDRESS,
            "approve",
            vec![RECIPIENT, Felt::ONE, Felt::ZERO],
        );
        assert!(w
            .session_exec(path, &session, vec![strk_transfer(RECIPIENT, 1), approve])
            .await
            .is_err());
        let wrong = session.with_valid_until(session.valid_until + 5);
        assert!(w
            .session_exec(path, &wrong, vec![strk_transfer(RECIPIENT, 1)])
            .await
            .is_err());
    }
    assert_eq!(w.calls_used(session.public_key).await, 1);
    assert_eq!(w.balance(RECIPIENT).await, balance);
}

#[tokio::test]
async fn updating_a_whitelist_to_fewer_selectors_leaves_no_old_one_usable() {
    let w = TestWallet::new().await;
    let approve = |amount: u64| {
        call(
            STRK_ADDRESS,
            "approve",
            vec![RECIPIENT, Felt::from(amount), Felt::ZERO],
        )
    };
    let session = w
        .new_session(100, &[selectors::TRANSFER, selectors::APPROVE])
        .await;
    w.session_exec(
        Path::Outside,
        &session,
        vec![strk_transfer(RECIPIENT, 1), approve(1)],
    )
    .await
    .unwrap();
    assert_eq!(w.calls_used(session.public_key).await, 1);

    // Update: only approve; calls_used resets.
    w.register(&session, 50, &[selectors::APPROVE]).await;
    assert_eq!(
        w.session_data(session.public_key).await,
        (session.valid_until, 50, 0, 1)
    );
    assert_eq!(
        w.view("get_session_allowed_entrypoints", vec![session.public_key])
            .await
            .unwrap(),
        vec![Felt::ONE, selectors::APPROVE]
    );
    for path in PATHS {
        assert_fails_with(
            w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 1)])
                .await,
            "Session: entrypoint not allowed",
        );
        w.session_exec(path, &session, vec![approve(2)])
            .await
            .unwrap();
    }
    // Revoke, then register again with an empty whitelist: everything allowed again;
    // register with transfer only: approve from the first generation stays refused.
    w.owner_invoke(vec![
        w.self_call("revoke_session_key", vec![session.public_key])
    ])
    .await
    .unwrap();
    w.register(&session, 50, &[selectors::TRANSFER]).await;
    assert_fails_with(
        w.session_exec(Path::Outside, &session, vec![approve(3)])
            .await,
        "Session: entrypoint not allowed",
    );
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 1)])
        .await
        .unwrap();
}

#[tokio::test]
async fn direct_transactions_with_other_signature_lengths_are_invalid() {
    let w = TestWallet::new().await;
    let session = w.new_session(10, &[]).await;
    for len in [0, 1, 3, 5] {
        let account = w.session_account(&session).with_signature_len(len);
        // `__validate__` returns 0 rather than 'VALID': the node refuses the transaction.
        let failure = w
            .send(&account, vec![strk_transfer(RECIPIENT, 1)])
            .await
            .unwrap_err();
        assert!(
            failure.mentions("VALID") || failure.0.to_lowercase().contains("validat"),
            "length {len}: {failure}"
        );
    }
    assert_eq!(w.calls_used(session.public_key).await, 0);
    assert_eq!(w.balance(RECIPIENT).await, 0);
}

#[tokio::test]
async fn a_direct_session_transaction_may_not_add_a_tip() {
    use starknet_rust::accounts::Account;
    let w = TestWallet::new().await;
    let session = w.new_session(10, &[]).await;
    let account = w.session_account(&session);
    let result = account
        .execute_v3(vec![strk_transfer(RECIPIENT, 1)])
        .tip(1)
        .send()
        .await;
    let failure = TxFailure(format!(
        "{:?}",
        result.map(|r| r.transaction_hash).unwrap_err()
    ));
    assert!(failure.mentions("Session: tip not allowed"), "{failure}");
    // The owner may tip.
    let sent = w
        .owner_account()
        .execute_v3(vec![strk_transfer(RECIPIENT, 1)])
        .tip(1)
        .send()
        .await
        .unwrap();
    w.devnet
        .wait_for_success(sent.transaction_hash)
        .await
        .unwrap();
    assert_eq!(w.balance(RECIPIENT).await, 1);
    assert_eq!(w.calls_used(session.public_key).await, 0);
}

/// docs/contract.md: `__validate__` sees the block time rounded down to the hour, so a
/// direct session transaction sent past `valid_until` but within the same hour passes
/// validation; `__execute__` checks the exact time and reverts (`Session: expired`), and
/// the call still counts, since `__validate__` consumed it, and the wallet pays the fee.
/// Sent with fixed resource bounds, so that no fee estimate refuses it before it lands.
#[tokio::test]
async fn a_direct_session_transaction_expired_within_the_hour_lands_reverts_and_counts() {
    use starknet_rust::accounts::Account;
    use starknet_rust::core::types::ExecutionResult;
    let w = TestWallet::new().await;
    let hour = (w.now().await / 3600 + 2) * 3600;
    let session = Session::random(hour + 100);
    w.register(&session, 10, &[]).await;
    let account = w.session_account(&session);
    let calls = vec![strk_transfer(RECIPIENT, 1)];
    // Bounds from an estimate while the session is valid.
    let estimate = account
        .execute_v3(calls.clone())
        .estimate_fee()
        .await
        .unwrap();

    // 100 s past valid_until: validation sees `hour`, execution the exact time.
    w.devnet.set_time(hour + 200).await;
    let balance = w.balance(w.address).await;
    let sent = account
        .execute_v3(calls)
        .l1_gas(2 * estimate.l1_gas_consumed + 1000)
        .l1_gas_price(2 * estimate.l1_gas_price)
        .l2_gas(2 * estimate.l2_gas_consumed)
        .l2_gas_price(2 * estimate.l2_gas_price)
        .l1_data_gas(2 * estimate.l1_data_gas_consumed + 1000)
        .l1_data_gas_price(2 * estimate.l1_data_gas_price)
        .tip(0)
        .send()
        .await
        .unwrap();
    let receipt = w
        .devnet
        .wait_for_receipt(sent.transaction_hash)
        .await
        .unwrap();
    match receipt.receipt.execution_result() {
        ExecutionResult::Reverted { reason } => {
            assert!(reason.contains("Session: expired"), "{reason}")
        }
        ExecutionResult::Succeeded => panic!("an expired session's transfer succeeded"),
    }
    assert!(w.now().await > session.valid_until);
    assert_eq!(w.calls_used(session.public_key).await, 1);
    assert_eq!(w.balance(RECIPIENT).await, 0);
    assert!(
        w.balance(w.address).await < balance,
        "the wallet paid no fee"
    );
}
