//! The accounts that pay. A request leases one relayer exclusively; the relayer's nonce
//! lives inside the lease, so two requests never race for it. A relayer that keeps
//! failing is parked for a while.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chipi_core::{Felt, SecretKey};
use starknet_rust_accounts::{Account, ExecutionEncoding, SingleOwnerAccount};
use starknet_rust_core::crypto::Signature;
use starknet_rust_core::types::{BlockId, BlockTag};
use starknet_rust_providers::jsonrpc::{HttpTransport, JsonRpcClient};
use starknet_rust_providers::{Provider, ProviderError};
use starknet_rust_signers::{Signer, SignerInteractivityContext, VerifyingKey};
use tokio::sync::oneshot;

use crate::config::{RelayerConfig, RelayingConfig};

/// The node client every part of the service shares.
pub type Node = Arc<JsonRpcClient<HttpTransport>>;

/// A relayer's account as starknet-rust sends with it.
pub type RelayerAccount = SingleOwnerAccount<Node, RelayerKey>;

/// A relayer's signing key, signing through chipi-core's constant-time ECDSA.
/// `Debug` shows the public key only.
pub struct RelayerKey {
    key: SecretKey,
    public_key: Felt,
}

impl std::fmt::Debug for RelayerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayerKey")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// A hash the key cannot sign.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign: {0}")]
pub struct SignError(String);

#[async_trait::async_trait]
impl Signer for RelayerKey {
    type GetPublicKeyError = SignError;
    type SignError = SignError;

    async fn get_public_key(&self) -> Result<VerifyingKey, Self::GetPublicKeyError> {
        Ok(VerifyingKey::from_scalar(self.public_key))
    }

    async fn sign_hash(&self, hash: &Felt) -> Result<Signature, Self::SignError> {
        let (r, s) = chipi_core::sign_hash(&self.key.to_felt(), *hash)
            .map_err(|e| SignError(e.to_string()))?;
        Ok(Signature { r, s })
    }

    fn is_interactive(&self, _context: SignerInteractivityContext<'_>) -> bool {
        false
    }
}

struct Slot {
    address: Felt,
    account: Arc<RelayerAccount>,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    nonce: Option<Felt>,
    failures: u32,
    parked_until: Option<Instant>,
}

/// Every relayer, which are idle, and who waits for one (first come, first served).
pub struct Relayers {
    slots: Vec<Slot>,
    pool: Mutex<Pool>,
    policy: RelayingConfig,
}

#[derive(Default)]
struct Pool {
    /// Idle relayers, least recently used first. Never non-empty while someone waits.
    idle: VecDeque<usize>,
    /// Requests waiting, oldest first; a freed relayer goes straight to the oldest.
    waiters: VecDeque<oneshot::Sender<Lease>>,
    /// Relayers resting after repeated failures.
    parked: usize,
}

impl std::fmt::Debug for Relayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relayers")
            .field("addresses", &self.addresses())
            .finish_non_exhaustive()
    }
}

/// Why no relayer was leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoRelayer {
    /// Every relayer is parked: waiting would not help.
    #[error("no relayer is available")]
    AllParked,
    /// Too many requests are waiting already (`relaying.max_waiting`).
    #[error("too many requests are waiting for a relayer")]
    QueueFull,
}

impl Relayers {
    /// The relayers of the configuration, sending through `node` on `chain_id`.
    pub fn new(
        configs: &[RelayerConfig],
        policy: RelayingConfig,
        node: Node,
        chain_id: Felt,
    ) -> Arc<Self> {
        let slots = configs
            .iter()
            .map(|config| Slot {
                address: config.address,
                account: Arc::new(account(config, &node, chain_id)),
                state: Mutex::new(SlotState::default()),
            })
            .collect::<Vec<_>>();
        Arc::new(Self {
            pool: Mutex::new(Pool {
                idle: (0..slots.len()).collect(),
                ..Pool::default()
            }),
            slots,
            policy,
        })
    }

    /// The relayers' addresses.
    pub fn addresses(&self) -> Vec<Felt> {
        self.slots.iter().map(|s| s.address).collect()
    }

