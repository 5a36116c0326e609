//! Owner-signed session management over the direct transport: `addSessionKeyToContract`
//! and `revokeSessionKey` as INVOKE v3 transactions from the wallet, signed `[r, s]`.

use chipi_core::{selectors, ErrorCode, Felt, SecretKey};
use starknet_rust_accounts::{Account, ExecutionEncoding, SingleOwnerAccount};
use starknet_rust_core::types::{BlockId, BlockTag, Call};
use starknet_rust_providers::Provider;
use starknet_rust_signers::{LocalWallet, SigningKey};

use crate::calls::resolve_selector;
use crate::direct::send_error;
use crate::keys::decrypt_key;
use crate::read::{parse_felt, view};
use crate::{SessionConfig, SessionError, WalletData, WalletType};

/// The most selectors a session may whitelist (the contract's bound).
pub const MAX_ALLOWED_ENTRYPOINTS: usize = 32;

fn invalid(message: impl Into<String>) -> SessionError {
    SessionError::new(ErrorCode::InvalidInput, message)
}

/// The wallet's address and decrypted owner key, after checking the wallet type and
/// that the key is the wallet's current owner key (read through the node).
pub(crate) async fn owner_key<P: Provider + Sync>(
    provider: &P,
    wallet: &WalletData,
    encrypt_key: &str,
) -> Result<(Felt, SecretKey), SessionError> {
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
    let key = decrypt_key(&wallet.encrypted_private_key, encrypt_key, owner).await?;
    Ok((address, key))
}

/// The owner's account for `wallet` (see [`owner_key`]).
pub(crate) async fn owner_account<P: Provider + Send + Sync + Clone>(
    provider: &P,
    chain_id: Felt,
    wallet: &WalletData,
    encrypt_key: &str,
) -> Result<SingleOwnerAccount<P, LocalWallet>, SessionError> {
    let (address, key) = owner_key(provider, wallet, encrypt_key).await?;
    let signer = LocalWallet::from_signing_key(SigningKey::from_secret_scalar(key.to_felt()));
    let mut account = SingleOwnerAccount::new(
        provider.clone(),
        signer,
        address,
        chain_id,
        ExecutionEncoding::New,
    );
    account.set_block_id(BlockId::Tag(BlockTag::Latest));
    Ok(account)
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

/// Sends `call` from `wallet`, signed by its owner (direct transport); returns the hash.
pub(crate) async fn send_as_owner<P: Provider + Send + Sync + Clone>(
    provider: &P,
    chain_id: Felt,
    encrypt_key: &str,
    wallet: &WalletData,
    call: Call,
) -> Result<Felt, SessionError> {
    let account = owner_account(provider, chain_id, wallet, encrypt_key).await?;
    let sent = account
        .execute_v3(vec![call])
        .send()
        .await
        .map_err(send_error)?;
    Ok(sent.transaction_hash)
}

/// `addSessionKeyToContract` over the direct transport; returns the transaction hash.
pub async fn add_session_key_direct<P: Provider + Send + Sync + Clone>(
    provider: &P,
    chain_id: Felt,
    encrypt_key: &str,
    wallet: &WalletData,
    config: &SessionConfig,
    now: u64,
) -> Result<Felt, SessionError> {
    let address = parse_felt(&wallet.public_key, "wallet.publicKey")?;
    let call = register_call(address, config, now)?;
    send_as_owner(provider, chain_id, encrypt_key, wallet, call).await
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

/// `revokeSessionKey` over the direct transport; returns the transaction hash.
pub async fn revoke_session_key_direct<P: Provider + Send + Sync + Clone>(
    provider: &P,
    chain_id: Felt,
    encrypt_key: &str,
    wallet: &WalletData,
    session_public_key: &str,
) -> Result<Felt, SessionError> {
    let address = parse_felt(&wallet.public_key, "wallet.publicKey")?;
    let call = revoke_call(address, session_public_key)?;
    send_as_owner(provider, chain_id, encrypt_key, wallet, call).await
}
