//! Simulation and submission: the fee estimate of the exact relayer transaction is the
//! simulation; the policy then bounds and decides the fee; a leased relayer signs and
//! sends, with the hash on record before the transaction leaves.

use std::time::Duration;

use chipi_core::{Call, ErrorCode, Felt};
use starknet_rust_accounts::Account;
use starknet_rust_core::types::FeeEstimate;
use starknet_rust_providers::Provider;

use super::{Engine, EngineError};
use crate::auth::Caller;
use crate::node::{classify, classify_provider, Failure};
use crate::policy::{fee_units, Refusal, RefusalKind};
use crate::relayers::{Estimator, Lease, NoRelayer};
use crate::store::{Sending, Submitting, TxStatus};

/// Resource bounds: the estimate plus the margin, on amounts and on prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// L1 gas.
    pub l1_gas: u64,
    /// L1 gas price.
    pub l1_gas_price: u128,
    /// L2 gas.
    pub l2_gas: u64,
    /// L2 gas price.
    pub l2_gas_price: u128,
    /// L1 data gas.
    pub l1_data_gas: u64,
    /// L1 data gas price.
    pub l1_data_gas_price: u128,
}

impl Bounds {
    /// `estimate` with `margin_percent` on every amount and price.
    pub fn new(estimate: &FeeEstimate, margin_percent: u32) -> Self {
        let up = |x: u128| x.saturating_mul(100 + margin_percent as u128) / 100;
        let up64 = |x: u64| u64::try_from(up(x as u128)).unwrap_or(u64::MAX);
        Self {
            l1_gas: up64(estimate.l1_gas_consumed),
            l1_gas_price: up(estimate.l1_gas_price),
            l2_gas: up64(estimate.l2_gas_consumed),
            l2_gas_price: up(estimate.l2_gas_price),
            l1_data_gas: up64(estimate.l1_data_gas_consumed),
            l1_data_gas_price: up(estimate.l1_data_gas_price),
        }
    }

    /// `execution` with these bounds on every resource.
    pub fn apply<'a, A>(
        &self,
        execution: starknet_rust_accounts::ExecutionV3<'a, A>,
    ) -> starknet_rust_accounts::ExecutionV3<'a, A> {
        execution
            .l1_gas(self.l1_gas)
            .l1_gas_price(self.l1_gas_price)
            .l2_gas(self.l2_gas)
            .l2_gas_price(self.l2_gas_price)
            .l1_data_gas(self.l1_data_gas)
            .l1_data_gas_price(self.l1_data_gas_price)
    }

    /// The most the transaction can cost.
    pub fn max_fee(&self) -> u128 {
        (self.l1_gas as u128)
            .saturating_mul(self.l1_gas_price)
            .saturating_add((self.l2_gas as u128).saturating_mul(self.l2_gas_price))
            .saturating_add((self.l1_data_gas as u128).saturating_mul(self.l1_data_gas_price))
    }

    /// The most the transaction can cost with `tip` (fri per L2 gas unit): the tip is
    /// paid on every L2 gas unit used, up to the bound.
    pub fn max_fee_with_tip(&self, tip: u64) -> u128 {
        self.max_fee()
            .saturating_add(u128::from(tip).saturating_mul(u128::from(self.l2_gas)))
    }
}

/// Who is sponsored, for what, up to how much.
#[derive(Debug, Clone)]
pub(crate) struct Sponsor {
    /// The caller (its app's policy).
    pub caller: Caller,
    /// The user charged.
    pub user: String,
    /// The calls the wallet makes (for the operator's webhook).
    pub calls: Vec<Call>,
    /// The largest fee bound this transaction may have, its tip's cost included.
    pub cap: u128,
    /// The relayer transaction's tip, fri per L2 gas unit (SNIP-29's; 0 on the Chipi API).
    pub tip: u64,
    /// When the request gives up: a relayer not leased by then is not waited for, and
    /// nothing is sent later.
    pub deadline: tokio::time::Instant,
    /// When the work itself stops wherever it is (a node that hangs): well before the
    /// follower may give the claimed row up (`relaying.abandon_claims_after_seconds`), so
    /// a row given up has no live request left that could still send it.
    pub give_up_at: tokio::time::Instant,
}

impl Engine {
    async fn record(&self, id: i64, status: TxStatus, code: Option<&str>, reason: &str) {
        if let Err(error) = self.store.set_status(id, status, code, Some(reason)).await {
            tracing::error!(%error, id, "cannot record a transaction's status");
        }
    }

