//! Shared by the SDK's devnet tests (each test binary uses a part).
#![allow(dead_code)]

use chipi_contract_tests::TestWallet;
use chipi_core::{encrypt_private_key, KeyFormat, SecretKey};
use chipi_sdk::{WalletData, WalletType};

/// The test wallet as the JS SDK would hold it: its owner key encrypted with `pin`.
pub fn wallet_data(w: &TestWallet, pin: &str) -> WalletData {
    let owner = SecretKey::from_hex(&format!("{:#x}", w.owner_key)).expect("owner key");
    WalletData {
        public_key: format!("{:#x}", w.address),
        encrypted_private_key: encrypt_private_key(&owner, pin, KeyFormat::Compatible)
            .expect("encrypts"),
        wallet_type: WalletType::Chipi,
    }
}

/// A client of the test wallet's devnet over the direct transport, its clock fixed at `now`.
pub fn direct_sdk(w: &TestWallet, now: u64) -> chipi_sdk::ChipiSdk {
    chipi_sdk::ChipiSdk::builder(w.devnet.rpc_url().as_str())
        .chain_id(w.devnet.chain_id())
        .transport(chipi_sdk::Transport::Direct)
        .clock(move || now)
        .build()
        .expect("client builds")
}

/// A session made by `sdk` (`pin`, one hour) and registered on the test wallet by the
/// harness's owner with `max_calls` and `allowed`.
pub async fn registered_session(
    w: &TestWallet,
    sdk: &chipi_sdk::ChipiSdk,
    pin: &str,
    max_calls: u32,
    allowed: &[chipi_core::Felt],
) -> (chipi_sdk::SessionKeyData, chipi_contract_tests::Session) {
    let session = sdk
        .sessions()
        .create_session_key(chipi_sdk::CreateSessionKey::new(pin).duration_seconds(3600))
        .expect("session created");
    let harness = chipi_contract_tests::Session {
        private_key: chipi_core::Felt::ZERO, // the harness only registers it
        public_key: chipi_core::Felt::from_hex(&session.public_key).expect("public key"),
        valid_until: session.valid_until,
    };
    w.register(&harness, max_calls, allowed).await;
    (session, harness)
}

/// The test wallet as session writes need it (no owner key).
pub fn session_wallet(w: &TestWallet) -> WalletData {
    WalletData {
        public_key: format!("{:#x}", w.address),
        encrypted_private_key: String::new(),
        wallet_type: WalletType::Chipi,
    }
}

/// A STRK `transfer` of `amount` to `to`, in the JS shape.
pub fn strk_transfer_call(to: &str, amount: u128) -> chipi_sdk::Call {
    chipi_sdk::Call {
        contract_address: format!("{:#x}", chipi_devnet::STRK_ADDRESS),
        entrypoint: "transfer".into(),
        calldata: vec![to.into(), amount.to_string(), "0".into()],
    }
}

/// `calls` run by `session` through `sdk` (no bearer token).
pub async fn run_session(
    sdk: &chipi_sdk::ChipiSdk,
    wallet: &WalletData,
    session: &chipi_sdk::SessionKeyData,
    pin: &str,
    calls: &[chipi_sdk::Call],
) -> Result<chipi_sdk::Submitted, chipi_sdk::SessionError> {
    let params = chipi_sdk::ExecuteWithSession {
        encrypt_key: pin,
        wallet,
        session,
        calls,
    };
    sdk.execute_transaction_with_session(params, None).await
}
