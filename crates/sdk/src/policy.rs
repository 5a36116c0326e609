//! Spending policies (PROTOCOL.md 3.5): the `set` and `remove` calls, checked as the
//! contract would, and the `get` view.

use chipi_core::{selectors, ErrorCode, Felt};
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};
use starknet_rust_core::types::Call;
use starknet_rust_providers::Provider;

use crate::read::{parse_felt, view};
use crate::SessionError;

/// A spending limit to set for one session on one token (amounts as decimal or hex strings, u256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpendingPolicyConfig {
    /// The session's public key.
    pub session_public_key: String,
    /// The ERC-20 token address.
    pub token: String,
    /// Largest amount in one call.
    pub max_per_call: String,
    /// Largest total in one window.
    pub max_per_window: String,
    /// Window length in seconds (> 0).
    pub window_seconds: u64,
}

/// A policy as the wallet stores it (amounts as decimal strings); all zero when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpendingPolicyData {
    /// Largest amount in one call.
    pub max_per_call: String,
    /// Largest total in one window.
    pub max_per_window: String,
    /// Window length in seconds; 0 means no policy.
    pub window_seconds: u64,
    /// Spent in the current window.
    pub spent_in_window: String,
    /// Start of the current window (0 before the first spend).
    pub window_start: u64,
}

fn policy_error(message: impl Into<String>) -> SessionError {
    SessionError::new(ErrorCode::InvalidSpendingPolicy, message)
}

/// A u256 from a decimal or `0x` hex string, as `(low, high)` felts.
fn parse_u256(text: &str, what: &str) -> Result<(BigUint, Felt, Felt), SessionError> {
    let bad = || policy_error(format!("{what} is not an amount: {text:?}"));
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    let value = BigUint::parse_bytes(digits.as_bytes(), radix).ok_or_else(bad)?;
    if value.bits() > 256 {
        return Err(bad());
    }
    let mask = (BigUint::from(1u8) << 128) - 1u8;
    let low = Felt::from(&value & &mask);
    let high = Felt::from(&value >> 128);
    Ok((value, low, high))
}

/// The `set_spending_policy` call, checked as the contract would.
pub fn set_policy_call(wallet: Felt, config: &SpendingPolicyConfig) -> Result<Call, SessionError> {
    let key = parse_felt(&config.session_public_key, "sessionPublicKey")?;
    let token = parse_felt(&config.token, "token").map_err(|e| policy_error(e.message()))?;
    if token == Felt::ZERO {
        return Err(policy_error("token must not be zero"));
    }
    if config.window_seconds == 0 {
        return Err(policy_error("windowSeconds must be positive"));
    }
    let (per_call, call_low, call_high) = parse_u256(&config.max_per_call, "maxPerCall")?;
    let (per_window, window_low, window_high) = parse_u256(&config.max_per_window, "maxPerWindow")?;
    if per_call > per_window {
        return Err(policy_error("maxPerCall must not exceed maxPerWindow"));
    }
    Ok(Call {
        to: wallet,
        selector: selectors::SET_SPENDING_POLICY,
        calldata: vec![
            key,
            token,
            call_low,
            call_high,
            window_low,
            window_high,
            Felt::from(config.window_seconds),
        ],
    })
}

/// The `remove_spending_policy` call.
pub fn remove_policy_call(
    wallet: Felt,
    session_public_key: &str,
    token: &str,
) -> Result<Call, SessionError> {
    let key = parse_felt(session_public_key, "sessionPublicKey")?;
    let token = parse_felt(token, "token")?;
    Ok(Call {
        to: wallet,
        selector: selectors::REMOVE_SPENDING_POLICY,
        calldata: vec![key, token],
    })
}

/// Reads a spending policy through the node.
pub async fn get_spending_policy<P: Provider + Sync>(
    provider: &P,
    wallet_address: &str,
    session_public_key: &str,
    token: &str,
) -> Result<SpendingPolicyData, SessionError> {
    let wallet = parse_felt(wallet_address, "walletAddress")?;
    let key = parse_felt(session_public_key, "sessionPublicKey")?;
    let token = parse_felt(token, "token")?;
    let r = view(provider, wallet, "get_spending_policy", vec![key, token]).await?;
    let malformed = || {
        SessionError::new(
            ErrorCode::InvalidWalletTypeForSession,
            "the wallet's policy data is malformed",
        )
    };
    if r.len() != 8 {
        return Err(malformed());
    }
    let u256 = |low: Felt, high: Felt| {
        let value: BigUint = (high.to_biguint() << 128u32) + low.to_biguint();
        value.to_string()
    };
    let u64_at = |i: usize| u64::try_from(r[i]).map_err(|_| malformed());
    Ok(SpendingPolicyData {
        max_per_call: u256(r[0], r[1]),
        max_per_window: u256(r[2], r[3]),
        window_seconds: u64_at(4)?,
        spent_in_window: u256(r[5], r[6]),
        window_start: u64_at(7)?,
    })
}
