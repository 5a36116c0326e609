//! Outside executions: issue a nonce bound to the calls (prepare), then execute what was
//! signed, sponsored, at most once per (wallet, nonce), and report a sent transaction.

use std::sync::Arc;
use std::time::Duration;

use chipi_core::{encode_calls, selectors, Call, ErrorCode, Felt, OutsideExecution, ANY_CALLER};
use starknet_rust_core::types::{BlockId, BlockTag, FunctionCall};
use starknet_rust_crypto::poseidon_hash_many;
use starknet_rust_providers::{Provider, ProviderError};

use super::deploy::{check_deploys, AccountDeployment};
use super::{Engine, EngineError};
use crate::auth::Caller;
use crate::policy::{Refusal, RefusalKind};
use crate::store::{felt_text, now, Claim, IssuedNonce, TxRecord, TxStatus};

/// The most calls one outside execution may carry.
pub const MAX_CALLS: usize = 64;

/// How long after chain time a raw outside execution's window may close: Chipi's JS SDK
/// opens its windows for at most two hours.
pub const RAW_MAX_WINDOW_SECONDS: u64 = 2 * 60 * 60;

/// Poseidon over the encoded calls: what an issued nonce is bound to.
pub fn calls_hash(calls: &[Call]) -> Felt {
    poseidon_hash_many(&encode_calls(calls))
}

/// What an execute sends: an outside execution its wallet signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The wallet.
    pub wallet: Felt,
    /// The outside execution the service issued.
    pub execution: OutsideExecution,
    /// The chain of its typed data.
    pub chain: Felt,
    /// The wallet's signature, passed through unchanged.
    pub signature: Vec<Felt>,
    /// The gas token the user pays in; `None`: sponsored.
    pub payment: Option<Felt>,
    /// The wallet's deployment (SNIP-29 `deploy_and_invoke`; its address is `wallet`),
    /// sent first in the same relayer transaction unless the wallet is deployed by then.
    pub deployment: Option<AccountDeployment>,
}

/// Between 1 and [`MAX_CALLS`] calls.
pub(crate) fn check_calls(calls: &[Call]) -> Result<(), EngineError> {
    if calls.is_empty() || calls.len() > MAX_CALLS {
        return Err(EngineError::Invalid(format!(
            "`calls`: between 1 and {MAX_CALLS} calls"
        )));
    }
    Ok(())
}

impl Engine {
    /// Issues a nonce for `wallet` bound to `calls` and returns the outside execution, its
    /// window the service's (`window.*`, from chain time) or the client's `bounds`
    /// (`execute_after`, `execute_before`) when they open before they close, close after
    /// chain time and no later than the service's own window would. Its execute sends
    /// with `tip` (fri per L2 gas unit), the one quoted now.
    pub(crate) async fn issue(
        &self,
        caller: &Caller,
        user: &str,
        wallet: Felt,
        calls: Vec<Call>,
        bounds: Option<(u64, u64)>,
        tip: u64,
    ) -> Result<OutsideExecution, EngineError> {
        let chain_time = self.chain_time().await?;
        let window = &self.config.window;
        let latest = chain_time.saturating_add(window.validity_seconds);
        let (execute_after, execute_before) = match bounds {
            None => (
                chain_time.saturating_sub(window.after_slack_seconds),
                latest,
            ),
            Some((after, before)) if after >= before => {
                return Err(EngineError::TimeBounds(
                    "execute_after must be before execute_before".into(),
                ))
            }
            Some((_, before)) if before <= chain_time => {
                return Err(EngineError::TimeBounds(format!(
                    "execute_before has passed (chain time {chain_time})"
                )))
            }
            Some((_, before)) if before > latest => {
                return Err(EngineError::TimeBounds(format!(
                    "execute_before may be at most {} seconds after chain time ({chain_time})",
                    window.validity_seconds
                )))
            }
            Some(bounds) => bounds,
        };
        let execution = OutsideExecution {
            caller: ANY_CALLER,
            nonce: Felt::from(rand::random::<u128>()),
            execute_after,
            execute_before,
            calls,
        };
        let created_at = now();
        let issued = self
            .store
            .issue_tipped(
                &IssuedNonce {
                    user_id: user.to_string(),
                    wallet,
                    nonce: execution.nonce,
                    app: caller.app.public_key.clone(),
                    calls_hash: calls_hash(&execution.calls),
                    execute_before: execution.execute_before as i64,
                    expires_at: created_at + window.validity_seconds as i64,
                    created_at,
                },
                tip,
                i64::from(window.max_outstanding),
                created_at,
            )
            .await?;
        if !issued {
            let refusal = Refusal::new(
                RefusalKind::RateLimited,
                "window.max_outstanding",
                "too many prepared transactions not yet executed; execute or let them expire",
            )
            .after(window.validity_seconds as i64);
            return Err(self.refused(caller, refusal));
        }
        Ok(execution)
    }

