//! The owner's session management through the SDK, direct transport, on the embedded devnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::{ErrorCode, Felt};
use chipi_sdk::*;

mod common;

const PIN: &str = "owner-pin";

#[tokio::test]
async fn the_owner_registers_and_revokes_a_session_made_by_the_sdk() {
    let w = TestWallet::new().await;
    let provider = w.devnet.provider();
    let wallet = common::wallet_data(&w, PIN);
    let now = w.now().await;
    let sdk = common::direct_sdk(&w, now);
    let add = |pin: &'static str, wallet: WalletData, config: SessionConfig| {
        let sdk = sdk.clone();
        async move {
            let params = AddSessionKey {
                encrypt_key: pin,
                wallet: &wallet,
                session_config: &config,
            };
            sdk.sessions()
                .add_session_key_to_contract(params, None)
                .await
                .map(|sent| sent.transaction_hash)
        }
    };
    let revoke = |key: String| {
        let (sdk, wallet) = (sdk.clone(), wallet.clone());
        async move {
            let params = RevokeSessionKey {
                encrypt_key: PIN,
                wallet: &wallet,
                session_public_key: &key,
            };
            sdk.sessions()
                .revoke_session_key(params, None)
                .await
                .map(|sent| sent.transaction_hash)
        }
    };
    let session = create_session_key(CreateSessionKey::new("session-pin").now(now)).unwrap();
    let config = SessionConfig {
        session_public_key: session.public_key.clone(),
        valid_until: session.valid_until,
        max_calls: 7,
        allowed_entrypoints: vec!["transfer".into(), format!("{:#x}", selectors::APPROVE)],
    };
    let hash = add(PIN, wallet.clone(), config.clone()).await.unwrap();
    w.devnet.wait_for_success(hash).await.unwrap();
    let data = get_session_data(&provider, &wallet.public_key, &session.public_key)
        .await
        .unwrap();
    assert!(data.is_active);
    assert_eq!(data.remaining_calls, 7);
    assert_eq!(
        data.allowed_entrypoints,
        vec![
            format!("{:#x}", selectors::TRANSFER),
            format!("{:#x}", selectors::APPROVE)
        ]
    );

    // Bad input and wrong PIN are caught before anything is sent.
    let code = |r: Result<Felt, SessionError>| r.unwrap_err().code();
    assert_eq!(
        code(add("wrong", wallet.clone(), config.clone()).await),
        ErrorCode::SessionDecryptionFailed
    );
    let ready = WalletData {
        wallet_type: WalletType::Ready,
        ..wallet.clone()
    };
    assert_eq!(
        code(add(PIN, ready.clone(), config.clone()).await),
        ErrorCode::InvalidWalletTypeForSession
    );
    let bad_configs = [
        SessionConfig {
            max_calls: 0,
            ..config.clone()
        },
        SessionConfig {
            session_public_key: "0x0".into(),
            ..config.clone()
        },
        SessionConfig {
            allowed_entrypoints: vec!["not a name".into()],
            ..config.clone()
        },
        SessionConfig {
            allowed_entrypoints: vec!["transfer".into(); 33],
            ..config.clone()
        },
    ];
    for bad in bad_configs {
        assert_eq!(
            code(add(PIN, wallet.clone(), bad.clone()).await),
            ErrorCode::InvalidInput
        );
    }
    let past = SessionConfig {
        valid_until: now - 1,
        ..config.clone()
    };
    assert_eq!(
        code(add(PIN, wallet.clone(), past.clone()).await),
        ErrorCode::SessionExpired
    );

    // Revoke, then revoking again comes back as SESSION_REVOKED from the chain.
    let hash = revoke(session.public_key.clone()).await.unwrap();
    w.devnet.wait_for_success(hash).await.unwrap();
    assert!(
        !get_session_data(&provider, &wallet.public_key, &session.public_key)
            .await
            .unwrap()
            .is_active
    );
    assert_eq!(
        code(revoke(session.public_key.clone()).await),
        ErrorCode::SessionRevoked
    );
    assert_eq!(
        code(revoke("0x999".into()).await),
        ErrorCode::SessionNotRegistered
    );
}
