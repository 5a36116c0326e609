//! Two instances of the service on one database (API.md section 11): a fresh database on
//! PostgreSQL in CI's second pass, one SQLite file otherwise. Both send with the same two
//! relayers, each under its lease in the database; idempotency, budgets and records are
//! shared through the database: a request sent to both at once is sent once, a count
//! limit holds across both, and the transactions one of them sent are followed by the
//! other after it is killed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use chipi_contract_tests::paymaster::{LocalPaymaster, Options, API_KEY};
use chipi_core::Felt;
use chipi_paymaster::{Limit, Scope, TxStatus, Window};
use serde_json::json;

const EXECUTE: &str = "/v1/transactions/execute-sponsored-transaction";

/// Five sponsored transactions per user and month, and room for all in flight at once.
fn five_per_user(options: Options) -> Options {
    options.policy(|policy| {
        policy.in_flight_per_wallet = 100;
        policy.limits = vec![Limit {
            scope: Scope::User,
            window: Window::Month,
            max_transactions: Some(5),
            max_fee_fri: None,
        }];
    })
}

/// Instance A with `options`, then instance B on A's database, both with relayers 3 and 4.
async fn two(options: impl Fn() -> Options) -> (common::Env, LocalPaymaster) {
    let e = common::env_with(Options {
        relayers: vec![3, 4],
        ..options()
    })
    .await;
    let b = LocalPaymaster::start_with(
        &e.w.devnet,
        Options {
            relayers: vec![3, 4],
            database: Some(e.pm.database.clone()),
            ..options()
        },
    )
    .await
    .unwrap();
    (e, b)
}

/// `count` execute bodies, prepared and signed: transfers of 1, 2, … to `to`.
async fn signed_transfers(e: &common::Env, to: &str, count: u64) -> Vec<serde_json::Value> {
    let mut bodies = Vec::new();
    for i in 0..count {
        let prepared = e.prepare(json!([e.transfer(to, i + 1)])).await;
        assert_eq!(prepared.status, 200, "{:?}", prepared.body);
        bodies.push(e.execute_body(&prepared.body["typedData"]));
    }
    bodies
}

/// Executes every body at once, every other one at instance `b`; the answers in order.
async fn at_both(
    e: &common::Env,
    b: &LocalPaymaster,
    bodies: &[serde_json::Value],
) -> Vec<common::Answer> {
    futures::future::join_all(bodies.iter().enumerate().map(|(i, body)| {
        let base = if i % 2 == 0 { &e.pm.url } else { &b.url };
        e.post_at(base, EXECUTE, body, API_KEY, Some(&e.token))
    }))
    .await
}

