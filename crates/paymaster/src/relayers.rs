//! The accounts that pay. A request leases one relayer exclusively; the relayer's nonce
//! lives inside the lease, so two requests never race for it. Across instances sharing
//! a database, a relayer is used only under its lease row there, whose fencing token the
//! record of every send checks. A relayer that keeps failing is parked for a while.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chipi_core::{Felt, SecretKey};
use starknet_rust_accounts::{Account, ExecutionEncoding, SingleOwnerAccount};
use starknet_rust_core::crypto::Signature;
use starknet_rust_core::types::{BlockId, BlockTag};
use starknet_rust_providers::jsonrpc::{HttpTransport, JsonRpcClient};
use starknet_rust_providers::{Provider, ProviderError};
use starknet_rust_signers::{Signer, SignerInteractivityContext, VerifyingKey};
use tokio::sync::{oneshot, Notify};

use crate::config::{RelayerConfig, RelayingConfig};
use crate::store::{self, Store};

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

/// A relayer's lease as this instance sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Here {
    /// Not held here: free in the database, held by another instance, or parked.
    Away,
    /// Held here under `token`, valid until `until` unless renewed.
    Held { token: i64, until: Instant },
    /// Back from its request, to be given back to the database by the manager.
    Releasing { token: i64 },
}

/// Every relayer, the leases this instance holds, which are idle, and who waits for one
/// (first come, first served). A request sends with a relayer only under its lease in
/// the database (API.md section 11): a background manager takes leases while requests
/// wait, renews them, and gives them back when idle or when another instance's request
/// has waited longer than any here.
pub struct Relayers {
    slots: Vec<Slot>,
    pool: Mutex<Pool>,
    policy: RelayingConfig,
    store: Store,
    /// Wakes the manager (a request waits, a lease came back).
    wake: Arc<Notify>,
    closed: AtomicBool,
    /// The database failed the manager (said once, until a round goes through).
    troubled: AtomicBool,
    /// The database failed the manager in the current round.
    failed_round: AtomicBool,
}

struct Pool {
    /// Relayers held here and free, least recently used first. Never non-empty while
    /// someone waits.
    idle: VecDeque<usize>,
    /// Requests waiting, oldest first; a freed relayer goes straight to the oldest.
    waiters: VecDeque<Waiter>,
    /// Each relayer's lease.
    here: Vec<Here>,
    /// Each relayer: leased to a request now.
    in_use: Vec<bool>,
    /// Each relayer: when it went idle.
    idle_since: Vec<Instant>,
    /// Each relayer: resting until then (its failures here, or another instance's).
    parked_until: Vec<Option<Instant>>,
    /// When the oldest request waiting at another instance arrived (unix ms), as the
    /// manager last read it.
    elsewhere: Option<i64>,
}

struct Waiter {
    sender: oneshot::Sender<Lease>,
    /// When it arrived, unix milliseconds (compared across instances).
    since_ms: i64,
}

impl Pool {
    /// Forgets requests that gave up; the oldest remaining one's arrival.
    fn oldest_waiting(&mut self) -> Option<i64> {
        self.waiters.retain(|waiter| !waiter.sender.is_closed());
        self.waiters.front().map(|waiter| waiter.since_ms)
    }

