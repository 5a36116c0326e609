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