    /// Prepares a sponsored outside execution of `calls` by `wallet`: the policy checks
    /// that can already be decided, then a fresh nonce.
    pub async fn prepare(
        &self,
        caller: &Caller,
        wallet: Felt,
        calls: Vec<Call>,
    ) -> Result<OutsideExecution, EngineError> {
        check_calls(&calls)?;
        let user = caller.user_or(&felt_text(wallet));
        let _in_service = self.enter(caller, &user)?;
        self.admit(caller, &user, wallet, None, &calls, true)
            .await?;
        self.check_outside_capable(wallet).await?;
        let execution = self.issue(caller, &user, wallet, calls, None, 0).await?;
        tracing::info!(app = %caller.app.name, wallet = %felt_text(wallet), "outside execution prepared");
        Ok(execution)
    }

    /// Executes what `wallet` signed (`signature` passed through unchanged), sponsored:
    /// the nonce must be one this service issued to this caller for exactly these calls
    /// and window; a duplicate gets the first request's hash.
    pub async fn execute(
        self: &Arc<Self>,
        caller: &Caller,
        wallet: Felt,
        execution: OutsideExecution,
        chain: Felt,
        signature: Vec<Felt>,
    ) -> Result<Felt, EngineError> {
        let signed = Signed {
            wallet,
            execution,
            chain,
            signature,
            payment: None,
            deployment: None,
        };
        self.execute_signed(caller, signed).await
    }

