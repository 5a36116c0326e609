//! Spending policies (PROTOCOL.md 3.5) against the devnet's STRK token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_devnet::{ETH_ADDRESS, STRK_ADDRESS};
use starknet_rust::core::types::Felt;

const RECIPIENT: Felt = Felt::from_hex_unchecked("0x7777");

fn amount_call(token: Felt, name: &str, low: Felt, high: Felt) -> starknet_rust::core::types::Call {
    call(token, name, vec![RECIPIENT, low, high])
}

async fn set_policy(
    w: &TestWallet,
    key: Felt,
    token: Felt,
    per_call: u128,
    per_window: u128,
    window: u64,
) {
    w.owner_invoke(vec![w.policy_call(
        key,
        token,
        (per_call, 0),
        (per_window, 0),
        window,
    )])
    .await
    .unwrap();
}

#[tokio::test]
async fn per_call_and_window_caps_hold_on_both_paths() {
    let w = TestWallet::new().await;
    for path in PATHS {
        let session = w.new_session(100, &[]).await;
        set_policy(&w, session.public_key, STRK_ADDRESS, 100, 250, 3600).await;
        assert_fails_with(
            w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 101)])
                .await,
            "Policy: per-call limit exceeded",
        );
        w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 100)])
            .await
            .unwrap(); // exactly the cap
        w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 100)])
            .await
            .unwrap();
        assert_fails_with(
            w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 51)])
                .await,
            "Policy: window limit exceeded",
        );
        w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 50)])
            .await
            .unwrap(); // exactly the window
        let policy = w.policy(session.public_key, STRK_ADDRESS).await;
        assert_eq!(policy[5], Felt::from(250u32), "spent_in_window low");
    }
    assert_eq!(w.balance(RECIPIENT).await, 500);
}

#[tokio::test]
async fn a_multicall_adding_up_past_the_window_is_refused_whole() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 100, 250, 3600).await;
    let three = vec![
        strk_transfer(RECIPIENT, 100),
        strk_transfer(RECIPIENT, 100),
        strk_transfer(RECIPIENT, 100),
    ];
    assert_fails_with(
        w.session_exec(Path::Outside, &session, three).await,
        "Policy: window limit exceeded",
    );
    assert_eq!(w.balance(RECIPIENT).await, 0);
    assert_eq!(
        w.policy(session.public_key, STRK_ADDRESS).await[5],
        Felt::ZERO
    );
}

#[tokio::test]
async fn the_first_spend_opens_the_window_and_it_restarts_after_time_moves() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 100, 100, 600).await;
    let policy = w.policy(session.public_key, STRK_ADDRESS).await;
    // [max_per_call(2), max_per_window(2), window_seconds, spent(2), window_start]
    assert_eq!(
        policy,
        vec![
            Felt::from(100u8),
            Felt::ZERO,
            Felt::from(100u8),
            Felt::ZERO,
            Felt::from(600u16),
            Felt::ZERO,
            Felt::ZERO,
            Felt::ZERO
        ]
    );
    let t = w.now().await + 10;
    w.devnet.set_time(t).await;
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 100)])
        .await
        .unwrap();
    let policy = w.policy(session.public_key, STRK_ADDRESS).await;
    assert_eq!(
        policy[7],
        Felt::from(t),
        "window_start = time of the first spend"
    );
    assert_eq!(policy[5], Felt::from(100u8));
    // Still inside the window one second before its end.
    w.devnet.set_time(t + 599).await;
    assert_fails_with(
        w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 1)])
            .await,
        "Policy: window limit exceeded",
    );
    // At its end the window restarts.
    w.devnet.set_time(t + 600).await;
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 100)])
        .await
        .unwrap();
    let policy = w.policy(session.public_key, STRK_ADDRESS).await;
    assert_eq!(policy[7], Felt::from(t + 600));
    assert_eq!(policy[5], Felt::from(100u8));
}

