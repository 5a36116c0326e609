//! The standard (SNIP-29) flow over the same engine: build an outside execution with a
//! fee quote before anything is signed, and follow an executed request by its tracking
//! id. Executing what was signed is [`Engine::execute`], as for the Chipi API.

use chipi_core::{encode_calls, Call, Felt, OutsideExecution};
use starknet_rust_core::types::{
    BlockId, BlockTag, BroadcastedInvokeTransaction, BroadcastedInvokeTransactionV3,
    BroadcastedTransaction, DataAvailabilityMode, ResourceBounds, ResourceBoundsMapping,
    SimulationFlagForEstimateFee,
};
use starknet_rust_providers::Provider;

use super::{Engine, EngineError};
use crate::auth::Caller;
use crate::node::{classify_provider, Failure};
use crate::store::{felt_text, TxStatus};

/// L2 gas the relayed form adds to the wallet's own calls: the relayer account's
/// validation and dispatch, and the wallet's `execute_from_outside_v2` (typed-data hash,
/// signature check, nonce write). Measured on devnet with the session account
/// (`tests/snip29.rs` checks the quote against the fee paid).
pub const RELAY_OVERHEAD_L2_GAS: u64 = 1_500_000;

/// A fee quoted before the user signs, in fri.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// The wallet's calls simulated, plus the relayed form's overhead.
    pub estimated_fri: u128,
    /// The estimate with the service's margin on amounts and prices: what the relayer's
    /// transaction may cost at most.
    pub max_fri: u128,
}

/// Where a tracked request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    /// Sent, not final.
    Active,
    /// In a block (succeeded or reverted).
    Accepted,
    /// Nothing of it will land.
    Dropped,
}

impl Engine {
    /// Builds `calls` by `wallet` for a standard client: the checks and the issued nonce
    /// of [`Engine::prepare`], within the client's time bounds when it gives them, and a
    /// fee quote from the calls simulated as the wallet's own transaction (validation
    /// skipped: nothing is signed yet).
    pub async fn build_invoke(
        &self,
        caller: &Caller,
        wallet: Felt,
        calls: Vec<Call>,
        bounds: Option<(u64, u64)>,
    ) -> Result<(OutsideExecution, Quote), EngineError> {
        let execution = self.prepare_within(caller, wallet, calls, bounds).await?;
        let quote = self.quote(wallet, &execution.calls).await?;
        Ok((execution, quote))
    }

    /// The fee of `calls` made by `wallet`, quoted before it signs anything.
    async fn quote(&self, wallet: Felt, calls: &[Call]) -> Result<Quote, EngineError> {
        let block = BlockId::Tag(BlockTag::PreConfirmed);
        let nonce = self
            .node
            .get_nonce(block, wallet)
            .await
            .map_err(|_| EngineError::NodeUnavailable)?;
        let zero = ResourceBounds {
            max_amount: 0,
            max_price_per_unit: 0,
        };
        let transaction = BroadcastedInvokeTransactionV3 {
            sender_address: wallet,
            calldata: encode_calls(calls),
            signature: Vec::new(),
            nonce,
            resource_bounds: ResourceBoundsMapping {
                l1_gas: zero.clone(),
                l1_data_gas: zero.clone(),
                l2_gas: zero,
            },
            tip: 0,
            paymaster_data: Vec::new(),
            account_deployment_data: Vec::new(),
            nonce_data_availability_mode: DataAvailabilityMode::L1,
            fee_data_availability_mode: DataAvailabilityMode::L1,
            proof_facts: None,
            is_query: true,
        };
        let estimate = match self
            .node
            .estimate_fee(
                [BroadcastedTransaction::Invoke(
                    BroadcastedInvokeTransaction {
                        broadcasted_invoke_txn_v3: transaction,
                        proof: None,
                    },
                )],
                [SimulationFlagForEstimateFee::SkipValidate],
                block,
            )
            .await
        {
            Ok(mut estimates) if !estimates.is_empty() => estimates.swap_remove(0),
            Ok(_) => return Err(EngineError::NodeUnavailable),
            Err(error) => {
                return Err(match classify_provider(&error, wallet) {
                    Failure::Revert { code, message } => EngineError::Rejected {
                        code,
                        message: format!("the transaction would revert: {message}"),
                    },
                    _ => EngineError::NodeUnavailable,
                })
            }
        };
        let mut relayed = estimate.clone();
        relayed.l2_gas_consumed = relayed
            .l2_gas_consumed
            .saturating_add(RELAY_OVERHEAD_L2_GAS);
        let estimated_fri = (relayed.l1_gas_consumed as u128)
            .saturating_mul(relayed.l1_gas_price)
            .saturating_add((relayed.l2_gas_consumed as u128).saturating_mul(relayed.l2_gas_price))
            .saturating_add(
                (relayed.l1_data_gas_consumed as u128).saturating_mul(relayed.l1_data_gas_price),
            );
        let max_fri = super::Bounds::new(&relayed, self.config.fee_margin_percent).max_fee();
        Ok(Quote {
            estimated_fri,
            max_fri,
        })
    }

    /// The latest transaction of the request with tracking id `id` sent for the caller,
    /// and where it stands. A request still being sent (no hash yet) or never sent is
    /// [`EngineError::NotFound`] until it has one.
    pub async fn tracked(
        &self,
        caller: &Caller,
        id: Felt,
    ) -> Result<(Felt, Tracking), EngineError> {
        let not_found = EngineError::NotFound("no request with this tracking id for this caller");
        let row = self
            .store
            .by_tracking_id(&caller.app.public_key, id)
            .await?
            .filter(|row| caller.owns(&row.user_id, row.wallet))
            .ok_or(not_found.clone())?;
        let latest = match row.hash {
            Some(hash) => hash,
            // Refused by the node after an earlier attempt: the last one it was sent as.
            None => match self.store.attempts(row.id).await?.last() {
                Some(attempt) => attempt.hash,
                None => return Err(not_found),
            },
        };
        let state = match row.status {
            TxStatus::Claimed | TxStatus::Submitting | TxStatus::Pending => Tracking::Active,
            TxStatus::Accepted | TxStatus::Reverted => Tracking::Accepted,
            TxStatus::Refused | TxStatus::Failed => Tracking::Dropped,
        };
        tracing::debug!(tracking_id = %felt_text(id), "tracking id looked up");
        Ok((latest, state))
    }
}
