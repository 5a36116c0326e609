//! Session management calls (`add_or_update_session_key`, `revoke_session_key`), checked
//! as the contract would, and the owner's signer for a wallet.

use chipi_core::{resolve_selector, selectors, ErrorCode, Felt, KdfLimits};
use starknet_rust_core::types::Call;
use starknet_rust_providers::Provider;

use crate::keys::decrypt_key;
use crate::read::{parse_felt, view};
use crate::{SessionConfig, SessionError, WalletData, WalletSigner, WalletType};

/// The most selectors a session may whitelist (the contract's bound).
pub const MAX_ALLOWED_ENTRYPOINTS: usize = 32;

fn invalid(message: impl Into<String>) -> SessionError {
    SessionError::new(ErrorCode::InvalidInput, message)
}

/// The wallet's address and its owner's signer, after checking the wallet type and
/// that the decrypted key is the wallet's current owner key (read through the node).
pub(crate) async fn owner_signer<P: Provider + Sync>(
    provider: &P,
    wallet: &WalletData,
    encrypt_key: &str,
    limits: KdfLimits,
) -> Result<(Felt, WalletSigner), SessionError> {
    if wallet.wallet_type != WalletType::Chipi {
        return Err(SessionError::new(
            ErrorCode::InvalidWalletTypeForSession,
            "session keys work only with CHIPI wallets",
        ));
    }
    let address = parse_felt(&wallet.public_key, "wallet.publicKey")?;
    let owner = view(provider, address, "get_public_key", vec![]).await?;
    let owner = *owner.first().ok_or_else(|| {
        SessionError::new(
            ErrorCode::InvalidWalletTypeForSession,
            "the wallet has no owner key view",
        )
    })?;
    let key = decrypt_key(&wallet.encrypted_private_key, encrypt_key, owner, limits).await?;
    Ok((address, WalletSigner::owner(key)))
}

/// The `add_or_update_session_key` call for `config`, checked as the contract would.
pub fn register_call(wallet: Felt, config: &SessionConfig, now: u64) -> Result<Call, SessionError> {
    let key = parse_felt(&config.session_public_key, "sessionPublicKey")?;
    if key == Felt::ZERO {
        return Err(invalid("sessionPublicKey must not be zero"));
    }
    if config.valid_until <= now {
        return Err(SessionError::new(
            ErrorCode::SessionExpired,
            "validUntil is not in the future",
        ));
    }
    if config.max_calls == 0 {
        return Err(invalid("maxCalls must be at least 1"));
    }
    if config.allowed_entrypoints.len() > MAX_ALLOWED_ENTRYPOINTS {
        return Err(invalid(format!(
            "at most {MAX_ALLOWED_ENTRYPOINTS} allowedEntrypoints"
        )));
    }
    let mut calldata = vec![
        key,
        Felt::from(config.valid_until),
        Felt::from(config.max_calls),
        Felt::from(config.allowed_entrypoints.len()),
    ];
    for entrypoint in &config.allowed_entrypoints {
        calldata.push(resolve_selector(entrypoint)?);
    }
    Ok(Call {
        to: wallet,
        selector: selectors::ADD_OR_UPDATE_SESSION_KEY,
        calldata,
    })
}

/// The `revoke_session_key` call.
pub fn revoke_call(wallet: Felt, session_public_key: &str) -> Result<Call, SessionError> {
    let key = parse_felt(session_public_key, "sessionPublicKey")?;
    Ok(Call {
        to: wallet,
        selector: selectors::REVOKE_SESSION_KEY,
        calldata: vec![key],
    })
}