    /// A relayer, leased before `deadline`; otherwise the row records why nothing was sent.
    async fn lease(&self, id: i64, deadline: tokio::time::Instant) -> Result<Lease, EngineError> {
        let (reason, error) = match tokio::time::timeout_at(deadline, self.relayers.lease()).await {
            Ok(Ok(lease)) => return Ok(lease),
            Ok(Err(NoRelayer::AllParked)) => (
                "no relayer available",
                EngineError::Unavailable("no relayer is available; retry later".into()),
            ),
            Ok(Err(NoRelayer::QueueFull)) => {
                ("too many requests waiting for a relayer", EngineError::Busy)
            }
            Err(_) => (
                "no relayer was free before the request's deadline",
                EngineError::Busy,
            ),
        };
        self.record(id, TxStatus::Failed, None, reason).await;
        Err(error)
    }

    /// A relayer leased before `deadline`, with the nonce it sends with next.
    async fn leased(
        &self,
        id: i64,
        deadline: tokio::time::Instant,
    ) -> Result<(Lease, Felt), EngineError> {
        let mut lease = self.lease(id, deadline).await?;
        match lease.nonce(&self.node).await {
            Ok(nonce) => Ok((lease, nonce)),
            Err(_) => Err(self.node_gone(id).await),
        }
    }

    async fn refuse(&self, id: i64, sponsor: &Sponsor, refusal: Refusal) -> EngineError {
        self.record(
            id,
            TxStatus::Refused,
            Some(refusal.kind.code()),
            &refusal.message,
        )
        .await;
        self.refused(&sponsor.caller, refusal)
    }

    /// The node did not answer before anything was sent: the row says so.
    async fn node_gone(&self, id: i64) -> EngineError {
        self.record(id, TxStatus::Failed, None, "node unreachable")
            .await;
        EngineError::NodeUnavailable
    }

    /// The request's own failure in simulation: refused, the relayer did nothing wrong.
    async fn simulation_refused(&self, id: i64, code: ErrorCode, message: String) -> EngineError {
        self.metrics
            .simulation_refusals
            .with_label_values(&[code.as_str()])
            .inc();
        self.record(id, TxStatus::Refused, Some(code.as_str()), &message)
            .await;
        EngineError::Rejected {
            code,
            message: format!("the transaction would revert: {message}"),
        }
    }

    /// The fee estimate of `calls` from the estimator account: no relayer is held, so a
    /// slow simulation delays only its own request. Its nonce is read once and reused.
    async fn estimate_apart(
        &self,
        id: i64,
        estimator: &Estimator,
        wallet: Felt,
        calls: &[Call],
    ) -> Result<FeeEstimate, EngineError> {
        let mut attempt = 0;
        loop {
            let Ok(nonce) = estimator.nonce(&self.node).await else {
                return Err(self.node_gone(id).await);
            };
            let error = match estimator
                .account()
                .execute_v3(calls.to_vec())
                .nonce(nonce)
                .tip(0)
                .estimate_fee()
                .await
            {
                Ok(estimate) => return Ok(estimate),
                Err(error) => error,
            };
            match classify(&error, wallet) {
                Failure::StaleNonce if attempt < self.config.relaying.nonce_retries => {
                    // Someone sent from the estimator: read its nonce again.
                    attempt += 1;
                    estimator.resync();
                    self.metrics.nonce_resyncs.inc();
                }
                Failure::Revert { code, message } => {
                    return Err(self.simulation_refused(id, code, message).await)
                }
                Failure::Unreachable => return Err(self.node_gone(id).await),
                failure => {
                    // The operator's account is wrong (its key, its class): say so loudly.
                    let reason = match failure {
                        Failure::Relayer(reason) => reason,
                        _ => "its nonce keeps changing".into(),
                    };
                    tracing::error!(%reason, "the estimator account cannot simulate; check [estimator]");
                    estimator.resync();
                    self.record(id, TxStatus::Failed, None, "the estimator failed")
                        .await;
                    return Err(EngineError::Unavailable(
                        "the transaction cannot be simulated now; retry later".into(),
                    ));
                }
            }
        }
    }

