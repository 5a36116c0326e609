//! Spending policies through the SDK on the embedded devnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::{ErrorCode, Felt};
use chipi_sdk::*;

mod common;

const PIN: &str = "owner-pin";

#[tokio::test]
async fn the_owner_sets_reads_and_removes_a_policy_that_the_chain_enforces() {
    let w = TestWallet::new().await;
    let provider = w.devnet.provider();
    let wallet = common::wallet_data(&w, PIN);
    let session = w.new_session(10, &[]).await;
    let key = format!("{:#x}", session.public_key);
    let token = format!("{:#x}", chipi_devnet::STRK_ADDRESS);
    let sdk = common::direct_sdk(&w, w.now().await);
    let set = |config: &SpendingPolicyConfig| {
        let (sdk, wallet, config) = (sdk.clone(), wallet.clone(), config.clone());
        async move {
            let params = SetSpendingPolicy {
                encrypt_key: PIN,
                wallet: &wallet,
                policy: &config,
            };
            sdk.sessions()
                .set_spending_policy(params, None)
                .await
                .map(|sent| sent.transaction_hash)
        }
    };
    let remove = || {
        let (sdk, wallet, key, token) = (sdk.clone(), wallet.clone(), key.clone(), token.clone());
        async move {
            let params = RemoveSpendingPolicy {
                encrypt_key: PIN,
                wallet: &wallet,
                session_public_key: &key,
                token: &token,
            };
            sdk.sessions()
                .remove_spending_policy(params, None)
                .await
                .map(|sent| sent.transaction_hash)
        }
    };
    let config = SpendingPolicyConfig {
        session_public_key: key.clone(),
        token: token.clone(),
        max_per_call: "100".into(),
        max_per_window: "0x100000000000000000000000000000000".into(), // 2^128: a wide policy
        window_seconds: 3600,
    };
    let hash = set(&config).await.unwrap();
    w.devnet.wait_for_success(hash).await.unwrap();
    let policy = get_spending_policy(&provider, &wallet.public_key, &key, &token)
        .await
        .unwrap();
    assert_eq!(
        policy,
        SpendingPolicyData {
            max_per_call: "100".into(),
            max_per_window: "340282366920938463463374607431768211456".into(),
            window_seconds: 3600,
            spent_in_window: "0".into(),
            window_start: 0,
        }
    );
    assert_fails_with(
        w.session_exec(Path::Outside, &session, vec![strk_transfer(Felt::ONE, 101)])
            .await,
        "Policy: per-call limit exceeded",
    );

    // Refused before sending, with INVALID_SPENDING_POLICY.
    let bad = [
        SpendingPolicyConfig {
            max_per_call: "200".into(),
            max_per_window: "100".into(),
            ..config.clone()
        },
        SpendingPolicyConfig {
            window_seconds: 0,
            ..config.clone()
        },
        SpendingPolicyConfig {
            token: "0x0".into(),
            ..config.clone()
        },
        SpendingPolicyConfig {
            max_per_call: "-1".into(),
            ..config.clone()
        },
        SpendingPolicyConfig {
            max_per_window: format!("0x1{}", "0".repeat(64)),
            ..config.clone()
        },
    ];
    for config in bad {
        let error = set(&config).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidSpendingPolicy, "{config:?}");
    }

    let hash = remove().await.unwrap();
    w.devnet.wait_for_success(hash).await.unwrap();
    assert_eq!(
        get_spending_policy(&provider, &wallet.public_key, &key, &token)
            .await
            .unwrap()
            .window_seconds,
        0
    );
    w.session_exec(Path::Outside, &session, vec![strk_transfer(Felt::ONE, 101)])
        .await
        .unwrap();
    // Removing it again: the chain says there is none.
    let error = remove().await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidSpendingPolicy);
    assert!(error.message().contains("Policy: not found"));
}