#[tokio::test]
async fn removal_lifts_the_policy_and_removing_nothing_is_refused() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 10, 10, 3600).await;
    assert_fails_with(
        w.session_exec(Path::Direct, &session, vec![strk_transfer(RECIPIENT, 11)])
            .await,
        "Policy: per-call limit exceeded",
    );
    let remove = w.self_call(
        "remove_spending_policy",
        vec![session.public_key, STRK_ADDRESS],
    );
    w.owner_invoke(vec![remove.clone()]).await.unwrap();
    assert_eq!(
        w.policy(session.public_key, STRK_ADDRESS).await,
        vec![Felt::ZERO; 8]
    );
    w.session_exec(Path::Direct, &session, vec![strk_transfer(RECIPIENT, 1000)])
        .await
        .unwrap();
    assert_fails_with(w.owner_invoke(vec![remove]).await, "Policy: not found");
}

#[tokio::test]
async fn the_four_tracked_selectors_are_limited_and_others_are_not() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 10, 1000, 3600).await;
    for name in [
        "transfer",
        "approve",
        "increase_allowance",
        "increaseAllowance",
    ] {
        assert_fails_with(
            w.session_exec(
                Path::Outside,
                &session,
                vec![amount_call(
                    STRK_ADDRESS,
                    name,
                    Felt::from(11u8),
                    Felt::ZERO,
                )],
            )
            .await,
            "Policy: per-call limit exceeded",
        );
    }
    w.session_exec(
        Path::Outside,
        &session,
        vec![amount_call(
            STRK_ADDRESS,
            "approve",
            Felt::from(10u8),
            Felt::ZERO,
        )],
    )
    .await
    .unwrap();
    // A selector that moves nothing is not tracked, even with a large argument.
    w.session_exec(
        Path::Outside,
        &session,
        vec![call(STRK_ADDRESS, "balance_of", vec![Felt::from(u64::MAX)])],
    )
    .await
    .unwrap();
    assert_eq!(
        w.policy(session.public_key, STRK_ADDRESS).await[5],
        Felt::from(10u8)
    );
}

#[tokio::test]
async fn amounts_are_u256_and_malformed_ones_revert() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 100, 1000, 3600).await;
    // A high word makes it huge.
    assert_fails_with(
        w.session_exec(
            Path::Outside,
            &session,
            vec![amount_call(STRK_ADDRESS, "approve", Felt::ONE, Felt::ONE)],
        )
        .await,
        "Policy: per-call limit exceeded",
    );
    // Short calldata, limbs not below 2^128.
    let two_128 = Felt::from(u128::MAX) + Felt::ONE;
    for calldata in [
        vec![RECIPIENT, Felt::ONE],
        vec![RECIPIENT, two_128, Felt::ZERO],
        vec![RECIPIENT, Felt::ONE, two_128],
    ] {
        assert_fails_with(
            w.session_exec(
                Path::Outside,
                &session,
                vec![call(STRK_ADDRESS, "transfer", calldata)],
            )
            .await,
            "Policy: bad amount calldata",
        );
    }
    // Limits above 2^128 (wide policy): exact u256 comparisons.
    let wide = w.new_session(100, &[]).await;
    w.owner_invoke(vec![w.policy_call(
        wide.public_key,
        STRK_ADDRESS,
        (0, 1),
        (0, 2),
        3600,
    )])
    .await
    .unwrap();
    // Amounts above 2^128: (low, high) limbs.
    let approve = |low: Felt, high: Felt| {
        w.session_exec(
            Path::Outside,
            &wide,
            vec![amount_call(STRK_ADDRESS, "approve", low, high)],
        )
    };
    approve(Felt::ZERO, Felt::ONE).await.unwrap();
    assert_fails_with(
        approve(Felt::ONE, Felt::ONE).await,
        "Policy: per-call limit exceeded",
    );
    approve(Felt::ZERO, Felt::ONE).await.unwrap();
    assert_fails_with(
        approve(Felt::ONE, Felt::ZERO).await,
        "Policy: window limit exceeded",
    );
    let policy = w.policy(wide.public_key, STRK_ADDRESS).await;
    assert_eq!(
        &policy[..6],
        &[
            Felt::ZERO,
            Felt::ONE,
            Felt::ZERO,
            Felt::TWO,
            Felt::from(3600u16),
            Felt::ZERO
        ]
    );
    assert_eq!(policy[6], Felt::TWO, "spent high word");
}

