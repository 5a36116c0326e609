//! What the SDK checks before sending a session transaction, in the contract's order
//! (PROTOCOL.md 3.3), so that a user gets the precise code instead of a generic revert.

use chipi_core::{is_blocked_selector, ErrorCode, Felt, KdfLimits, SecretKey};
use starknet_rust_core::types::Call;
use starknet_rust_providers::Provider;

use crate::keys::decrypt_key;
use crate::read::parse_felt;
use crate::{read_session_state, ExecuteWithSession, SessionError, SessionState, WalletType};

/// A session ready to sign: every check that can run before sending has passed.
pub(crate) struct PreparedSession {
    pub(crate) wallet: Felt,
    pub(crate) key: SecretKey,
    pub(crate) calls: Vec<Call>,
    pub(crate) valid_until: u64,
}

/// Checks, in the contract's order: wallet type, local expiry (`now`), decryption, then
/// the on-chain session and whitelist.
pub(crate) async fn prepare_session<P: Provider + Sync>(
    provider: &P,
    params: &ExecuteWithSession<'_>,
    now: u64,
    limits: KdfLimits,
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
        limits,
    )
    .await?;
    let wallet = parse_felt(&params.wallet.public_key, "wallet.publicKey")?;
    let calls = chipi_core::parse_calls(params.calls)?;
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

/// Checks `calls` by the session whose on-chain state is `state`, for `wallet`, at
/// `now` (the client clock, unix seconds). `signed_valid_until` is what the session
/// will sign (the stored `validUntil` of the client's session data).
pub fn check_session_calls(
    state: &SessionState,
    signed_valid_until: u64,
    wallet: Felt,
    calls: &[Call],
    now: u64,
) -> Result<(), SessionError> {
    let fail = |code, message: String| Err(SessionError::new(code, message));
    if now > signed_valid_until || state.chain_time > signed_valid_until {
        return fail(
            ErrorCode::SessionExpired,
            format!("the session expired at {signed_valid_until}"),
        );
    }
    if state.valid_until == 0 {
        return if state.revoked {
            fail(
                ErrorCode::SessionRevoked,
                "the owner revoked this session".into(),
            )
        } else {
            fail(
                ErrorCode::SessionNotRegistered,
                "this session is not registered on the wallet".into(),
            )
        };
    }
    if state.valid_until != signed_valid_until {
        return fail(
            ErrorCode::SessionNotRegistered,
            format!(
                "the wallet registered this key until {}, the session data says {signed_valid_until}",
                state.valid_until
            ),
        );
    }
    if state.calls_used >= state.max_calls {
        return fail(
            ErrorCode::SessionMaxCallsExceeded,
            format!("all {} calls are used", state.max_calls),
        );
    }
    for call in calls {
        if is_blocked_selector(call.selector) {
            return fail(
                ErrorCode::SessionEntrypointNotAllowed,
                format!(
                    "selector {:#x} is owner-only: a session may never call it",
                    call.selector
                ),
            );
        }
        if call.to == wallet {
            return fail(
                ErrorCode::SessionEntrypointNotAllowed,
                "a session may not call its own wallet".into(),
            );
        }
        if !state.allowed_entrypoints.is_empty()
            && !state.allowed_entrypoints.contains(&call.selector)
        {
            return fail(
                ErrorCode::SessionEntrypointNotAllowed,
                format!(
                    "selector {:#x} is not in the session's whitelist",
                    call.selector
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chipi_core::selectors;

    fn state() -> SessionState {
        SessionState {
            valid_until: 1000,
            max_calls: 2,
            calls_used: 0,
            allowed_entrypoints: vec![selectors::TRANSFER],
            revoked: false,
            chain_time: 500,
        }
    }

    const WALLET: Felt = Felt::from_hex_unchecked("0xaaa");
    const TOKEN: Felt = Felt::from_hex_unchecked("0xbbb");

    fn call(to: Felt, selector: Felt) -> Call {
        Call {
            to,
            selector,
            calldata: vec![],
        }
    }

    fn code(state: &SessionState, valid_until: u64, calls: &[Call], now: u64) -> Option<ErrorCode> {
        check_session_calls(state, valid_until, WALLET, calls, now)
            .err()
            .map(|e| e.code())
    }

    #[test]
    fn each_check_gives_its_code_in_the_contracts_order() {
        let transfer = [call(TOKEN, selectors::TRANSFER)];
        assert_eq!(code(&state(), 1000, &transfer, 1000), None);
        assert_eq!(
            code(&state(), 1000, &transfer, 1001),
            Some(ErrorCode::SessionExpired)
        );
        assert_eq!(
            code(
                &SessionState {
                    chain_time: 1001,
                    ..state()
                },
                1000,
                &transfer,
                10
            ),
            Some(ErrorCode::SessionExpired)
        );
        let absent = SessionState {
            valid_until: 0,
            max_calls: 0,
            allowed_entrypoints: vec![],
            ..state()
        };
        assert_eq!(
            code(&absent, 1000, &transfer, 10),
            Some(ErrorCode::SessionNotRegistered)
        );
        assert_eq!(
            code(
                &SessionState {
                    revoked: true,
                    ..absent
                },
                1000,
                &transfer,
                10
            ),
            Some(ErrorCode::SessionRevoked)
        );
        assert_eq!(
            code(&state(), 999, &transfer, 10),
            Some(ErrorCode::SessionNotRegistered)
        );
        assert_eq!(
            code(
                &SessionState {
                    calls_used: 2,
                    ..state()
                },
                1000,
                &transfer,
                10
            ),
            Some(ErrorCode::SessionMaxCallsExceeded)
        );
        let not_allowed = Some(ErrorCode::SessionEntrypointNotAllowed);
        assert_eq!(
            code(&state(), 1000, &[call(TOKEN, selectors::APPROVE)], 10),
            not_allowed
        );
        assert_eq!(
            code(
                &state(),
                1000,
                &[transfer[0].clone(), call(TOKEN, selectors::APPROVE)],
                10
            ),
            not_allowed
        );
        assert_eq!(
            code(&state(), 1000, &[call(WALLET, selectors::TRANSFER)], 10),
            not_allowed
        );
        let open = SessionState {
            allowed_entrypoints: vec![],
            ..state()
        };
        assert_eq!(
            code(&open, 1000, &[call(TOKEN, selectors::APPROVE)], 10),
            None
        );
        assert_eq!(
            code(&open, 1000, &[call(TOKEN, selectors::UPGRADE)], 10),
            not_allowed
        );
    }
}
