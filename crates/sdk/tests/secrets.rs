//! No secret in `Debug` output or errors: private keys, ciphertexts, PINs, tokens, API
//! keys, and node or paymaster URLs (which may carry an API key in their path).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;

use chipi_core::{encrypt_private_key, Felt, KeyFormat, SecretKey};
use chipi_sdk::*;

const PIN: &str = "pin-SECRET";

/// Display and Debug of an error and of every source below it.
fn everything(error: &SessionError) -> String {
    let mut text = format!("{error} {error:?}");
    let mut source = error.source();
    while let Some(e) = source {
        text += &format!(" {e} {e:?}");
        source = e.source();
    }
    text
}

fn assert_hidden(what: &str, shown: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!shown.contains(secret), "{what} shows a secret: {shown}");
    }
}

#[test]
fn every_public_type_holding_a_key_or_ciphertext_hides_it() {
    let key = SecretKey::random();
    let key_hex = key.to_hex();
    let key_digits = key_hex.trim_start_matches("0x").to_string();
    let ciphertext = encrypt_private_key(&key, PIN, KeyFormat::Compatible).unwrap();
    let secrets = [key_digits.as_str(), ciphertext.as_str(), "SECRET"];

    let session = create_session_key(CreateSessionKey::new(PIN).now(1_000)).unwrap();
    let wallet = WalletData {
        public_key: "0x1234".into(),
        encrypted_private_key: ciphertext.clone(),
        wallet_type: WalletType::Chipi,
    };
    let stored_session = SessionKeyData {
        encrypted_private_key: ciphertext.clone(),
        ..session.clone()
    };
    let config = SessionConfig {
        session_public_key: session.public_key.clone(),
        valid_until: session.valid_until,
        max_calls: 1,
        allowed_entrypoints: vec![],
    };
    let policy = SpendingPolicyConfig {
        session_public_key: session.public_key.clone(),
        token: "0x1".into(),
        max_per_call: "1".into(),
        max_per_window: "1".into(),
        window_seconds: 1,
    };
    let calls: [Call; 0] = [];
    let shown = [
        ("SecretKey", format!("{key:?}")),
        ("WalletData", format!("{wallet:?}")),
        ("SessionKeyData", format!("{stored_session:?}")),
        (
            "SessionKeyData (created)",
            format!("{session:?}").replace(&session.public_key, ""),
        ),
        (
            "CreateSessionKey",
            format!("{:?}", CreateSessionKey::new(PIN)),
        ),
        (
            "CreateWallet",
            format!(
                "{:?}",
                CreateWallet {
                    encrypt_key: PIN,
                    external_user_id: "user",
                    class_hash: Felt::ONE,
                }
            ),
        ),
        (
            "CreatedWallet",
            format!(
                "{:?}",
                CreatedWallet {
                    wallet: wallet.clone(),
                    transaction_hash: None,
                    class_hash: Felt::ONE,
                }
            ),
        ),
        (
            "ExecuteWithSession",
            format!(
                "{:?}",
                ExecuteWithSession {
                    encrypt_key: PIN,
                    wallet: &wallet,
                    session: &stored_session,
                    calls: &calls
                }
            ),
        ),
        (
            "AddSessionKey",
            format!(
                "{:?}",
                AddSessionKey {
                    encrypt_key: PIN,
                    wallet: &wallet,
                    session_config: &config
                }
            ),
        ),
        (
            "RevokeSessionKey",
            format!(
                "{:?}",
                RevokeSessionKey {
                    encrypt_key: PIN,
                    wallet: &wallet,
                    session_public_key: "0x1"
                }
            ),
        ),
        (
            "SetSpendingPolicy",
            format!(
                "{:?}",
                SetSpendingPolicy {
                    encrypt_key: PIN,
                    wallet: &wallet,
                    policy: &policy
                }
            ),
        ),
        (
            "RemoveSpendingPolicy",
            format!(
                "{:?}",
                RemoveSpendingPolicy {
                    encrypt_key: PIN,
                    wallet: &wallet,
                    session_public_key: "0x1",
                    token: "0x1"
                }
            ),
        ),
        (
            "WalletSigner",
            format!("{:?}", WalletSigner::owner(key.clone())),
        ),
        (
            "WalletAccount",
            format!(
                "{:?}",
                WalletAccount::new(
                    (),
                    Felt::ONE,
                    Felt::TWO,
                    WalletSigner::session(key.clone(), 9)
                )
            ),
        ),
    ];
    for (what, text) in shown {
        assert_hidden(what, &text, &secrets);
    }
    // The created session's own ciphertext is hidden too.
    assert!(!format!("{session:?}").contains(&session.encrypted_private_key));
}

