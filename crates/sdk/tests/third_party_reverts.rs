//! A revert maps to a session code only when the wallet raised it: a contract the
//! session calls may revert with the wallet's own words (`'Session: revoked'`), and an
//! app that took that for the wallet's would drop a live session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::{ErrorCode, Felt};
use chipi_sdk::*;
use starknet_rust_core::utils::cairo_short_string_to_felt;

mod common;

const PIN: &str = "session-pin";

#[tokio::test]
async fn a_third_party_imitating_the_wallet_does_not_map_to_a_session_code() {
    let w = TestWallet::new().await;
    let mimic = w
        .devnet
        .deploy(chipi_contracts::revert_with(), vec![], Felt::from(7u8))
        .await
        .unwrap();
    let now = w.now().await;
    let sdk = common::direct_sdk(&w, now);
    let (session, harness_session) = common::registered_session(&w, &sdk, PIN, 5, &[]).await;
    // A policy, so that the wallet's own refusal can be shown beside the imitation.
    w.owner_invoke(vec![w.policy_call(
        harness_session.public_key,
        chipi_devnet::STRK_ADDRESS,
        (10, 0),
        (10, 0),
        3600,
    )])
    .await
    .unwrap();
    let wallet = common::session_wallet(&w);
    let run = |calls: Vec<Call>| {
        let (sdk, wallet, session) = (sdk.clone(), wallet.clone(), session.clone());
        async move { common::run_session(&sdk, &wallet, &session, PIN, &calls).await }
    };
    for message in [
        "Session: revoked",
        "Session: expired",
        "Policy: window limit exceeded",
    ] {
        let message_felt = cairo_short_string_to_felt(message).unwrap();
        let error = run(vec![Call {
            contract_address: format!("{mimic:#x}"),
            entrypoint: "revert_with".into(),
            calldata: vec![format!("{message_felt:#x}")],
        }])
        .await
        .unwrap_err();
        assert_eq!(
            error.code(),
            ErrorCode::TransactionReverted,
            "{message}: {error}"
        );
        assert!(
            error.message().contains(message),
            "the third party's text: {error}"
        );
    }
    // The wallet's own refusal still maps.
    let error = run(vec![common::strk_transfer_call("0x77", 11)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::SpendingLimitExceeded, "{error}");
    // The session is alive and nothing was consumed.
    let data = sdk
        .sessions()
        .get_session_data(GetSessionData {
            wallet_address: &wallet.public_key,
            session_public_key: &session.public_key,
        })
        .await
        .unwrap();
    assert!(data.is_active);
    assert_eq!(data.remaining_calls, 5);
}