    /// The fee estimate of `calls` from a leased relayer (no estimator is configured): the
    /// exact transaction, same sender and nonce. The relayer is held while it runs.
    async fn estimate_leased(
        &self,
        id: i64,
        wallet: Felt,
        calls: &[Call],
        deadline: tokio::time::Instant,
    ) -> Result<FeeEstimate, EngineError> {
        let retries = self.config.relaying.nonce_retries;
        let mut attempt = 0;
        loop {
            let (mut lease, nonce) = self.leased(id, deadline).await?;
            let account = lease.account();
            let error = match account
                .execute_v3(calls.to_vec())
                .nonce(nonce)
                .tip(0)
                .estimate_fee()
                .await
            {
                Ok(estimate) => {
                    lease.worked();
                    return Ok(estimate);
                }
                Err(error) => error,
            };
            match classify(&error, wallet) {
                Failure::StaleNonce if attempt < retries => {
                    attempt += 1;
                    lease.resync();
                    self.metrics.nonce_resyncs.inc();
                }
                Failure::Revert { code, message } => {
                    lease.worked();
                    return Err(self.simulation_refused(id, code, message).await);
                }
                Failure::Unreachable => {
                    lease.resync();
                    return Err(self.node_gone(id).await);
                }
                Failure::Relayer(reason) if attempt < retries => {
                    tracing::warn!(%reason, "relayer failed; trying another");
                    attempt += 1;
                    lease.failed();
                }
                Failure::StaleNonce | Failure::Relayer(_) => {
                    lease.failed();
                    self.record(id, TxStatus::Failed, None, "no relayer could pay")
                        .await;
                    return Err(EngineError::Unavailable(
                        "no relayer could send the transaction; retry later".into(),
                    ));
                }
            }
        }
    }

    /// Simulates `calls` (the fee estimate runs the whole transaction: the wallet's
    /// outside execution inside a relayer-class account's), applies the policy to the
    /// bound, then sends from a leased relayer. Row `id` follows every step. A relayer is
    /// held only while it signs and sends (and, without an estimator, while it
    /// estimates), never while the policy or the webhook decides.
    pub(crate) async fn send(
        &self,
        id: i64,
        wallet: Felt,
        calls: Vec<Call>,
        sponsor: Sponsor,
    ) -> Result<Felt, EngineError> {
        let give_up_at = sponsor.give_up_at;
        match tokio::time::timeout_at(give_up_at, self.send_now(id, wallet, calls, sponsor)).await {
            Ok(sent) => sent,
            Err(_) => {
                // Dropped mid-way: every write before was whole. A row left SUBMITTING
                // keeps its hash for the follower; one left CLAIMED is given up later.
                tracing::warn!(id, "a send took too long and was stopped");
                Err(EngineError::Unavailable(
                    "the node took too long; retry the same request".into(),
                ))
            }
        }
    }

