//! A session key as a starknet-rust account: direct INVOKE v3 transactions from the
//! wallet, signed `[session_key, r, s, valid_until]` over the transaction hash.

use async_trait::async_trait;
use chipi_core::{sign_hash, Felt, SecretKey};
use starknet_rust_accounts::{
    Account, ConnectedAccount, ExecutionEncoder, RawDeclarationV3, RawExecutionV3,
};
use starknet_rust_core::types::{BlockId, BlockTag, Call};
use starknet_rust_providers::Provider;
use starknet_rust_signers::SignerInteractivityContext;

/// The wallet driven by a session key (the wallet pays its fees).
pub struct SessionAccount<P> {
    provider: P,
    address: Felt,
    chain_id: Felt,
    key: SecretKey,
    public_key: Felt,
    valid_until: u64,
}

impl<P> SessionAccount<P> {
    /// The wallet at `address` on `chain_id`, signing with `key` until `valid_until`.
    pub fn new(
        provider: P,
        address: Felt,
        chain_id: Felt,
        key: SecretKey,
        valid_until: u64,
    ) -> Self {
        let public_key = key.public_key();
        Self {
            provider,
            address,
            chain_id,
            key,
            public_key,
            valid_until,
        }
    }
}

/// A session cannot sign what it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum SessionSignError {
    /// The hash was out of range (cannot happen for transaction hashes).
    #[error("could not sign: {0}")]
    Sign(String),
    /// Sessions never declare classes.
    #[error("a session cannot declare classes")]
    Declare,
}

impl<P: Send + Sync> ExecutionEncoder for SessionAccount<P> {
    fn encode_calls(&self, calls: &[Call]) -> Vec<Felt> {
        chipi_core::encode_calls(calls)
    }
}

#[async_trait]
impl<P: Send + Sync> Account for SessionAccount<P> {
    type SignError = SessionSignError;

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
        let (r, s) = sign_hash(&self.key.to_felt(), hash)
            .map_err(|e| SessionSignError::Sign(e.to_string()))?;
        Ok(vec![self.public_key, r, s, Felt::from(self.valid_until)])
    }

    async fn sign_declaration_v3(
        &self,
        _declaration: &RawDeclarationV3,
        _query_only: bool,
    ) -> Result<Vec<Felt>, Self::SignError> {
        Err(SessionSignError::Declare)
    }

    fn is_signer_interactive(&self, _context: SignerInteractivityContext<'_>) -> bool {
        false
    }
}

impl<P: Provider + Send + Sync> ConnectedAccount for SessionAccount<P> {
    type Provider = P;

    fn provider(&self) -> &Self::Provider {
        &self.provider
    }

    fn block_id(&self) -> BlockId {
        BlockId::Tag(BlockTag::Latest)
    }
}
