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
    let chain_id = w.devnet.chain_id();
    let wallet = common::wallet_data(&w, PIN);
    let now = w.now().await;
    let session = create_session_key(CreateSessionKey::new("session-pin").now(now)).unwrap();
    let config = SessionConfig {
        session_public_key: session.public_key.clone(),
        valid_until: session.valid_until,
        max_calls: 7,
        allowed_entrypoints: vec!["transfer".into(), format!("{:#x}", selectors::APPROVE)],
    };
    let hash = add_session_key_direct(&provider, chain_id, PIN, &wallet, &config, now)
        .await
        .unwrap();
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
        code(add_session_key_direct(&provider, chain_id, "wrong", &wallet, &config, now).await),
        ErrorCode::SessionDecryptionFailed
    );
    let ready = WalletData {
        wallet_type: WalletType::Ready,
        ..wallet.clone()
    };
    assert_eq!(
        code(add_session_key_direct(&provider, chain_id, PIN, &ready, &config, now).await),
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
            code(add_session_key_direct(&provider, chain_id, PIN, &wallet, &bad, now).await),
            ErrorCode::InvalidInput
        );
    }
    let past = SessionConfig {
        valid_until: now - 1,
        ..config.clone()
    };
    assert_eq!(
        code(add_session_key_direct(&provider, chain_id, PIN, &wallet, &past, now).await),
        ErrorCode::SessionExpired
    );

    // Revoke, then revoking again comes back as SESSION_REVOKED from the chain.
    let hash = revoke_session_key_direct(&provider, chain_id, PIN, &wallet, &session.public_key)
        .await
        .unwrap();
    w.devnet.wait_for_success(hash).await.unwrap();
    assert!(
        !get_session_data(&provider, &wallet.public_key, &session.public_key)
            .await
            .unwrap()
            .is_active
    );
    assert_eq!(
        code(
            revoke_session_key_direct(&provider, chain_id, PIN, &wallet, &session.public_key).await
        ),
        ErrorCode::SessionRevoked
    );
    assert_eq!(
        code(revoke_session_key_direct(&provider, chain_id, PIN, &wallet, "0x999").await),
        ErrorCode::SessionNotRegistered
    );
}
