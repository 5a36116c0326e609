//! Follows every sent transaction to acceptance or revert (the engine's settlement);
//! after a restart, it picks up what was still pending.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::Engine;

/// How often expired nonces are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Writes this instance's heartbeat every third of `relaying.instance_ttl_seconds` until
/// `stop` is cancelled: the other instances then know its claims are live. A write that
/// fails is retried at the next beat; missing beats only make the others give up this
/// instance's unsent claims, which it then cannot send (never a double send).
pub async fn heartbeat(engine: Arc<Engine>, stop: CancellationToken) {
    let ttl = engine.config.relaying.instance_ttl_seconds;
    let every = Duration::from_millis((ttl * 1000 / 3).max(500));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(error) = engine.store.heartbeat().await {
            tracing::warn!(%error, "cannot write this instance's heartbeat");
        }
    }
}

/// Runs until `stop` is cancelled, checking open transactions every interval.
pub async fn follow(engine: Arc<Engine>, stop: CancellationToken) {
    let interval = Duration::from_millis(engine.config.relaying.follow_interval_ms.max(10));
    let mut purged = tokio::time::Instant::now();
    loop {
        if let Err(error) = engine.follow_once().await {
            tracing::warn!(%error, "following transactions failed; retrying");
        }
        engine.metrics.follower_passes.inc();
        if purged.elapsed() >= PURGE_EVERY {
            purged = tokio::time::Instant::now();
            // An hour past its expiry, a nonce can only be replayed for its hash, which
            // the transaction record answers.
            let before = crate::store::now() - 3600;
            if let Err(error) = engine.store.purge_issued(before).await {
                tracing::warn!(%error, "cannot purge expired nonces");
            }
            // A day unseen: no claim of it is left (the follower gave them up long ago).
            if let Err(error) = engine.store.purge_instances(before - 86_400).await {
                tracing::warn!(%error, "cannot purge dead instances");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
