//! `get_session_data` against a real wallet on the embedded devnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::Felt;
use chipi_sdk::{get_session_data, ErrorCode, SessionDataResponse};

#[tokio::test]
async fn session_data_follows_the_session_through_its_life() {
    let w = TestWallet::new().await;
    let provider = w.devnet.provider();
    let wallet = format!("{:#x}", w.address);
    let session = w
        .new_session(3, &[selectors::TRANSFER, selectors::APPROVE])
        .await;
    let key = format!("{:#x}", session.public_key);

    let data = get_session_data(&provider, &wallet, &key).await.unwrap();
    assert_eq!(
        data,
        SessionDataResponse {
            is_active: true,
            valid_until: session.valid_until,
            remaining_calls: 3,
            allowed_entrypoints: vec![
                format!("{:#x}", selectors::TRANSFER),
                format!("{:#x}", selectors::APPROVE)
            ],
        }
    );
    w.session_exec(
        Path::Outside,
        &session,
        vec![strk_transfer(Felt::from(5u8), 1)],
    )
    .await
    .unwrap();
    assert_eq!(
        get_session_data(&provider, &wallet, &key)
            .await
            .unwrap()
            .remaining_calls,
        2
    );

    // Expired by chain time.
    w.devnet.set_time(session.valid_until + 1).await;
    let expired = get_session_data(&provider, &wallet, &key).await.unwrap();
    assert!(!expired.is_active);
    assert_eq!(expired.remaining_calls, 2);

    // Revoked: inactive, zeroed.
    w.owner_invoke(vec![
        w.self_call("revoke_session_key", vec![session.public_key])
    ])
    .await
    .unwrap();
    let revoked = get_session_data(&provider, &wallet, &key).await.unwrap();
    assert!(!revoked.is_active);
    assert_eq!((revoked.valid_until, revoked.remaining_calls), (0, 0));
    let state = chipi_sdk::read_session_state(&provider, &wallet, &key)
        .await
        .unwrap();
    assert!(state.revoked);

    // Never registered.
    let stranger = get_session_data(&provider, &wallet, "0x1234")
        .await
        .unwrap();
    assert!(!stranger.is_active);
    assert!(
        !chipi_sdk::read_session_state(&provider, &wallet, "0x1234")
            .await
            .unwrap()
            .revoked
    );

    // Bad input is a typed error, not a panic.
    let error = get_session_data(&provider, "not an address", &key)
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidInput);
}