    /// [`Engine::execute`] of a standard client's request. With `payment` (a gas token)
    /// the user pays the fee: the calls must end with the transfer
    /// [`Engine::build_invoke`] appended, its amount must still cover the fee quoted now
    /// ([`EngineError::PaymentTooLow`] otherwise, nothing sent), and the sponsorship
    /// policy's call rules see the user's calls alone. With a `deployment` still to be
    /// sent, one relayer transaction deploys the wallet and then runs its outside
    /// execution. The relayer's tip is the one its build quoted.
    pub async fn execute_signed(
        self: &Arc<Self>,
        caller: &Caller,
        signed: Signed,
    ) -> Result<Felt, EngineError> {
        let Signed {
            wallet,
            execution,
            chain,
            signature,
            payment,
            deployment,
        } = signed;
        let timeout = Duration::from_secs(self.config.http.request_timeout_seconds);
        let deadline = tokio::time::Instant::now() + timeout;
        if chain != self.chain_id {
            return Err(EngineError::rejected("the typed data is for another chain"));
        }
        if let Some(deployment) = &deployment {
            check_deploys(wallet, deployment)?;
        }
        let nonce = execution.nonce;
        let user = caller.user_or(&felt_text(wallet));
        let _in_service = self.enter(caller, &user)?;
        // Everything below up to the claim reads only this service's database (and, for a
        // deployment, whether it is still to be sent).
        let issued = self.store.issued_tipped(wallet, nonce).await?;
        if issued.is_none() {
            // Purged after it expired: a retry of what was sent still learns its hash.
            if let Some(row) = self.store.transaction(wallet, Some(nonce)).await? {
                let visible = row.app == caller.app.public_key && caller.owns(&row.user_id, wallet);
                if visible && !row.status().retryable() {
                    return self.outcome(row, timeout).await;
                }
            }
        }
        let (issued, tip) = issued
            .filter(|(issued, _)| issued.app == caller.app.public_key)
            // A user's nonce is that user's: another user of the app cannot spend it.
            .filter(|(issued, _)| caller.owns(&issued.user_id, wallet))
            .ok_or_else(|| {
                EngineError::rejected("this paymaster did not issue that nonce for this wallet")
            })?;
        if issued.calls_hash != calls_hash(&execution.calls)
            || issued.execute_before != execution.execute_before as i64
            || execution.caller != ANY_CALLER
        {
            // A fee transfer the user lowered below the fee says so (154), not merely
            // that the typed data changed.
            if let Some(token) = payment {
                self.check_payment(wallet, &execution.calls, token, None, tip)
                    .await?;
            }
            return Err(EngineError::rejected(
                "the typed data differs from the one this paymaster issued",
            ));
        }
        if let Some(row) = self.store.transaction(wallet, Some(nonce)).await? {
            if !row.status().retryable() {
                // A retry or a concurrent duplicate: the first request's transaction.
                return self.outcome(row, timeout).await;
            }
        }
        if issued.expires_at < now() {
            return Err(EngineError::rejected(
                "the typed data expired; prepare the transaction again",
            ));
        }
        let deployment = self.pending_deployment(wallet, deployment).await?;
        let policed = match payment {
            Some(token) => {
                self.check_payment(wallet, &execution.calls, token, deployment.as_ref(), tip)
                    .await?;
                &execution.calls[..execution.calls.len() - 1]
            }
            None => &execution.calls[..],
        };
        // The user is the one the nonce was issued to (the token's subject, or the wallet).
        let user = issued.user_id.clone();
        let class = deployment.as_ref().map(|d| d.class);
        self.admit(caller, &user, wallet, class, policed, false)
            .await?;
        let id = match self
            .store
            .claim(&caller.app.public_key, &user, wallet, Some(nonce))
            .await?
        {
            Claim::Owned(id) => id,
            Claim::Taken(row) => return self.outcome(*row, timeout).await,
        };
        let give_up_at = self.give_up_at();
        let cap = caller.app.policy.fee_cap(self.config.max_fee_fri);
        self.reserve(caller, id, &user, wallet, cap).await?;
        let signed_hash = execution.message_hash(self.chain_id, wallet);
        let outside = Call {
            to: wallet,
            selector: selectors::EXECUTE_FROM_OUTSIDE_V2,
            calldata: execution.calldata(&signature),
        };
        let calls = match &deployment {
            Some(deployment) => vec![deployment.udc_call(), outside],
            None => vec![outside],
        };
        // The send runs to its end even if the client goes away or the request times out:
        // a transaction is never half-recorded.
        let engine = self.clone();
        let sponsor = super::relay::Sponsor {
            caller: caller.clone(),
            user,
            calls: execution.calls,
            cap,
            tip,
            deadline,
            give_up_at,
        };
        let sent = self
            .tasks
            .spawn(async move { engine.send(id, wallet, calls, sponsor).await })
            .await
            .map_err(|_| EngineError::Internal)?;
        let hash = match sent {
            // Another account's message for a bad signature is not in the session
            // account's table: ask the account (SRC-6) whether the signature is its.
            Err(EngineError::Rejected {
                code: ErrorCode::TransactionReverted,
                message,
            }) if deployment.is_none()
                && self
                    .signature_refused(wallet, signed_hash, &signature)
                    .await =>
            {
                return Err(EngineError::Rejected {
                    code: ErrorCode::InvalidSignature,
                    message: format!("the wallet does not accept the signature: {message}"),
                })
            }
            sent => sent?,
        };
        tracing::info!(
            app = %caller.app.name,
            wallet = %felt_text(wallet),
            transaction = %felt_text(hash),
            deploys = deployment.is_some(),
            "sponsored transaction sent"
        );
        Ok(hash)
    }

    /// Whether `wallet` says (SRC-6 `is_valid_signature`) that `signature` is not its
    /// signature of `hash`. Only a plain `[r, s]` is asked about: a session signature
    /// is judged by the wallet's session rules, which its own messages already name.
    async fn signature_refused(&self, wallet: Felt, hash: Felt, signature: &[Felt]) -> bool {
        if signature.len() != 2 {
            return false;
        }
        let mut calldata = vec![hash, Felt::from(signature.len())];
        calldata.extend_from_slice(signature);
        let answer = self
            .node
            .call(
                FunctionCall {
                    contract_address: wallet,
                    entry_point_selector: super::selector("is_valid_signature"),
                    calldata,
                },
                BlockId::Tag(BlockTag::Latest),
            )
            .await;
        match answer {
            Ok(result) => result.first() != Some(&chipi_core::VALIDATED),
            // A revert of the view is a refusal; the node away is not an answer.
            Err(ProviderError::StarknetError(_)) => true,
            Err(_) => false,
        }
    }

