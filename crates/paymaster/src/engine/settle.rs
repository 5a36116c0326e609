//! Following what was sent: a transaction's receipt makes its record final, records the
//! fee paid and settles its sponsorship reservations; a transaction whose relayer nonce
//! was used by another is marked dropped.

use std::sync::atomic::Ordering;

use chipi_core::Felt;
use starknet_rust_core::types::{
    BlockId, BlockTag, BroadcastedInvokeTransaction, ExecutionResult, ReceiptBlock, StarknetError,
    TransactionReceipt, TransactionReceiptWithBlockInfo,
};
use starknet_rust_providers::{Provider, ProviderError};

use super::Engine;
use crate::policy::Charge;
use crate::store::{felt_text, now, End, TxRecord, TxStatus};

/// What one row's check found.
enum Seen {
    Final,
    Open,
    NodeAway,
}

/// One pass over the open transactions. A row that fails is logged and the pass goes on;
/// the pass stops early only when the node is away.
pub(crate) async fn follow_once(engine: &Engine) -> Result<(), sqlx::Error> {
    let rows = engine
        .store
        .claim_follow(FOLLOW_AT_ONCE, follow_ttl_ms(engine))
        .await?;
    follow_rows(engine, rows).await?;
    // A request that died mid-way (a database error between its claim and its send)
    // leaves its row claimed; once far past any deadline, nothing can send it any more.
    let after =
        i64::try_from(engine.config.relaying.abandon_claims_after_seconds).unwrap_or(i64::MAX);
    let cutoff = now().saturating_sub(after);
    let abandoned = engine
        .store
        .abandon_claims(cutoff, "abandoned before it was sent")
        .await?;
    // An instance that died (killed, cut off) left its claims: nothing was sent for them.
    let ttl = i64::try_from(engine.config.relaying.instance_ttl_seconds).unwrap_or(i64::MAX);
    let orphaned = engine
        .store
        .abandon_dead_claims(
            now().saturating_sub(ttl),
            "its instance died before it was sent",
        )
        .await?;
    if abandoned + orphaned > 0 {
        tracing::warn!(
            abandoned,
            orphaned,
            "claimed transactions given up: nothing was sent for them"
        );
    }
    Ok(())
}

/// Follows the open transactions of `wallet` now (a request waiting on its in-flight cap
/// need not wait for the next pass); whether one of them became final, or none was open
/// (the follower settled them first): either way, nothing is worth waiting for.
///
/// Unlike the follower's passes, this looks at the wallet's rows whoever follows them:
/// the request waits on them now, and another instance's follower may only pass later.
/// Two looks at one row are harmless: a receipt is read, and a row is finished by one
/// guarded statement, once.
pub(crate) async fn follow_wallet(engine: &Engine, wallet: Felt) -> Result<bool, sqlx::Error> {
    let rows: Vec<TxRecord> = engine
        .store
        .open_transactions()
        .await?
        .into_iter()
        .filter(|r| r.wallet == wallet)
        .collect();
    if rows.is_empty() {
        return Ok(true);
    }
    follow_rows(engine, rows).await
}

/// At most this many rows per follower pass: a second instance follows the rest.
const FOLLOW_AT_ONCE: i64 = 128;

/// How long a follower's claim on a row lasts (renewed every pass): an instance silent
/// that long is dead, and another follows its rows.
fn follow_ttl_ms(engine: &Engine) -> i64 {
    i64::try_from(
        engine
            .config
            .relaying
            .instance_ttl_seconds
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX)
}

/// Follows `rows`; whether one of them became final.
async fn follow_rows(engine: &Engine, rows: Vec<TxRecord>) -> Result<bool, sqlx::Error> {
    let mut finished = false;
    for row in rows {
        let seen = follow_row(engine, &row).await;
        // Said once when the node goes away and once when it is back, not every pass.
        let away = matches!(seen, Ok(Seen::NodeAway));
        if engine.node_away.swap(away, Ordering::Relaxed) != away {
            if away {
                tracing::warn!("the node does not answer; sent transactions wait to be followed");
            } else {
                tracing::info!("the node answers again; following sent transactions");
            }
        }
        match seen {
            Ok(Seen::NodeAway) => break,
            Ok(Seen::Final) => finished = true,
            Ok(Seen::Open) => {}
            Err(error) => tracing::warn!(%error, id = row.id, "cannot follow a transaction"),
        }
    }
    Ok(finished)
}

