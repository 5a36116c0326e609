//! `sessions.getSessionData`: one read path through the node.

use std::collections::BTreeSet;

use chipi_core::{ErrorCode, Felt};
use serde::{Deserialize, Serialize};
use starknet_rust_core::types::{
    AddressFilter, BlockId, BlockTag, EventFilter, FunctionCall,
    MaybePreConfirmedBlockWithTxHashes, StarknetError,
};
use starknet_rust_core::utils::get_selector_from_name;
use starknet_rust_providers::{Provider, ProviderError};

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

/// Where a session stands, decided once ([`SessionState::status`]) for the SDK, the CLI
/// and `getSessionData`'s `isActive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// It can sign now.
    Active,
    /// Its `valid_until` is before the chain's time (the second itself is still valid,
    /// as the contract judges it).
    Expired,
    /// The owner revoked it.
    Revoked,
    /// Every call of its budget is spent.
    UsedUp,
    /// The wallet never registered it.
    NotRegistered,
}

impl SessionStatus {
    /// `active`, `expired`, `revoked`, `used_up` or `not_registered`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::UsedUp => "used_up",
            Self::NotRegistered => "not_registered",
        }
    }
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SessionState {
    /// Where the session stands at [`SessionState::chain_time`], judged as the contract
    /// judges it: revoked first, then expiry (`chain_time > valid_until`), then the
    /// call budget.
    ///
    /// ```
    /// use chipi_sdk::{SessionState, SessionStatus};
    ///
    /// let state = SessionState { valid_until: 1_000, max_calls: 2, calls_used: 1,
    ///     allowed_entrypoints: vec![], revoked: false, chain_time: 1_000 };
    /// // The last second is still valid, as for the contract.
    /// assert_eq!(state.status(), SessionStatus::Active);
    /// let later = SessionState { chain_time: 1_001, ..state };
    /// assert_eq!(later.status(), SessionStatus::Expired);
    /// ```
    pub fn status(&self) -> SessionStatus {
        if self.revoked {
            SessionStatus::Revoked
        } else if self.valid_until == 0 {
            SessionStatus::NotRegistered
        } else if self.chain_time > self.valid_until {
            SessionStatus::Expired
        } else if self.calls_used >= self.max_calls {
            SessionStatus::UsedUp
        } else {
            SessionStatus::Active
        }
    }

    /// Registered, not revoked, not expired by chain time, calls left.
    pub fn is_active(&self) -> bool {
        self.status() == SessionStatus::Active
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
    view_raw(provider, wallet, name, calldata)
        .await
        .map_err(|e| provider_error(e, &format!("calling {name}")))
}

/// [`view`] with the node's own error.
async fn view_raw<P: Provider + Sync>(
    provider: &P,
    wallet: Felt,
    name: &str,
    calldata: Vec<Felt>,
) -> Result<Vec<Felt>, ProviderError> {
    provider
        .call(
            FunctionCall {
                contract_address: wallet,
                entry_point_selector: get_selector_from_name(name).unwrap_or_default(),
                calldata,
            },
            BlockId::Tag(BlockTag::Latest),
        )
        .await
}

/// The timestamp of the latest block.
pub(crate) async fn chain_time<P: Provider + Sync>(provider: &P) -> Result<u64, SessionError> {
    match provider
        .get_block_with_tx_hashes(BlockId::Tag(BlockTag::Latest))
        .await
        .map_err(|e| provider_error(e, "reading the latest block"))?
    {
        MaybePreConfirmedBlockWithTxHashes::Block(block) => Ok(block.timestamp),
        MaybePreConfirmedBlockWithTxHashes::PreConfirmedBlock(block) => Ok(block.timestamp),
    }
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
    let data = match view_raw(provider, wallet, "get_session_data", vec![key]).await {
        // The contract is there and has no such view: not a session account.
        Err(ProviderError::StarknetError(StarknetError::ContractError(_)))
        | Err(ProviderError::StarknetError(StarknetError::EntrypointNotFound)) => {
            return Err(SessionError::new(
                ErrorCode::InvalidWalletTypeForSession,
                "the wallet is not a session account (it has no get_session_data view)",
            ))
        }
        result => result.map_err(|e| provider_error(e, "calling get_session_data"))?,
    };
    let revoked = view(provider, wallet, "is_session_revoked", vec![key]).await?;
    let allowed = view(
        provider,
        wallet,
        "get_session_allowed_entrypoints",
        vec![key],
    )
    .await?;
    let chain_time = chain_time(provider).await?;
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

/// A session a wallet's events name, with its state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSession {
    /// The session's public key (`0x` hex).
    pub session_public_key: String,
    /// Its state, read now.
    pub state: SessionState,
}

impl ListedSession {
    /// Where it stands.
    pub fn status(&self) -> SessionStatus {
        self.state.status()
    }
}

/// Every session key the wallet at `wallet_address` ever registered (from its
/// `SessionKeyAdded`, `SessionKeyUpdated` and `SessionKeyRevoked` events), in key order,
/// each with its state read now.
pub async fn list_sessions<P: Provider + Sync>(
    provider: &P,
    wallet_address: &str,
) -> Result<Vec<ListedSession>, SessionError> {
    let wallet = parse_felt(wallet_address, "walletAddress")?;
    let selector = |name| get_selector_from_name(name).unwrap_or_default();
    let filter = EventFilter {
        from_block: Some(BlockId::Number(0)),
        to_block: Some(BlockId::Tag(BlockTag::Latest)),
        address: Some(AddressFilter::Single(wallet)),
        keys: Some(vec![vec![
            selector("SessionKeyAdded"),
            selector("SessionKeyUpdated"),
            selector("SessionKeyRevoked"),
        ]]),
    };
    let mut keys = BTreeSet::new();
    let mut continuation = None;
    loop {
        let page = provider
            .get_events(filter.clone(), continuation, 1000)
            .await
            .map_err(|e| provider_error(e, "reading the wallet's events"))?;
        // The session key is the event's first `#[key]` field.
        keys.extend(
            page.events
                .iter()
                .filter_map(|event| event.keys.get(1))
                .copied(),
        );
        match page.continuation_token {
            Some(token) => continuation = Some(token),
            None => break,
        }
    }
    let mut sessions = Vec::with_capacity(keys.len());
    for key in keys {
        let session_public_key = format!("{key:#x}");
        let state = read_session_state(provider, wallet_address, &session_public_key).await?;
        sessions.push(ListedSession {
            session_public_key,
            state,
        });
    }
    Ok(sessions)
}
