//! What the sponsorship policy costs, and whether a flooding user slows the others down
//! (issue 14, section 5). One run, two tables.
//!
//! `cargo run --release -p chipi-bench --bin sponsorship-bench [-- --txs N | --quick]`
//!
//! Everything runs in this process: the embedded devnet, two real services on 127.0.0.1
//! with a SQLite file each (relayers = predeployed accounts 3 and 4, follower every
//! 250 ms), and the clients. Each client is one user with one wallet and its own token.
//!
//! 1. **Policy cost.** Service `none` sponsors anything (no limit, no call rule, no cap on
//!    in-flight transactions); service `policy` runs a realistic operator policy
//!    ([`realistic`]: a call allowlist, call and calldata caps, one transaction in
//!    flight per wallet, per-user counts per minute and per day with a fee budget, an app
//!    budget per day, a revert limit). Both see the same 20 wallets sending back to back
//!    (`prepare` → sign → `execute`), in alternating segments (none, policy, policy,
//!    none, ...) so that the devnet's drift weighs on both. Ratio = policy tx/s ÷ none tx/s
//!    (target ≥ 0.95).
//! 2. **Flood.** On the `policy` service: a well-behaved user sends transactions one after
//!    the other (refused because its previous one is still in flight, it waits 20 ms and
//!    asks again, the latency counting from its first try), first alone (quiet), then
//!    while another user floods from 50 concurrent request loops on its own wallet,
//!    ignoring every 429: once as fast as the loops go, once paced at 1000 requests a
//!    second in all. Each phase has a fresh well-behaved user and at most 400 transactions
//!    (under the user's own 600 a minute). p99 of the well-behaved
//!    user's latency under the paced flood ÷ quiet (target ≤ 2). The unpaced flood's
//!    clients share this machine's cores with the service and the node.
//!
//! Between segments every transaction is checked to have succeeded on chain and the
//! services' followers are let to finish.

use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chipi_bench::service::{transfer_json, Failed, ServiceClient, Sponsored, Wallet};
use chipi_contract_tests::paymaster::{user_token, LocalPaymaster, Options, API_KEY};
use chipi_contract_tests::{random_key, STRK};
use chipi_core::{public_key_of, selectors, Felt};
use chipi_devnet::Devnet;
use chipi_paymaster::{CallRule, Limit, Policy, RevertLimit, Scope, Window, ONE_STRK};

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// Predeployed accounts that relay, for both services.
const RELAYERS: [usize; 2] = [3, 4];
/// Wallets (users) sending at once in the policy-cost part.
const WALLETS: usize = 20;
/// Request loops of the flooding user.
const FLOOD_LOOPS: usize = 50;
/// Segments per service in the policy-cost part.
const SEGMENTS: usize = 4;
/// Unmeasured transactions at the start of each segment.
const WARM_UP: usize = 4;
/// Targets.
const MIN_POLICY_RATIO: f64 = 0.95;
const MAX_FLOOD_P99_RATIO: f64 = 2.0;
/// The paced flood: requests per second from all the flooder's loops together (one user
/// allowed 600 a minute sends 100 times that).
const PACED_FLOOD_PER_SECOND: u64 = 1000;
/// Transactions per flood phase at most: a well-behaved user stays under its own
/// `user.transactions_per_minute` (600) at the quiet rate (about 45 a second).
const MAX_FLOOD_PHASE: usize = 400;

fn main() -> ExitCode {
    chipi_bench::service::main_with("sponsorship-bench", run())
}

/// Measured transactions per service (policy part) and per phase (flood part).
fn transactions() -> Result<usize> {
    let usage = "usage: sponsorship-bench [--txs N | --quick]";
    let mut n: usize = 400;
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--quick" => n = 16,
            "--txs" => {
                let value = words.next().ok_or(usage)?;
                n = value
                    .parse()
                    .map_err(|_| format!("--txs: not a number: {value}"))?;
            }
            _ => return Err(usage.into()),
        }
    }
    if n == 0 || !n.is_multiple_of(SEGMENTS) {
        return Err(format!("--txs: a positive multiple of {SEGMENTS}").into());
    }
    Ok(n)
}

