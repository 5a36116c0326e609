//! Sponsored transactions per second through the paymaster service over real HTTP, by
//! Chipi's API and by the standard SNIP-29 API, against the node-bound floor: the same
//! transactions sent by a minimal direct client from the same relayers, at the same
//! concurrency. One run, four tables.
//!
//! `cargo run --release -p chipi-bench --bin paymaster-bench [-- --txs N | --quick] [--floor MODE]`
//!
//! `--txs N`: measured transactions per side and level (default 300, a multiple of 4);
//! `--quick`: 12, to check that it runs (a debug build is fine for that); `--floor queue`
//! (default), `fifo` or `service`: how the floor hands transactions to its relayers (see
//! [`FloorMode`]).
//!
//! Everything runs in this process: the embedded devnet (its own runtime), the real
//! service on 127.0.0.1 with a SQLite file, or a fresh database on the PostgreSQL server
//! `--postgres` names (`LocalPaymaster`, relayers = predeployed
//! accounts 3 and 4, follower every 250 ms as in production), and the clients.
//!
//! - **service**: each of `c` wallets runs its transactions back to back:
//!   `prepare-typed-data` → the owner signs the typed data → `execute-sponsored-transaction`;
//!   a transaction counts when execute answers 200. Latency = prepare round trip + execute
//!   round trip (the owner's signing between them is the client's, not counted).
//! - **SNIP-29**: the same through `POST /` (`paymaster_buildTransaction` → the owner
//!   signs → `paymaster_executeTransaction`, sponsored), same relayers, same user.
//! - **floor**: each wallet builds and signs the same kind of outside execution itself
//!   (random nonce, window around the devnet's block time) and hands the
//!   `execute_from_outside_v2` call to the same two relayers (one transaction in flight per
//!   relayer, nonce kept locally), which estimate its fee (the simulation) and send it with
//!   the estimate plus the service's margin (50 %). No HTTP, no database. Latency = wait
//!   for a relayer + estimate + send.
//!
//! Each side runs every level in 4 segments of a quarter of its transactions; the run
//! goes round the levels 4 times (1, 10, 20, 1, 10, 20, ...), each time one segment of
//! each side per level, the side that goes first rotating, so that drift (the
//! devnet slows down as its chain grows) weighs on both sides and on every level alike.
//! Each segment starts with a short unmeasured warm-up at its concurrency (which also lets
//! each side re-learn the relayers' nonces that the other side moved). The ratio column
//! also gives the range of the ratio over a level's 4 rounds. Between segments every
//! transaction is checked to have succeeded on chain, and the service's follower is let to
//! finish, so that neither side's leftovers load the node while the other is measured.

use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chipi_bench::service::{
    transfer_json, transfer_snip29, ServiceClient, Wallet, EXECUTE, PREPARE,
};
use chipi_contract_tests::paymaster::{user_token, LocalPaymaster, Options, API_KEY, USER};
use chipi_contract_tests::{random_key, strk_transfer, STRK};
use chipi_core::{public_key_of, selectors, Call, Felt, OutsideExecution, ANY_CALLER};
use chipi_devnet::Devnet;
use chipi_paymaster::{
    calls_hash, Bounds, End, IssuedNonce, RelayerAccount, RelayerConfig, Relayers, RelayingConfig,
    Sending, Store, TxStatus,
};

use starknet_rust::accounts::Account;
use starknet_rust::core::types::{BlockId, BlockTag};
use starknet_rust::providers::jsonrpc::{HttpTransport, JsonRpcClient};
use starknet_rust::providers::Provider;

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The service's default `fee_margin_percent`: the floor bounds its fees the same way.
const FEE_MARGIN_PERCENT: u32 = 50;
/// Predeployed accounts that relay, on both sides.
const RELAYERS: [usize; 2] = [3, 4];
/// Concurrency levels (wallets sending at once).
const LEVELS: [usize; 3] = [1, 10, 20];
/// The most wallets `--levels` may ask for.
const MAX_LEVEL: usize = 200;
/// Service throughput / floor throughput wanted at the highest level.
const MIN_RATIO_AT_20: f64 = 0.9;
/// SNIP-29 throughput / Chipi API throughput wanted at every level.
const MIN_SNIP29_RATIO: f64 = 0.95;
/// Each side runs `2 * ROUNDS` segments of `n / (2 * ROUNDS)` transactions per level.
const ROUNDS: usize = 2;
/// Unmeasured transactions at the start of each segment.
const WARM_UP: usize = 2 * RELAYERS.len();

fn main() -> ExitCode {
    chipi_bench::service::main_with("paymaster-bench", run())
}

/// The command line.
struct Args {
    /// Measured transactions per side and concurrency level.
    n: usize,
    /// How the floor hands transactions to relayers.
    floor: FloorMode,
    /// A PostgreSQL server (a URL whose user may create databases): the service runs on a
    /// fresh database there instead of a SQLite file.
    postgres: Option<String>,
    /// Concurrency levels.
    levels: Vec<usize>,
    /// Service instances on the one database (1 or 2), sharing the relayers.
    instances: usize,
}

