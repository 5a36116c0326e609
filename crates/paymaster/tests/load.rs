//! Two instances on one database under load (API.md section 11): 200 sponsored session
//! transactions from 20 wallets at once over four relayers both instances share; the
//! same with one instance a real child process killed with SIGKILL mid-load; the same
//! with the node away for ten seconds mid-load. On PostgreSQL in CI's second pass, one
//! SQLite file otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chipi_contract_tests::paymaster::{LocalPaymaster, Options, ESTIMATOR};
use chipi_core::Felt;
use chipi_paymaster::{TxRecord, TxStatus};
use common::load::{
    execute_url, signed_body, transfer, try_post, wallets, Cable, Process, ProcessConfig,
};
use serde_json::Value;
use starknet_rust::core::types::TransactionReceipt;
use starknet_rust::providers::Provider;

const WALLETS: usize = 20;
const TRANSACTIONS: usize = 200;
const RELAYERS: [usize; 4] = [3, 4, 5, 6];
/// Recipient `RECIPIENTS + i` receives `i + 1`.
const RECIPIENTS: u64 = 0x10ad_0000;

/// Both instances' settings: the whole load fits in one request's time and one user's
/// concurrency, ten transactions of a wallet may be in flight, and an instance that
/// stops loses its claims and leases within seconds.
fn settings(options: Options) -> Options {
    options
        .configure(|config| {
            config.http.request_timeout_seconds = 120;
            config.http.max_concurrent_per_user = 512;
            config.relaying.abandon_claims_after_seconds = 180;
            config.relaying.instance_ttl_seconds = 3;
            config.relaying.lease_seconds = 12;
            config.relaying.send_timeout_seconds = 6;
            // One user prepares all 200 before executing any.
            config.window.max_outstanding = 256;
        })
        .policy(|policy| policy.in_flight_per_wallet = 10)
}

/// [`settings`], as the child process's configuration file says them.
const SETTINGS: &str = "[window]\nchain_time_cache_ms = 0\nmax_outstanding = 256\n\
    [http]\nrequest_timeout_seconds = 120\nmax_concurrent_per_user = 512\n\
    [relaying]\nfollow_interval_ms = 50\nabandon_claims_after_seconds = 180\n\
    instance_ttl_seconds = 3\nlease_seconds = 12\nsend_timeout_seconds = 6\n";
const APP_SETTINGS: &str = "[apps.sponsorship]\nin_flight_per_wallet = 10\n";

/// Instance A (in this process) on the relayers, with `options`.
async fn instance_a(options: Options) -> common::Env {
    common::env_with(settings(Options {
        relayers: RELAYERS.to_vec(),
        ..options
    }))
    .await
}

/// A second in-process instance on A's database, with `options`.
async fn instance_b(e: &common::Env, options: Options) -> LocalPaymaster {
    LocalPaymaster::start_with(
        &e.w.devnet,
        settings(Options {
            relayers: RELAYERS.to_vec(),
            database: Some(e.pm.database.clone()),
            ..options
        }),
    )
    .await
    .unwrap()
}

/// The load: transaction `i` from wallet `i % 20`, prepared and signed at A.
async fn signed_load(e: &common::Env) -> Vec<Value> {
    let wallets = wallets(e, WALLETS - 1).await;
    let mut bodies = Vec::new();
    for i in 0..TRANSACTIONS {
        let call = transfer(RECIPIENTS + i as u64, i as u64 + 1);
        bodies.push(signed_body(&e.http, &e.pm.url, &wallets[i % WALLETS], call).await);
    }
    bodies
}

/// The relayers' nonces added up (what they sent in all).
async fn relayer_nonces(e: &common::Env) -> Felt {
    let mut total = Felt::ZERO;
    for i in RELAYERS {
        total += e.relayer_nonce(i).await;
    }
    total
}

/// Every body at once, body `i` to `bases[i % bases.len()]`; the answers in order.
async fn fire(
    e: &common::Env,
    bodies: &[Value],
    bases: &[&str],
) -> Vec<Result<(u16, Value), String>> {
    futures::future::join_all(bodies.iter().enumerate().map(|(i, body)| {
        let url = execute_url(bases[i % bases.len()]);
        async move { try_post(&e.http, &url, &e.token, body).await }
    }))
    .await
}

