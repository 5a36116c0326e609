//! `sessions.getSessionData`: one read path through the node.

use chipi_core::{ErrorCode, Felt};
use starknet_rust_core::types::{
    BlockId, BlockTag, FunctionCall, MaybePreConfirmedBlockWithTxHashes,
};
use starknet_rust_core::utils::get_selector_from_name;
use starknet_rust_providers::Provider;

use crate::node::provider_error;
use crate::{SessionDataResponse, SessionError};

/// A session's full on-chain state, as the wallet stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// Unix seconds; 0 when absent or revoked.
    pub valid_until: u64,
    /// The call budget.
    pub max_calls: u32,
    /// Calls spent.
    pub calls_used: u32,
    /// Whitelisted selectors; empty allows all.
    pub allowed_entrypoints: Vec<Felt>,
    /// Whether the owner revoked this key.
    pub revoked: bool,
    /// The chain time the state was read at.
    pub chain_time: u64,
}

impl SessionState {
    /// Registered, not revoked, not expired by chain time, calls left.
    pub fn is_active(&self) -> bool {
        self.valid_until != 0
            && !self.revoked
            && self.chain_time <= self.valid_until
            && self.calls_used < self.max_calls
    }

    /// The JS SDK's response shape.
    pub fn to_response(&self) -> SessionDataResponse {
        SessionDataResponse {
            is_active: self.is_active(),
            valid_until: self.valid_until,
            remaining_calls: self.max_calls.saturating_sub(self.calls_used),
            allowed_entrypoints: self
                .allowed_entrypoints
                .iter()
                .map(|s| format!("{s:#x}"))
                .collect(),
        }
    }
}

/// Parses a `0x` hex or decimal felt given by a caller: digits only, below the field
/// prime (no sign, no silent reduction).
pub(crate) fn parse_felt(text: &str, what: &str) -> Result<Felt, SessionError> {
    chipi_core::parse_felt_strict(text).ok_or_else(|| {
        SessionError::new(
            ErrorCode::InvalidInput,
            format!("{what} is not a felt: {text:?}"),
        )
    })
}

/// Calls view `name` of `wallet` at the latest block.
pub(crate) async fn view<P: Provider + Sync>(
    provider: &P,
    wallet: Felt,
    name: &str,
    calldata: Vec<Felt>,
) -> Result<Vec<Felt>, SessionError> {
    let selector = get_selector_from_name(name)
        .map_err(|_| SessionError::new(ErrorCode::InvalidInput, format!("bad view name {name}")))?;
    provider
        .call(
            FunctionCall {
                contract_address: wallet,
                entry_point_selector: selector,
                calldata,
            },
            BlockId::Tag(BlockTag::Latest),
        )
        .await
        .map_err(|e| provider_error(e, &format!("calling {name}")))
}

fn as_u64(values: &[Felt], index: usize) -> Result<u64, SessionError> {
    values
        .get(index)
        .and_then(|v| u64::try_from(*v).ok())
        .ok_or_else(|| {
            SessionError::new(
                ErrorCode::InvalidWalletTypeForSession,
                "the wallet's session data is malformed",
            )
        })
}

/// Reads a session's state from the wallet at `wallet_address`.
pub async fn read_session_state<P: Provider + Sync>(
    provider: &P,
    wallet_address: &str,
    session_public_key: &str,
) -> Result<SessionState, SessionError> {
    let wallet = parse_felt(wallet_address, "walletAddress")?;
    let key = parse_felt(session_public_key, "sessionPublicKey")?;
    let data = view(provider, wallet, "get_session_data", vec![key]).await?;
    let revoked = view(provider, wallet, "is_session_revoked", vec![key]).await?;
    let allowed = view(
        provider,
        wallet,
        "get_session_allowed_entrypoints",
        vec![key],
    )
    .await?;
    let chain_time = match provider
        .get_block_with_tx_hashes(BlockId::Tag(BlockTag::Latest))
        .await
        .map_err(|e| provider_error(e, "reading the latest block"))?
    {
        MaybePreConfirmedBlockWithTxHashes::Block(block) => block.timestamp,
        MaybePreConfirmedBlockWithTxHashes::PreConfirmedBlock(block) => block.timestamp,
    };
    let to_u32 = |i| {
        as_u64(&data, i).and_then(|v| {
            u32::try_from(v).map_err(|_| {
                SessionError::new(
                    ErrorCode::InvalidWalletTypeForSession,
                    "the wallet's session data is malformed",
                )
            })
        })
    };
    Ok(SessionState {
        valid_until: as_u64(&data, 0)?,
        max_calls: to_u32(1)?,
        calls_used: to_u32(2)?,
        // The view returns a length-prefixed array.
        allowed_entrypoints: allowed.into_iter().skip(1).collect(),
        revoked: revoked.first().is_some_and(|v| *v != Felt::ZERO),
        chain_time,
    })
}

/// `getSessionData`: the JS SDK's response for a session of a wallet.
pub async fn get_session_data<P: Provider + Sync>(
    provider: &P,
    wallet_address: &str,
    session_public_key: &str,
) -> Result<SessionDataResponse, SessionError> {
    Ok(
        read_session_state(provider, wallet_address, session_public_key)
            .await?
            .to_response(),
    )
}
