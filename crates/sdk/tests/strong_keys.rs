//! Owner and session keys in the strong format (Argon2id + XChaCha20-Poly1305) work
//! through the client exactly like JS-compatible ones; decryption detects the format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::{encrypt_private_key, ErrorCode, SecretKey};
use chipi_sdk::*;

const OWNER_PIN: &str = "owner-pin";
const SESSION_PIN: &str = "482913";

#[tokio::test]
async fn strong_format_keys_register_and_sign() {
    let w = TestWallet::new().await;
    let sdk = ChipiSdk::builder(w.devnet.rpc_url().as_str())
        .build()
        .unwrap();
    assert_eq!(sdk.transport(), &Transport::Direct);
    let strong = KeyFormat::Strong(Argon2Settings::default());
    let owner = SecretKey::from_hex(&format!("{:#x}", w.owner_key)).unwrap();
    let wallet = WalletData {
        public_key: format!("{:#x}", w.address),
        encrypted_private_key: encrypt_private_key(&owner, OWNER_PIN, strong).unwrap(),
        wallet_type: WalletType::Chipi,
    };
    assert!(wallet.encrypted_private_key.starts_with("chipi1$argon2id$"));
    let session = sdk
        .sessions()
        .create_session_key(CreateSessionKey::new(SESSION_PIN).format(strong))
        .unwrap();
    let config = SessionConfig {
        session_public_key: session.public_key.clone(),
        valid_until: session.valid_until,
        max_calls: 2,
        allowed_entrypoints: vec![],
    };
    let add = AddSessionKey {
        encrypt_key: OWNER_PIN,
        wallet: &wallet,
        session_config: &config,
    };
    let hash = sdk
        .sessions()
        .add_session_key_to_contract(add, None)
        .await
        .unwrap();
    sdk.wait_for_transaction(&hash).await.unwrap();

    let calls = [Call {
        contract_address: format!("{:#x}", chipi_devnet::STRK_ADDRESS),
        entrypoint: "transfer".into(),
        calldata: vec!["0x31".into(), "7".into(), "0".into()],
    }];
    let params = ExecuteWithSession {
        encrypt_key: SESSION_PIN,
        wallet: &wallet,
        session: &session,
        calls: &calls,
    };
    let hash = sdk
        .execute_transaction_with_session(params.clone(), None)
        .await
        .unwrap();
    sdk.wait_for_transaction(&hash).await.unwrap();
    assert_eq!(w.balance(0x31u8.into()).await, 7);

    let wrong = ExecuteWithSession {
        encrypt_key: "482914",
        ..params
    };
    let error = sdk
        .execute_transaction_with_session(wrong, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::SessionDecryptionFailed);
    assert!(!error.to_string().contains("482914"));
}
