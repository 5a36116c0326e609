//! `createWallet`: a new owner key pair, encrypted with the user's PIN in the JS
//! format, deployed by the paymaster (which pays) at the standard counterfactual address.

use std::time::Duration;

use chipi_core::{
    encrypt_private_key, wallet_address, CreateWalletRequest, DeploymentData, ErrorCode, Felt,
    KeyFormat, PrepareWalletCreationRequest, SecretKey,
};
use starknet_rust_core::types::{BlockId, BlockTag, StarknetError};
use starknet_rust_providers::{Provider, ProviderError};

use crate::config::invalid;
use crate::node::provider_error;
use crate::sponsored::verify_outside_execution;
use crate::{ChipiSdk, SessionError, WalletData, WalletSigner, WalletType};

/// Parameters of [`ChipiSdk::create_wallet`]. `Debug` hides the encryptKey.
#[derive(Clone, Copy)]
pub struct CreateWallet<'a> {
    /// The PIN the owner key is encrypted with (JS-compatible format).
    pub encrypt_key: &'a str,
    /// The app's id for the user (one wallet per user and app).
    pub external_user_id: &'a str,
    /// The account class to deploy (the session account's class hash).
    pub class_hash: Felt,
}

impl std::fmt::Debug for CreateWallet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateWallet")
            .field("encrypt_key", &"<redacted>")
            .field("external_user_id", &self.external_user_id)
            .field("class_hash", &self.class_hash)
            .finish()
    }
}

/// A wallet the paymaster deployed (or had deployed already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedWallet {
    /// The wallet as the JS SDK stores it: address, encrypted owner key, `CHIPI`.
    pub wallet: WalletData,
    /// The deployment transaction, when the paymaster sent one.
    pub transaction_hash: Option<Felt>,
    /// The class deployed.
    pub class_hash: Felt,
}

impl ChipiSdk {
    /// `createWallet`: makes an owner key pair, encrypts it with `params.encrypt_key`,
    /// proves ownership of the key to the paymaster (signing the creation typed data it
    /// issues, after checking that it carries no calls) and has it deploy the wallet.
    /// [`ChipiSdk::wait_for_wallet`] waits until the chain has it.
    pub async fn create_wallet(
        &self,
        params: CreateWallet<'_>,
        bearer_token: Option<&str>,
    ) -> Result<CreatedWallet, SessionError> {
        if params.encrypt_key.is_empty() {
            return Err(invalid("encryptKey must not be empty"));
        }
        if params.external_user_id.is_empty() {
            return Err(invalid("externalUserId must not be empty"));
        }
        let crate::client::Route::Chipi(paymaster, bearer) = self.route(bearer_token)? else {
            return Err(invalid(
                "creating a wallet needs the sponsored transport (Chipi's paymaster API deploys it)",
            ));
        };
        let chain_id = self.chain_id().await?;
        let key = SecretKey::random();
        let owner = key.public_key();
        let address = wallet_address(owner, params.class_hash);
        let encrypted = encrypt_private_key(&key, params.encrypt_key, KeyFormat::Compatible)
            .map_err(|e| {
                SessionError::new(ErrorCode::SessionCreationFailed, e.to_string()).with_source(e)
            })?;
        let prepared = paymaster
            .prepare_wallet_creation(
                bearer,
                &PrepareWalletCreationRequest {
                    public_key: format!("{address:#x}"),
                    stark_key_pub_a_x: format!("{owner:#x}"),
                    wallet_type: Some("CHIPI".into()),
                    class_hash: Some(format!("{:#x}", params.class_hash)),
                    chain: Some("STARKNET".into()),
                },
            )
            .await?;
        if chipi_core::parse_felt_strict(&prepared.account_class_hash) != Some(params.class_hash) {
            return Err(SessionError::new(
                ErrorCode::TypedDataMismatch,
                "the paymaster would deploy another class than the one asked for",
            ));
        }
        // The new key signs nothing but a proof of ownership: no calls.
        let execution = verify_outside_execution(
            &prepared.typed_data,
            &[],
            chain_id,
            self.now(),
            self.inner.max_execution_window,
        )?;
        let signature = WalletSigner::owner(key).sign(execution.message_hash(chain_id, address))?;
        let record = paymaster
            .create_wallet(
                bearer,
                &CreateWalletRequest {
                    external_user_id: params.external_user_id.to_string(),
                    public_key: format!("{address:#x}"),
                    wallet_type: Some("CHIPI".into()),
                    user_signature: signature,
                    typed_data: execution.to_typed_data(chain_id),
                    encrypted_private_key: chipi_core::Ciphertext(encrypted.clone()),
                    deployment_data: DeploymentData {
                        class_hash: format!("{:#x}", params.class_hash),
                        salt: format!("{owner:#x}"),
                        unique: "0x0".into(),
                        calldata: vec![format!("{owner:#x}")],
                    },
                },
            )
            .await?;
        if chipi_core::parse_felt_strict(&record.public_key) != Some(address) {
            // The user already had a wallet elsewhere, or a hostile answer.
            return Err(SessionError::new(
                ErrorCode::PaymasterError,
                "the paymaster answered with a wallet at another address",
            ));
        }
        Ok(CreatedWallet {
            wallet: WalletData {
                public_key: format!("{address:#x}"),
                encrypted_private_key: encrypted,
                wallet_type: WalletType::Chipi,
            },
            transaction_hash: record
                .tx_hash
                .as_deref()
                .and_then(chipi_core::parse_felt_strict),
            class_hash: params.class_hash,
        })
    }

    /// Waits until `created` is deployed on chain with the class asked for (read from
    /// the node, not taken from the paymaster).
    pub async fn wait_for_wallet(&self, created: &CreatedWallet) -> Result<(), SessionError> {
        let address = chipi_core::parse_felt_strict(&created.wallet.public_key)
            .ok_or_else(|| invalid("the wallet address is not a felt"))?;
        let deadline = tokio::time::Instant::now() + self.inner.confirmation_timeout;
        loop {
            match self
                .provider()
                .get_class_hash_at(BlockId::Tag(BlockTag::PreConfirmed), address)
                .await
            {
                Ok(class) if class == created.class_hash => return Ok(()),
                Ok(_) => {
                    return Err(SessionError::new(
                        ErrorCode::PaymasterError,
                        "another class is deployed at the wallet address",
                    ))
                }
                Err(ProviderError::StarknetError(StarknetError::ContractNotFound)) => {}
                Err(e) => return Err(provider_error(e, "reading the wallet's class")),
            }
            if tokio::time::Instant::now() > deadline {
                return Err(SessionError::new(
                    ErrorCode::PaymasterError,
                    "the wallet was not deployed in time",
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