#[tokio::test]
async fn tokens_are_independent_and_no_policy_means_unrestricted() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 100, 100, 3600).await;
    set_policy(&w, session.public_key, ETH_ADDRESS, 5, 5, 3600).await;
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 100)])
        .await
        .unwrap();
    w.session_exec(
        Path::Outside,
        &session,
        vec![amount_call(
            ETH_ADDRESS,
            "approve",
            Felt::from(5u8),
            Felt::ZERO,
        )],
    )
    .await
    .unwrap();
    assert_fails_with(
        w.session_exec(
            Path::Outside,
            &session,
            vec![amount_call(ETH_ADDRESS, "approve", Felt::ONE, Felt::ZERO)],
        )
        .await,
        "Policy: window limit exceeded",
    );
    // Another session has no policy: unrestricted.
    let free = w.new_session(100, &[]).await;
    w.session_exec(
        Path::Outside,
        &free,
        vec![strk_transfer(RECIPIENT, 10 * STRK)],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_zero_window_cap_blocks_every_tracked_spend() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 0, 0, 3600).await;
    assert_fails_with(
        w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 1)])
            .await,
        "Policy: per-call limit exceeded",
    );
    assert_fails_with(
        w.session_exec(
            Path::Outside,
            &session,
            vec![amount_call(STRK_ADDRESS, "approve", Felt::ONE, Felt::ZERO)],
        )
        .await,
        "Policy: per-call limit exceeded",
    );
    // Zero amounts pass: nothing is spent.
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 0)])
        .await
        .unwrap();
}

#[tokio::test]
async fn policies_are_owner_only_validated_and_outlive_sessions() {
    let w = TestWallet::new().await;
    let session = Session::random(w.now().await + 3600);
    // Before the session exists.
    set_policy(&w, session.public_key, STRK_ADDRESS, 10, 10, 3600).await;
    w.register(&session, 100, &[]).await;
    assert_fails_with(
        w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 11)])
            .await,
        "Policy: per-call limit exceeded",
    );
    // A session cannot change its own policy.
    for path in PATHS {
        assert_fails_with(
            w.session_exec(
                path,
                &session,
                vec![w.policy_call(session.public_key, STRK_ADDRESS, (1000, 0), (1000, 0), 1)],
            )
            .await,
            "Session: entrypoint blocked",
        );
    }
    // Invalid policies.
    let owner = |call| w.owner_invoke(vec![call]);
    assert_fails_with(
        owner(w.policy_call(session.public_key, Felt::ZERO, (1, 0), (1, 0), 10)).await,
        "Policy: zero token",
    );
    assert_fails_with(
        owner(w.policy_call(session.public_key, STRK_ADDRESS, (1, 0), (1, 0), 0)).await,
        "Policy: zero window",
    );
    assert_fails_with(
        owner(w.policy_call(session.public_key, STRK_ADDRESS, (2, 0), (1, 0), 10)).await,
        "Policy: per-call above window",
    );
    // Outlives a revoke and a new registration.
    w.owner_invoke(vec![
        w.self_call("revoke_session_key", vec![session.public_key])
    ])
    .await
    .unwrap();
    w.register(&session, 100, &[]).await;
    assert_fails_with(
        w.session_exec(Path::Direct, &session, vec![strk_transfer(RECIPIENT, 11)])
            .await,
        "Policy: per-call limit exceeded",
    );
    // The owner is never limited by a session's policy.
    w.owner_invoke(vec![strk_transfer(RECIPIENT, 1000)])
        .await
        .unwrap();
}

