//! Every error code of PROTOCOL.md section 5, each produced by a real scenario through
//! the client (direct transport) on the embedded devnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chipi_contract_tests::*;
use chipi_core::{ErrorCode, Felt};
use chipi_sdk::*;

mod common;

const OWNER_PIN: &str = "owner-pin";
const SESSION_PIN: &str = "session-pin";

#[tokio::test]
async fn each_code_of_section_5_from_a_real_scenario() {
    let w = TestWallet::new().await;
    let clock = Arc::new(AtomicU64::new(w.now().await));
    let sdk = {
        let clock = clock.clone();
        ChipiSdk::builder(w.devnet.rpc_url().as_str())
            .transport(Transport::Direct)
            .clock(move || clock.load(Ordering::SeqCst))
            .build()
            .unwrap()
    };
    let wallet = common::wallet_data(&w, OWNER_PIN);
    let token = format!("{:#x}", chipi_devnet::STRK_ADDRESS);
    let transfer = |entrypoint: &str| Call {
        contract_address: token.clone(),
        entrypoint: entrypoint.into(),
        calldata: vec!["0x99".into(), "1".into(), "0".into()],
    };
    let new_session = |seconds: u64| {
        sdk.sessions()
            .create_session_key(CreateSessionKey::new(SESSION_PIN).duration_seconds(seconds))
            .unwrap()
    };
    let register = |session: &SessionKeyData, max_calls: u32| {
        let sdk = sdk.clone();
        let wallet = wallet.clone();
        let config = SessionConfig {
            session_public_key: session.public_key.clone(),
            valid_until: session.valid_until,
            max_calls,
            allowed_entrypoints: vec!["transfer".into()],
        };
        async move {
            let hash = sdk
                .sessions()
                .add_session_key_to_contract(
                    AddSessionKey {
                        encrypt_key: OWNER_PIN,
                        wallet: &wallet,
                        session_config: &config,
                    },
                    None,
                )
                .await?;
            sdk.wait_for_transaction(&hash).await.unwrap();
            Ok::<_, SessionError>(())
        }
    };
    let execute = |session: &SessionKeyData, pin: &str, wallet: &WalletData, call: Call| {
        let sdk = sdk.clone();
        let (session, pin, wallet) = (session.clone(), pin.to_string(), wallet.clone());
        async move {
            let calls = [call];
            sdk.execute_transaction_with_session(
                ExecuteWithSession {
                    encrypt_key: &pin,
                    wallet: &wallet,
                    session: &session,
                    calls: &calls,
                },
                None,
            )
            .await
        }
    };
    let code = |r: Result<Submitted, SessionError>| r.map(|_| ()).unwrap_err().code();

    let session = new_session(3600);
    register(&session, 1).await.unwrap();

    // INVALID_WALLET_TYPE_FOR_SESSION: an Argent ("READY") wallet.
    let ready = WalletData {
        wallet_type: WalletType::Ready,
        ..wallet.clone()
    };
    assert_eq!(
        code(execute(&session, SESSION_PIN, &ready, transfer("transfer")).await),
        ErrorCode::InvalidWalletTypeForSession
    );
    // SESSION_DECRYPTION_FAILED: a wrong PIN.
    assert_eq!(
        code(execute(&session, "0000", &wallet, transfer("transfer")).await),
        ErrorCode::SessionDecryptionFailed
    );
    // SESSION_ENTRYPOINT_NOT_ALLOWED: `approve` under a `transfer`-only whitelist.
    assert_eq!(
        code(execute(&session, SESSION_PIN, &wallet, transfer("approve")).await),
        ErrorCode::SessionEntrypointNotAllowed
    );
    // SESSION_NOT_REGISTERED: a key the owner never registered.
    let stranger = new_session(3600);
    assert_eq!(
        code(execute(&stranger, SESSION_PIN, &wallet, transfer("transfer")).await),
        ErrorCode::SessionNotRegistered
    );
    // SESSION_MAX_CALLS_EXCEEDED: the one allowed call, then one more.
    let hash = execute(&session, SESSION_PIN, &wallet, transfer("transfer"))
        .await
        .unwrap();
    sdk.wait_for_transaction(&hash).await.unwrap();
    assert_eq!(
        code(execute(&session, SESSION_PIN, &wallet, transfer("transfer")).await),
        ErrorCode::SessionMaxCallsExceeded
    );
    // SESSION_REVOKED: revoked by the owner; revoking again says so too.
    let revoke = || {
        sdk.sessions().revoke_session_key(
            RevokeSessionKey {
                encrypt_key: OWNER_PIN,
                wallet: &wallet,
                session_public_key: &session.public_key,
            },
            None,
        )
    };
    sdk.wait_for_transaction(&revoke().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        code(execute(&session, SESSION_PIN, &wallet, transfer("transfer")).await),
        ErrorCode::SessionRevoked
    );
    assert_eq!(code(revoke().await), ErrorCode::SessionRevoked);

    // SESSION_EXPIRED by the client's clock...
    let short = new_session(600);
    register(&short, 5).await.unwrap();
    clock.store(short.valid_until + 1, Ordering::SeqCst);
    assert_eq!(
        code(execute(&short, SESSION_PIN, &wallet, transfer("transfer")).await),
        ErrorCode::SessionExpired
    );
    // ...and by chain time when the client's clock lags behind.
    clock.store(w.now().await, Ordering::SeqCst);
    w.devnet.set_time(short.valid_until + 1).await;
    w.devnet
        .transfer_strk(&w.devnet.account(0), Felt::from(0x5u8), 1)
        .await
        .unwrap(); // a block at the new time
    assert_eq!(
        code(execute(&short, SESSION_PIN, &wallet, transfer("transfer")).await),
        ErrorCode::SessionExpired
    );
    // Registering a session that already expired on chain is refused too.
    assert_eq!(
        register(&short, 5).await.unwrap_err().code(),
        ErrorCode::SessionExpired
    );

    // SESSION_CREATION_FAILED: a zero duration, or one that overflows the expiry.
    for seconds in [0, u64::MAX] {
        let error = sdk
            .sessions()
            .create_session_key(CreateSessionKey::new(SESSION_PIN).duration_seconds(seconds))
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::SessionCreationFailed);
    }

    // INVALID_SPENDING_POLICY: a zero window, nothing sent.
    let error = sdk
        .sessions()
        .set_spending_policy(
            SetSpendingPolicy {
                encrypt_key: OWNER_PIN,
                wallet: &wallet,
                policy: &SpendingPolicyConfig {
                    session_public_key: session.public_key.clone(),
                    token: token.clone(),
                    max_per_call: "1".into(),
                    max_per_window: "1".into(),
                    window_seconds: 0,
                },
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidSpendingPolicy);
    // ...and removing a policy that does not exist: the chain's refusal, mapped.
    let error = sdk
        .sessions()
        .remove_spending_policy(
            RemoveSpendingPolicy {
                encrypt_key: OWNER_PIN,
                wallet: &wallet,
                session_public_key: &session.public_key,
                token: &token,
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidSpendingPolicy);
    assert!(error.message().contains("Policy: not found"), "{error}");
}
