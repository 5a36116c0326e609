//! The standard (SNIP-29) flow over the same engine: build an outside execution with a
//! fee quote before anything is signed (after the account's deployment, when it has
//! one), and follow an executed request by its tracking id. Executing what was signed is
//! [`Engine::execute_signed`], as for the Chipi API.

use chipi_core::{encode_calls, selectors, Call, Felt, OutsideExecution};
use starknet_rust_core::types::{
    BlockId, BlockTag, BroadcastedInvokeTransaction, BroadcastedInvokeTransactionV3,
    BroadcastedTransaction, DataAvailabilityMode, ResourceBounds, ResourceBoundsMapping,
    SimulationFlagForEstimateFee,
};
use starknet_rust_providers::Provider;

use super::deploy::{check_deploys, AccountDeployment};
use super::execute::check_calls;
use super::{lock, Engine, EngineError};
use crate::auth::Caller;
use crate::node::{classify_provider, Failure};
use crate::prices::TokenPrice;
use crate::store::{felt_text, TxStatus};
use std::time::{Duration, Instant};

/// L2 gas the relayed form adds to the wallet's own calls: the relayer account's
/// validation and dispatch, and the wallet's `execute_from_outside_v2` (typed-data hash,
/// signature check, nonce write). Measured on devnet with the session account
/// (`tests/snip29.rs` checks the quote against the fee paid).
pub const RELAY_OVERHEAD_L2_GAS: u64 = 1_500_000;

/// L2 gas a deployment alone adds to its UDC call simulated from the fee payer with
/// validation skipped: the relayer's own signature check (about 170k on devnet; the rest
/// is room for heavier relayer classes). Measured on devnet: the quote of a session
/// account's deployment is 19% over the fee paid, that of a `deploy_and_invoke` of a
/// transfer 27% (`tests/snip29_deploy.rs` checks both against the fee paid).
pub const DEPLOY_OVERHEAD_L2_GAS: u64 = 500_000;

/// The most sponsored quotes kept (a few MB at worst; expired ones go first).
const MAX_CACHED_QUOTES: usize = 10_000;

/// A fee quoted before the user signs, in fri, the tip included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// The wallet's calls simulated (after its deployment, when it has one), plus the
    /// relayed form's overhead, plus the tip on every L2 gas unit of it.
    pub estimated_fri: u128,
    /// The estimate with the service's `fee_margin_percent`: the most the user is asked
    /// to allow (in `default` mode, what the final transfer pays).
    pub suggested_fri: u128,
}

/// The user's fee payment in a gas token: the transfer appended to the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment {
    /// The token and its price when quoted.
    pub price: TokenPrice,
    /// The amount transferred (the suggested fee in the token's units, rounded up).
    pub amount: u128,
}

/// A standard client's calls to build (SNIP-29 `invoke`, or `deploy_and_invoke`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInvoke {
    /// The account making the calls.
    pub wallet: Felt,
    /// The calls.
    pub calls: Vec<Call>,
    /// The client's `(execute_after, execute_before)`, if it chose.
    pub bounds: Option<(u64, u64)>,
    /// The gas token the user pays in; `None`: sponsored.
    pub payment: Option<Felt>,
    /// The relayer transaction's tip, fri per L2 gas unit.
    pub tip: u64,
    /// The account's deployment (its address is `wallet`), sent first in the same relayer
    /// transaction; dropped when the account is deployed already.
    pub deployment: Option<AccountDeployment>,
}

/// What a build hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltInvoke {
    /// The outside execution to sign, with its issued nonce.
    pub execution: OutsideExecution,
    /// The fee.
    pub quote: Quote,
    /// The fee payment appended, in `default` mode.
    pub payment: Option<Payment>,
    /// Whether the account is deployed in the same transaction (`false`: it exists).
    pub deploys: bool,
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

/// A query transaction of `calls` by `sender` (nothing signed: estimated with validation
/// skipped).
fn query_invoke(sender: Felt, nonce: Felt, calls: &[Call]) -> BroadcastedTransaction {
    let zero = ResourceBounds {
        max_amount: 0,
        max_price_per_unit: 0,
    };
    BroadcastedTransaction::Invoke(BroadcastedInvokeTransaction {
        broadcasted_invoke_txn_v3: BroadcastedInvokeTransactionV3 {
            sender_address: sender,
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
        },
        proof: None,
    })
}