    /// How many relayers are idle now (neither leased nor parked).
    pub fn idle(&self) -> usize {
        self.pool().idle.len()
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Relayer `index` as a lease, with the state it left.
    fn take(self: &Arc<Self>, index: usize) -> Lease {
        let state = std::mem::take(
            &mut *self.slots[index]
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        Lease {
            relayers: self.clone(),
            index,
            state,
            armed: true,
        }
    }

    /// An idle relayer, or the next one freed (in the order requests arrived). Fails at
    /// once when every relayer is parked: waiting would not help.
    pub async fn lease(self: &Arc<Self>) -> Result<Lease, NoRelayer> {
        let receiver = {
            let mut pool = self.pool();
            if let Some(index) = pool.idle.pop_front() {
                return Ok(self.take(index));
            }
            if pool.parked == self.slots.len() {
                return Err(NoRelayer::AllParked);
            }
            // Requests that gave up still hold a place until a relayer passes them by.
            pool.waiters.retain(|waiter| !waiter.is_closed());
            if pool.waiters.len() >= self.policy.max_waiting {
                return Err(NoRelayer::QueueFull);
            }
            let (sender, receiver) = oneshot::channel();
            pool.waiters.push_back(sender);
            receiver
        };
        // A lease sent to a request that is gone is dropped, which frees it again.
        receiver.await.map_err(|_| NoRelayer::AllParked)
    }

    fn release(self: &Arc<Self>, index: usize, state: SlotState) {
        let parked = state.parked_until.filter(|until| *until > Instant::now());
        *self.slots[index]
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = state;
        match (parked, tokio::runtime::Handle::try_current()) {
            (Some(until), Ok(runtime)) => {
                self.pool().parked += 1;
                let relayers = self.clone();
                runtime.spawn(async move {
                    tokio::time::sleep_until(until.into()).await;
                    relayers.pool().parked -= 1;
                    relayers.hand(index);
                });
            }
            _ => self.hand(index),
        }
    }

    /// Gives relayer `index` to the oldest waiting request, or makes it idle.
    fn hand(self: &Arc<Self>, index: usize) {
        let mut pool = self.pool();
        while let Some(waiter) = pool.waiters.pop_front() {
            if waiter.is_closed() {
                continue;
            }
            match waiter.send(self.take(index)) {
                Ok(()) => return,
                Err(mut lease) => lease.disarm(),
            }
        }
        pool.idle.push_back(index);
    }
}

/// The account of `config`, sending through `node` on `chain_id`.
fn account(config: &RelayerConfig, node: &Node, chain_id: Felt) -> RelayerAccount {
    let key = config.private_key.clone();
    let public_key = key.public_key();
    let mut account = SingleOwnerAccount::new(
        node.clone(),
        RelayerKey { key, public_key },
        config.address,
        chain_id,
        ExecutionEncoding::New,
    );
    account.set_block_id(BlockId::Tag(BlockTag::PreConfirmed));
    account
}

/// The account fee estimates run from (`[estimator]`): of the relayers' class, it never
/// sends, so its nonce stays put and any number of estimates share it without holding a
/// relayer. A slow simulation then delays only its own request.
pub struct Estimator {
    account: Arc<RelayerAccount>,
    nonce: Mutex<Option<Felt>>,
}

impl std::fmt::Debug for Estimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Estimator")
            .field("address", &self.account.address())
            .finish_non_exhaustive()
    }
}

impl Estimator {
    /// The estimator of `config`, simulating through `node` on `chain_id`.
    pub fn new(config: &RelayerConfig, node: Node, chain_id: Felt) -> Self {
        Self {
            account: Arc::new(account(config, &node, chain_id)),
            nonce: Mutex::new(None),
        }
    }

    /// Its account.
    pub fn account(&self) -> Arc<RelayerAccount> {
        self.account.clone()
    }

