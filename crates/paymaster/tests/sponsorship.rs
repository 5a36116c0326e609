//! The sponsorship policy (API.md section 10) on the embedded devnet, over real HTTP and a
//! real SQLite file: budgets and counts that hold under concurrency, calls, classes and
//! dates refused before any simulation, the operator's webhook, and a usage page that
//! matches the chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chipi_contract_tests::paymaster::{
    user_token, LocalPaymaster, Options, API_KEY, SECRET_KEY, USER,
};
use chipi_core::Felt;
use chipi_paymaster::{CallRule, Limit, OnError, Policy, Scope, Window};
use common::{Answer, Env};
use serde_json::{json, Value};

const PREPARE: &str = "/v1/transactions/prepare-typed-data";
const EXECUTE: &str = "/v1/transactions/execute-sponsored-transaction";

fn strk() -> Felt {
    chipi_devnet::STRK_ADDRESS
}

fn rule(contract: Option<Felt>, name: &str) -> CallRule {
    CallRule {
        contract,
        selector: Some(chipi_contract_tests::selector(name)),
    }
}

fn call(e: &Env, name: &str, calldata: &[&str]) -> Value {
    let _ = e;
    json!({
        "contractAddress": format!("{:#x}", strk()),
        "entrypoint": name,
        "calldata": calldata,
    })
}

/// Prepares and executes `calls` as the user of `token`; the first refusal, or the execute.
async fn run_as(e: &Env, token: &str, calls: Value) -> Answer {
    let prepared = prepare_as(e, token, calls).await;
    if prepared.status != 200 {
        return prepared;
    }
    let body = e.execute_body(&prepared.body["typedData"]);
    e.post_as(EXECUTE, &body, API_KEY, Some(token)).await
}

async fn prepare_as(e: &Env, token: &str, calls: Value) -> Answer {
    e.post_as(
        PREPARE,
        &json!({ "publicKey": e.wallet(), "calls": calls, "walletType": "CHIPI" }),
        API_KEY,
        Some(token),
    )
    .await
}

/// Replaces the running service by one with `options` (same devnet).
async fn restart(e: &mut Env, options: Options) {
    let fresh = LocalPaymaster::start_with(&e.w.devnet, options)
        .await
        .unwrap();
    let old = std::mem::replace(&mut e.pm, fresh);
    old.stop().await;
}