impl Engine {
    /// Builds calls by a wallet for a standard client: the policy checks and the issued
    /// nonce of [`Engine::prepare`], within the client's time bounds when it gives them,
    /// and a fee quote from the calls simulated as the wallet's own transaction
    /// (validation skipped: nothing is signed yet), after its deployment when it has one
    /// (the nonce is then issued for the counterfactual address). With `payment` (a gas
    /// token) the user pays: one final transfer of the suggested fee in that token to the
    /// fee collector is appended (the policy's call rules see the user's calls alone).
    /// The tip is quoted and kept with the nonce: its execute sends with it.
    pub async fn build_invoke(
        &self,
        caller: &Caller,
        request: BuildInvoke,
    ) -> Result<BuiltInvoke, EngineError> {
        let BuildInvoke {
            wallet,
            calls,
            bounds,
            payment,
            tip,
            deployment,
        } = request;
        check_calls(&calls)?;
        if let Some(deployment) = &deployment {
            check_deploys(wallet, deployment)?;
        }
        let price = match payment {
            Some(token) => Some(
                self.prices()
                    .price(token)
                    .ok_or(EngineError::TokenNotSupported(token))?,
            ),
            None => None,
        };
        let user = caller.user_or(&felt_text(wallet));
        let _in_service = self.enter(caller, &user)?;
        let deployment = self.pending_deployment(wallet, deployment).await?;
        let class = deployment.as_ref().map(|d| d.class);
        self.admit(caller, &user, wallet, class, &calls, true)
            .await?;
        if deployment.is_none() {
            self.check_outside_capable(wallet).await?;
        }
        let deploying = deployment.as_ref();
        let (calls, quote, payment) = match price {
            None if deploying.is_none() => {
                let quote = self.sponsored_quote(wallet, &calls, tip).await?;
                (calls, quote, None)
            }
            None => {
                let quote = self.quote(wallet, &calls, deploying, tip).await?;
                (calls, quote, None)
            }
            Some(price) => {
                // The transfer costs gas too: quoted with it (1 unit), then sized.
                let mut probe = calls.clone();
                probe.push(self.fee_transfer(price.token, 1));
                let quote = self.quote(wallet, &probe, deploying, tip).await?;
                let amount = price.to_token(quote.suggested_fri).ok_or_else(|| {
                    EngineError::Invalid("the fee does not fit in that token's amounts".into())
                })?;
                let mut calls = calls;
                calls.push(self.fee_transfer(price.token, amount));
                (calls, quote, Some(Payment { price, amount }))
            }
        };
        let execution = self
            .issue(caller, &user, wallet, calls, bounds, tip)
            .await?;
        Ok(BuiltInvoke {
            execution,
            quote,
            payment,
            deploys: deployment.is_some(),
        })
    }

    /// A sponsored build's quote: one simulated for the same wallet, tip and call shape
    /// within `[snip29] sponsored_quote_cache_seconds`, else a new one.
    async fn sponsored_quote(
        &self,
        wallet: Felt,
        calls: &[Call],
        tip: u64,
    ) -> Result<Quote, EngineError> {
        let ttl = Duration::from_secs(self.config.snip29.sponsored_quote_cache_seconds);
        if ttl.is_zero() {
            return self.quote(wallet, calls, None, tip).await;
        }
        let mut shape = vec![wallet, Felt::from(tip)];
        for call in calls {
            shape.extend([call.to, call.selector, Felt::from(call.calldata.len())]);
        }
        let key = starknet_rust_crypto::poseidon_hash_many(&shape);
        if let Some((quote, at)) = lock(&self.quotes).get(&key) {
            if at.elapsed() < ttl {
                return Ok(*quote);
            }
        }
        let quote = self.quote(wallet, calls, None, tip).await?;
        let mut quotes = lock(&self.quotes);
        if quotes.len() >= MAX_CACHED_QUOTES {
            quotes.retain(|_, (_, at)| at.elapsed() < ttl);
            if quotes.len() >= MAX_CACHED_QUOTES {
                quotes.clear();
            }
        }
        quotes.insert(key, (quote, Instant::now()));
        Ok(quote)
    }

    /// `transfer(fee_collector, amount)` of `token`.
    fn fee_transfer(&self, token: Felt, amount: u128) -> Call {
        Call {
            to: token,
            selector: selectors::TRANSFER,
            calldata: vec![self.config.fee_collector(), Felt::from(amount), Felt::ZERO],
        }
    }

