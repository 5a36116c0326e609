//! `execute_transaction_with_session` over the direct transport, end to end on the
//! embedded devnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::{ErrorCode, Felt};
use chipi_sdk::*;

mod common;

const PIN: &str = "user-secure-pin";

#[tokio::test]
async fn a_session_made_by_the_sdk_transfers_and_each_failure_has_its_code() {
    let w = TestWallet::new().await;
    let provider = w.devnet.provider();
    let now = w.now().await;
    let sdk = common::direct_sdk(&w, now);
    let (session, harness_session) = common::registered_session(&w, &sdk, PIN, 5, &[]).await;
    let token = format!("{:#x}", chipi_devnet::STRK_ADDRESS);
    w.owner_invoke(vec![w.policy_call(
        harness_session.public_key,
        chipi_devnet::STRK_ADDRESS,
        (1000, 0),
        (1000, 0),
        3600,
    )])
    .await
    .unwrap();
    let wallet = common::session_wallet(&w);
    let transfer = |amount: u32| Call {
        contract_address: token.clone(),
        entrypoint: "transfer".into(),
        calldata: vec!["0x77".into(), amount.to_string(), "0".into()],
    };
    let run = |calls: Vec<Call>, pin: &'static str, wallet: WalletData, session: SessionKeyData| {
        let sdk = sdk.clone();
        async move {
            let params = ExecuteWithSession {
                encrypt_key: pin,
                wallet: &wallet,
                session: &session,
                calls: &calls,
            };
            sdk.execute_transaction_with_session(params, None)
                .await
                .map(|sent| sent.transaction_hash)
        }
    };

    let hash = run(vec![transfer(10)], PIN, wallet.clone(), session.clone())
        .await
        .unwrap();
    w.devnet.wait_for_success(hash).await.unwrap();
    assert_eq!(w.balance(Felt::from(0x77u8)).await, 10);
    let data = get_session_data(&provider, &wallet.public_key, &session.public_key)
        .await
        .unwrap();
    assert_eq!(data.remaining_calls, 4);

    let code = |r: Result<Felt, SessionError>| r.unwrap_err().code();
    assert_eq!(
        code(run(vec![transfer(1)], "wrong", wallet.clone(), session.clone()).await),
        ErrorCode::SessionDecryptionFailed
    );
    let ready = WalletData {
        wallet_type: WalletType::Ready,
        ..wallet.clone()
    };
    assert_eq!(
        code(run(vec![transfer(1)], PIN, ready, session.clone()).await),
        ErrorCode::InvalidWalletTypeForSession
    );
    let old = SessionKeyData {
        valid_until: 1,
        ..session.clone()
    };
    assert_eq!(
        code(run(vec![transfer(1)], PIN, wallet.clone(), old).await),
        ErrorCode::SessionExpired
    );
    let approve = Call {
        entrypoint: "upgrade".into(),
        ..transfer(1)
    };
    assert_eq!(
        code(run(vec![approve], PIN, wallet.clone(), session.clone()).await),
        ErrorCode::SessionEntrypointNotAllowed
    );
    // Only the chain sees the spending limit: the code comes back with the contract's message.
    let error = run(vec![transfer(1001)], PIN, wallet.clone(), session.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::SpendingLimitExceeded);
    assert!(
        error.message().contains("Policy: per-call limit exceeded"),
        "{error}"
    );
    // Nothing the refusals did consumed a call.
    let data = get_session_data(&provider, &wallet.public_key, &session.public_key)
        .await
        .unwrap();
    assert_eq!(data.remaining_calls, 4);
}