/// Waits until the relayers together sent `count` more than `before`.
async fn until_sent(e: &common::Env, before: Felt, count: u64) {
    let sent = async {
        while relayer_nonces(e).await < before + Felt::from(count) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), sent)
        .await
        .expect("the load never got going");
}

/// Waits (bounded) until the record of `hash` is final; the record.
async fn final_record(e: &common::Env, hash: &str) -> TxRecord {
    let felt = chipi_core::parse_felt_strict(hash).unwrap();
    for _ in 0..1200 {
        let rows = e.pm.state.store().transactions().await.unwrap();
        if let Some(row) = rows.into_iter().find(|r| r.hash == Some(felt)) {
            if row.status().is_final() {
                return row;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("transaction {hash} never reached a final record");
}

/// Resolves each request as a client would: a 200's transaction is followed to its end;
/// a first answer that is an error (it must be a `clear` one) or a transaction that
/// ended without landing (it never reached the node) is retried with the very same
/// body at `base` until one lands. The hashes that landed, and how many requests
/// needed a retry.
async fn resolved(
    e: &common::Env,
    bodies: &[Value],
    answers: Vec<Result<(u16, Value), String>>,
    base: &str,
    clear: impl Fn(&Result<(u16, Value), String>) -> bool,
) -> (Vec<String>, usize) {
    let mut hashes = Vec::new();
    let mut retried = 0;
    for (body, first) in bodies.iter().zip(answers) {
        let mut answer = first;
        let mut tries = 0;
        let hash = loop {
            match &answer {
                Ok((200, reply)) => {
                    let hash = reply["transactionHash"].as_str().unwrap().to_string();
                    let row = final_record(e, &hash).await;
                    if row.status() == TxStatus::Accepted {
                        break hash;
                    }
                    assert_eq!(row.status(), TxStatus::Failed, "{row:?}");
                }
                error if tries == 0 => assert!(clear(error), "not a clear error: {error:?}"),
                _ => {}
            }
            tries += 1;
            assert!(
                tries < 600,
                "a retry of the same request never landed: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            answer = try_post(&e.http, &execute_url(base), &e.token, body).await;
        };
        hashes.push(hash);
        retried += usize::from(tries > 0);
    }
    (hashes, retried)
}

/// Every request landed once: one record each, all accepted, each recorded fee the fee
/// paid on chain, the relayers' nonces moved by exactly one per transaction, and every
/// recipient got exactly its amount.
async fn landed_once(e: &common::Env, hashes: &[String], nonces_before: Felt) {
    let distinct: HashSet<_> = hashes.iter().collect();
    assert_eq!(distinct.len(), TRANSACTIONS, "two requests got one hash");
    let node = e.w.devnet.provider();
    for hash in hashes {
        let row = e.settled(hash).await;
        assert_eq!(row.status(), TxStatus::Accepted, "{row:?}");
        let receipt = node
            .get_transaction_receipt(row.hash.unwrap())
            .await
            .unwrap();
        let TransactionReceipt::Invoke(receipt) = receipt.receipt else {
            panic!("not an invoke: {hash}");
        };
        let paid = u128::try_from(receipt.actual_fee.amount).unwrap();
        assert_eq!(row.fee, Some(paid), "the recorded fee is not the fee paid");
        let relayer = row.relayer.unwrap();
        assert!(
            RELAYERS
                .iter()
                .any(|&i| e.w.devnet.accounts()[i].address == relayer),
            "sent by {relayer:#x}"
        );
    }
    let rows: Vec<TxRecord> = e.pm.state.store().transactions().await.unwrap();
    assert_eq!(rows.len(), TRANSACTIONS, "one record per request");
    assert_eq!(
        relayer_nonces(e).await,
        nonces_before + Felt::from(TRANSACTIONS as u64),
        "the relayers sent more than one transaction per request"
    );
    for i in 0..TRANSACTIONS as u64 {
        assert_eq!(e.balance(Felt::from(RECIPIENTS + i)).await, i as u128 + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_transactions_over_two_instances_and_four_shared_relayers_land_once() {
    let e = instance_a(Options::default()).await;
    let b = instance_b(&e, Options::default()).await;
    let bodies = signed_load(&e).await;
    let before = relayer_nonces(&e).await;
    let answers = fire(&e, &bodies, &[&e.pm.url, &b.url]).await;
    // No error of any kind (a nonce clash between the instances above all) reaches a client.
    let (hashes, retried) = resolved(&e, &bodies, answers, &e.pm.url, |_| false).await;
    assert_eq!(retried, 0);
    landed_once(&e, &hashes, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_load_loses_nothing_and_pays_nothing_twice() {
    let e = instance_a(Options::default()).await;
    let rpc_url = e.w.devnet.rpc_url().to_string();
    let mut b = Process::start(ProcessConfig {
        devnet: &e.w.devnet,
        rpc_url: &rpc_url,
        database: &e.pm.database,
        relayers: &RELAYERS,
        estimator: ESTIMATOR,
        extra: SETTINGS,
        app_extra: APP_SETTINGS,
    })
    .await;
    let bodies = signed_load(&e).await;
    let before = relayer_nonces(&e).await;
    let bases = [e.pm.url.clone(), b.url.clone()];
    let bases = [bases[0].as_str(), bases[1].as_str()];
    let (answers, ()) = tokio::join!(fire(&e, &bodies, &bases), async {
        until_sent(&e, before, TRANSACTIONS as u64 / 4).await;
        b.kill();
    });
    // B's requests cut short have no answer; a send that took too long on the loaded
    // devnet says its fate is unknown. The same requests, retried at A, each get the
    // hash of what was sent or are sent now: none twice.
    let cut = answers.iter().filter(|a| a.is_err()).count();
    let (hashes, retried) = resolved(&e, &bodies, answers, &e.pm.url, |answer| {
        answer.is_err() || matches!(answer, Ok((503, body)) if body["code"] == "NETWORK_ERROR")
    })
    .await;
    assert!(retried >= cut);
    assert!(cut > 0, "B was killed after its requests were all answered");
    eprintln!("{cut} of B's requests were cut by the kill and resolved by a retry at A");
    landed_once(&e, &hashes, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_away_for_ten_seconds_mid_load_leaves_every_record_final() {
    let w = chipi_contract_tests::TestWallet::new().await;
    let cable = Cable::to(w.devnet.rpc_url()).await;
    let behind_cable = || Options {
        rpc_url: Some(cable.url.clone()),
        ..Options::default()
    };
    let e = common::env_on(
        w,
        settings(Options {
            relayers: RELAYERS.to_vec(),
            ..behind_cable()
        }),
    )
    .await;
    let b = instance_b(&e, behind_cable()).await;
    let bodies = signed_load(&e).await;
    let before = relayer_nonces(&e).await;
    let bases = [e.pm.url.as_str(), b.url.as_str()];
    let (answers, ()) = tokio::join!(fire(&e, &bodies, &bases), async {
        until_sent(&e, before, TRANSACTIONS as u64 / 4).await;
        cable.cut();
        tokio::time::sleep(Duration::from_secs(10)).await;
        cable.restore();
    });
    // Meanwhile: 503 NETWORK_ERROR (nothing sent, or its fate unknown, the record
    // keeps the hash), never a half-recorded request.
    let (hashes, retried) = resolved(
        &e,
        &bodies,
        answers,
        &e.pm.url,
        |answer| matches!(answer, Ok((503, body)) if body["code"] == "NETWORK_ERROR"),
    )
    .await;
    assert!(retried > 0, "the node's absence was never noticed");
    eprintln!("{retried} requests met the node's absence and were resolved by a retry");
    landed_once(&e, &hashes, before).await;
    // Every record is final: nothing claimed, submitting or pending is left.
    let rows = e.pm.state.store().transactions().await.unwrap();
    assert!(rows.iter().all(|row| row.status().is_final()), "{rows:#?}");
}