async fn follow_row(engine: &Engine, row: &TxRecord) -> Result<Seen, sqlx::Error> {
    let Some(hash) = row.hash else {
        return Ok(Seen::Open);
    };
    match engine.node.get_transaction_receipt(hash).await {
        Ok(receipt) => {
            finish(engine, row, receipt).await?;
            Ok(Seen::Final)
        }
        Err(ProviderError::StarknetError(StarknetError::TransactionHashNotFound)) => {
            // Dropped only once the relayer's nonce has moved past the one this
            // transaction used without it: until then it may still land.
            let (Some(relayer), Some(used)) = (row.relayer, row.relayer_nonce) else {
                return Ok(Seen::Open);
            };
            let nonce = match engine
                .node
                .get_nonce(BlockId::Tag(BlockTag::Latest), relayer)
                .await
            {
                Ok(nonce) => nonce,
                Err(_) => return Ok(Seen::NodeAway),
            };
            if nonce > used {
                // The nonce moved: either this transaction landed after the receipt was
                // asked for (it can, the hash is on record before the send), or another
                // used the nonce and this one never will. The receipt, asked again now,
                // tells which.
                match engine.node.get_transaction_receipt(hash).await {
                    Ok(receipt) => {
                        finish(engine, row, receipt).await?;
                        return Ok(Seen::Final);
                    }
                    Err(ProviderError::StarknetError(StarknetError::TransactionHashNotFound)) => {}
                    Err(_) => return Ok(Seen::NodeAway),
                }
                let reason = match row.status() {
                    TxStatus::Submitting => "never reached the node",
                    _ => "dropped by the node",
                };
                tracing::warn!(transaction = %format!("{hash:#x}"), reason, "transaction lost");
                engine
                    .store
                    .finish(
                        row.id,
                        hash,
                        End {
                            status: TxStatus::Failed,
                            fee: None,
                            block_number: None,
                            reason: Some(reason),
                        },
                        &[],
                    )
                    .await?;
                return Ok(Seen::Final);
            }
            // The nonce is unused: the transaction never reached the node (its send
            // failed or timed out) or the node forgot it. Once its own send is surely
            // over, the very bytes go again (same hash: it lands once at most); otherwise
            // it would wait for the relayer's next transaction to be judged.
            let quiet =
                i64::try_from(engine.config.relaying.send_timeout_seconds).unwrap_or(i64::MAX);
            if row.updated_at <= now().saturating_sub(quiet) {
                send_again(engine, row, hash).await?;
            }
            Ok(Seen::Open)
        }
        // The node is away: try again next pass.
        Err(_) => Ok(Seen::NodeAway),
    }
}

/// Sends the recorded signed transaction `hash` of `row` again; at most once per send
/// timeout (the row's `updated_at` moves).
async fn send_again(engine: &Engine, row: &TxRecord, hash: Felt) -> Result<(), sqlx::Error> {
    engine.store.touch(row.id, hash).await?;
    let Some(signed) = engine.store.signed_request(row.id, hash).await? else {
        return Ok(());
    };
    let Ok(request) = serde_json::from_str::<BroadcastedInvokeTransaction>(&signed) else {
        tracing::error!(id = row.id, "a recorded transaction cannot be read back");
        return Ok(());
    };
    match engine.node.add_invoke_transaction(request).await {
        Ok(_) => {
            tracing::info!(transaction = %felt_text(hash), "a transaction the node did not know was sent again");
            engine.store.sent(row.id).await?;
        }
        Err(error) => {
            tracing::debug!(transaction = %felt_text(hash), %error, "sending a lost transaction again failed");
        }
    }
    Ok(())
}

/// The revert counters a reverted transaction of `row` increments.
fn revert_counters(engine: &Engine, row: &TxRecord) -> Vec<(String, Charge)> {
    let Some(app) = engine.apps.get(&row.app) else {
        return Vec::new();
    };
    app.policy
        .revert_counters(&row.user_id, row.wallet, now())
        .into_iter()
        .map(|charge| (row.app.clone(), charge))
        .collect()
}

async fn finish(
    engine: &Engine,
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
    let reverts = revert_counters(engine, row);
    if !engine
        .store
        .finish(
            row.id,
            *inner.transaction_hash(),
            End {
                status,
                fee,
                block_number,
                reason: reason.as_deref(),
            },
            &reverts,
        )
        .await?
    {
        return Ok(());
    }
    if let Some(app) = engine.apps.get(&row.app) {
        if let Some(fee) = fee {
            engine
                .metrics
                .sponsored_fees
                .with_label_values(&[app.name.as_str()])
                .inc_by(fee as f64);
        }
        engine
            .metrics
            .sponsored_transactions
            .with_label_values(&[app.name.as_str(), status.as_str()])
            .inc();
    }
    tracing::info!(
        transaction = %row.hash.map(felt_text).unwrap_or_default(),
        status = status.as_str(),
        "transaction final"
    );
    Ok(())
}