    async fn send_now(
        &self,
        id: i64,
        wallet: Felt,
        calls: Vec<Call>,
        sponsor: Sponsor,
    ) -> Result<Felt, EngineError> {
        let estimate = match &self.estimator {
            Some(estimator) => self.estimate_apart(id, estimator, wallet, &calls).await?,
            None => {
                self.estimate_leased(id, wallet, &calls, sponsor.deadline)
                    .await?
            }
        };
        let bounds = Bounds::new(&estimate, self.config.fee_margin_percent);
        let max_fee = bounds.max_fee_with_tip(sponsor.tip);
        if max_fee > sponsor.cap {
            let refusal = Refusal::new(
                RefusalKind::BudgetExceeded,
                "max_fee_fri",
                "the transaction's fee bound is above what this app sponsors per transaction",
            );
            return Err(self.refuse(id, &sponsor, refusal).await);
        }
        self.store.rereserve_fees(id, fee_units(max_fee)).await?;
        if let Err(refusal) = self
            .decide(
                &sponsor.caller,
                &sponsor.user,
                wallet,
                &sponsor.calls,
                max_fee,
            )
            .await
        {
            return Err(self.refuse(id, &sponsor, refusal).await);
        }
        let retries = self.config.relaying.nonce_retries;
        let mut attempt = 0;
        loop {
            let (mut lease, nonce) = self.leased(id, sponsor.deadline).await?;
            let account = lease.account();
            let prepared = bounds
                .apply(
                    account
                        .execute_v3(calls.clone())
                        .nonce(nonce)
                        .tip(sponsor.tip),
                )
                .prepared()
                .map_err(|_| EngineError::Internal)?;
            let hash = prepared.transaction_hash(false);
            // Signed once: the very bytes sent are on record, for the follower to send
            // again if they never reach the node (same hash: it lands once at most).
            let request = prepared
                .get_invoke_request(false, false)
                .await
                .map_err(|_| EngineError::Internal)?;
            let signed = serde_json::to_string(&request).map_err(|_| EngineError::Internal)?;
            // The hash is on record before the transaction leaves: a crash after this point
            // leaves a row the follower resolves, never a payment nobody knows about. The
            // same statement checks the relayer's lease: a lease that expired and passed to
            // another instance records nothing, so nothing is sent with its nonce.
            match self
                .store
                .submitting(
                    id,
                    Sending {
                        hash,
                        relayer: account.address(),
                        relayer_nonce: nonce,
                        max_fee,
                        request: &signed,
                    },
                    lease.token(),
                )
                .await?
            {
                Submitting::Recorded => {}
                Submitting::GivenUp => {
                    // Given up as abandoned while it waited (far past its deadline): the
                    // row says FAILED and its reservations are back, so nothing is sent.
                    return Err(EngineError::Unavailable(
                        "the request took too long and was given up; retry it".into(),
                    ));
                }
                Submitting::LeaseLost if attempt < retries => {
                    attempt += 1;
                    lease.lost();
                    continue;
                }
                Submitting::LeaseLost => {
                    lease.lost();
                    self.record(id, TxStatus::Failed, None, "the relayer's lease was lost")
                        .await;
                    return Err(EngineError::Busy);
                }
            }
            // The send must end while the lease holds (a stall here must not outlive it).
            let send_timeout = Duration::from_secs(self.config.relaying.send_timeout_seconds);
            if !lease.holds_for(send_timeout) {
                lease.lost();
                self.store
                    .unsubmit(id, "the relayer's lease ran out")
                    .await?;
                if attempt < retries {
                    attempt += 1;
                    continue;
                }
                self.record(id, TxStatus::Failed, None, "the relayer's lease ran out")
                    .await;
                return Err(EngineError::Busy);
            }
            let sent =
                match tokio::time::timeout(send_timeout, self.node.add_invoke_transaction(request))
                    .await
                {
                    Ok(sent) => sent,
                    Err(_) => {
                        // Its fate is unknown: the row keeps the hash and the follower decides.
                        lease.resync();
                        return Err(EngineError::SubmissionUnknown);
                    }
                };
            match sent {
                Ok(_) => {
                    lease.sent();
                    // The relayer is free for the next request while this one is recorded.
                    drop(lease);
                    self.metrics.transactions_sent.inc();
                    if let Err(error) = self.store.sent(id).await {
                        // The row stays SUBMITTING with its hash: the follower settles it.
                        tracing::error!(%error, id, "cannot record a sent transaction");
                    }
                    return Ok(hash);
                }
                Err(error) => match classify_provider(&error, wallet) {
                    Failure::StaleNonce if attempt < retries => {
                        attempt += 1;
                        lease.resync();
                        self.metrics.nonce_resyncs.inc();
                        self.store.unsubmit(id, "stale relayer nonce").await?;
                    }
                    Failure::Unreachable => {
                        // Its fate is unknown: the row keeps the hash and the follower decides.
                        lease.resync();
                        return Err(EngineError::SubmissionUnknown);
                    }
                    Failure::Revert { code, message } => {
                        // The wallet's validation failed after the simulation passed: the
                        // request's fault, not the relayer's.
                        lease.resync();
                        self.store.unsubmit(id, &message).await?;
                        self.record(id, TxStatus::Refused, Some(code.as_str()), &message)
                            .await;
                        return Err(EngineError::Rejected {
                            code,
                            message: format!("the transaction would revert: {message}"),
                        });
                    }
                    Failure::Relayer(reason)
                        if attempt < retries && reason.starts_with("the relayer") =>
                    {
                        // The node refused the relayer's own transaction for the relayer's
                        // sake (its validation, its balance, its signature): it never
                        // entered the mempool, so another relayer sends it. An unexplained
                        // refusal ("the node refused ...") is not retried.
                        tracing::warn!(%reason, "relayer failed; trying another");
                        attempt += 1;
                        lease.failed();
                        self.store.unsubmit(id, &reason).await?;
                    }
                    failure => {
                        lease.failed();
                        let reason = match failure {
                            Failure::Relayer(reason) => reason,
                            _ => "the relayer's nonce kept changing".into(),
                        };
                        self.store.unsubmit(id, &reason).await?;
                        self.record(id, TxStatus::Failed, None, &reason).await;
                        return Err(EngineError::RelayerRefused);
                    }
                },
            }
        }
    }
}