    /// The calls end with a transfer of `token` to the fee collector whose amount covers
    /// the fee quoted now (with `tip`, after `deployment` when it has one) for the calls
    /// before it.
    pub(crate) async fn check_payment(
        &self,
        wallet: Felt,
        calls: &[Call],
        token: Felt,
        deployment: Option<&AccountDeployment>,
        tip: u64,
    ) -> Result<(), EngineError> {
        let price = self
            .prices()
            .price(token)
            .ok_or(EngineError::TokenNotSupported(token))?;
        let collector = self.config.fee_collector();
        let amount = match calls.split_last() {
            Some((last, rest))
                if !rest.is_empty()
                    && last.to == token
                    && last.selector == selectors::TRANSFER
                    && last.calldata.len() == 3
                    && last.calldata[0] == collector
                    && last.calldata[2] == Felt::ZERO =>
            {
                u128::try_from(last.calldata[1]).ok()
            }
            _ => None,
        }
        .ok_or_else(|| {
            EngineError::PaymentTooLow(
                "the calls do not end with the fee transfer this service built".into(),
            )
        })?;
        let mut probe = calls[..calls.len() - 1].to_vec();
        probe.push(self.fee_transfer(token, 1));
        let quote = self.quote(wallet, &probe, deployment, tip).await?;
        let paid = price.to_fri(amount).unwrap_or(u128::MAX);
        if paid < quote.estimated_fri {
            return Err(EngineError::PaymentTooLow(format!(
                "the fee transfer pays {paid} fri, the fee is now {} fri; build the transaction again",
                quote.estimated_fri
            )));
        }
        Ok(())
    }

    /// The account fee estimates of a deployment run from: the estimator, or the first
    /// relayer (validation is skipped, so nothing is signed or sent).
    fn fee_payer(&self) -> Felt {
        self.config
            .estimator
            .as_ref()
            .map(|estimator| estimator.address)
            .or_else(|| self.config.relayers.first().map(|r| r.address))
            .unwrap_or_default()
    }

    /// The fee of `calls` made by `wallet`, after `deployment` when it has one (the UDC
    /// call from the fee payer, then the calls by the new account, in one estimate), with
    /// `tip` on every L2 gas unit: quoted before anything is signed. No calls: the
    /// deployment alone.
    pub(crate) async fn quote(
        &self,
        wallet: Felt,
        calls: &[Call],
        deployment: Option<&AccountDeployment>,
        tip: u64,
    ) -> Result<Quote, EngineError> {
        let block = BlockId::Tag(BlockTag::PreConfirmed);
        let nonce_of = |address| async move {
            self.node
                .get_nonce(block, address)
                .await
                .map_err(|_| EngineError::NodeUnavailable)
        };
        let mut transactions = Vec::with_capacity(2);
        if let Some(deployment) = deployment {
            let payer = self.fee_payer();
            let nonce = nonce_of(payer).await?;
            transactions.push(query_invoke(payer, nonce, &[deployment.udc_call()]));
        }
        if !calls.is_empty() {
            // A new account starts at nonce 0.
            let nonce = match deployment {
                Some(_) => Felt::ZERO,
                None => nonce_of(wallet).await?,
            };
            transactions.push(query_invoke(wallet, nonce, calls));
        }
        let estimates = match self
            .node
            .estimate_fee(
                &transactions,
                [SimulationFlagForEstimateFee::SkipValidate],
                block,
            )
            .await
        {
            Ok(estimates) if estimates.len() == transactions.len() => estimates,
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
        let overhead = match calls.is_empty() {
            true => DEPLOY_OVERHEAD_L2_GAS,
            false => RELAY_OVERHEAD_L2_GAS,
        };
        let l2_gas = estimates.iter().fold(u128::from(overhead), |sum, e| {
            sum.saturating_add(u128::from(e.l2_gas_consumed))
        });
        // One block's prices: every estimate carries the same.
        let prices = &estimates[0];
        let l1_fri = estimates.iter().fold(0u128, |sum, e| {
            sum.saturating_add(u128::from(e.l1_gas_consumed).saturating_mul(prices.l1_gas_price))
                .saturating_add(
                    u128::from(e.l1_data_gas_consumed).saturating_mul(prices.l1_data_gas_price),
                )
        });
        let l2_price = prices.l2_gas_price.saturating_add(u128::from(tip));
        let estimated_fri = l1_fri.saturating_add(l2_gas.saturating_mul(l2_price));
        let margin = u128::from(self.config.fee_margin_percent);
        let suggested_fri = estimated_fri.saturating_mul(100 + margin) / 100;
        Ok(Quote {
            estimated_fri,
            suggested_fri,
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