fn args() -> Result<Args> {
    let usage = "usage: paymaster-bench [--txs N | --quick] [--floor queue|fifo|service] \
                 [--postgres postgres://user@host:port/db] [--levels 20,100] [--instances 1|2]";
    let mut args = Args {
        n: 300,
        floor: FloorMode::Queue,
        postgres: None,
        levels: LEVELS.to_vec(),
        instances: 1,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--quick" => args.n = 12,
            "--postgres" => args.postgres = Some(words.next().ok_or(usage)?),
            "--levels" => {
                let value = words.next().ok_or(usage)?;
                args.levels = value
                    .split(',')
                    .map(|level| level.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .ok()
                    .filter(|levels: &Vec<usize>| {
                        !levels.is_empty() && levels.iter().all(|&l| (1..=MAX_LEVEL).contains(&l))
                    })
                    .ok_or_else(|| format!("--levels: wallet counts from 1 to {MAX_LEVEL}, comma-separated: {value}"))?;
            }
            "--instances" => {
                let value = words.next().ok_or(usage)?;
                args.instances = match value.as_str() {
                    "1" => 1,
                    "2" => 2,
                    _ => return Err(format!("--instances: 1 or 2: {value}").into()),
                };
            }
            "--floor" => {
                args.floor = words
                    .next()
                    .as_deref()
                    .and_then(FloorMode::parse)
                    .ok_or(usage)?;
            }
            "--txs" => {
                let value = words.next().ok_or(usage)?;
                args.n = value
                    .parse()
                    .map_err(|_| format!("--txs: not a number: {value}"))?;
            }
            _ => return Err(usage.into()),
        }
    }
    if args.n == 0 || !args.n.is_multiple_of(2 * ROUNDS) {
        return Err(format!(
            "--txs: a positive multiple of {} (segments per side)",
            2 * ROUNDS
        )
        .into());
    }
    Ok(args)
}

/// One transaction's timings (client side).
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    /// Service: prepare + execute round trips. Floor: relayer wait + estimate + send.
    total: Duration,
    /// Service: prepare round trip. Floor: wait for a relayer.
    first: Duration,
    /// Service: execute round trip. Floor: estimate.
    second: Duration,
    /// Floor: send (service: zero).
    third: Duration,
}

/// What one segment (or the sum of a side's segments) did.
#[derive(Default)]
struct Tally {
    ok: usize,
    elapsed: Duration,
    samples: Vec<Sample>,
    failures: Vec<String>,
    hashes: Vec<Felt>,
    /// Service only: the time the service itself measured, by route.
    server: ServerTimes,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.ok += other.ok;
        self.elapsed += other.elapsed;
        self.samples.extend(other.samples);
        self.failures.extend(other.failures);
        self.hashes.extend(other.hashes);
        self.server.add(&other.server);
    }

    fn mean(&self, field: impl Fn(&Sample) -> Duration) -> Duration {
        let total: Duration = self.samples.iter().map(field).sum();
        total / u32::try_from(self.samples.len().max(1)).unwrap_or(u32::MAX)
    }

    fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, q: f64, field: impl Fn(&Sample) -> Duration) -> Duration {
        let mut values: Vec<Duration> = self.samples.iter().map(field).collect();
        values.sort();
        if values.is_empty() {
            return Duration::ZERO;
        }
        // Nearest rank.
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1]
    }
}

/// The service's own request-duration histogram (its `observe` layer: from routing to
/// the response, handler and body reading included): sum and count per route.
#[derive(Debug, Clone, Copy, Default)]
struct ServerTimes {
    prepare: (f64, u64),
    execute: (f64, u64),
    /// Relayer nonces the service re-read after a stale-nonce answer.
    resyncs: u64,
}

impl ServerTimes {
    fn read(pm: &LocalPaymaster) -> Self {
        let latency = &pm.state.metrics().latency;
        let route = |name: &str| {
            let histogram = latency.with_label_values(&[name]);
            (histogram.get_sample_sum(), histogram.get_sample_count())
        };
        Self {
            prepare: route(PREPARE),
            execute: route(EXECUTE),
            resyncs: pm.state.metrics().nonce_resyncs.get(),
        }
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            prepare: (
                self.prepare.0 - before.prepare.0,
                self.prepare.1 - before.prepare.1,
            ),
            execute: (
                self.execute.0 - before.execute.0,
                self.execute.1 - before.execute.1,
            ),
            resyncs: self.resyncs - before.resyncs,
        }
    }

    fn add(&mut self, other: &Self) {
        self.prepare.0 += other.prepare.0;
        self.prepare.1 += other.prepare.1;
        self.execute.0 += other.execute.0;
        self.execute.1 += other.execute.1;
        self.resyncs += other.resyncs;
    }

    fn mean(sum_count: (f64, u64)) -> Duration {
        Duration::from_secs_f64(sum_count.0 / sum_count.1.max(1) as f64)
    }
}

/// The outcome of one transaction as a segment records it.
type Outcome = std::result::Result<(Felt, Sample), String>;