/// An operator's policy for a consumer app: STRK transfers and approvals only, small
/// multicalls, one transaction in flight per wallet, per-user and per-app budgets.
fn realistic(policy: &mut Policy) {
    let strk = Some(chipi_devnet::STRK_ADDRESS);
    policy.max_calls = Some(5);
    policy.max_calldata_felts = Some(64);
    policy.in_flight_per_wallet = 1;
    policy.allow = Some(vec![
        CallRule {
            contract: strk,
            selector: Some(selectors::TRANSFER),
        },
        CallRule {
            contract: strk,
            selector: Some(selectors::APPROVE),
        },
    ]);
    // Never the wallet's own session management through a sponsored call.
    policy.deny = vec![CallRule {
        contract: None,
        selector: Some(selectors::ADD_OR_UPDATE_SESSION_KEY),
    }];
    let limit = |scope, window, count, fee: Option<u128>| Limit {
        scope,
        window,
        max_transactions: Some(count),
        max_fee_fri: fee,
    };
    policy.limits = vec![
        limit(Scope::User, Window::Minute, 600, None),
        limit(Scope::User, Window::Day, 100_000, Some(1_000 * ONE_STRK)),
        limit(
            Scope::App,
            Window::Day,
            10_000_000,
            Some(1_000_000 * ONE_STRK),
        ),
    ];
    policy.reverts = Some(RevertLimit {
        max: 5,
        window: Window::Day,
    });
}

/// Anything goes: no limit, no call rule, no cap on transactions in flight.
fn open(policy: &mut Policy) {
    *policy = Policy {
        in_flight_per_wallet: u32::MAX,
        ..Policy::default()
    };
}

async fn service(devnet: &Devnet, policy: fn(&mut Policy)) -> Result<LocalPaymaster> {
    let options = Options {
        relayers: RELAYERS.to_vec(),
        ..Options::default()
    }
    .configure(|config| {
        // The production defaults the local stack changes.
        config.relaying.follow_interval_ms = 250;
        config.window.chain_time_cache_ms = 1000;
    })
    .policy(policy);
    Ok(LocalPaymaster::start_with(devnet, options).await?)
}

/// One client per wallet, each its own user.
fn clients(pm: &LocalPaymaster, http: &reqwest::Client, users: &[String]) -> Vec<ServiceClient> {
    users
        .iter()
        .map(|user| ServiceClient {
            http: http.clone(),
            base: pm.url.clone(),
            api_key: API_KEY.into(),
            token: Arc::new(user_token(user)),
        })
        .collect()
}

fn recipient(w: usize) -> Felt {
    Felt::from(0x5e_0000_u64 + w as u64)
}

/// What a segment did.
#[derive(Default)]
struct Tally {
    elapsed: Duration,
    latencies: Vec<Duration>,
    hashes: Vec<Felt>,
    failures: Vec<String>,
}

impl Tally {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, q: f64) -> Duration {
        let mut values = self.latencies.clone();
        values.sort();
        if values.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1]
    }

    fn absorb(&mut self, other: Tally) {
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.hashes.extend(other.hashes);
        self.failures.extend(other.failures);
    }

    fn record(&mut self, outcome: Result<Sponsored, Failed>) {
        match outcome {
            Ok(done) => {
                self.latencies.push(done.prepare + done.execute);
                self.hashes.push(done.hash);
            }
            Err(failed) => self.failures.push(failed.message),
        }
    }
}

/// `count` transactions from the first `c` wallets, each wallet back to back.
async fn segment(
    clients: &Arc<Vec<ServiceClient>>,
    wallets: &Arc<Vec<Wallet>>,
    c: usize,
    count: usize,
) -> Tally {
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let start = Instant::now();
    let tasks: Vec<_> = (0..c.min(count))
        .map(|w| {
            let (next, results, clients, wallets) = (
                next.clone(),
                results.clone(),
                clients.clone(),
                wallets.clone(),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let outcome = clients[w]
                        .sponsored(&wallets[w], transfer_json(recipient(w), 1))
                        .await;
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(outcome);
                }
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        if let Err(error) = task.await {
            tally.failures.push(format!("a wallet task died: {error}"));
        }
    }
    tally.elapsed = start.elapsed();
    for outcome in std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner())) {
        tally.record(outcome);
    }
    tally
}

