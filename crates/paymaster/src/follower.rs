//! Follows every sent transaction to acceptance or revert and records the fee paid;
//! after a restart, it picks up what was still pending.

use std::time::Duration;

use starknet_rust_core::types::{
    ExecutionResult, ReceiptBlock, StarknetError, TransactionReceipt,
    TransactionReceiptWithBlockInfo,
};
use starknet_rust_providers::{Provider, ProviderError};
use tokio_util::sync::CancellationToken;

use crate::state::{AppState, Inner};
use crate::store::{now, TxRecord, TxStatus};
use crate::wallets::iso_now;

/// Runs until `stop` is cancelled, checking open transactions every interval.
pub async fn follow(state: AppState, stop: CancellationToken) {
    let interval = Duration::from_millis(state.0.config.relaying.follow_interval_ms.max(10));
    loop {
        if let Err(error) = follow_once(&state.0).await {
            tracing::warn!(%error, "following transactions failed; retrying");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// One pass over the open transactions.
pub(crate) async fn follow_once(state: &Inner) -> Result<(), sqlx::Error> {
    for row in state.store.open_transactions().await? {
        let Some(hash) = row.hash.as_deref().and_then(chipi_core::parse_felt_strict) else {
            continue;
        };
        match state.node.get_transaction_receipt(hash).await {
            Ok(receipt) => finish(state, &row, receipt).await?,
            Err(ProviderError::StarknetError(StarknetError::TransactionHashNotFound)) => {
                let age = now() - row.updated_at;
                if age > state.config.relaying.drop_after_seconds as i64 {
                    let reason = match row.status() {
                        TxStatus::Submitting => "never reached the node",
                        _ => "dropped by the node",
                    };
                    tracing::warn!(transaction = %format!("{hash:#x}"), reason, "transaction lost");
                    state
                        .store
                        .finish(row.id, TxStatus::Failed, None, None, Some(reason))
                        .await?;
                }
            }
            // The node is away: try again next pass.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

async fn finish(
    state: &Inner,
    row: &TxRecord,
    receipt: TransactionReceiptWithBlockInfo,
) -> Result<(), sqlx::Error> {
    let block_number = match receipt.block {
        ReceiptBlock::Block { block_number, .. } => Some(block_number),
        ReceiptBlock::PreConfirmed { block_number } => Some(block_number),
    };
    let inner = &receipt.receipt;
    let fee = match inner {
        TransactionReceipt::Invoke(r) => u128::try_from(r.actual_fee.amount).ok(),
        _ => None,
    };
    let (status, reason) = match inner.execution_result() {
        ExecutionResult::Succeeded => (TxStatus::Accepted, None),
        ExecutionResult::Reverted { reason } => (TxStatus::Reverted, Some(reason.clone())),
    };
    state
        .store
        .finish(row.id, status, fee, block_number, reason.as_deref())
        .await?;
    if row.kind == "deploy" && status == TxStatus::Accepted {
        state
            .store
            .wallet_address_deployed(&row.wallet, &iso_now())
            .await?;
    }
    tracing::info!(
        transaction = %row.hash.as_deref().unwrap_or(""),
        status = status.as_str(),
        "transaction final"
    );
    Ok(())
}