#[tokio::test]
async fn changing_a_policy_keeps_its_window() {
    let w = TestWallet::new().await;
    const DAY: u64 = 86_400;
    // The session outlives the day the test moves time through.
    let session = Session::random(w.now().await + 10 * DAY);
    w.register(&session, 100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 100, 100, DAY).await;
    let t = w.now().await + 10;
    w.devnet.set_time(t).await;
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 100)])
        .await
        .unwrap();
    // Tighten to 50/day: what was spent still counts, so nothing is freed at once.
    set_policy(&w, session.public_key, STRK_ADDRESS, 50, 50, DAY).await;
    let policy = w.policy(session.public_key, STRK_ADDRESS).await;
    assert_eq!(policy[5], Felt::from(100u8), "spent kept");
    assert_eq!(policy[7], Felt::from(t), "window_start kept");
    for path in PATHS {
        assert_fails_with(
            w.session_exec(path, &session, vec![strk_transfer(RECIPIENT, 1)])
                .await,
            "Policy: window limit exceeded",
        );
    }
    // After the window elapses, the tighter limit applies to a fresh window.
    w.devnet.set_time(t + DAY).await;
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 1)])
        .await
        .unwrap();
    assert_fails_with(
        w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 50)])
            .await,
        "Policy: window limit exceeded",
    );
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 49)])
        .await
        .unwrap();
    // Loosen to 200/day: exactly 150 more in this window (50 spent), as 100 + 100
    // would have been from the original 100 spent.
    set_policy(&w, session.public_key, STRK_ADDRESS, 200, 200, DAY).await;
    w.session_exec(Path::Direct, &session, vec![strk_transfer(RECIPIENT, 150)])
        .await
        .unwrap();
    assert_fails_with(
        w.session_exec(Path::Direct, &session, vec![strk_transfer(RECIPIENT, 1)])
            .await,
        "Policy: window limit exceeded",
    );
    assert_eq!(w.balance(RECIPIENT).await, 100 + 1 + 49 + 150);
}

#[tokio::test]
async fn loosening_a_spent_policy_allows_exactly_the_difference() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 100, 100, 86_400).await;
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 100)])
        .await
        .unwrap();
    set_policy(&w, session.public_key, STRK_ADDRESS, 200, 200, 86_400).await;
    assert_fails_with(
        w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 101)])
            .await,
        "Policy: window limit exceeded",
    );
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 100)])
        .await
        .unwrap();
    assert_fails_with(
        w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 1)])
            .await,
        "Policy: window limit exceeded",
    );
    assert_eq!(w.balance(RECIPIENT).await, 200);
}

#[tokio::test]
async fn a_change_between_compact_and_wide_limits_carries_the_spend() {
    let w = TestWallet::new().await;
    let session = w.new_session(100, &[]).await;
    set_policy(&w, session.public_key, STRK_ADDRESS, 100, 100, 86_400).await;
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 60)])
        .await
        .unwrap();
    // Wide limits (above 2^128): the 60 already spent is carried.
    let wide = |per_window_high: u128| {
        w.owner_invoke(vec![w.policy_call(
            session.public_key,
            STRK_ADDRESS,
            (100, 0),
            (0, per_window_high),
            86_400,
        )])
    };
    wide(1).await.unwrap();
    let policy = w.policy(session.public_key, STRK_ADDRESS).await;
    assert_eq!(&policy[5..7], &[Felt::from(60u8), Felt::ZERO]);
    // Back to compact, 100/window: only 40 left.
    set_policy(&w, session.public_key, STRK_ADDRESS, 100, 100, 86_400).await;
    assert_fails_with(
        w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 41)])
            .await,
        "Policy: window limit exceeded",
    );
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 40)])
        .await
        .unwrap();
    // A removed policy set again starts empty.
    w.owner_invoke(vec![w.self_call(
        "remove_spending_policy",
        vec![session.public_key, STRK_ADDRESS],
    )])
    .await
    .unwrap();
    set_policy(&w, session.public_key, STRK_ADDRESS, 100, 100, 86_400).await;
    let policy = w.policy(session.public_key, STRK_ADDRESS).await;
    assert_eq!(&policy[5..8], &[Felt::ZERO, Felt::ZERO, Felt::ZERO]);
}