async fn usage(e: &Env, query: &str) -> (u16, Value) {
    let response = e
        .http
        .get(format!("{}/v1/sponsorship/usage{query}", e.pm.url))
        .header("x-api-key", API_KEY)
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

fn fee_of(row: &chipi_paymaster::TxRecord) -> u128 {
    row.fee.unwrap()
}

fn assert_refused(answer: &Answer, status: u16, code: &str, limit: &str) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(answer.code(), code, "{:?}", answer.body);
    assert_eq!(answer.body["limit"], limit, "{:?}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_user_stops_at_the_user_budget_then_the_app_budget() {
    let mut e = common::env().await;
    // Transactions under the default policy give this devnet's fee and bound (the second:
    // the first to a recipient also pays for its new storage).
    let mut row = None;
    for _ in 0..2 {
        let answer = e.run(json!([e.transfer("0x77", 1)])).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        row = Some(
            e.settled(answer.body["transactionHash"].as_str().unwrap())
                .await,
        );
    }
    let row = row.unwrap();
    let fee = fee_of(&row);
    let bound = row.max_fee.unwrap();
    let cap = bound * 3 / 2;
    let user_budget = cap + fee * 5 / 2;
    let app_budget = cap + fee * 9 / 2;
    restart(
        &mut e,
        Options::default().policy(move |policy| {
            policy.max_fee_fri = Some(cap);
            policy.limits = vec![
                Limit {
                    scope: Scope::User,
                    window: Window::Month,
                    max_transactions: None,
                    max_fee_fri: Some(user_budget),
                },
                Limit {
                    scope: Scope::App,
                    window: Window::Month,
                    max_transactions: None,
                    max_fee_fri: Some(app_budget),
                },
            ];
        }),
    )
    .await;
    let relayer = e.w.devnet.accounts()[3].address;
    let relayer_before = e.balance(relayer).await;

    let mut fees_by_user = Vec::new();
    for (user, limit) in [
        ("user-1", "user.fee_fri_per_month"),
        ("user-2", "app.fee_fri_per_month"),
    ] {
        let token = user_token(user);
        let mut fees = 0u128;
        let mut refused = None;
        for _ in 0..20 {
            let answer = run_as(&e, &token, json!([e.transfer("0x77", 1)])).await;
            if answer.status != 200 {
                refused = Some(answer);
                break;
            }
            let row = e
                .settled(answer.body["transactionHash"].as_str().unwrap())
                .await;
            fees += fee_of(&row);
        }
        let refused = refused.expect("the loop ends with a refusal");
        assert_refused(&refused, 402, "SPONSORSHIP_BUDGET_EXCEEDED", limit);
        assert!(refused.body["retryAfter"].as_u64().unwrap() > 0);
        fees_by_user.push(fees);
    }
    let total: u128 = fees_by_user.iter().sum();
    assert!(
        fees_by_user[0] > 0 && fees_by_user[1] > 0,
        "{fees_by_user:?}"
    );
    // Never past a budget by more than one transaction's bound (here: not past it at all).
    assert!(
        fees_by_user[0] <= user_budget,
        "{fees_by_user:?} vs {user_budget}"
    );
    assert!(total <= app_budget, "{total} vs {app_budget}");
    // What the relayer paid is what was recorded, and the usage page says the same.
    assert_eq!(relayer_before - e.balance(relayer).await, total);
    let (status, page) = usage(&e, "").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["feesPaidFri"], total.to_string(), "{page}");
    assert_eq!(page["users"], 2, "{page}");
    assert_eq!(page["sent"], page["accepted"], "{page}");
    let app_limit = &page["limits"][0];
    assert_eq!(app_limit["limit"], "app.fee_fri_per_month", "{page}");
    assert_eq!(app_limit["reserved"], "0", "{page}");
    let used: u128 = app_limit["used"].as_str().unwrap().parse().unwrap();
    // Counters round each fee up to 10^9 fri.
    let sent = page["sent"].as_u64().unwrap() as u128;
    assert!(
        used >= total && used < total + sent * 1_000_000_000,
        "{page}"
    );
    let (_, page) = usage(&e, "?externalUserId=user-1").await;
    let names: Vec<&str> = page["limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["limit"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["user.fee_fri_per_month", "app.fee_fri_per_month"]);
    assert_eq!(page["feesPaidFri"], fees_by_user[0].to_string(), "{page}");
    // The usage page is the operator's: a user token is refused.
    let response = e
        .http
        .get(format!("{}/v1/sponsorship/usage", e.pm.url))
        .header("x-api-key", API_KEY)
        .bearer_auth(user_token(USER))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let metrics = e.metrics().await;
    assert!(
        metrics.contains(
            "chipi_paymaster_sponsorship_refusals_total{app=\"local\",code=\"SPONSORSHIP_BUDGET_EXCEEDED\"} 2"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("chipi_paymaster_sponsored_fees_fri_total{app=\"local\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_100_from_one_user_stops_at_the_count_and_others_are_served() {
    let e = common::env_with(Options::default().policy(|policy| {
        policy.in_flight_per_wallet = 100;
        policy.limits = vec![Limit {
            scope: Scope::User,
            window: Window::Month,
            max_transactions: Some(5),
            max_fee_fri: None,
        }];
    }))
    .await;
    let nonce_before = e.relayer_nonce(3).await;
    let token = user_token(USER);
    let mut bodies = Vec::new();
    for i in 0..100 {
        let prepared = prepare_as(&e, &token, json!([e.transfer("0x78", i + 1)])).await;
        assert_eq!(prepared.status, 200, "{:?}", prepared.body);
        bodies.push(e.execute_body(&prepared.body["typedData"]));
    }
    let e = Arc::new(e);
    // Another user of the app, served while the flood is on.
    let other = tokio::spawn({
        let e = e.clone();
        async move { run_as(&e, &user_token("user-2"), json!([e.transfer("0x78", 1)])).await }
    });
    let answers = futures_join(bodies.into_iter().map(|body| {
        let (e, token) = (e.clone(), token.clone());
        async move {
            let response = e
                .http
                .post(format!("{}{EXECUTE}", e.pm.url))
                .header("x-api-key", API_KEY)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap(), retry)
        }
    }))
    .await;
    let passed = answers.iter().filter(|(s, _, _)| *s == 200).count();
    assert_eq!(passed, 5, "{answers:?}");
    for (status, body, retry) in answers.iter().filter(|(s, _, _)| *s != 200) {
        assert_eq!(*status, 429, "{body}");
        assert_eq!(body["code"], "RATE_LIMITED");
        // The count, or (turned away at the door) the user's requests at once.
        assert!(
            body["limit"] == "user.transactions_per_month"
                || body["limit"] == "http.max_concurrent_per_user",
            "{body}"
        );
        let seconds = body["retryAfter"].as_u64().unwrap();
        assert_eq!(retry.as_deref(), Some(seconds.to_string().as_str()));
    }
    let other = other.await.unwrap();
    assert_eq!(other.status, 200, "{:?}", other.body);
    // The flooder's next prepare is refused.
    let again = prepare_as(&e, &token, json!([e.transfer("0x78", 1)])).await;
    assert_refused(&again, 429, "RATE_LIMITED", "user.transactions_per_month");
    // Exactly what passed was sent.
    for _ in 0..100 {
        if e.relayer_nonce(3).await == nonce_before + Felt::from(6u8) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(e.relayer_nonce(3).await, nonce_before + Felt::from(6u8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_has_one_sponsored_transaction_in_flight() {
    let e = common::env().await;
    let nonce_before = e.relayer_nonce(3).await;
    let mut bodies = Vec::new();
    for i in 0..6 {
        let prepared = e.prepare(json!([e.transfer("0x79", i + 1)])).await;
        assert_eq!(prepared.status, 200, "{:?}", prepared.body);
        bodies.push(e.execute_body(&prepared.body["typedData"]));
    }
    let e = Arc::new(e);
    let answers = futures_join(bodies.into_iter().map(|body| {
        let e = e.clone();
        async move { e.execute(&body).await }
    }))
    .await;
    let passed = answers.iter().filter(|a| a.status == 200).count();
    assert!(passed >= 1, "{answers:?}");
    assert!(
        passed < answers.len(),
        "none waited for the one in flight: {answers:?}"
    );
    for answer in answers.iter().filter(|a| a.status != 200) {
        assert_refused(answer, 429, "RATE_LIMITED", "in_flight_per_wallet");
    }
    for answer in answers.iter().filter(|a| a.status == 200) {
        e.settled(answer.body["transactionHash"].as_str().unwrap())
            .await;
    }
    assert_eq!(
        e.relayer_nonce(3).await,
        nonce_before + Felt::from(passed as u64)
    );
    // Once final, the next one passes (the service looks at the chain, no waiting).
    let answer = e.run(json!([e.transfer("0x79", 1)])).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

#[tokio::test]
async fn calls_outside_the_policy_are_refused_before_anything_is_issued_or_sent() {
    let token_policy = |policy: &mut Policy| {
        let strk = Some(chipi_devnet::STRK_ADDRESS);
        policy.max_calls = Some(2);
        policy.allow = Some(vec![
            rule(strk, "transfer"),
            rule(strk, "approve"),
            rule(strk, "transfer_from"),
        ]);
        policy.deny = vec![rule(strk, "approve")];
        policy.trigger = Some(rule(strk, "transfer"));
    };
    let database = chipi_contract_tests::paymaster::temp_database()
        .await
        .unwrap();
    let mut e = common::env_with(Options {
        database: Some(database.clone()),
        ..Options::default()
    })
    .await;
    // Prepared under the default policy, executed under the strict one below.
    let approve = e
        .prepare(json!([call(&e, "approve", &["0x5", "9", "0"])]))
        .await;
    assert_eq!(approve.status, 200, "{:?}", approve.body);
    restart(
        &mut e,
        Options {
            database: Some(database),
            ..Options::default()
        }
        .policy(token_policy),
    )
    .await;
    let issued = e.pm.state.store().issued_count().await.unwrap();
    let nonce = e.relayer_nonce(3).await;

    let transfer = e.transfer("0x55", 4);
    let cases = [
        (
            json!([call(&e, "approve", &["0x55", "4", "0"]), transfer.clone()]),
            "deny",
            "call 0",
        ),
        (
            json!([
                transfer.clone(),
                call(&e, "increase_allowance", &["0x55", "4", "0"])
            ]),
            "allow",
            "call 1",
        ),
        (
            json!([call(&e, "transfer_from", &["0x1", "0x55", "4", "0"])]),
            "trigger",
            "lacks",
        ),
        (
            json!([transfer.clone(), transfer.clone(), transfer.clone()]),
            "max_calls",
            "3 calls",
        ),
    ];
    for (calls, limit, words) in cases {
        let answer = e.prepare(calls).await;
        assert_refused(&answer, 403, "CALL_NOT_SPONSORED", limit);
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains(words), "{message}");
        assert!(!message.contains("0x55"), "calldata echoed: {message}");
    }
    // What was issued before the policy is held to it at execute.
    let answer = e.execute(&e.execute_body(&approve.body["typedData"])).await;
    assert_refused(&answer, 403, "CALL_NOT_SPONSORED", "deny");
    assert_eq!(e.pm.state.store().issued_count().await.unwrap(), issued);
    assert_eq!(e.relayer_nonce(3).await, nonce);
    assert!(e.pm.state.store().transactions().await.unwrap().is_empty());
    // The sponsored shape passes.
    let answer = e.run(json!([transfer])).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

#[tokio::test]
async fn classes_dates_and_the_switch_refuse_before_the_node_is_asked_to_simulate() {
    let mut e = common::env_with(Options::default().policy(|policy| {
        policy.account_classes = Some(vec![Felt::from(0x1234u16)]);
    }))
    .await;
    let answer = e.prepare(json!([e.transfer("0x55", 1)])).await;
    assert_refused(&answer, 403, "WALLET_NOT_SPONSORED", "account_classes");

    restart(
        &mut e,
        Options::default().policy(|policy| policy.active = false),
    )
    .await;
    let answer = e.prepare(json!([e.transfer("0x55", 1)])).await;
    assert_refused(&answer, 403, "SPONSORSHIP_INACTIVE", "active");
    let creation = e
        .post(
            "/v1/chipi-wallets/prepare-creation",
            &json!({
                "publicKey": e.wallet(),
                "starkKeyPubAX": format!("{:#x}", e.w.owner_public_key),
            }),
        )
        .await;
    assert_refused(&creation, 403, "SPONSORSHIP_INACTIVE", "active");

    let later = chipi_contract_tests::paymaster::now() as i64 + 3600;
    restart(
        &mut e,
        Options::default().policy(move |policy| policy.starts_at = Some(later)),
    )
    .await;
    let answer = e.prepare(json!([e.transfer("0x55", 1)])).await;
    assert_refused(&answer, 403, "SPONSORSHIP_INACTIVE", "starts_at");
    let wait = answer.body["retryAfter"].as_u64().unwrap();
    assert!((3590..=3600).contains(&wait), "{wait}");
    assert_eq!(e.pm.state.store().issued_count().await.unwrap(), 0);
}

/// The operator's side of the webhook: answers by mode, keeps what it was sent.
struct Hook {
    url: String,
    mode: Arc<AtomicU8>,
    seen: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>,
}

const APPROVE: u8 = 0;
const DECLINE: u8 = 1;
const SLOW: u8 = 2;

async fn hook() -> Hook {
    use axum::routing::post;
    let mode = Arc::new(AtomicU8::new(APPROVE));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (m, s) = (mode.clone(), seen.clone());
    let router = axum::Router::new().route(
        "/decide",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let (m, s) = (m.clone(), s.clone());
            async move {
                s.lock().unwrap().push((headers, body));
                match m.load(Ordering::SeqCst) {
                    APPROVE => axum::Json(json!({ "sponsor": true })),
                    DECLINE => axum::Json(json!({ "sponsor": false })),
                    _ => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        axum::Json(json!({ "sponsor": true }))
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/decide", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Hook { url, mode, seen }
}

const HOOK_SECRET: &str = "an-operator-webhook-secret-0123456789";

fn with_hook(url: &str, on_error: OnError) -> Options {
    let url = url.to_string();
    Options::default().policy(move |policy| {
        policy.webhook = Some(chipi_paymaster::WebhookConfig {
            url: chipi_paymaster::RpcUrl::parse(&url).unwrap(),
            secret: HOOK_SECRET.into(),
            timeout_ms: 300,
            on_error,
        });
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_decides_and_its_calls_are_signed() {
    let hook = hook().await;
    let mut e = common::env_with(with_hook(&hook.url, OnError::Refuse)).await;
    let nonce = e.relayer_nonce(3).await;

    let answer = e.run(json!([e.transfer("0x56", 2)])).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    {
        let seen = hook.seen.lock().unwrap();
        let (headers, body) = seen.last().unwrap();
        let timestamp = headers["x-chipi-timestamp"].to_str().unwrap();
        let signature = headers[chipi_paymaster::WEBHOOK_SIGNATURE_HEADER]
            .to_str()
            .unwrap();
        assert_eq!(
            signature,
            chipi_paymaster::sign_webhook(HOOK_SECRET.as_bytes(), timestamp, body)
        );
        // The operator detects a forged or altered call.
        let forged = chipi_paymaster::sign_webhook(b"not-the-operator-secret", timestamp, body);
        assert_ne!(signature, forged);
        let altered = body.replace("0x56", "0x57");
        assert_ne!(
            signature,
            chipi_paymaster::sign_webhook(HOOK_SECRET.as_bytes(), timestamp, &altered)
        );
        let sent: Value = serde_json::from_str(body).unwrap();
        assert_eq!(sent["externalUserId"], USER);
        assert_eq!(sent["wallet"], e.wallet());
        assert_eq!(sent["calls"][0]["calldata"][0], "0x56");
        assert!(sent["maxFeeFri"].as_str().unwrap().parse::<u128>().unwrap() > 0);
    }

    hook.mode.store(DECLINE, Ordering::SeqCst);
    let answer = e.run(json!([e.transfer("0x56", 2)])).await;
    assert_refused(&answer, 403, "SPONSORSHIP_DECLINED", "webhook");

    hook.mode.store(SLOW, Ordering::SeqCst);
    let answer = e.run(json!([e.transfer("0x56", 2)])).await;
    assert_refused(&answer, 403, "SPONSORSHIP_DECLINED", "webhook");
    assert_eq!(
        e.relayer_nonce(3).await,
        nonce + Felt::ONE,
        "declined: nothing sent"
    );
    // Nothing stays reserved by the declined ones.
    let (_, page) = usage(&e, "").await;
    assert_eq!(page["sent"], 1, "{page}");

    restart(&mut e, with_hook(&hook.url, OnError::Sponsor)).await;
    let answer = e.run(json!([e.transfer("0x56", 2)])).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(e.relayer_nonce(3).await, nonce + Felt::TWO);
}

/// Runs every future at once on the test's runtime and collects their outputs in order.
async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}