#[test]
fn the_client_hides_its_api_key_token_and_url_paths() {
    let builder = ChipiSdk::builder("https://user:SECRET@rpc.example/v2/SECRET?key=SECRET")
        .paymaster("https://paymaster.example/SECRET/", "pk_dev_SECRET")
        .bearer_token("jwt-SECRET");
    assert_hidden("ChipiSdkBuilder", &format!("{builder:?}"), &["SECRET"]);
    let sdk = builder.build().unwrap();
    let shown = format!("{sdk:?}");
    assert_hidden("ChipiSdk", &shown, &["SECRET"]);
    assert!(
        shown.contains("rpc.example"),
        "the host stays visible: {shown}"
    );
    for bad in ["http://[SECRET", "SECRET"] {
        let error = ChipiSdk::builder(bad).build().unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidInput);
        assert_hidden("bad RPC URL error", &everything(&error), &["SECRET"]);
    }
}

#[tokio::test]
async fn a_node_url_carrying_a_key_never_reaches_an_error() {
    // A closed port: every node call fails.
    let url = "http://127.0.0.1:1/v2/SECRET";
    let sdk = ChipiSdk::builder(url).build().unwrap();
    let error = sdk.chain_id().await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::NetworkError);
    assert!(error.message().contains("cannot connect"), "{error}");
    assert_hidden("chain_id", &everything(&error), &["SECRET"]);

    let sdk = ChipiSdk::builder(url)
        .chain_id(chipi_core::chain_id::SEPOLIA)
        .transport(Transport::Direct)
        .build()
        .unwrap();
    let key = SecretKey::random();
    let wallet = WalletData {
        public_key: "0x1234".into(),
        encrypted_private_key: encrypt_private_key(&key, PIN, KeyFormat::Compatible).unwrap(),
        wallet_type: WalletType::Chipi,
    };
    let session = sdk
        .sessions()
        .create_session_key(CreateSessionKey::new(PIN))
        .unwrap();
    let calls = [Call {
        contract_address: "0x5678".into(),
        entrypoint: "transfer".into(),
        calldata: vec!["0x1".into(), "1".into(), "0".into()],
    }];
    let mut errors = vec![
        sdk.sessions()
            .get_session_data(GetSessionData {
                wallet_address: "0x1234",
                session_public_key: &session.public_key,
            })
            .await
            .unwrap_err(),
        sdk.execute_transaction_with_session(
            ExecuteWithSession {
                encrypt_key: PIN,
                wallet: &wallet,
                session: &session,
                calls: &calls,
            },
            None,
        )
        .await
        .unwrap_err(),
        sdk.sessions()
            .revoke_session_key(
                RevokeSessionKey {
                    encrypt_key: PIN,
                    wallet: &wallet,
                    session_public_key: &session.public_key,
                },
                None,
            )
            .await
            .unwrap_err(),
    ];
    let sent = Submitted {
        transaction_hash: Felt::ONE,
        wallet: Felt::TWO,
        outside_nonce: None,
    };
    errors.push(sdk.wait_for_transaction(&sent).await.unwrap_err());
    for error in errors {
        assert_eq!(error.code(), ErrorCode::NetworkError, "{error}");
        assert_hidden("node error", &everything(&error), &["SECRET"]);
    }
}