    /// Whether a request at another instance waits longer than any here: first come,
    /// first served across instances, so a relayer coming back goes to the database for
    /// it instead of to a request here.
    fn yielding(&mut self) -> bool {
        match (self.elsewhere, self.oldest_waiting()) {
            (Some(there), Some(here)) => there < here,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
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

/// How often the manager looks while requests wait for a lease held elsewhere.
const TICK_BUSY: Duration = Duration::from_millis(20);
/// How often it looks otherwise (renewals, idle leases).
const TICK_IDLE: Duration = Duration::from_millis(250);
/// A lease idle this long goes back to the database: a crash then strands fewer.
const IDLE_RELEASE: Duration = Duration::from_secs(5);

impl Relayers {
    /// The relayers of the configuration, sending through `node` on `chain_id`, their
    /// leases in `store`. The lease manager runs in the current Tokio runtime until the
    /// relayers are dropped or [closed](Relayers::close).
    pub fn new(
        configs: &[RelayerConfig],
        policy: RelayingConfig,
        node: Node,
        chain_id: Felt,
        store: Store,
    ) -> Arc<Self> {
        let slots = configs
            .iter()
            .map(|config| Slot {
                address: config.address,
                account: Arc::new(account(config, &node, chain_id)),
                state: Mutex::new(SlotState::default()),
            })
            .collect::<Vec<_>>();
        let count = slots.len();
        let relayers = Arc::new(Self {
            pool: Mutex::new(Pool {
                idle: VecDeque::new(),
                waiters: VecDeque::new(),
                here: vec![Here::Away; count],
                in_use: vec![false; count],
                idle_since: vec![Instant::now(); count],
                parked_until: vec![None; count],
                elsewhere: None,
            }),
            slots,
            policy,
            store,
            wake: Arc::new(Notify::new()),
            closed: AtomicBool::new(false),
            troubled: AtomicBool::new(false),
            failed_round: AtomicBool::new(false),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(manage(Arc::downgrade(&relayers), relayers.wake.clone()));
        }
        relayers
    }

    /// The relayers' addresses.
    pub fn addresses(&self) -> Vec<Felt> {
        self.slots.iter().map(|s| s.address).collect()
    }

    /// The relayers whose lease this instance holds now (`/health`).
    pub fn held(&self) -> Vec<Felt> {
        let pool = self.pool();
        (0..self.slots.len())
            .filter(|&i| matches!(pool.here[i], Here::Held { .. }))
            .map(|i| self.slots[i].address)
            .collect()
    }

    /// How many relayers no request here uses and none is parked.
    pub fn idle(&self) -> usize {
        let pool = self.pool();
        let now = Instant::now();
        (0..self.slots.len())
            .filter(|&i| !pool.in_use[i] && pool.parked_until[i].is_none_or(|until| until <= now))
            .count()
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.policy.lease_seconds)
    }

    /// Relayer `index`, held under `token`, as a lease with the state it left.
    fn take(self: &Arc<Self>, pool: &mut Pool, index: usize, token: i64) -> Lease {
        pool.in_use[index] = true;
        let state = std::mem::take(
            &mut *self.slots[index]
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        Lease {
            relayers: self.clone(),
            index,
            token,
            state,
            armed: true,
        }
    }

    /// An idle relayer, or the next one freed or leased (in the order requests arrived).
    /// Fails at once when every relayer is parked: waiting would not help.
    pub async fn lease(self: &Arc<Self>) -> Result<Lease, NoRelayer> {
        let receiver = {
            let mut pool = self.pool();
            while let Some(index) = pool.idle.pop_front() {
                if let Here::Held { token, .. } = pool.here[index] {
                    return Ok(self.take(&mut pool, index, token));
                }
            }
            let now = Instant::now();
            if self.closed.load(Ordering::Relaxed)
                || pool
                    .parked_until
                    .iter()
                    .all(|until| until.is_some_and(|until| until > now))
            {
                return Err(NoRelayer::AllParked);
            }
            // Requests that gave up still hold a place until a relayer passes them by.
            pool.oldest_waiting();
            if pool.waiters.len() >= self.policy.max_waiting {
                return Err(NoRelayer::QueueFull);
            }
            let (sender, receiver) = oneshot::channel();
            pool.waiters.push_back(Waiter {
                sender,
                since_ms: store::now_ms(),
            });
            receiver
        };
        self.wake.notify_one();
        // A lease sent to a request that is gone is dropped, which frees it again.
        receiver.await.map_err(|_| NoRelayer::AllParked)
    }

    fn release(self: &Arc<Self>, index: usize, token: i64, state: SlotState) {
        let parked = state.parked_until.filter(|until| *until > Instant::now());
        *self.slots[index]
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = state;
        let mut pool = self.pool();
        pool.in_use[index] = false;
        if !matches!(pool.here[index], Here::Held { token: held, .. } if held == token) {
            // Lost while in use (it expired and another instance took it): not ours to give.
            return;
        }
        if parked.is_some() {
            pool.parked_until[index] = parked;
        }
        if parked.is_some() || pool.yielding() || self.closed.load(Ordering::Relaxed) {
            pool.here[index] = Here::Releasing { token };
            drop(pool);
            self.wake.notify_one();
            return;
        }
        self.hand(&mut pool, index, token);
    }

    /// Gives relayer `index` (held under `token`) to the oldest waiting request, or makes
    /// it idle.
    fn hand(self: &Arc<Self>, pool: &mut Pool, index: usize, token: i64) {
        while let Some(waiter) = pool.waiters.pop_front() {
            if waiter.sender.is_closed() {
                continue;
            }
            match waiter.sender.send(self.take(pool, index, token)) {
                Ok(()) => return,
                Err(mut lease) => {
                    lease.disarm();
                    pool.in_use[index] = false;
                }
            }
        }
        pool.idle_since[index] = Instant::now();
        pool.idle.push_back(index);
    }

    /// Gives every lease held here back (at shutdown, after the requests finished): the
    /// other instances take them at once instead of after their expiry.
    pub async fn close(self: &Arc<Self>) {
        self.closed.store(true, Ordering::Relaxed);
        {
            let mut pool = self.pool();
            while let Some(index) = pool.idle.pop_front() {
                if let Here::Held { token, .. } = pool.here[index] {
                    pool.here[index] = Here::Releasing { token };
                }
            }
        }
        self.give_back().await;
        self.wake.notify_one();
    }

    /// The database failed the manager: said once per outage (it retries every round).
    fn trouble(&self, what: &str, error: &sqlx::Error) {
        self.failed_round.store(true, Ordering::Relaxed);
        if !self.troubled.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, "{what}; retrying");
        } else {
            tracing::debug!(%error, "{what}");
        }
    }

    /// One round of the lease manager; whether requests wait or leases are to be given
    /// back (look again soon).
    async fn manage(self: &Arc<Self>, manager: &mut Manager) -> bool {
        self.failed_round.store(false, Ordering::Relaxed);
        let busy = self.manage_round(manager).await;
        if !self.failed_round.load(Ordering::Relaxed)
            && self.troubled.swap(false, Ordering::Relaxed)
        {
            tracing::info!("the relayer leases are managed again");
        }
        busy
    }

    async fn manage_round(self: &Arc<Self>, manager: &mut Manager) -> bool {
        if !manager.added {
            if let Err(error) = self.store.add_relayers(&self.addresses()).await {
                self.trouble("cannot record the relayers' leases", &error);
                return true;
            }
            manager.added = true;
        }
        self.renew().await;
        let alive_since =
            store::now() - i64::try_from(self.policy.instance_ttl_seconds).unwrap_or(i64::MAX);
        let (oldest_here, holds) = {
            let mut pool = self.pool();
            let holds = pool.here.iter().any(|h| *h != Here::Away);
            (pool.oldest_waiting(), holds)
        };
        if oldest_here != manager.published {
            match self.store.set_waiting(oldest_here).await {
                Ok(()) => manager.published = oldest_here,
                Err(error) => self.trouble("cannot publish this instance's waiting", &error),
            }
        }
        let elsewhere = if holds || oldest_here.is_some() {
            match self.store.oldest_waiting_elsewhere(alive_since).await {
                Ok(elsewhere) => elsewhere,
                Err(error) => {
                    self.trouble("cannot read the other instances' waiting", &error);
                    None
                }
            }
        } else {
            None
        };
        let yielding = {
            let mut pool = self.pool();
            pool.elsewhere = elsewhere;
            let yielding = pool.yielding();
            let now = Instant::now();
            let mut kept = VecDeque::new();
            while let Some(index) = pool.idle.pop_front() {
                match pool.here[index] {
                    Here::Held { token, .. }
                        if yielding
                            || now.duration_since(pool.idle_since[index]) >= IDLE_RELEASE =>
                    {
                        pool.here[index] = Here::Releasing { token };
                    }
                    Here::Held { .. } => kept.push_back(index),
                    _ => {}
                }
            }
            pool.idle = kept;
            yielding
        };
        self.give_back().await;
        if let (false, Some(since)) = (yielding, oldest_here) {
            self.take_leases(since, alive_since).await;
        }
        let pool = self.pool();
        !pool.waiters.is_empty()
            || pool
                .here
                .iter()
                .any(|h| matches!(h, Here::Releasing { .. }))
    }

    /// Renews the leases held here when the soonest expiry is within two thirds of the
    /// lease time; a lease the database no longer gives this instance is lost.
    async fn renew(self: &Arc<Self>) {
        let ttl = self.lease_ttl();
        let due = {
            let pool = self.pool();
            let soon = Instant::now() + ttl * 2 / 3;
            pool.here.iter().any(|h| match h {
                Here::Held { until, .. } => *until < soon,
                _ => false,
            })
        };
        if !due {
            return;
        }
        let started = Instant::now();
        let held = match self.store.renew_leases(millis(ttl)).await {
            Ok(held) => held,
            Err(error) => {
                self.trouble("cannot renew the relayer leases", &error);
                return;
            }
        };
        let mut pool = self.pool();
        for index in 0..self.slots.len() {
            let Here::Held { token, .. } = pool.here[index] else {
                continue;
            };
            if held.contains(&(self.slots[index].address, token)) {
                pool.here[index] = Here::Held {
                    token,
                    until: started + ttl,
                };
            } else {
                tracing::warn!(relayer = %format!("{:#x}", self.slots[index].address), "relayer lease lost");
                pool.here[index] = Here::Away;
                pool.idle.retain(|&i| i != index);
            }
        }
    }

    /// Gives back to the database every lease marked for it, with its nonce and rest.
    async fn give_back(self: &Arc<Self>) {
        let releasing: Vec<(usize, i64)> = {
            let pool = self.pool();
            (0..self.slots.len())
                .filter_map(|i| match pool.here[i] {
                    Here::Releasing { token } => Some((i, token)),
                    _ => None,
                })
                .collect()
        };
        for (index, token) in releasing {
            let (nonce, parked_until_ms) = {
                let state = self.slots[index]
                    .state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let rest = state
                    .parked_until
                    .filter(|until| *until > now)
                    .map(|until| store::now_ms() + millis(until - now))
                    .unwrap_or(0);
                (state.nonce, rest)
            };
            let address = self.slots[index].address;
            match self
                .store
                .release_lease(address, token, nonce, parked_until_ms)
                .await
            {
                Ok(_) => {
                    *self.slots[index]
                        .state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = SlotState::default();
                    let mut pool = self.pool();
                    if pool.here[index] == (Here::Releasing { token }) {
                        pool.here[index] = Here::Away;
                    }
                }
                Err(error) => self.trouble("cannot give a relayer lease back", &error),
            }
        }
    }

    /// Takes the free leases for the requests waiting here, the oldest of which arrived
    /// at `since` (unix ms), and hands them over.
    async fn take_leases(self: &Arc<Self>, since: i64, alive_since: i64) {
        let away: Vec<usize> = {
            let pool = self.pool();
            (0..self.slots.len())
                .filter(|&i| pool.here[i] == Here::Away)
                .collect()
        };
        if away.is_empty() {
            return;
        }
        let rows = match self.store.leases().await {
            Ok(rows) => rows,
            Err(error) => {
                self.trouble("cannot read the relayer leases", &error);
                return;
            }
        };
        let now_ms = store::now_ms();
        let now = Instant::now();
        let mut free = Vec::new();
        {
            let mut pool = self.pool();
            for &index in &away {
                let Some(row) = rows.iter().find(|r| r.relayer == self.slots[index].address) else {
                    continue;
                };
                let rest = row.parked_until_ms - now_ms;
                pool.parked_until[index] = (rest > 0)
                    .then(|| now + Duration::from_millis(u64::try_from(rest).unwrap_or(0)));
                if rest <= 0 && (row.holder.is_none() || row.expires_at_ms <= now_ms) {
                    free.push(index);
                }
            }
            if pool
                .parked_until
                .iter()
                .all(|until| until.is_some_and(|until| until > now))
            {
                // Every relayer rests (parked here or elsewhere): waiting would not help.
                pool.waiters.clear();
                return;
            }
        }
        // Every free relayer, not only one per waiting request: requests here then take
        // turns over all of them (least recently used first), spreading the fees, and
        // any instance that comes to wait longer gets them back at once.
        let ttl = self.lease_ttl();
        for index in free {
            let started = Instant::now();
            let taken = match self
                .store
                .take_lease(self.slots[index].address, millis(ttl), since, alive_since)
                .await
            {
                Ok(Some(taken)) => taken,
                // Taken by another instance meanwhile, or an older request waits elsewhere.
                Ok(None) => continue,
                Err(error) => {
                    self.trouble("cannot take a relayer lease", &error);
                    return;
                }
            };
            *self.slots[index]
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = SlotState {
                nonce: taken.nonce,
                ..SlotState::default()
            };
            let mut pool = self.pool();
            pool.here[index] = Here::Held {
                token: taken.token,
                until: started + ttl,
            };
            pool.parked_until[index] = None;
            self.hand(&mut pool, index, taken.token);
        }
    }
}

/// What the manager remembers between rounds.
#[derive(Default)]
struct Manager {
    /// The relayers' rows exist.
    added: bool,
    /// The waiting time last published.
    published: Option<i64>,
}

/// Runs the lease manager of `relayers` until they are dropped or closed.
async fn manage(relayers: Weak<Relayers>, wake: Arc<Notify>) {
    let mut manager = Manager::default();
    loop {
        let busy = {
            let Some(relayers) = relayers.upgrade() else {
                return;
            };
            if relayers.closed.load(Ordering::Relaxed) {
                return;
            }
            relayers.manage(&mut manager).await
        };
        let tick = if busy { TICK_BUSY } else { TICK_IDLE };
        let _ = tokio::time::timeout(tick, wake.notified()).await;
    }
}

/// `duration` in whole milliseconds, as the database keeps times.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
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

/// One relayer, exclusively, until dropped, under its lease in the database; its nonce
/// travels with it.
pub struct Lease {
    relayers: Arc<Relayers>,
    index: usize,
    /// The lease's fencing token: recording a transaction checks it.
    token: i64,
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

    /// The lease's fencing token ([`Store::submitting`] checks it).
    pub fn token(&self) -> i64 {
        self.token
    }

    /// Whether the lease is still held here and stays valid for `time` more: a send must
    /// finish while the lease holds, or another instance could take it meanwhile.
    pub fn holds_for(&self, time: Duration) -> bool {
        let pool = self.relayers.pool();
        matches!(pool.here[self.index], Here::Held { token, until }
            if token == self.token && until > Instant::now() + time)
    }

    /// The lease is gone (the database said so): the relayer is not handed on from here.
    pub fn lost(&mut self) {
        let mut pool = self.relayers.pool();
        if matches!(pool.here[self.index], Here::Held { token, .. } if token == self.token) {
            tracing::warn!(relayer = %format!("{:#x}", self.address()), "relayer lease lost");
            pool.here[self.index] = Here::Away;
        }
        self.state = SlotState::default();
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

    /// The relayer failed; after enough failures in a row it is parked (for every
    /// instance: its lease goes back with the rest).
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
            self.relayers.release(self.index, self.token, state);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::{Claim, Sending, Submitting, TxStatus};

    fn configs(count: usize) -> Vec<RelayerConfig> {
        (1..=count)
            .map(|i| RelayerConfig {
                address: Felt::from(i),
                private_key: SecretKey::from_hex(&format!("{:#x}", i + 100)).unwrap(),
            })
            .collect()
    }

    /// `count` relayers of one instance on `store` (SQLite, or PostgreSQL when the tests
    /// run on it). No request is made: leasing never talks to the node.
    fn relayers_on(store: Store, count: usize, policy: RelayingConfig) -> Arc<Relayers> {
        let node = Arc::new(JsonRpcClient::new(HttpTransport::new(
            url::Url::parse("http://127.0.0.1:1/").unwrap(),
        )));
        Relayers::new(&configs(count), policy, node, Felt::ONE, store)
    }

    async fn store_at(url: &str) -> Store {
        Store::open(url).await.unwrap()
    }

    async fn relayers(count: usize, park_after_failures: u32) -> Arc<Relayers> {
        let policy = RelayingConfig {
            park_after_failures,
            park_seconds: 3600,
            ..RelayingConfig::default()
        };
        let store = store_at(&store::temp_database().await.unwrap()).await;
        relayers_on(store, count, policy)
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
                .filter(|w| !w.sender.is_closed())
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
        let pool = relayers(1, 3).await;
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
        let pool = relayers(1, 3).await;
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
        let policy = RelayingConfig {
            max_waiting: 2,
            ..RelayingConfig::default()
        };
        let store = store_at(&store::temp_database().await.unwrap()).await;
        let pool = relayers_on(store, 1, policy);
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
        let pool = relayers(1, 3).await;
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
    async fn a_relayer_that_keeps_failing_is_parked_for_every_instance() {
        let url = store::temp_database().await.unwrap();
        let policy = RelayingConfig {
            park_after_failures: 2,
            park_seconds: 3600,
            ..RelayingConfig::default()
        };
        let pool = relayers_on(store_at(&url).await, 2, policy.clone());
        let (mut failing, other) = (pool.lease().await.unwrap(), pool.lease().await.unwrap());
        let (bad, good) = (failing.address(), other.address());
        assert_ne!(bad, good);
        // A success in between resets the count: one failure in a row parks nothing.
        failing.failed();
        failing.worked();
        failing.failed();
        drop(failing);
        let mut failing = pool.lease().await.unwrap();
        assert_eq!(failing.address(), bad, "the only idle relayer");
        // Two failures in a row: it rests; every lease is the other relayer.
        failing.failed();
        drop(failing);
        drop(other);
        for _ in 0..3 {
            assert_eq!(pool.lease().await.unwrap().address(), good);
        }
        // Another instance on the same database never takes the parked one either: it
        // waits for the good relayer, which this instance gives up for it.
        let elsewhere = relayers_on(store_at(&url).await, 2, policy);
        let mut taken = elsewhere.lease().await.unwrap();
        assert_eq!(taken.address(), good);
        // The good relayer fails twice there too: both parked, for both instances,
        // nothing to lease, no waiting forever.
        taken.failed();
        taken.failed();
        drop(taken);
        assert_eq!(elsewhere.lease().await.err(), Some(NoRelayer::AllParked));
        let answer = tokio::time::timeout(Duration::from_secs(30), pool.lease()).await;
        assert_eq!(answer.unwrap().err(), Some(NoRelayer::AllParked));
    }

    /// Waits (boundedly) until `condition` holds.
    async fn until(condition: impl Fn() -> bool) {
        let held = async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), held)
            .await
            .expect("the condition never held");
    }

    /// Waits (boundedly) until no instance but `store`'s says a request waits.
    async fn until_no_waiting(store: &Store) {
        let none = async {
            while store.oldest_waiting_elsewhere(0).await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), none)
            .await
            .expect("a request kept waiting");
    }

    #[tokio::test]
    async fn an_instance_with_an_older_request_waiting_is_served_before_newer_ones_elsewhere() {
        let url = store::temp_database().await.unwrap();
        let (a, b) = (
            relayers_on(store_at(&url).await, 1, RelayingConfig::default()),
            relayers_on(store_at(&url).await, 1, RelayingConfig::default()),
        );
        let held = a.lease().await.unwrap();
        let (order_tx, mut order_rx) = tokio::sync::mpsc::unbounded_channel();
        let spawn = |relayers: &Arc<Relayers>, name: &'static str| {
            let (relayers, order) = (relayers.clone(), order_tx.clone());
            tokio::spawn(async move {
                let lease = relayers.lease().await.unwrap();
                order.send(name).unwrap();
                drop(lease);
            })
        };
        // A's request, then B's, then A's again, each waiting before the next arrives
        // (milliseconds apart: arrivals are compared across instances in milliseconds).
        let first = spawn(&a, "a1");
        until_waiting(&a, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = spawn(&b, "b1");
        until_waiting(&b, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let third = spawn(&a, "a2");
        until_waiting(&a, 2).await;
        until(|| a.pool().elsewhere.is_some()).await;
        drop(held);
        for task in [first, second, third] {
            task.await.unwrap();
        }
        let order: Vec<_> = std::iter::from_fn(|| order_rx.try_recv().ok()).collect();
        assert_eq!(
            order,
            ["a1", "b1", "a2"],
            "B's request waited longer than a2"
        );
    }

    #[tokio::test]
    async fn a_holder_stalled_past_its_lease_cannot_record_a_send() {
        let url = store::temp_database().await.unwrap();
        let policy = RelayingConfig {
            lease_seconds: 1,
            ..RelayingConfig::default()
        };
        let (a, b) = (store_at(&url).await, store_at(&url).await);
        let stalled = relayers_on(a.clone(), 1, policy.clone());
        let mut lease = stalled.lease().await.unwrap();
        lease.state.nonce = Some(Felt::from(5u8));
        let Claim::Owned(id) = a
            .claim("app", "u", Felt::ONE, Some(Felt::ONE))
            .await
            .unwrap()
        else {
            panic!("the row is new");
        };
        // Its request is served: it no longer says it waits.
        until_no_waiting(&b).await;
        // The whole instance stalls (its manager too, so nothing renews) past the expiry.
        stalled.closed.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(
            !lease.holds_for(Duration::ZERO),
            "the lease outlived its expiry"
        );
        // Another instance takes the relayer over: a new token, and the nonce is read
        // again from the node (the stalled holder's last send is unknown).
        let other = relayers_on(b.clone(), 1, policy);
        let taken = other.lease().await.unwrap();
        assert_eq!(taken.address(), Felt::ONE);
        assert!(taken.token() > lease.token());
        assert_eq!(taken.state.nonce, None);
        // The stalled holder wakes up: the same statement that would record its send
        // refuses it, so it never sends with the nonce the other instance now owns.
        let sending = |hash: u8| Sending {
            hash: Felt::from(hash),
            relayer: Felt::ONE,
            relayer_nonce: Felt::from(5u8),
            max_fee: 10,
            request: "{}",
        };
        assert_eq!(
            a.submitting(id, sending(9), lease.token()).await.unwrap(),
            Submitting::LeaseLost
        );
        assert_eq!(
            a.transaction(Felt::ONE, Some(Felt::ONE))
                .await
                .unwrap()
                .unwrap()
                .status,
            TxStatus::Claimed
        );
        // The new holder records its own.
        let Claim::Owned(mine) = b
            .claim("app", "u", Felt::TWO, Some(Felt::ONE))
            .await
            .unwrap()
        else {
            panic!("the row is new");
        };
        assert_eq!(
            b.submitting(mine, sending(10), taken.token())
                .await
                .unwrap(),
            Submitting::Recorded
        );
        // Given back, the stale lease is not handed on.
        lease.lost();
        drop(lease);
        assert!(stalled.held().is_empty());
        assert_eq!(other.held(), [Felt::ONE]);
    }

    #[tokio::test]
    async fn leases_come_back_with_their_nonce_when_idle_or_closed() {
        let url = store::temp_database().await.unwrap();
        let store = store_at(&url).await;
        let pool = relayers_on(store.clone(), 1, RelayingConfig::default());
        let mut lease = pool.lease().await.unwrap();
        lease.state.nonce = Some(Felt::from(41u8));
        lease.sent();
        drop(lease);
        pool.close().await;
        let row = store.leases().await.unwrap().remove(0);
        assert_eq!(row.holder, None);
        // The next instance starts from the released nonce, not from the node's.
        let next = relayers_on(store_at(&url).await, 1, RelayingConfig::default());
        assert_eq!(
            next.lease().await.unwrap().state.nonce,
            Some(Felt::from(42u8))
        );
    }
}
