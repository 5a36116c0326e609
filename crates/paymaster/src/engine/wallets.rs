//! Sponsored wallet deployment (API.md section 6) and the wallet records of apps' users.
//! A deployment is a sponsored transaction too: the app's policy applies to it.

use std::sync::Arc;

use chipi_core::{verify_signature, wallet_address, Felt, OutsideExecution};

use super::deploy::AccountDeployment;
use super::{Engine, EngineError};
use crate::auth::{Caller, Principal};
use crate::store::{felt_text, iso_now, now, WalletRow};

/// The Universal Deployer Contract (the current one, on every public network and the devnet).
pub const UDC_ADDRESS: Felt =
    Felt::from_hex_unchecked("0x02ceed65a4bd731034c01113685c831b01c15d7d432f71afb1cf1634b53a2125");

/// The longest stored ciphertext of an owner key (the JS SDK's are about 100 characters;
/// the strong format a few hundred).
const MAX_CIPHERTEXT: usize = 4096;

/// A wallet creation, parsed by a front end.
#[derive(Debug, Clone)]
pub struct CreateWallet {
    /// The app's user the wallet is for.
    pub external_user_id: String,
    /// The counterfactual address.
    pub address: Felt,
    /// The class to deploy.
    pub class: Felt,
    /// The deployment's salt (must be the owner key).
    pub salt: Felt,
    /// `unique` of the deployment (must be 0).
    pub unique: Felt,
    /// The constructor calldata (must be `[owner key]`).
    pub calldata: Vec<Felt>,
    /// The typed data the owner key signed (issued by prepare-creation).
    pub execution: OutsideExecution,
    /// The chain of that typed data.
    pub chain: Felt,
    /// The owner's signature `(r, s)`, when the request carried an owner signature.
    pub owner_signature: Option<(Felt, Felt)>,
    /// The owner key, encrypted by the client (stored, never read).
    pub encrypted_private_key: String,
    /// `CHIPI` unless the client said otherwise.
    pub wallet_type: String,
}

