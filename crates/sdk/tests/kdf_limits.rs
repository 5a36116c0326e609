//! `ChipiSdk::builder(..).kdf_limits(..)` (docs/sdk.md, "Keys"): a strong-format key file
//! asking for more than the default `KdfLimits` fails to decrypt with the default builder
//! and decrypts once the limits are raised. No node needed: decryption runs before the
//! first node read, so a decrypted key shows as the node's `NETWORK_ERROR` that follows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_sdk::*;

const PIN: &str = "482913";
/// Nothing listens there: the first node read fails at once.
const NO_NODE: &str = "http://127.0.0.1:9/rpc";

/// Cheap for Argon2 (64 KiB, one pass) but over the default limits' 4 lanes.
const FIVE_LANES: Argon2Settings = Argon2Settings {
    memory_kib: 64,
    iterations: 1,
    parallelism: 5,
};

async fn execute(sdk: &ChipiSdk, session: &SessionKeyData, pin: &str) -> ErrorCode {
    let wallet = WalletData {
        public_key: "0x1234".into(),
        encrypted_private_key: "unused".into(),
        wallet_type: WalletType::Chipi,
    };
    let calls = [Call {
        contract_address: "0x4567".into(),
        entrypoint: "transfer".into(),
        calldata: vec!["0x31".into(), "7".into(), "0".into()],
    }];
    let params = ExecuteWithSession {
        encrypt_key: pin,
        wallet: &wallet,
        session,
        calls: &calls,
    };
    sdk.execute_transaction_with_session(params, None)
        .await
        .unwrap_err()
        .code()
}

#[tokio::test]
async fn raised_kdf_limits_admit_a_key_file_the_default_refuses() {
    assert!(!KdfLimits::default().admits(FIVE_LANES));
    let default = ChipiSdk::builder(NO_NODE).build().unwrap();
    let session = default
        .sessions()
        .create_session_key(CreateSessionKey::new(PIN).format(KeyFormat::Strong(FIVE_LANES)))
        .unwrap();
    assert!(session.encrypted_private_key.contains("p=5"));

    assert_eq!(
        execute(&default, &session, PIN).await,
        ErrorCode::SessionDecryptionFailed
    );

    let raised = ChipiSdk::builder(NO_NODE)
        .kdf_limits(KdfLimits {
            max_parallelism: 5,
            ..KdfLimits::default()
        })
        .build()
        .unwrap();
    // Decrypted: the next step, reading the session on chain, is what fails.
    assert_eq!(
        execute(&raised, &session, PIN).await,
        ErrorCode::NetworkError
    );
    // And the KDF really ran: a wrong PIN still fails to decrypt.
    assert_eq!(
        execute(&raised, &session, "000000").await,
        ErrorCode::SessionDecryptionFailed
    );
}
