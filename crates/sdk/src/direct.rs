//! `executeTransactionWithSession` over the direct transport: an INVOKE v3 from the
//! wallet, session-signed over the transaction hash, fees paid by the wallet.

use chipi_core::{revert_code, ErrorCode, Felt, SecretKey};

use crate::keys::decrypt_key;
use starknet_rust_accounts::{Account, AccountError};
use starknet_rust_providers::Provider;

use crate::read::parse_felt;
use crate::signer::SessionAccount;
use crate::{
    check_session_calls, read_session_state, to_starknet_calls, Call, SessionError, SessionKeyData,
    WalletData, WalletType,
};

/// Parameters of `executeTransactionWithSession` (the seed's `params`). `Debug` hides
/// the encryptKey.
#[derive(Clone)]
pub struct ExecuteWithSession<'a> {
    /// The PIN that encrypted the session key.
    pub encrypt_key: &'a str,
    /// The user's wallet (`walletType` must be `CHIPI`).
    pub wallet: &'a WalletData,
    /// The session from `create_session_key`.
    pub session: &'a SessionKeyData,
    /// The calls to run, atomically.
    pub calls: &'a [Call],
}

impl std::fmt::Debug for ExecuteWithSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecuteWithSession")
            .field("encrypt_key", &"<redacted>")
            .field("wallet", &self.wallet.public_key)
            .field("session", &self.session.public_key)
            .field("calls", &self.calls)
            .finish()
    }
}

/// Maps a send failure to a code, with the contract's message when there is one.
pub(crate) fn send_error<E: std::fmt::Display>(error: AccountError<E>) -> SessionError {
    let text = error.to_string();
    let debug = match &error {
        AccountError::Provider(provider) => format!("{provider:?}"),
        _ => String::new(),
    };
    match revert_code(&text).or_else(|| revert_code(&debug)) {
        Some((message, code)) => SessionError::new(code, format!("the wallet refused: {message}")),
        None => match error {
            AccountError::Provider(_) => SessionError::new(
                ErrorCode::NetworkError,
                format!("the node refused the transaction: {text}"),
            ),
            _ => SessionError::new(ErrorCode::TransactionReverted, text),
        },
    }
}

/// A session ready to sign: every check that can run before sending has passed.
pub(crate) struct PreparedSession {
    pub(crate) wallet: Felt,
    pub(crate) key: SecretKey,
    pub(crate) calls: Vec<starknet_rust_core::types::Call>,
    pub(crate) valid_until: u64,
}

/// Checks, in the contract's order: wallet type, local expiry (`now`), decryption, then
/// the on-chain session and whitelist.
pub(crate) async fn prepare_session<P: Provider + Sync>(
    provider: &P,
    params: &ExecuteWithSession<'_>,
    now: u64,
) -> Result<PreparedSession, SessionError> {
    if params.wallet.wallet_type != WalletType::Chipi {
        return Err(SessionError::new(
            ErrorCode::InvalidWalletTypeForSession,
            "session keys work only with CHIPI wallets",
        ));
    }
    if now > params.session.valid_until {
        return Err(SessionError::new(
            ErrorCode::SessionExpired,
            format!("the session expired at {}", params.session.valid_until),
        ));
    }
    let session_public_key = parse_felt(&params.session.public_key, "session.publicKey")?;
    let key = decrypt_key(
        &params.session.encrypted_private_key,
        params.encrypt_key,
        session_public_key,
    )
    .await?;
    let wallet = parse_felt(&params.wallet.public_key, "wallet.publicKey")?;
    let calls = to_starknet_calls(params.calls)?;
    let state = read_session_state(
        provider,
        &params.wallet.public_key,
        &params.session.public_key,
    )
    .await?;
    check_session_calls(&state, params.session.valid_until, wallet, &calls, now)?;
    Ok(PreparedSession {
        wallet,
        key,
        calls,
        valid_until: params.session.valid_until,
    })
}

/// Runs `params.calls` as the session, directly (an INVOKE v3 the wallet pays for);
/// returns the transaction hash. `now` is the client's unix time, for the local expiry
/// check.
///
/// Checks before sending, in the contract's order: wallet type, local expiry,
/// decryption, then the on-chain session and whitelist.
pub async fn execute_with_session_direct<P: Provider + Send + Sync + Clone>(
    provider: &P,
    chain_id: Felt,
    params: ExecuteWithSession<'_>,
    now: u64,
) -> Result<Felt, SessionError> {
    let prepared = prepare_session(provider, &params, now).await?;
    let account = SessionAccount::new(
        provider.clone(),
        prepared.wallet,
        chain_id,
        prepared.key,
        prepared.valid_until,
    );
    let sent = account
        .execute_v3(prepared.calls)
        .send()
        .await
        .map_err(send_error)?;
    Ok(sent.transaction_hash)
}
