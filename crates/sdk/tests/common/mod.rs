//! Shared by the SDK's devnet tests.

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
