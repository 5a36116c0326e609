#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_core::{decrypt_private_key, Felt};
use chipi_sdk::*;

const FAST: Argon2Settings = Argon2Settings {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

#[test]
fn a_session_key_is_fresh_encrypted_and_valid_for_the_duration() {
    let a = create_session_key(CreateSessionKey::new("1234").now(1_000)).unwrap();
    let b = create_session_key(CreateSessionKey::new("1234").now(1_000)).unwrap();
    assert_ne!(a.public_key, b.public_key);
    assert_eq!(a.valid_until, 1_000 + DEFAULT_SESSION_DURATION_SECONDS);
    assert!(a.encrypted_private_key.starts_with("U2FsdGVkX1"));
    let public = Felt::from_hex(&a.public_key).unwrap();
    let key = decrypt_private_key(&a.encrypted_private_key, "1234", public).unwrap();
    assert_eq!(key.public_key(), public);

    let strong = create_session_key(
        CreateSessionKey::new("1234")
            .duration_seconds(60)
            .format(KeyFormat::Strong(FAST))
            .now(5),
    )
    .unwrap();
    assert_eq!(strong.valid_until, 65);
    assert!(strong.encrypted_private_key.starts_with("chipi1$argon2id$"));
    decrypt_private_key(
        &strong.encrypted_private_key,
        "1234",
        Felt::from_hex(&strong.public_key).unwrap(),
    )
    .unwrap();
}

#[test]
fn bad_durations_and_keys_fail_with_session_creation_failed() {
    for params in [
        CreateSessionKey::new("1234").duration_seconds(0),
        CreateSessionKey::new("1234")
            .duration_seconds(u64::MAX)
            .now(10),
        CreateSessionKey::new(""),
    ] {
        let error = create_session_key(params).unwrap_err();
        assert_eq!(error.code(), ErrorCode::SessionCreationFailed);
        assert_eq!(error.code().as_str(), "SESSION_CREATION_FAILED");
    }
}

#[test]
fn json_is_the_js_sdks() {
    let js = r#"{"publicKey":"0x4334e75c186e8362174f15c4687f02274c639a654fe0752c8db69d290f857f2","encryptedPrivateKey":"U2FsdGVkX1/qBWdmkPno7F7mns8I7zM3asruKQqLc4rtCDov6qw9f+sf2rgqfTyX4JCMOIeUQZJ4Q9vVMSut5ochxF8MffbWLciYhft7Rci7vUbjS9bA++LViDjz4BtJ","validUntil":1702500000}"#;
    let session: SessionKeyData = serde_json::from_str(js).unwrap();
    assert_eq!(session.valid_until, 1_702_500_000);
    assert_eq!(serde_json::to_string(&session).unwrap(), js);
    // The JS SDK's stored session decrypts with its PIN and matches its public key.
    decrypt_private_key(
        &session.encrypted_private_key,
        "1234",
        Felt::from_hex(&session.public_key).unwrap(),
    )
    .unwrap();

    let wallet: WalletData = serde_json::from_str(
        r#"{"publicKey":"0x1","encryptedPrivateKey":"x","walletType":"CHIPI","extra":1}"#,
    )
    .unwrap();
    assert_eq!(wallet.wallet_type, WalletType::Chipi);
    let ready: WalletData = serde_json::from_str(
        r#"{"publicKey":"0x1","encryptedPrivateKey":"x","walletType":"READY"}"#,
    )
    .unwrap();
    assert_eq!(ready.wallet_type, WalletType::Ready);
    assert_eq!(serde_json::to_value(&ready).unwrap()["walletType"], "READY");

    let config: SessionConfig = serde_json::from_str(r#"{"sessionPublicKey":"0x2","validUntil":5,"maxCalls":100,"allowedEntrypoints":["transfer"]}"#).unwrap();
    assert_eq!(config.max_calls, 100);
    let call: Call = serde_json::from_str(
        r#"{"contractAddress":"0x3","entrypoint":"transfer","calldata":["0x1","100","0x0"]}"#,
    )
    .unwrap();
    assert_eq!(call.calldata.len(), 3);
    let data = SessionDataResponse {
        is_active: true,
        valid_until: 9,
        remaining_calls: 4,
        allowed_entrypoints: vec![],
    };
    assert_eq!(
        serde_json::to_string(&data).unwrap(),
        r#"{"isActive":true,"validUntil":9,"remainingCalls":4,"allowedEntrypoints":[]}"#
    );
}

#[test]
fn parameters_never_print_the_pin() {
    let params = CreateSessionKey::new("987654-secret");
    assert!(!format!("{params:?}").contains("987654"));
}