    /// Its nonce: read once, then reused.
    pub async fn nonce(&self, node: &Node) -> Result<Felt, ProviderError> {
        if let Some(nonce) = *self.nonce.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(nonce);
        }
        let nonce = node
            .get_nonce(BlockId::Tag(BlockTag::PreConfirmed), self.account.address())
            .await?;
        *self.nonce.lock().unwrap_or_else(|p| p.into_inner()) = Some(nonce);
        Ok(nonce)
    }

    /// Forgets the nonce (the node said it is wrong: someone used the account).
    pub fn resync(&self) {
        *self.nonce.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// One relayer, exclusively, until dropped; its nonce travels with it.
pub struct Lease {
    relayers: Arc<Relayers>,
    index: usize,
    state: SlotState,
    /// Whether dropping it frees the relayer (not for a lease that was never delivered).
    armed: bool,
}

impl Lease {
    /// Puts the state back without freeing the relayer (the caller does).
    fn disarm(&mut self) {
        self.armed = false;
        *self.relayers.slots[self.index]
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = std::mem::take(&mut self.state);
    }

    /// The relayer's address.
    pub fn address(&self) -> Felt {
        self.relayers.slots[self.index].address
    }

    /// The relayer's account.
    pub fn account(&self) -> Arc<RelayerAccount> {
        self.relayers.slots[self.index].account.clone()
    }

    /// The nonce the next transaction uses: cached, or read from the node.
    pub async fn nonce(&mut self, node: &Node) -> Result<Felt, ProviderError> {
        if let Some(nonce) = self.state.nonce {
            return Ok(nonce);
        }
        let nonce = node
            .get_nonce(BlockId::Tag(BlockTag::PreConfirmed), self.address())
            .await?;
        self.state.nonce = Some(nonce);
        Ok(nonce)
    }

    /// Forget the cached nonce (the node said it is wrong, or a send's fate is unknown).
    pub fn resync(&mut self) {
        self.state.nonce = None;
    }

    /// A transaction was taken by the node with the current nonce.
    pub fn sent(&mut self) {
        self.state.nonce = self.state.nonce.map(|n| n + Felt::ONE);
        self.state.failures = 0;
    }

    /// The relayer worked (a simulation ran, whatever its outcome).
    pub fn worked(&mut self) {
        self.state.failures = 0;
    }

    /// The relayer failed; after enough failures in a row it is parked.
    pub fn failed(&mut self) {
        self.state.nonce = None;
        self.state.failures += 1;
        let policy = &self.relayers.policy;
        if self.state.failures >= policy.park_after_failures.max(1) {
            tracing::warn!(relayer = %format!("{:#x}", self.address()), "relayer parked");
            self.state.parked_until =
                Some(Instant::now() + Duration::from_secs(policy.park_seconds));
            self.state.failures = 0;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.armed {
            let state = std::mem::take(&mut self.state);
            self.relayers.release(self.index, state);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn relayers(count: usize, park_after_failures: u32) -> Arc<Relayers> {
        let configs: Vec<RelayerConfig> = (1..=count)
            .map(|i| RelayerConfig {
                address: Felt::from(i),
                private_key: SecretKey::from_hex(&format!("{:#x}", i + 100)).unwrap(),
            })
            .collect();
        let policy = RelayingConfig {
            park_after_failures,
            park_seconds: 3600,
            ..RelayingConfig::default()
        };
        // No request is made: leasing never talks to the node.
        let node = Arc::new(JsonRpcClient::new(HttpTransport::new(
            url::Url::parse("http://127.0.0.1:1/").unwrap(),
        )));
        Relayers::new(&configs, policy, node, Felt::ONE)
    }

    /// Lets spawned tasks run until `count` requests wait for a relayer. The ordering
    /// tests synchronise on the pool's own state, never on sleeps or short timeouts.
    /// (The bound only turns a broken pool into a failure instead of a hang.)
    async fn until_waiting(pool: &Relayers, count: usize) {
        let queued = async {
            while pool
                .pool()
                .waiters
                .iter()
                .filter(|w| !w.is_closed())
                .count()
                != count
            {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), queued)
            .await
            .expect("the requests never queued");
    }

    /// Whether a lease request is answered without waiting.
    fn lease_now(pool: &Arc<Relayers>) -> Option<Result<Lease, NoRelayer>> {
        use std::future::Future;
        let mut request = std::pin::pin!(pool.lease());
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match request.as_mut().poll(&mut context) {
            std::task::Poll::Ready(answer) => Some(answer),
            std::task::Poll::Pending => None,
        }
    }

    #[tokio::test]
    async fn a_lease_is_exclusive_and_waits_for_a_release() {
        let pool = relayers(1, 3);
        let first = pool.lease().await.unwrap();
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.lease().await.map(|l| l.address()) }
        });
        until_waiting(&pool, 1).await;
        assert!(!waiting.is_finished(), "the only relayer is leased");
        drop(first);
        assert_eq!(waiting.await.unwrap().unwrap(), Felt::ONE);
    }

    #[tokio::test]
    async fn relayers_go_to_waiting_requests_in_arrival_order_and_none_is_lost() {
        let pool = relayers(1, 3);
        let held = pool.lease().await.unwrap();
        let (order_tx, mut order_rx) = tokio::sync::mpsc::unbounded_channel();
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let mut waiters = Vec::new();
        for (rank, name) in ["first", "second"].into_iter().enumerate() {
            let (shared, order, mut go) = (pool.clone(), order_tx.clone(), go_rx.clone());
            waiters.push(tokio::spawn(async move {
                let lease = shared.lease().await.unwrap();
                order.send(name).unwrap();
                // Holds the relayer until the test has looked at the queue.
                go.wait_for(|go| *go).await.unwrap();
                drop(lease);
            }));
            until_waiting(&pool, rank + 1).await;
        }
        drop(held);
        // The freed relayer went straight to the oldest waiting request: nothing is idle,
        // and a newcomer asking now is not served before the two waiting ones.
        assert!(pool.pool().idle.is_empty(), "the relayer went idle");
        assert!(
            lease_now(&pool).is_none(),
            "a newcomer took the relayer before the waiting requests"
        );
        go_tx.send(true).unwrap();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(order_rx.recv().await, Some("first"));
        assert_eq!(order_rx.recv().await, Some("second"));

        // A waiting request that gives up does not take the relayer with it.
        let held = pool.lease().await.unwrap();
        let gone = tokio::spawn({
            let pool = pool.clone();
            async move { pool.lease().await.map(|_| ()) }
        });
        until_waiting(&pool, 1).await;
        gone.abort();
        let _ = gone.await;
        drop(held);
        assert!(
            lease_now(&pool).is_some_and(|l| l.is_ok()),
            "the relayer was lost"
        );
    }

    #[tokio::test]
    async fn the_waiting_queue_is_bounded() {
        let pool = {
            let configs = vec![RelayerConfig {
                address: Felt::ONE,
                private_key: SecretKey::from_hex("0x65").unwrap(),
            }];
            let policy = RelayingConfig {
                max_waiting: 2,
                ..RelayingConfig::default()
            };
            let node = Arc::new(JsonRpcClient::new(HttpTransport::new(
                url::Url::parse("http://127.0.0.1:1/").unwrap(),
            )));
            Relayers::new(&configs, policy, node, Felt::ONE)
        };
        let held = pool.lease().await.unwrap();
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.lease().await.map(|_| ()) })
            })
            .collect();
        until_waiting(&pool, 2).await;
        assert_eq!(pool.lease().await.err(), Some(NoRelayer::QueueFull));
        drop(held);
        for waiter in waiting {
            assert_eq!(waiter.await.unwrap(), Ok(()));
        }
    }

    #[tokio::test]
    async fn the_nonce_travels_with_the_lease_and_advances_on_send() {
        let pool = relayers(1, 3);
        let mut lease = pool.lease().await.unwrap();
        lease.state.nonce = Some(Felt::from(7u8));
        lease.sent();
        drop(lease);
        let mut lease = pool.lease().await.unwrap();
        assert_eq!(lease.state.nonce, Some(Felt::from(8u8)));
        lease.resync();
        drop(lease);
        assert_eq!(pool.lease().await.unwrap().state.nonce, None);
    }

    #[tokio::test]
    async fn a_relayer_that_keeps_failing_is_parked() {
        let pool = relayers(2, 2);
        let mut lease = pool.lease().await.unwrap();
        assert_eq!(lease.address(), Felt::ONE);
        lease.failed();
        drop(lease);
        // Least recently used first: relayer 2, then relayer 1 again.
        let lease = pool.lease().await.unwrap();
        assert_eq!(lease.address(), Felt::TWO);
        drop(lease);
        let mut lease = pool.lease().await.unwrap();
        assert_eq!(lease.address(), Felt::ONE);
        lease.failed();
        drop(lease);
        // Two failures in a row: relayer 1 rests; every lease is relayer 2.
        for _ in 0..3 {
            assert_eq!(pool.lease().await.unwrap().address(), Felt::TWO);
        }
        // A success in between resets the count.
        let mut lease = pool.lease().await.unwrap();
        lease.failed();
        lease.worked();
        drop(lease);
        let mut lease = pool.lease().await.unwrap();
        lease.failed();
        drop(lease);
        assert_eq!(pool.lease().await.unwrap().address(), Felt::TWO);
        // Relayer 2 fails again: both parked, nothing to lease, no waiting forever.
        pool.lease().await.unwrap().failed();
        assert!(pool.lease().await.is_err());
    }
}