impl Engine {
    fn served_list(&self) -> String {
        self.config
            .account_classes
            .iter()
            .map(|c| format!("{c:#x}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The external user a request acts for: a user token's subject must be that user.
    pub fn acting_user(caller: &Caller, external_user_id: &str) -> Result<String, EngineError> {
        if external_user_id.is_empty() || external_user_id.len() > 256 {
            return Err(EngineError::Invalid(
                "`externalUserId`: 1 to 256 characters".into(),
            ));
        }
        match &caller.who {
            Principal::User(user) if user != external_user_id => Err(EngineError::Unauthorized(
                "the token's subject is not this externalUserId",
            )),
            Principal::User(_) | Principal::App => Ok(external_user_id.to_string()),
            Principal::Anyone => Err(EngineError::Unauthorized(
                "acting for a user needs a user token or the app's secret key",
            )),
        }
    }

    /// Typed data over no calls for the new owner key to sign (proof that the client
    /// holds the key, with a nonce this service issued), and the class to deploy.
    pub async fn prepare_creation(
        &self,
        caller: &Caller,
        address: Felt,
        owner: Felt,
        class: Option<Felt>,
    ) -> Result<(OutsideExecution, Felt), EngineError> {
        let served = &self.config.account_classes;
        let class = match class {
            Some(class) => {
                self.check_served(class)?;
                class
            }
            None => served
                .iter()
                .copied()
                .find(|class| wallet_address(owner, *class) == address)
                .ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "the address is not a wallet of this paymaster's class; pass `classHash` ({})",
                        self.served_list()
                    ))
                })?,
        };
        if wallet_address(owner, class) != address {
            return Err(EngineError::Invalid(
                "the address is not the counterfactual address of this owner key and class".into(),
            ));
        }
        let policy = &caller.app.policy;
        policy
            .check_active(now())
            .map_err(|r| self.refused(caller, r))?;
        policy
            .check_class(class, served)
            .map_err(|r| self.refused(caller, r))?;
        let user = caller.user_or(&felt_text(address));
        let execution = self
            .issue(caller, &user, address, Vec::new(), None, 0)
            .await?;
        Ok((execution, class))
    }

    /// Checks the deployment data and the owner's proof, records the wallet for the user,
    /// and deploys it sponsored (or records that it is deployed already).
    pub async fn create_wallet(
        self: &Arc<Self>,
        caller: &Caller,
        request: CreateWallet,
    ) -> Result<WalletRow, EngineError> {
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_secs(self.config.http.request_timeout_seconds);
        let user = Self::acting_user(caller, &request.external_user_id)?;
        let _in_service = self.enter(caller, &user)?;
        let CreateWallet {
            address,
            class,
            salt: owner,
            ..
        } = request;
        if request.encrypted_private_key.is_empty()
            || request.encrypted_private_key.len() > MAX_CIPHERTEXT
        {
            return Err(EngineError::Invalid(format!(
                "`encryptedPrivateKey`: 1 to {MAX_CIPHERTEXT} characters"
            )));
        }
        if request.wallet_type.is_empty() || request.wallet_type.len() > 32 {
            return Err(EngineError::Invalid(
                "`walletType`: 1 to 32 characters".into(),
            ));
        }
        self.check_served(class)?;
        if request.unique != Felt::ZERO
            || request.calldata != [owner]
            || wallet_address(owner, class) != address
        {
            return Err(EngineError::Invalid(
                "the deployment data does not give this address (salt and calldata = [owner key], unique = 0)".into(),
            ));
        }
        let execution = &request.execution;
        let issued = self
            .store
            .issued(address, execution.nonce)
            .await?
            .filter(|i| i.app == caller.app.public_key && i.calls_hash == super::calls_hash(&[]));
        let Some(issued) = issued.filter(|_| request.chain == self.chain_id) else {
            return Err(EngineError::rejected(
                "the typed data was not issued by this paymaster for this address",
            ));
        };
        let Some((r, s)) = request.owner_signature else {
            return Err(EngineError::Rejected {
                code: chipi_core::ErrorCode::InvalidSignature,
                message: "a wallet creation is signed by the owner key".into(),
            });
        };
        let hash = execution.message_hash(self.chain_id, address);
        if !verify_signature(&owner, &hash, &r, &s) {
            return Err(EngineError::Rejected {
                code: chipi_core::ErrorCode::InvalidSignature,
                message: "the signature does not verify against the owner key".into(),
            });
        }
        let policy = &caller.app.policy;
        policy
            .check_active(now())
            .map_err(|r| self.refused(caller, r))?;
        policy
            .check_class(class, &self.config.account_classes)
            .map_err(|r| self.refused(caller, r))?;
        let stamp = iso_now();
        let candidate = WalletRow {
            id: format!("wal_{:032x}", rand::random::<u128>()),
            app: caller.app.public_key.clone(),
            external_user_id: user.clone(),
            address,
            owner_public_key: owner,
            class_hash: class,
            encrypted_private_key: request.encrypted_private_key.clone(),
            wallet_type: request.wallet_type.clone(),
            tx_hash: None,
            is_deployed: false,
            created_at: stamp.clone(),
            updated_at: stamp.clone(),
        };
        let fresh = self.store.insert_wallet(&candidate).await?;
        let mut row = self
            .store
            .wallet_of_user(&caller.app.public_key, &user)
            .await?
            .ok_or(EngineError::Internal)?;
        if row.address != candidate.address {
            // A creation reserved but never sent may be replaced by the same user's retry
            // (the JS SDK makes a new key at every attempt).
            if !self
                .store
                .replace_unsent_wallet(&row.id, &candidate)
                .await?
            {
                return Err(EngineError::WalletExists);
            }
            row = WalletRow {
                id: row.id,
                created_at: row.created_at,
                ..candidate.clone()
            };
        }
        if row.is_deployed {
            return Ok(row);
        }
        if fresh && issued.expires_at < now() {
            return Err(EngineError::rejected(
                "the typed data expired; prepare the creation again",
            ));
        }
        // Deployed already (by anyone): record it, send nothing.
        if self.is_deployed(address).await? {
            self.store
                .wallet_deployed(&row.id, None, true, &stamp)
                .await?;
            row.is_deployed = true;
            return Ok(row);
        }
        // The Chipi API sends no tip.
        let deployment = AccountDeployment::session(owner, class);
        let hash = self
            .send_deployment(caller, &user, &deployment, 0, deadline)
            .await?;
        self.store
            .wallet_deployed(&row.id, Some(hash), false, &stamp)
            .await?;
        row.tx_hash = Some(hash);
        tracing::info!(app = %caller.app.name, wallet = %felt_text(address), "wallet deployment sent");
        Ok(row)
    }

    /// The wallet of `external_user_id` in the caller's app.
    pub async fn wallet_of(
        &self,
        caller: &Caller,
        external_user_id: &str,
    ) -> Result<WalletRow, EngineError> {
        let user = Self::acting_user(caller, external_user_id)?;
        self.store
            .wallet_of_user(&caller.app.public_key, &user)
            .await?
            .ok_or(EngineError::NotFound("no wallet for this user"))
    }

    /// Whether a contract is deployed at `address`.
    pub async fn is_deployed(&self, address: Felt) -> Result<bool, EngineError> {
        use starknet_rust_core::types::{BlockId, BlockTag, StarknetError};
        use starknet_rust_providers::{Provider, ProviderError};
        match self
            .node
            .get_class_hash_at(BlockId::Tag(BlockTag::PreConfirmed), address)
            .await
        {
            Ok(_) => Ok(true),
            Err(ProviderError::StarknetError(StarknetError::ContractNotFound)) => Ok(false),
            Err(_) => Err(EngineError::NodeUnavailable),
        }
    }
}