/// Every transaction of `tally` succeeded on chain and both services follow nothing.
async fn settle(devnet: &Devnet, services: &[&LocalPaymaster], tally: &mut Tally) -> Result<()> {
    for hash in &tally.hashes {
        if let Err(error) = devnet.wait_for_success(*hash).await {
            tally.failures.push(format!("{hash:#x}: {error}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for pm in services {
        while !pm.state.store().open_transactions().await?.is_empty() {
            if Instant::now() > deadline {
                return Err("a service's follower did not settle within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// The flooding user's answers, by status.
#[derive(Default)]
struct Flood {
    sponsored: usize,
    too_many: usize,
    other: Vec<String>,
    hashes: Vec<Felt>,
}

/// `count` transactions of wallet `w`, one after the other, as a well-behaved client
/// sends them: refused because its previous one is still in flight, it waits a moment and
/// asks again (the latency counts from its first try).
async fn well_behaved(
    clients: &Arc<Vec<ServiceClient>>,
    wallets: &Arc<Vec<Wallet>>,
    w: usize,
    count: usize,
) -> Tally {
    let mut tally = Tally::default();
    let start = Instant::now();
    for _ in 0..count {
        let first_try = Instant::now();
        let mut tries = 0;
        let outcome = loop {
            let outcome = clients[w]
                .sponsored(&wallets[w], transfer_json(recipient(w), 1))
                .await;
            match &outcome {
                Err(failed)
                    if failed.status == Some(429)
                        && failed.message.contains("in_flight_per_wallet")
                        && tries < 100 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => break outcome,
            }
        };
        tally.record(outcome.map(|done| Sponsored {
            prepare: first_try.elapsed() - done.execute,
            ..done
        }));
    }
    tally.elapsed = start.elapsed();
    tally
}

/// `count` transactions of wallet `good` while wallet `flooder`'s user floods from
/// [`FLOOD_LOOPS`] loops, as fast as they can or `rate` requests a second in all.
async fn flooded(
    clients: &Arc<Vec<ServiceClient>>,
    wallets: &Arc<Vec<Wallet>>,
    (good, flooder): (usize, usize),
    count: usize,
    rate: Option<u64>,
) -> (Tally, Flood) {
    let stop = Arc::new(AtomicBool::new(false));
    let flood = Arc::new(Mutex::new(Flood::default()));
    let loops: Vec<_> = (0..FLOOD_LOOPS)
        .map(|_| {
            let (stop, flood, clients, wallets) = (
                stop.clone(),
                flood.clone(),
                clients.clone(),
                wallets.clone(),
            );
            tokio::spawn(async move {
                // Each loop's share of the rate: one request per period at most.
                let mut pace = rate.map(|r| {
                    let period = Duration::from_secs_f64(FLOOD_LOOPS as f64 / r as f64);
                    let mut pace = tokio::time::interval(period);
                    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    pace
                });
                while !stop.load(Ordering::Relaxed) {
                    if let Some(pace) = &mut pace {
                        pace.tick().await;
                    }
                    let outcome = clients[flooder]
                        .sponsored(&wallets[flooder], transfer_json(recipient(flooder), 1))
                        .await;
                    let mut flood = flood.lock().unwrap_or_else(|p| p.into_inner());
                    match outcome {
                        Ok(done) => {
                            flood.sponsored += 1;
                            flood.hashes.push(done.hash);
                        }
                        Err(Failed {
                            status: Some(429), ..
                        }) => flood.too_many += 1,
                        Err(failed) => flood.other.push(failed.message),
                    }
                }
            })
        })
        .collect();
    // The flood is under way before the well-behaved user starts.
    while {
        let f = flood.lock().unwrap_or_else(|p| p.into_inner());
        f.sponsored + f.too_many + f.other.len() < FLOOD_LOOPS
    } {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tally = well_behaved(clients, wallets, good, count).await;
    stop.store(true, Ordering::Relaxed);
    for task in loops {
        let _ = task.await;
    }
    let flood = std::mem::take(&mut *flood.lock().unwrap_or_else(|p| p.into_inner()));
    (tally, flood)
}

async fn run() -> Result<bool> {
    let n = transactions()?;
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful numbers");
    }
    let load_before = load_average();
    let started = Instant::now();
    eprintln!("starting the devnet and two services ...");
    let devnet = Devnet::start().await?;
    let none = service(&devnet, open).await?;
    let policy = service(&devnet, realistic).await?;

    // Wallets 0..20 for the policy part, 20..23 for the well-behaved users, 23 for the
    // flooder.
    eprintln!("deploying {} wallets ...", WALLETS + 4);
    let mut wallets = Vec::new();
    for _ in 0..WALLETS + 4 {
        let key = random_key();
        let address = devnet
            .deploy_session_wallet(public_key_of(&key)?, 10 * STRK)
            .await?;
        wallets.push(Wallet { key, address });
    }
    let wallets = Arc::new(wallets);
    let users: Vec<String> = (0..WALLETS + 4)
        .map(|i| format!("bench-user-{i}"))
        .collect();
    let http = reqwest::Client::new();
    let on_none = Arc::new(clients(&none, &http, &users));
    let on_policy = Arc::new(clients(&policy, &http, &users));

    // 1. Policy cost: alternating segments, none first and policy first in turn.
    let per_segment = n / SEGMENTS;
    let (mut without, mut with) = (Tally::default(), Tally::default());
    let mut rounds = Vec::new();
    for round in 0..SEGMENTS {
        let mut rates = [0.0; 2];
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (clients, name) = if side == 0 {
                (&on_none, "none")
            } else {
                (&on_policy, "policy")
            };
            eprintln!(
                "policy cost, segment {}/{SEGMENTS}: {name}, {WALLETS} wallets, {per_segment} transactions ...",
                round + 1
            );
            let mut warm = segment(clients, &wallets, WALLETS, WARM_UP).await;
            let mut measured = segment(clients, &wallets, WALLETS, per_segment).await;
            settle(&devnet, &[&none, &policy], &mut warm).await?;
            settle(&devnet, &[&none, &policy], &mut measured).await?;
            rates[side] = measured.per_second();
            let total = if side == 0 { &mut without } else { &mut with };
            total.failures.append(&mut warm.failures);
            total.absorb(measured);
        }
        rounds.push((rates[0], rates[1]));
    }

    // 2. Flood, on the policy service: the well-behaved user alone, then under flood.
    // A fresh well-behaved user for each phase (each phase's transactions stay within
    // one user's per-minute count), the same flooder for both floods.
    let flooder = WALLETS + 3;
    let per_phase = n.min(MAX_FLOOD_PHASE);
    eprintln!("flood: the well-behaved user alone, {per_phase} transactions ...");
    let _ = well_behaved(&on_policy, &wallets, WALLETS, WARM_UP).await;
    let mut quiet = well_behaved(&on_policy, &wallets, WALLETS, per_phase).await;
    settle(&devnet, &[&policy], &mut quiet).await?;
    let mut floods = Vec::new();
    for (phase, rate) in [None, Some(PACED_FLOOD_PER_SECOND)].into_iter().enumerate() {
        let good = WALLETS + 1 + phase;
        eprintln!(
            "flood: the same user while another floods from {FLOOD_LOOPS} loops{} ...",
            rate.map_or(String::new(), |r| format!(", {r} requests/s in all"))
        );
        let (mut flooded, flood) =
            flooded(&on_policy, &wallets, (good, flooder), per_phase, rate).await;
        settle(&devnet, &[&policy], &mut flooded).await?;
        let mut flood_tally = Tally {
            hashes: flood.hashes.clone(),
            ..Tally::default()
        };
        settle(&devnet, &[&policy], &mut flood_tally).await?;
        flooded.failures.append(&mut flood_tally.failures);
        floods.push((rate, flooded, flood));
    }

    let load_after = load_average();
    none.stop().await;
    policy.stop().await;

    // Tables.
    let ratio = with.per_second() / without.per_second().max(1e-9);
    let verdict = |pass: bool| if pass { "PASS" } else { "MISS" };
    println!("### The cost of the sponsorship policy ({WALLETS} wallets, one user each)");
    println!();
    println!(
        "{}; load average {load_before} before, {load_after} after; {n} measured transactions \
         per service in {SEGMENTS} alternating segments (+{WARM_UP} warm-up each); run took {:.0} s.",
        if cfg!(debug_assertions) {
            "DEBUG build (numbers meaningless)"
        } else {
            "release build"
        },
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| service | tx/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    for (name, tally) in [("no policy", &without), ("realistic policy", &with)] {
        println!(
            "| {name} | {:.1} | {} | {} |",
            tally.per_second(),
            ms(tally.percentile(0.5)),
            ms(tally.percentile(0.99))
        );
    }
    let low = rounds
        .iter()
        .map(|(a, b)| b / a.max(1e-9))
        .fold(f64::INFINITY, f64::min);
    let high = rounds
        .iter()
        .map(|(a, b)| b / a.max(1e-9))
        .fold(0.0, f64::max);
    println!();
    println!(
        "policy / none: **{ratio:.2}x** {} (≥ {MIN_POLICY_RATIO}; per round {low:.2}-{high:.2})",
        verdict(ratio >= MIN_POLICY_RATIO)
    );
    println!();
    println!(
        "### A well-behaved user while another floods ({FLOOD_LOOPS} request loops, {per_phase} transactions a phase)"
    );
    println!();
    println!(
        "| phase | the user's tx/s | p50 | p90 | p99 | p99 / quiet | flooder: requests/s, sponsored, 429 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| quiet | {:.1} | {} | {} | {} | | |",
        quiet.per_second(),
        ms(quiet.percentile(0.5)),
        ms(quiet.percentile(0.9)),
        ms(quiet.percentile(0.99))
    );
    let mut flood_ok = true;
    for (rate, tally, flood) in &floods {
        let ratio =
            tally.percentile(0.99).as_secs_f64() / quiet.percentile(0.99).as_secs_f64().max(1e-9);
        let verdict = match rate {
            Some(_) => {
                flood_ok &= ratio <= MAX_FLOOD_P99_RATIO;
                format!(" {}", verdict(ratio <= MAX_FLOOD_P99_RATIO))
            }
            None => String::new(),
        };
        let requests = flood.sponsored + flood.too_many + flood.other.len();
        println!(
            "| {} | {:.1} | {} | {} | {} | {ratio:.2}x{verdict} | {:.0}, {}, {} |",
            rate.map_or("flood, as fast as it can".to_string(), |r| format!(
                "flood, {r} requests/s"
            )),
            tally.per_second(),
            ms(tally.percentile(0.5)),
            ms(tally.percentile(0.9)),
            ms(tally.percentile(0.99)),
            requests as f64 / tally.elapsed.as_secs_f64().max(1e-9),
            flood.sponsored,
            flood.too_many,
        );
    }
    println!();
    println!(
        "Target: p99 under the paced flood within {MAX_FLOOD_P99_RATIO}x of quiet: {}. The \
         unpaced flood runs its clients on the same cores as the service and the node, so it \
         measures this machine's CPU as much as the service.",
        verdict(flood_ok)
    );

    let mut ok = true;
    for (name, tally) in [
        ("no policy", &without),
        ("policy", &with),
        ("quiet", &quiet),
    ]
    .into_iter()
    .chain(floods.iter().map(|(_, tally, _)| ("flooded", tally)))
    {
        if let Some(first) = tally.failures.first() {
            ok = false;
            eprintln!("{name}: {} failures, first: {first}", tally.failures.len());
        }
    }
    for (_, _, flood) in &floods {
        if let Some(first) = flood.other.first() {
            ok = false;
            eprintln!(
                "the flooder got {} answers other than 200 or 429, first: {first}",
                flood.other.len()
            );
        }
    }
    Ok(ok)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The 1-minute load average: other work on the machine skews every column.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
