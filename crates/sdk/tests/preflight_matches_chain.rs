//! The SDK's pre-flight check and the chain's verdict (mapped through the revert table)
//! give the same code, for every session failure the contract knows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::{revert_code, ErrorCode, Felt};
use chipi_sdk::{check_session_calls, read_session_state};

async fn both_verdicts(
    w: &TestWallet,
    session: &Session,
    calls: Vec<starknet_rust_core::types::Call>,
) -> (Option<ErrorCode>, Option<ErrorCode>) {
    let state = read_session_state(
        &w.devnet.provider(),
        &format!("{:#x}", w.address),
        &format!("{:#x}", session.public_key),
    )
    .await
    .unwrap();
    let now = w.now().await;
    let local = check_session_calls(&state, session.valid_until, w.address, &calls, now)
        .err()
        .map(|e| e.code());
    let chain = match w.session_exec(Path::Outside, session, calls).await {
        Ok(_) => None,
        Err(failure) => Some(
            revert_code(&failure.0)
                .map(|(_, code)| code)
                .unwrap_or(ErrorCode::TransactionReverted),
        ),
    };
    (local, chain)
}

#[tokio::test]
async fn pre_flight_and_chain_agree() {
    let w = TestWallet::new().await;
    let token = chipi_devnet::STRK_ADDRESS;
    let transfer = || vec![strk_transfer(Felt::from(0x42u8), 1)];
    let approve = vec![call(
        token,
        "approve",
        vec![Felt::ONE, Felt::ONE, Felt::ZERO],
    )];

    let live = w.new_session(1, &[selectors::TRANSFER]).await;
    let cases: Vec<(
        &str,
        Session,
        Vec<starknet_rust_core::types::Call>,
        Option<ErrorCode>,
    )> = vec![
        (
            "not whitelisted",
            live,
            approve.clone(),
            Some(ErrorCode::SessionEntrypointNotAllowed),
        ),
        (
            "blocked",
            live,
            vec![call(token, "upgrade", vec![])],
            Some(ErrorCode::SessionEntrypointNotAllowed),
        ),
        (
            "self call",
            live,
            vec![w.self_call("get_public_key", vec![])],
            Some(ErrorCode::SessionEntrypointNotAllowed),
        ),
        (
            "other expiry",
            live.with_valid_until(live.valid_until + 1),
            transfer(),
            Some(ErrorCode::SessionNotRegistered),
        ),
        ("ok", live, transfer(), None),
        (
            "max calls",
            live,
            transfer(),
            Some(ErrorCode::SessionMaxCallsExceeded),
        ),
        (
            "never registered",
            Session::random(live.valid_until),
            transfer(),
            Some(ErrorCode::SessionNotRegistered),
        ),
    ];
    for (name, session, calls, expected) in cases {
        let (local, chain) = both_verdicts(&w, &session, calls).await;
        assert_eq!(local, expected, "{name}: pre-flight");
        assert_eq!(chain, expected, "{name}: chain");
    }

    let revoked = w.new_session(5, &[]).await;
    w.owner_invoke(vec![
        w.self_call("revoke_session_key", vec![revoked.public_key])
    ])
    .await
    .unwrap();
    assert_eq!(
        both_verdicts(&w, &revoked, transfer()).await,
        (
            Some(ErrorCode::SessionRevoked),
            Some(ErrorCode::SessionRevoked)
        )
    );

    let short = w.new_session(5, &[]).await;
    w.devnet.set_time(short.valid_until + 1).await;
    assert_eq!(
        both_verdicts(&w, &short, transfer()).await,
        (
            Some(ErrorCode::SessionExpired),
            Some(ErrorCode::SessionExpired)
        )
    );
}
