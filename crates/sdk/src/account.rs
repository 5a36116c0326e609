//! The wallet as a starknet-rust account (as Cartridge's `SessionAccount`): direct
//! INVOKE v3 transactions signed by its owner or a session through [`WalletSigner`].

use async_trait::async_trait;
use chipi_core::Felt;
use starknet_rust_accounts::{
    Account, ConnectedAccount, ExecutionEncoder, RawDeclarationV3, RawExecutionV3,
};
use starknet_rust_core::types::{BlockId, BlockTag, Call};
use starknet_rust_providers::Provider;
use starknet_rust_signers::SignerInteractivityContext;

use crate::{Role, SessionError, WalletSigner};

/// A CHIPI wallet driven by one of its keys; the wallet pays the fees.
///
/// Use `execute_v3(calls)` from [`Account`]; for a session, send with `.tip(0)`: the
/// wallet refuses tips on session transactions (the SDK's writes do this for you).
pub struct WalletAccount<P> {
    provider: P,
    address: Felt,
    chain_id: Felt,
    signer: WalletSigner,
}

impl<P> WalletAccount<P> {
    /// The wallet at `address` on `chain_id`, signing with `signer`.
    pub fn new(provider: P, address: Felt, chain_id: Felt, signer: WalletSigner) -> Self {
        Self {
            provider,
            address,
            chain_id,
            signer,
        }
    }

    /// The signer.
    pub fn signer(&self) -> &WalletSigner {
        &self.signer
    }
}

impl<P> std::fmt::Debug for WalletAccount<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletAccount")
            .field("address", &format_args!("{:#x}", self.address))
            .field("chain_id", &format_args!("{:#x}", self.chain_id))
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl<P: Send + Sync> ExecutionEncoder for WalletAccount<P> {
    fn encode_calls(&self, calls: &[Call]) -> Vec<Felt> {
        chipi_core::encode_calls(calls)
    }
}

#[async_trait]
impl<P: Send + Sync> Account for WalletAccount<P> {
    type SignError = SessionError;

    fn address(&self) -> Felt {
        self.address
    }

    fn chain_id(&self) -> Felt {
        self.chain_id
    }

    async fn sign_execution_v3(
        &self,
        execution: &RawExecutionV3,
        query_only: bool,
    ) -> Result<Vec<Felt>, Self::SignError> {
        let hash = execution.transaction_hash(self.chain_id, self.address, query_only, self);
        Ok(self.signer.sign(hash)?.to_felts())
    }

    async fn sign_declaration_v3(
        &self,
        declaration: &RawDeclarationV3,
        query_only: bool,
    ) -> Result<Vec<Felt>, Self::SignError> {
        match self.signer.role() {
            Role::Owner => {
                let hash = declaration.transaction_hash(self.chain_id, self.address, query_only);
                Ok(self.signer.sign(hash)?.to_felts())
            }
            Role::Session { .. } => Err(SessionError::new(
                chipi_core::ErrorCode::SessionEntrypointNotAllowed,
                "a session cannot declare classes",
            )),
        }
    }

    fn is_signer_interactive(&self, _context: SignerInteractivityContext<'_>) -> bool {
        false
    }
}

impl<P: Provider + Send + Sync> ConnectedAccount for WalletAccount<P> {
    type Provider = P;

    fn provider(&self) -> &Self::Provider {
        &self.provider
    }

    fn block_id(&self) -> BlockId {
        BlockId::Tag(BlockTag::Latest)
    }
}