/// Runs `count` transactions from wallets `0..c`, each wallet back to back (the next
/// transaction's index is taken from a shared counter), and times them.
async fn segment<F, Fut>(wallets: &Arc<Vec<Wallet>>, c: usize, count: usize, one: F) -> Tally
where
    F: Fn(Arc<Vec<Wallet>>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    let mut tally = Tally::default();
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..c.min(count) {
        let (next, results, wallets, one) =
            (next.clone(), results.clone(), wallets.clone(), one.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let outcome = one(wallets.clone(), w).await;
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(outcome);
            }
        }));
    }
    for task in tasks {
        if let Err(error) = task.await {
            tally.failures.push(format!("a wallet task died: {error}"));
        }
    }
    tally.elapsed = start.elapsed();
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    for outcome in results {
        match outcome {
            Ok((hash, sample)) => {
                tally.hashes.push(hash);
                tally.ok += 1;
                tally.samples.push(sample);
            }
            Err(failure) => tally.failures.push(failure),
        }
    }
    tally
}

// ---------------------------------------------------------------------------------------
// The service side.

/// The recipient of wallet `w`'s transfers (1 fri each).
fn recipient(w: usize) -> Felt {
    Felt::from(0xbe_0000_u64 + w as u64)
}

/// `n` transactions through the service by `c` wallets, by Chipi's API or SNIP-29's;
/// wallet `w` talks to instance `w % clients.len()` (a load balancer's spread).
async fn service_segment(
    clients: &[ServiceClient],
    snip29: bool,
    wallets: &Arc<Vec<Wallet>>,
    c: usize,
    n: usize,
) -> Tally {
    let clients = Arc::new(clients.to_vec());
    segment(wallets, c, n, move |wallets, w| {
        let client = clients[w % clients.len()].clone();
        async move {
            let done = if snip29 {
                client
                    .sponsored_snip29(&wallets[w], transfer_snip29(recipient(w), 1))
                    .await
            } else {
                client
                    .sponsored(&wallets[w], transfer_json(recipient(w), 1))
                    .await
            }
            .map_err(|failed| failed.message)?;
            Ok((
                done.hash,
                Sample {
                    total: done.prepare + done.execute,
                    first: done.prepare,
                    second: done.execute,
                    third: Duration::ZERO,
                },
            ))
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------
// The floor: a minimal direct client.

struct Relayer {
    account: Arc<RelayerAccount>,
    nonce: Felt,
}

impl Relayer {
    /// After a transaction: the next nonce if the node took it, else the node's word.
    async fn advance(&mut self, sent: bool, node: &Node) {
        if sent {
            self.nonce += Felt::ONE;
        } else if let Ok(nonce) = node
            .get_nonce(BlockId::Tag(BlockTag::PreConfirmed), self.account.address())
            .await
        {
            self.nonce = nonce;
        }
    }
}

/// How the floor hands its transactions to the relayers (one in flight per relayer, the
/// nonce kept locally, in every mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FloorMode {
    /// Each relayer has a task that takes the next transaction from one FIFO queue: a
    /// relayer that finishes goes on at once with the oldest waiting transaction. The
    /// default, and the strongest floor.
    Queue,
    /// Each transaction leases a relayer from a FIFO pool (waiters queue on a fair mutex
    /// over a channel of idle relayers): every hand-over wakes the waiting task.
    Fifo,
    /// Each transaction leases through the service's own `chipi_paymaster::Relayers`.
    Service,
}

impl FloorMode {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "queue" => Some(Self::Queue),
            "fifo" => Some(Self::Fifo),
            "service" => Some(Self::Service),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Queue => "relayer tasks taking transactions from one FIFO queue (--floor queue)",
            Self::Fifo => "transactions leasing relayers from a FIFO pool (--floor fifo)",
            Self::Service => {
                "transactions leasing relayers through the service's own `Relayers` (--floor service)"
            }
        }
    }
}

/// A transaction for a relayer task, and where its outcome goes.
struct Job {
    call: Call,
    queued: Instant,
    answer: tokio::sync::oneshot::Sender<std::result::Result<Relayed, String>>,
}

/// What a relayer task did with a job.
struct Relayed {
    hash: Felt,
    wait: Duration,
    estimate: Duration,
    send: Duration,
}

type Receiver<T> = Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<T>>>;

/// The floor's relayers, in one of the [`FloorMode`]s.
#[derive(Clone)]
enum Pool {
    Queue {
        jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    },
    Fifo {
        give: tokio::sync::mpsc::UnboundedSender<Relayer>,
        take: Receiver<Relayer>,
    },
    Service(Arc<Relayers>),
}

/// Runs `relayer`'s transactions, oldest first, until the queue closes.
async fn relay(mut relayer: Relayer, jobs: Receiver<Job>, node: Node) {
    loop {
        let job = jobs.lock().await.recv().await;
        let Some(job) = job else {
            return;
        };
        let picked = Instant::now();
        let result = estimate_and_send(&relayer, job.call).await;
        relayer.advance(result.is_ok(), &node).await;
        let done = Instant::now();
        let _ = job
            .answer
            .send(result.map(|(hash, estimate, sending)| Relayed {
                hash,
                wait: picked - job.queued,
                estimate,
                send: done - sending,
            }));
    }
}

impl Pool {
    /// The relayers of `accounts` in `mode`, their nonces read from the node.
    async fn new(
        mode: FloorMode,
        relayers: &FloorRelayers,
        node: &Node,
        chain_id: Felt,
    ) -> Result<Self> {
        if mode == FloorMode::Service {
            // The service's relayers lease through a database: a file of their own.
            let store = Store::open(&chipi_contract_tests::paymaster::temp_sqlite()).await?;
            return Ok(Self::Service(Relayers::new(
                &relayers.configs,
                RelayingConfig::default(),
                node.clone(),
                chain_id,
                store,
            )));
        }
        let mut idle = Vec::new();
        for account in &relayers.accounts {
            let nonce = node
                .get_nonce(BlockId::Tag(BlockTag::PreConfirmed), account.address())
                .await?;
            idle.push(Relayer {
                account: account.clone(),
                nonce,
            });
        }
        if mode == FloorMode::Queue {
            let (jobs, queue) = tokio::sync::mpsc::unbounded_channel();
            let queue = Arc::new(tokio::sync::Mutex::new(queue));
            // The tasks end when the last sender (the last clone of this pool) is dropped.
            for relayer in idle {
                tokio::spawn(relay(relayer, queue.clone(), node.clone()));
            }
            return Ok(Self::Queue { jobs });
        }
        let (give, take) = tokio::sync::mpsc::unbounded_channel();
        for relayer in idle {
            give.send(relayer).map_err(|_| "pool closed")?;
        }
        Ok(Self::Fifo {
            give,
            take: Arc::new(tokio::sync::Mutex::new(take)),
        })
    }
}

type Node = Arc<JsonRpcClient<HttpTransport>>;

/// The relayers as the floor knows them.
struct FloorRelayers {
    configs: Vec<RelayerConfig>,
    accounts: Vec<Arc<RelayerAccount>>,
}

#[derive(Clone)]
struct Floor {
    pool: Pool,
    node: Node,
    chain_id: Felt,
    block_time: u64,
}

impl Floor {
    /// Untimed: the relayers' nonces (the service moved them) and the chain time.
    async fn new(
        devnet: &Devnet,
        mode: FloorMode,
        relayers: &FloorRelayers,
        node: &Node,
    ) -> Result<Self> {
        Ok(Self {
            pool: Pool::new(mode, relayers, node, devnet.chain_id()).await?,
            node: node.clone(),
            chain_id: devnet.chain_id(),
            block_time: devnet.block_timestamp().await?,
        })
    }

    async fn run(&self, wallets: &Arc<Vec<Wallet>>, c: usize, n: usize) -> Tally {
        let floor = self.clone();
        segment(wallets, c, n, move |wallets, w| {
            let floor = floor.clone();
            async move {
                floor
                    .sponsored(&wallets[w], strk_transfer(recipient(w), 1))
                    .await
            }
        })
        .await
    }

    async fn sponsored(&self, wallet: &Wallet, call: Call) -> Outcome {
        // The client's part, as on the service side: build and sign (not timed).
        let execution = OutsideExecution {
            caller: ANY_CALLER,
            nonce: random_key(),
            execute_after: self.block_time.saturating_sub(60),
            execute_before: self.block_time + 600,
            calls: vec![call],
        };
        let (r, s) = chipi_core::sign_hash(
            &wallet.key,
            execution.message_hash(self.chain_id, wallet.address),
        )
        .map_err(|e| format!("owner signature: {e}"))?;
        let call = Call {
            to: wallet.address,
            selector: selectors::EXECUTE_FROM_OUTSIDE_V2,
            calldata: execution.calldata(&[r, s]),
        };

        let t0 = Instant::now();
        let (hash, wait, estimate, send) = match &self.pool {
            Pool::Queue { jobs } => {
                let (answer, outcome) = tokio::sync::oneshot::channel();
                jobs.send(Job {
                    call,
                    queued: t0,
                    answer,
                })
                .map_err(|_| "the relayer tasks are gone")?;
                let relayed = outcome.await.map_err(|_| "a relayer task died")??;
                (relayed.hash, relayed.wait, relayed.estimate, relayed.send)
            }
            Pool::Fifo { give, take } => {
                let mut relayer = take.lock().await.recv().await.ok_or("the pool is closed")?;
                let t1 = Instant::now();
                let result = estimate_and_send(&relayer, call).await;
                let t3 = Instant::now();
                relayer.advance(result.is_ok(), &self.node).await;
                let _ = give.send(relayer);
                let (hash, estimate, t2) = result?;
                (hash, t1 - t0, estimate, t3 - t2)
            }
            Pool::Service(relayers) => {
                let mut lease = relayers.lease().await.map_err(|e| e.to_string())?;
                let nonce = lease
                    .nonce(&self.node)
                    .await
                    .map_err(|e| format!("relayer nonce: {e}"))?;
                let t1 = Instant::now();
                let relayer = Relayer {
                    account: lease.account(),
                    nonce,
                };
                let result = estimate_and_send(&relayer, call).await;
                let t3 = Instant::now();
                if result.is_ok() {
                    lease.sent();
                } else {
                    lease.resync();
                }
                drop(lease);
                let (hash, estimate, t2) = result?;
                (hash, t1 - t0, estimate, t3 - t2)
            }
        };
        Ok((
            hash,
            Sample {
                total: t0.elapsed(),
                first: wait,
                second: estimate,
                third: send,
            },
        ))
    }
}

/// Estimate (the simulation), then send with those bounds: the hash, the estimate's
/// duration and when the send started.
async fn estimate_and_send(
    relayer: &Relayer,
    call: Call,
) -> std::result::Result<(Felt, Duration, Instant), String> {
    let started = Instant::now();
    let execution = relayer
        .account
        .execute_v3(vec![call])
        .nonce(relayer.nonce)
        .tip(0);
    let estimate = execution
        .estimate_fee()
        .await
        .map_err(|e| format!("estimate: {e}"))?;
    let estimated = started.elapsed();
    let sending = Instant::now();
    let bounds = Bounds::new(&estimate, FEE_MARGIN_PERCENT);
    let sent = bounds
        .apply(execution)
        .prepared()
        .map_err(|e| format!("prepare: {e}"))?
        .send()
        .await
        .map_err(|e| format!("send: {e}"))?;
    Ok((sent.transaction_hash, estimated, sending))
}

// ---------------------------------------------------------------------------------------
// Between segments.

/// Every transaction of `tally` succeeded on chain, and the service follows nothing
/// any more (so its follower stays off the node while the next segment is measured).
async fn settle(devnet: &Devnet, pm: &LocalPaymaster, tally: &mut Tally) -> Result<()> {
    for hash in &tally.hashes {
        if let Err(error) = devnet.wait_for_success(*hash).await {
            tally.failures.push(format!("{hash:#x}: {error}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pm.state.store().open_transactions().await?.is_empty() {
        if Instant::now() > deadline {
            return Err("the service's follower did not settle within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The 1-minute load average: other work on the machine skews every column.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn signed_ms(a: Duration, b: Duration) -> String {
    let delta = a.as_secs_f64() - b.as_secs_f64();
    format!("{:+.1} ms", delta * 1000.0)
}

/// The three ways the same transactions are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The service, Chipi's API.
    Service,
    /// The service, SNIP-29.
    Snip29,
    /// The direct client.
    Floor,
}

impl Side {
    const ALL: [Side; 3] = [Side::Service, Side::Snip29, Side::Floor];

    fn name(self) -> &'static str {
        match self {
            Self::Service => "service (Chipi API)",
            Self::Snip29 => "service (SNIP-29)",
            Self::Floor => "floor",
        }
    }
}

struct Level {
    c: usize,
    service: Tally,
    snip29: Tally,
    floor: Tally,
    /// Service, SNIP-29 and floor throughput in each round.
    rounds: Vec<[f64; 3]>,
}

impl Level {
    fn side(&mut self, side: Side) -> &mut Tally {
        match side {
            Side::Service => &mut self.service,
            Side::Snip29 => &mut self.snip29,
            Side::Floor => &mut self.floor,
        }
    }
}

async fn run() -> Result<bool> {
    let Args {
        n,
        floor: mode,
        postgres,
        levels: level_list,
        instances,
    } = args()?;
    if instances > 1 && postgres.is_none() {
        return Err("--instances 2: several instances need --postgres".into());
    }
    // A fresh database: a SQLite file, or one on the PostgreSQL server asked for.
    let database = match &postgres {
        Some(server) => chipi_contract_tests::paymaster::temp_postgres(server).await?,
        None => chipi_contract_tests::paymaster::temp_sqlite(),
    };
    let segment_size = n / (2 * ROUNDS);
    let load_before = load_average();
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful numbers");
    }
    let started = Instant::now();
    eprintln!("starting the devnet and the service ...");
    let devnet = Devnet::start().await?;
    let options = || {
        Options {
            relayers: RELAYERS.to_vec(),
            database: Some(database.clone()),
            ..Options::default()
        }
        .configure(|config| {
            // The production defaults the local stack changes.
            config.relaying.follow_interval_ms = 250;
            config.window.chain_time_cache_ms = 1000;
            // One user token drives every wallet: its requests at once are the concurrency.
            config.http.max_concurrent_per_user = 2 * MAX_LEVEL;
            config.window.max_outstanding = u32::try_from(2 * MAX_LEVEL).unwrap_or(u32::MAX);
        })
    };
    let pm = LocalPaymaster::start_with(&devnet, options()).await?;
    // Further instances on the same database, with the same relayers (leased through it).
    let mut others = Vec::new();
    for _ in 1..instances {
        others.push(LocalPaymaster::start_with(&devnet, options()).await?);
    }

    let max_c = level_list.iter().copied().max().unwrap_or(1);
    eprintln!("deploying {max_c} wallets ...");
    let mut wallets = Vec::with_capacity(max_c);
    for _ in 0..max_c {
        let key = random_key();
        let address = devnet
            // 1 STRK each: the funding account holds enough for MAX_LEVEL wallets, and a
            // wallet only ever sends transfers of 1 fri (its fees are sponsored).
            .deploy_session_wallet(public_key_of(&key)?, STRK)
            .await?;
        wallets.push(Wallet { key, address });
    }
    let wallets = Arc::new(wallets);

    // The floor's relayers: the same accounts, built as the service builds them (same
    // signer, same block tag), through a node client of its own.
    let node: Node = Arc::new(JsonRpcClient::new(HttpTransport::new(
        devnet.rpc_url().clone(),
    )));
    let configs: Vec<RelayerConfig> = RELAYERS
        .iter()
        .map(|&i| {
            let account = &devnet.accounts()[i];
            Ok(RelayerConfig {
                address: account.address,
                private_key: chipi_core::SecretKey::from_hex(&format!(
                    "{:#x}",
                    account.private_key
                ))?,
            })
        })
        .collect::<Result<_>>()?;
    let relayers = Relayers::new(
        &configs,
        RelayingConfig::default(),
        node.clone(),
        devnet.chain_id(),
        Store::open(&chipi_contract_tests::paymaster::temp_sqlite()).await?,
    );
    // `Relayers` hands its accounts out through leases only: hold one of each, keep the
    // accounts, let the leases go (that pool is not used again).
    let mut accounts = Vec::new();
    {
        let mut leases = Vec::new();
        for _ in &configs {
            let lease = relayers.lease().await?;
            accounts.push(lease.account());
            leases.push(lease);
        }
    }
    let floor_relayers = FloorRelayers { configs, accounts };

    let http = reqwest::Client::new();
    let token = Arc::new(user_token(USER));
    let client: Vec<ServiceClient> = std::iter::once(&pm)
        .chain(&others)
        .map(|instance| ServiceClient {
            http: http.clone(),
            base: instance.url.clone(),
            api_key: API_KEY.into(),
            token: token.clone(),
        })
        .collect();
    let server_times = || {
        let mut times = ServerTimes::read(&pm);
        for other in &others {
            times.add(&ServerTimes::read(other));
        }
        times
    };

    // Warm-up: every wallet through the service once (its capability check is cached
    // after the first prepare), and a few floor transactions.
    eprintln!("warming up ...");
    let mut service_sent = 0;
    let mut warm = service_segment(&client, false, &wallets, max_c, max_c).await;
    warm.absorb(service_segment(&client, true, &wallets, max_c, max_c).await);
    service_sent += warm.hashes.len();
    let direct = Floor::new(&devnet, mode, &floor_relayers, &node).await?;
    warm.absorb(direct.run(&wallets, 4, 8).await);
    drop(direct);
    settle(&devnet, &pm, &mut warm).await?;
    if !warm.failures.is_empty() {
        return Err(format!("warm-up failed: {}", warm.failures.join("; ")).into());
    }

    let mut levels: Vec<Level> = level_list
        .iter()
        .map(|&c| Level {
            c,
            service: Tally::default(),
            snip29: Tally::default(),
            floor: Tally::default(),
            rounds: Vec::new(),
        })
        .collect();
    // Rounds over all levels, so that the devnet's slowing down as its chain grows weighs
    // on every level alike; within a level the side that goes first rotates.
    for round in 0..2 * ROUNDS {
        for (i, level) in levels.iter_mut().enumerate() {
            let c = level.c;
            let mut rates = [0.0; 3];
            for k in 0..Side::ALL.len() {
                let side = Side::ALL[(round + i + k) % Side::ALL.len()];
                eprintln!(
                    "round {}/{}, {c} wallets: {} ({segment_size} transactions) ...",
                    round + 1,
                    2 * ROUNDS,
                    side.name()
                );
                // Each segment: an unmeasured warm-up at the same concurrency, then the
                // measured transactions, then (untimed) everything checked on chain.
                let (mut warm, mut measured) = if side == Side::Floor {
                    let direct = Floor::new(&devnet, mode, &floor_relayers, &node).await?;
                    let warm = direct.run(&wallets, c, WARM_UP).await;
                    (warm, direct.run(&wallets, c, segment_size).await)
                } else {
                    let snip29 = side == Side::Snip29;
                    let warm = service_segment(&client, snip29, &wallets, c, WARM_UP).await;
                    let before = server_times();
                    let mut measured =
                        service_segment(&client, snip29, &wallets, c, segment_size).await;
                    measured.server = server_times().since(&before);
                    service_sent += warm.hashes.len() + measured.hashes.len();
                    (warm, measured)
                };
                settle(&devnet, &pm, &mut warm).await?;
                settle(&devnet, &pm, &mut measured).await?;
                rates[side as usize] = measured.per_second();
                let tally = level.side(side);
                tally.failures.append(&mut warm.failures);
                tally.absorb(measured);
            }
            level.rounds.push(rates);
        }
    }
    let load_after = load_average();
    let total = started.elapsed();
    // The service's own records: every transaction it sent, accepted (checked after the run).
    let sent_by_service = service_sent;
    let rows = pm.state.store().transactions().await?;
    let accepted = rows
        .iter()
        .filter(|row| row.status() == TxStatus::Accepted)
        .count();
    for other in others {
        other.stop().await;
    }
    pm.stop().await;

    let database = database_cost(200, &database).await?;
    print_tables(
        &levels,
        n,
        [&load_before, &load_after],
        total,
        &database,
        mode,
        instances,
    );

    let mut ok = accepted == sent_by_service && rows.len() == sent_by_service;
    if !ok {
        eprintln!(
            "the service recorded {} transactions, {accepted} accepted, for {sent_by_service} sent",
            rows.len()
        );
    }
    for level in &levels {
        for (side, tally) in [
            ("service", &level.service),
            ("SNIP-29", &level.snip29),
            ("floor", &level.floor),
        ] {
            if !tally.failures.is_empty() {
                ok = false;
                eprintln!(
                    "{} wallets, {side}: {} failures, first: {}",
                    level.c,
                    tally.failures.len(),
                    tally.failures[0]
                );
            }
        }
    }
    Ok(ok)
}

fn print_tables(
    levels: &[Level],
    n: usize,
    [load_before, load_after]: [&str; 2],
    total: Duration,
    database: &DatabaseCost,
    mode: FloorMode,
    instances: usize,
) {
    println!("### Sponsored transactions per second: service over HTTP vs the direct floor");
    println!();
    println!(
        "{} ({} threads, load average {load_before} before, {load_after} after); {}; \
         embedded devnet, {instances} service instance(s) on {}, {} relayers, {n} measured transactions per side \
         and level in {} segments (+{WARM_UP} warm-up each); floor: {}; run took {:.0} s.",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "DEBUG build (numbers meaningless)"
        } else {
            "release build"
        },
        database.backend,
        RELAYERS.len(),
        2 * ROUNDS,
        mode.describe(),
        total.as_secs_f64(),
    );
    println!();
    println!(
        "| wallets | service tx/s | floor tx/s | service / floor | service p50 / p90 (prepare + execute) | floor p50 / p90 (relayer wait + estimate + send) | added p50 | added p90 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let max_c = levels.iter().map(|l| l.c).max().unwrap_or(0);
    for level in levels {
        let (s, f) = (&level.service, &level.floor);
        let ratio = s.per_second() / f.per_second().max(1e-9);
        let verdict = if level.c == max_c {
            if ratio >= MIN_RATIO_AT_20 {
                format!(" PASS (≥{MIN_RATIO_AT_20})")
            } else {
                format!(" MISS (≥{MIN_RATIO_AT_20})")
            }
        } else {
            String::new()
        };
        let (sp50, sp90) = (
            s.percentile(0.5, |x| x.total),
            s.percentile(0.9, |x| x.total),
        );
        let (fp50, fp90) = (
            f.percentile(0.5, |x| x.total),
            f.percentile(0.9, |x| x.total),
        );
        let pairs = level.rounds.iter().map(|[s, _, f]| s / f.max(1e-9));
        let low = pairs.clone().fold(f64::INFINITY, f64::min);
        let high = pairs.fold(0.0, f64::max);
        println!(
            "| {} | {:.1} | {:.1} | {ratio:.2}x{verdict} (rounds {low:.2}-{high:.2}) | {} / {} | {} / {} | {} | {} |",
            level.c,
            s.per_second(),
            f.per_second(),
            ms(sp50),
            ms(sp90),
            ms(fp50),
            ms(fp90),
            signed_ms(sp50, fp50),
            signed_ms(sp90, fp90),
        );
    }
    println!();
    println!("### Where a request's time goes (p50 of each part, and the p99 of the whole)");
    println!();
    println!(
        "| wallets | service: prepare | service: execute | floor: relayer wait | floor: estimate | floor: send | floor: estimate + send | execute − floor total | p99 total: service / floor |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for level in levels {
        let (s, f) = (&level.service, &level.floor);
        let execute = s.percentile(0.5, |x| x.second);
        let floor_total = f.percentile(0.5, |x| x.total);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            level.c,
            ms(s.percentile(0.5, |x| x.first)),
            ms(execute),
            ms(f.percentile(0.5, |x| x.first)),
            ms(f.percentile(0.5, |x| x.second)),
            ms(f.percentile(0.5, |x| x.third)),
            ms(f.percentile(0.5, |x| x.second + x.third)),
            signed_ms(execute, floor_total),
            ms(s.percentile(0.99, |x| x.total)),
            ms(f.percentile(0.99, |x| x.total)),
        );
    }
    println!();
    println!("### The service's own view (means)");
    println!();
    println!(
        "| wallets | prepare: client round trip | prepare: in the service | execute: client round trip | execute: in the service | HTTP + client, both requests | relayer nonce re-syncs |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for level in levels {
        let s = &level.service;
        let (prepare, execute) = (s.mean(|x| x.first), s.mean(|x| x.second));
        let (in_prepare, in_execute) = (
            ServerTimes::mean(s.server.prepare),
            ServerTimes::mean(s.server.execute),
        );
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            level.c,
            ms(prepare),
            ms(in_prepare),
            ms(execute),
            ms(in_execute),
            signed_ms(prepare + execute, in_prepare + in_execute),
            s.server.resyncs,
        );
    }
    println!();
    println!("### The same through the SNIP-29 API (same relayers, same run)");
    println!();
    println!(
        "| wallets | SNIP-29 tx/s | Chipi API tx/s | SNIP-29 / Chipi | SNIP-29 p50 / p90 (build + execute) | added p50 vs Chipi | added p50 vs floor |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for level in levels {
        let (rpc, s, f) = (&level.snip29, &level.service, &level.floor);
        let ratio = rpc.per_second() / s.per_second().max(1e-9);
        let verdict = if ratio >= MIN_SNIP29_RATIO {
            "PASS"
        } else {
            "MISS"
        };
        let pairs = level.rounds.iter().map(|[s, r, _]| r / s.max(1e-9));
        let low = pairs.clone().fold(f64::INFINITY, f64::min);
        let high = pairs.fold(0.0, f64::max);
        let p50 = rpc.percentile(0.5, |x| x.total);
        println!(
            "| {} | {:.1} | {:.1} | {ratio:.2}x {verdict} (≥{MIN_SNIP29_RATIO}; rounds {low:.2}-{high:.2}) | {} / {} | {} | {} |",
            level.c,
            rpc.per_second(),
            s.per_second(),
            ms(p50),
            ms(rpc.percentile(0.9, |x| x.total)),
            signed_ms(p50, s.percentile(0.5, |x| x.total)),
            signed_ms(p50, f.percentile(0.5, |x| x.total)),
        );
    }
    println!();
    println!("### Per round (service / SNIP-29 / floor tx/s)");
    println!();
    let rounds = levels.iter().map(|l| l.rounds.len()).max().unwrap_or(0);
    println!(
        "| wallets |{}",
        (1..=rounds)
            .map(|r| format!(" round {r} |"))
            .collect::<String>()
    );
    println!("|---:|{}", "---:|".repeat(rounds));
    for level in levels {
        println!(
            "| {} |{}",
            level.c,
            level
                .rounds
                .iter()
                .map(|[s, r, f]| format!(" {s:.1} / {r:.1} / {f:.1} |"))
                .collect::<String>()
        );
    }
    println!();
    println!(
        "The service's {} statements for one transaction, alone on a fresh database \
         ({} rounds, one at a time, p50): prepare's insert {}, execute's 2 reads + claim + \
         2 updates {}, the follower's final update {}.",
        database.backend,
        database.rounds,
        ms(database.prepare),
        ms(database.execute),
        ms(database.follow),
    );
}

/// What the service's database work for one transaction costs with nothing else running.
struct DatabaseCost {
    /// `SQLite` or `PostgreSQL`.
    backend: &'static str,
    rounds: usize,
    prepare: Duration,
    execute: Duration,
    follow: Duration,
}

/// The statements `prepare`, `execute` and the follower run for one transaction, in the
/// same order, through the service's own `Store` on a fresh temporary file.
async fn database_cost(rounds: usize, service: &str) -> Result<DatabaseCost> {
    // The same backend as the service's, on a database of its own.
    let (backend, url) = match service.strip_prefix("sqlite:") {
        Some(_) => ("SQLite", chipi_contract_tests::paymaster::temp_sqlite()),
        // Any database of the server will do to create another.
        None => (
            "PostgreSQL",
            chipi_contract_tests::paymaster::temp_postgres(service).await?,
        ),
    };
    let store = Store::open(&url).await?;
    // A relayer lease held throughout, as a busy instance holds its relayers.
    store.add_relayers(&[Felt::ONE]).await?;
    let token = store
        .take_lease(Felt::ONE, 3_600_000, i64::MAX, 0)
        .await?
        .ok_or("the relayer's lease is taken")?
        .token;
    let (mut prepare, mut execute, mut follow) = (Vec::new(), Vec::new(), Vec::new());
    let call = strk_transfer(recipient(0), 1);
    for i in 0..rounds {
        let wallet = Felt::from(0xa11e7_u64 + (i % 20) as u64);
        let nonce = random_key();
        let t0 = Instant::now();
        store
            .issue(
                &IssuedNonce {
                    wallet,
                    nonce,
                    app: API_KEY.into(),
                    user_id: USER.into(),
                    calls_hash: calls_hash(std::slice::from_ref(&call)),
                    execute_before: 2_000_000_000,
                    expires_at: 2_000_000_000,
                    created_at: 1_700_000_000,
                },
                i64::MAX,
                1_700_000_000,
            )
            .await?;
        let t1 = Instant::now();
        store.issued(wallet, nonce).await?;
        store.transaction(wallet, Some(nonce)).await?;
        store.claim(API_KEY, USER, wallet, Some(nonce)).await?;
        let t2 = Instant::now();
        // Not a statement of the service's: the row id its claim returned.
        let id = store
            .transaction(wallet, Some(nonce))
            .await?
            .ok_or("the claimed row is missing")?
            .id;
        let t3 = Instant::now();
        let hash = random_key();
        store
            .submitting(
                id,
                Sending {
                    hash,
                    relayer: Felt::ONE,
                    relayer_nonce: Felt::from(i as u64),
                    max_fee: 1_000_000,
                    request: "{}",
                },
                token,
            )
            .await?;
        store
            .set_status(id, TxStatus::Pending, None, Some(""))
            .await?;
        let t4 = Instant::now();
        store
            .finish(
                id,
                hash,
                End {
                    status: TxStatus::Accepted,
                    fee: Some(1000),
                    block_number: Some(i as u64),
                    reason: None,
                },
                &[],
            )
            .await?;
        let t5 = Instant::now();
        prepare.push(t1 - t0);
        execute.push((t2 - t1) + (t4 - t3));
        follow.push(t5 - t4);
    }
    store.close().await;
    if let Some(path) = url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    let p50 = |mut v: Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    Ok(DatabaseCost {
        backend,
        rounds,
        prepare: p50(prepare),
        execute: p50(execute),
        follow: p50(follow),
    })
}