/// Waits (bounded) until relayers 3 and 4 together have sent `count` more transactions
/// than `before`; their nonces then.
async fn sent_in_total(e: &common::Env, before: (Felt, Felt), count: u64) -> u64 {
    let mut total = 0;
    for _ in 0..400 {
        let now = (e.relayer_nonce(3).await, e.relayer_nonce(4).await);
        let moved = |now: Felt, before: Felt| u64::try_from(now - before).unwrap();
        total = moved(now.0, before.0) + moved(now.1, before.1);
        if total >= count {
            // Anything more would show by now.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = (e.relayer_nonce(3).await, e.relayer_nonce(4).await);
            return moved(now.0, before.0) + moved(now.1, before.1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_sent_to_two_instances_at_once_is_sent_once() {
    let (e, b) = two(Options::default).await;
    let before = (e.relayer_nonce(3).await, e.relayer_nonce(4).await);
    let prepared = e.prepare(json!([e.transfer("0x79", 3)])).await;
    assert_eq!(prepared.status, 200, "{:?}", prepared.body);
    let body = e.execute_body(&prepared.body["typedData"]);
    // Eight copies at once, every other one at the second instance.
    let answers = at_both(&e, &b, &vec![body; 8]).await;
    let hash = common::the_one_hash(&answers);
    let row = e.settled(&hash).await;
    assert_eq!(row.status(), TxStatus::Accepted);
    assert_eq!(sent_in_total(&e, before, 1).await, 1);
    assert_eq!(e.balance(Felt::from(0x79u8)).await, 3);
    // One record, seen alike from both instances.
    assert_eq!(e.pm.state.store().transactions().await.unwrap().len(), 1);
    assert_eq!(b.state.store().transactions().await.unwrap(), vec![row]);
    // Each instance says who it is and which relayer leases it holds: never the same
    // relayer at both. Its metrics page is labelled with its id.
    let mut held = Vec::new();
    let mut ids = Vec::new();
    for base in [&e.pm.url, &b.url] {
        let health = e.get_at(base, "/health").await.body;
        let id = health["instance"].as_str().unwrap().to_string();
        let leases = health["leases"].as_array().unwrap().clone();
        let metrics = e.metrics_at(base).await;
        let info = format!("instance=\"{id}\"}} 1");
        assert!(metrics.contains(&info), "{info} not in {metrics}");
        // (How many it holds may change between the two reads: idle leases go back.)
        assert!(
            metrics.contains("chipi_paymaster_relayer_leases_held "),
            "{metrics}"
        );
        ids.push(id);
        held.extend(leases);
    }
    assert_ne!(ids[0], ids[1]);
    let distinct: std::collections::HashSet<_> = held.iter().collect();
    assert_eq!(
        distinct.len(),
        held.len(),
        "a relayer held at both: {held:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_limit_holds_across_two_instances() {
    let (e, b) = two(|| five_per_user(Options::default())).await;
    let before = (e.relayer_nonce(3).await, e.relayer_nonce(4).await);
    // All at once, half at each instance.
    let answers = at_both(&e, &b, &signed_transfers(&e, "0x7a", 12).await).await;
    let passed: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(passed.len(), 5, "{answers:?}");
    for refused in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(refused.status, 429, "{:?}", refused.body);
        assert_eq!(refused.code(), "RATE_LIMITED", "{:?}", refused.body);
        assert!(
            refused.body["limit"] == "user.transactions_per_month"
                || refused.body["limit"] == "http.max_concurrent_per_user",
            "{:?}",
            refused.body
        );
    }
    // Exactly five left the two relayers, and every one is on record, final.
    assert_eq!(sent_in_total(&e, before, 5).await, 5);
    for answer in passed {
        e.settled(answer.body["transactionHash"].as_str().unwrap())
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_killed_instance_sent_is_followed_by_the_other() {
    // Instance A's follower sleeps: what it sends stays PENDING until someone follows it.
    let (mut e, b) = two(|| {
        Options::default().configure(|config| config.relaying.follow_interval_ms = 3_600_000)
    })
    .await;
    let answer = e.run(json!([e.transfer("0x7b", 4)])).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let hash = answer.body["transactionHash"].as_str().unwrap().to_string();
    e.pm.kill();
    drop(b);
    // A third instance with a working follower settles it: paid once, fee recorded.
    e.pm = LocalPaymaster::start_with(
        &e.w.devnet,
        Options {
            relayers: vec![5],
            database: Some(e.pm.database.clone()),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let row = e.settled(&hash).await;
    assert_eq!(row.status(), TxStatus::Accepted);
    assert!(row.fee.unwrap() > 0);
    assert_eq!(e.balance(Felt::from(0x7bu8)).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_budget_holds_across_two_instances() {
    // One transaction first, to learn what one costs and what its bound is.
    let mut e = common::env_with(Options {
        relayers: vec![3],
        ..Options::default()
    })
    .await;
    let first = e.run(json!([e.transfer("0x7c", 1)])).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let row = e
        .settled(first.body["transactionHash"].as_str().unwrap())
        .await;
    let (fee, bound) = (row.fee.unwrap(), row.max_fee.unwrap());
    // A per-transaction cap above the bound, and a budget with room for a few, not twelve.
    let cap = bound * 3 / 2;
    let budget = cap + fee * 3;
    let database = e.pm.database.clone();
    let options = move || {
        Options {
            relayers: vec![3, 4],
            database: Some(database.clone()),
            ..Options::default()
        }
        .policy(move |policy| {
            policy.in_flight_per_wallet = 100;
            policy.max_fee_fri = Some(cap);
            policy.limits = vec![Limit {
                scope: Scope::App,
                window: Window::Month,
                max_transactions: None,
                max_fee_fri: Some(budget),
            }];
        })
    };
    let a = LocalPaymaster::start_with(&e.w.devnet, options())
        .await
        .unwrap();
    std::mem::replace(&mut e.pm, a).stop().await;
    let b = LocalPaymaster::start_with(&e.w.devnet, options())
        .await
        .unwrap();
    let before = (e.relayer_nonce(3).await, e.relayer_nonce(4).await);
    let answers = at_both(&e, &b, &signed_transfers(&e, "0x7c", 12).await).await;
    let mut paid = 0u128;
    let mut passed = 0u64;
    for answer in &answers {
        if answer.status == 200 {
            let row = e
                .settled(answer.body["transactionHash"].as_str().unwrap())
                .await;
            paid += row.fee.unwrap();
            passed += 1;
        } else {
            assert_eq!(answer.status, 402, "{:?}", answer.body);
            assert_eq!(answer.code(), "SPONSORSHIP_BUDGET_EXCEEDED");
            assert_eq!(answer.body["limit"], "app.fee_fri_per_month");
        }
    }
    assert!((1..12).contains(&passed), "{answers:?}");
    // Both instances took from one budget: never past it by more than one bound (each
    // admission reserved a whole bound, so here not past it at all).
    assert!(paid <= budget, "paid {paid} of a budget of {budget}");
    assert_eq!(sent_in_total(&e, before, passed).await, passed);
}