    /// Executes an outside execution the client built and signed itself (Chipi's raw
    /// execute): complete `execute_from_outside_v2` calldata, caller `ANY_CALLER`, a
    /// window open now and closing within [`RAW_MAX_WINDOW_SECONDS`] of chain time. Its
    /// nonce is the wallet's own: it is recorded as if issued (the same caps), so the
    /// same payload again gets the first hash and another payload with that nonce is
    /// refused; then everything of [`Engine::execute`] applies.
    pub async fn execute_raw(
        self: &Arc<Self>,
        caller: &Caller,
        wallet: Felt,
        external_user: Option<&str>,
        calldata: &[Felt],
    ) -> Result<Felt, EngineError> {
        let (execution, signature) =
            OutsideExecution::from_calldata(calldata).ok_or_else(|| {
                EngineError::Invalid(
                    "`calldata`: not a complete execute_from_outside_v2 calldata".into(),
                )
            })?;
        check_calls(&execution.calls)?;
        if execution.caller != ANY_CALLER {
            return Err(EngineError::rejected(
                "the outside execution must name ANY_CALLER: any relayer of this service submits it",
            ));
        }
        let user = match external_user {
            Some(user) => Self::acting_user(caller, user)?,
            None => caller.user_or(&felt_text(wallet)),
        };
        let chain_time = self.chain_time().await?;
        if execution.execute_before <= chain_time {
            return Err(EngineError::rejected(
                "the outside execution's time window has closed",
            ));
        }
        let open_for = execution.execute_before - chain_time;
        if open_for > RAW_MAX_WINDOW_SECONDS {
            return Err(EngineError::TimeBounds(format!(
                "execute_before may be at most {RAW_MAX_WINDOW_SECONDS} seconds after chain time ({chain_time})"
            )));
        }
        let created_at = now();
        let issued = IssuedNonce {
            user_id: user,
            wallet,
            nonce: execution.nonce,
            app: caller.app.public_key.clone(),
            calls_hash: calls_hash(&execution.calls),
            execute_before: execution.execute_before as i64,
            expires_at: created_at + open_for as i64,
            created_at,
        };
        let cap = i64::from(self.config.window.max_outstanding);
        if !self.store.issue_or_keep(&issued, cap, created_at).await? {
            let refusal = Refusal::new(
                RefusalKind::RateLimited,
                "window.max_outstanding",
                "too many outside executions not yet sent; wait for them",
            )
            .after(60);
            return Err(self.refused(caller, refusal));
        }
        let signed = Signed {
            wallet,
            execution,
            chain: self.chain_id,
            signature,
            payment: None,
            deployment: None,
        };
        self.execute_signed(caller, signed).await
    }

    /// What a duplicate request answers: the first one's hash, or its refusal.
    pub(super) async fn outcome(
        &self,
        mut row: TxRecord,
        timeout: Duration,
    ) -> Result<Felt, EngineError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match (row.status(), row.hash) {
                (TxStatus::Refused, _) => return Err(recorded_refusal(&row)),
                (TxStatus::Failed, _) => {
                    return Err(EngineError::Unavailable(format!(
                        "not sent: {}; retry the same request",
                        row.reason.as_deref().unwrap_or("unknown")
                    )))
                }
                (TxStatus::Claimed, _) | (_, None) => {}
                (_, Some(hash)) => return Ok(hash),
            }
            if tokio::time::Instant::now() > deadline {
                return Err(EngineError::Unavailable(
                    "the same transaction is still being sent; retry the same request".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            row = self
                .store
                .transaction(row.wallet, row.nonce)
                .await?
                .ok_or(EngineError::Internal)?;
        }
    }

    /// The transaction with `hash` sent for the caller: the app's secret key sees every
    /// one of its app's, a user only their own.
    pub async fn sent(&self, caller: &Caller, hash: Felt) -> Result<TxRecord, EngineError> {
        let row = self
            .store
            .by_hash(&caller.app.public_key, hash)
            .await?
            .filter(|row| caller.owns(&row.user_id, row.wallet))
            .ok_or(EngineError::NotFound(
                "no transaction with this hash was sent for this caller",
            ))?;
        Ok(row)
    }
}

/// The refusal a row recorded, as the first request got it.
fn recorded_refusal(row: &TxRecord) -> EngineError {
    let code = row.code.as_deref().unwrap_or("TRANSACTION_REVERTED");
    let reason = row.reason.clone().unwrap_or_default();
    if let Some(kind) = RefusalKind::parse(code) {
        return EngineError::Refused(Refusal::new(kind, "recorded", reason));
    }
    let code = chipi_core::ErrorCode::ALL
        .iter()
        .find(|c| c.as_str() == code)
        .copied()
        .unwrap_or(chipi_core::ErrorCode::TransactionReverted);
    EngineError::Rejected {
        code,
        message: format!("the transaction would revert: {reason}"),
    }
}
