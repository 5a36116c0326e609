//! SNIP-29 at `POST /` (API.md section 7), over real HTTP on an embedded devnet: the
//! flow a starknet.js 9 `PaymasterRpc` drives (build, sign, execute, track), session
//! signatures passed through, JSON-RPC's envelope (batches, notifications, missing
//! params) and every error code this API answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chipi_contract_tests::paymaster::{user_token, Options, API_KEY, USER};
use chipi_contract_tests::selector;
use chipi_core::snip29::RpcCode;
use chipi_core::{Felt, OutsideExecution};
use common::{env, env_with, Env};
use serde_json::{json, Value};

/// A JSON-RPC exchange: HTTP status and body.
struct Rpc {
    status: u16,
    body: Value,
}

impl Rpc {
    fn result(&self) -> &Value {
        assert!(self.body.get("error").is_none(), "an error: {}", self.body);
        &self.body["result"]
    }

    fn error_code(&self) -> i64 {
        self.body["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an error: {}", self.body))
    }
}

/// Posts `body` to `/` with the app's public key as starknet.js sends it
/// (`x-paymaster-api-key`), and `bearer` when given.
async fn post(e: &Env, body: &Value, bearer: Option<&str>) -> Rpc {
    let mut request = e
        .http
        .post(format!("{}/", e.pm.url))
        .header("x-paymaster-api-key", API_KEY)
        .json(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("service answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Rpc { status, body }
}

async fn call(e: &Env, method: &str, params: Value) -> Rpc {
    post(
        e,
        &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
        None,
    )
    .await
}

/// The invoke build params of starknet.js 9 for `calls` by the test wallet.
fn build_params(e: &Env, calls: Value, time_bounds: Option<Value>) -> Value {
    let mut parameters = json!({"version": "0x1", "fee_mode": {"mode": "sponsored"}});
    if let Some(bounds) = time_bounds {
        parameters["time_bounds"] = bounds;
    }
    json!({
        "transaction": {"type": "invoke", "invoke": {"user_address": e.wallet(), "calls": calls}},
        "parameters": parameters,
    })
}

fn transfer(to: &str, amount: u64) -> Value {
    json!({
        "to": format!("{:#x}", chipi_devnet::STRK_ADDRESS),
        "selector": format!("{:#x}", selector("transfer")),
        "calldata": [to, format!("{amount:#x}"), "0x0"],
    })
}

fn execute_params(e: &Env, typed_data: &Value, signature: &[Felt]) -> Value {
    json!({
        "transaction": {"type": "invoke", "invoke": {
            "user_address": e.wallet(),
            "typed_data": typed_data,
            "signature": signature.iter().map(|f| format!("{f:#x}")).collect::<Vec<_>>(),
        }},
        "parameters": {"version": "0x1", "fee_mode": {"mode": "sponsored"}},
    })
}

fn felt(value: &Value) -> Felt {
    chipi_core::parse_felt_strict(value.as_str().expect("a string")).expect("a felt")
}

fn amount(value: &Value) -> u128 {
    u128::try_from(felt(value)).expect("an amount")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_client_builds_signs_executes_and_tracks_with_the_public_key_alone() {
    let e = env().await;
    // The two methods starknet.js calls without `params`.
    let available = post(
        &e,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "paymaster_isAvailable"}),
        None,
    )
    .await;
    assert_eq!(available.status, 200);
    assert_eq!(available.result(), &json!(true));
    let tokens = post(
        &e,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "paymaster_getSupportedTokens"}),
        None,
    )
    .await;
    assert_eq!(
        tokens.result(),
        &json!([{
            "token_address": format!("{:#x}", chipi_devnet::STRK_ADDRESS),
            "decimals": 18,
            "price_in_strk": "0xde0b6b3a7640000",
        }])
    );

    // Build: typed data of exactly these calls, for this chain, and a fee.
    let calls = json!([transfer("0x5e1", 7)]);
    let built = call(
        &e,
        "paymaster_buildTransaction",
        build_params(&e, calls, None),
    )
    .await;
    let result = built.result();
    assert_eq!(result["type"], "invoke");
    assert_eq!(
        result["parameters"]["fee_mode"],
        json!({"mode": "sponsored"})
    );
    let typed_data = result["typed_data"].clone();
    let (execution, chain) = OutsideExecution::from_typed_data(&typed_data).expect("typed data");
    assert_eq!(chain, e.pm.state.chain_id());
    assert_eq!(execution.calls.len(), 1);
    assert_eq!(execution.calls[0].calldata[1], Felt::from(7u8));
    let fee = &result["fee"];
    let estimated = amount(&fee["estimated_fee_in_strk"]);
    let suggested = amount(&fee["suggested_max_fee_in_strk"]);
    assert!(estimated > 0 && estimated <= suggested, "{fee}");
    assert_eq!(amount(&fee["gas_token_price_in_strk"]), 10u128.pow(18));
    assert_eq!(
        fee["estimated_fee_in_gas_token"],
        fee["estimated_fee_in_strk"]
    );

    // Sign as the owner, execute, track.
    let before = e.balance(e.w.address).await;
    let signature = e.w.owner_sign_outside(&execution);
    let executed = call(
        &e,
        "paymaster_executeTransaction",
        execute_params(&e, &typed_data, &signature),
    )
    .await;
    let hash = felt(&executed.result()["transaction_hash"]);
    let tracking_id = felt(&executed.result()["tracking_id"]);
    assert_eq!(
        tracking_id,
        chipi_paymaster::tracking_id(e.w.address, Some(execution.nonce))
    );
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    let record = e.settled(&format!("{hash:#x}")).await;
    // The user paid nothing but the transfer; the quote bounded the fee paid.
    assert_eq!(e.balance(e.w.address).await, before - 7);
    let paid = record.fee.expect("a fee");
    assert!(paid <= suggested, "paid {paid} > suggested {suggested}");
    // The quote (the wallet's calls alone, plus RELAY_OVERHEAD_L2_GAS) covers what the
    // relayed transaction cost, and not by much (measured: 13% over for this transfer).
    assert!(
        estimated >= paid && estimated <= paid + paid / 2,
        "the quote {estimated} is off the fee paid {paid}"
    );
    let tracked = call(
        &e,
        "paymaster_trackingIdToLatestHash",
        json!({ "tracking_id": format!("{tracking_id:#x}") }),
    )
    .await;
    assert_eq!(
        tracked.result(),
        &json!({"transaction_hash": format!("{hash:#x}"), "status": "accepted"})
    );

    // The same signed request again: the first hash and tracking id, nothing sent.
    let again = call(
        &e,
        "paymaster_executeTransaction",
        execute_params(&e, &typed_data, &signature),
    )
    .await;
    assert_eq!(again.result(), executed.result());
    assert_eq!(e.pm.state.store().transactions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_session_signature_passes_through_and_its_budget_is_the_contracts() {
    let e = env().await;
    let session = e.w.new_session(1, &[selector("transfer")]).await;
    let calls = json!([transfer("0x5e2", 3)]);
    let built = call(
        &e,
        "paymaster_buildTransaction",
        build_params(&e, calls.clone(), None),
    )
    .await;
    let typed_data = built.result()["typed_data"].clone();
    let (execution, _) = OutsideExecution::from_typed_data(&typed_data).unwrap();
    let signature = e.w.session_sign_outside(&session, &execution);
    let executed = call(
        &e,
        "paymaster_executeTransaction",
        execute_params(&e, &typed_data, &signature),
    )
    .await;
    let hash = felt(&executed.result()["transaction_hash"]);
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    e.settled(&format!("{hash:#x}")).await;
    assert_eq!(e.w.calls_used(session.public_key).await, 1);

    // Its one call is spent: the simulation refuses the next, nothing is sent (156).
    let built = call(
        &e,
        "paymaster_buildTransaction",
        build_params(&e, calls, None),
    )
    .await;
    let typed_data = built.result()["typed_data"].clone();
    let (execution, _) = OutsideExecution::from_typed_data(&typed_data).unwrap();
    let signature = e.w.session_sign_outside(&session, &execution);
    let refused = call(
        &e,
        "paymaster_executeTransaction",
        execute_params(&e, &typed_data, &signature),
    )
    .await;
    assert_eq!(refused.error_code(), 156, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["data"]["code"],
        "SESSION_MAX_CALLS_EXCEEDED"
    );
    assert!(refused.body["error"]["data"]["execution_error"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn the_envelope_follows_json_rpc_2() {
    let e = env().await;
    let url = format!("{}/", e.pm.url);
    let raw = |body: &'static str| {
        e.http
            .post(&url)
            .header("x-paymaster-api-key", API_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Not JSON: -32700 with a null id.
    let answer: Value = raw("{\"jsonrpc\": ").await.unwrap().json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32700);
    assert_eq!(answer["id"], Value::Null);
    // Not JSON-RPC 2.0: -32600, its id echoed.
    let answer: Value = raw(r#"{"jsonrpc": "1.0", "id": 3, "method": "paymaster_isAvailable"}"#)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["error"]["code"], -32600);
    assert_eq!(answer["id"], 3);
    // An empty batch: one -32600.
    let answer: Value = raw("[]").await.unwrap().json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32600);
    // A notification alone: no body.
    let response = raw(r#"{"jsonrpc": "2.0", "method": "paymaster_isAvailable"}"#)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    // A batch: one answer per request with an id, in order, ids kept (strings too).
    let batch = json!([
        {"jsonrpc": "2.0", "id": "a", "method": "paymaster_isAvailable"},
        {"jsonrpc": "2.0", "method": "paymaster_isAvailable"},
        {"jsonrpc": "2.0", "id": 2, "method": "paymaster_nothing"},
        {"jsonrpc": "2.0", "id": 3, "method": "paymaster_buildTransaction"},
        {"jsonrpc": "2.0", "id": 4, "method": "paymaster_buildTransaction", "params": [1, 2]},
        {"jsonrpc": "2.0", "id": null, "method": "paymaster_isAvailable"},
    ]);
    let answer = post(&e, &batch, None).await;
    let answers = answer.body.as_array().expect("an array");
    let summary: Vec<(Value, Value)> = answers
        .iter()
        .map(|a| {
            (
                a["id"].clone(),
                a.get("result")
                    .cloned()
                    .unwrap_or(a["error"]["code"].clone()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("a"), json!(true)),
            (json!(2), json!(-32601)),
            (json!(3), json!(-32602)),
            (json!(4), json!(-32602)),
            (Value::Null, json!(true)),
        ]
    );
    // Counted by method and answer; an unknown method is `other`.
    let text = e.metrics().await;
    for needle in [
        "chipi_paymaster_rpc_calls_total{code=\"ok\",method=\"paymaster_isAvailable\"} 4",
        "chipi_paymaster_rpc_calls_total{code=\"-32601\",method=\"other\"} 1",
        "chipi_paymaster_rpc_calls_total{code=\"-32602\",method=\"paymaster_buildTransaction\"} 2",
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    // Too many in one batch.
    let big: Vec<Value> = (0..21)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "paymaster_isAvailable"}))
        .collect();
    assert_eq!(
        post(&e, &Value::Array(big), None).await.body["error"]["code"],
        -32600
    );
}

#[tokio::test]
async fn every_refusal_has_its_snip29_code_and_nothing_is_sent() {
    let options = Options::default().policy(|policy| {
        policy.deny = vec![chipi_paymaster::CallRule {
            contract: None,
            selector: Some(selector("approve")),
        }];
    });
    let e = env_with(options).await;
    let code = |rpc: &Rpc| rpc.error_code();
    let calls = json!([transfer("0x5e1", 1)]);

    // 151: paying in a token is not served.
    let mut params = build_params(&e, calls.clone(), None);
    params["parameters"]["fee_mode"] = json!({"mode": "default", "gas_token": "0x4718"});
    assert_eq!(
        code(&call(&e, "paymaster_buildTransaction", params).await),
        151
    );
    // 158: deployment data that does not give its address (tests/snip29_deploy.rs has
    // the rest of the deployment checks).
    let class = format!("{:#x}", e.w.devnet.session_class_hash());
    let params = json!({
        "transaction": {"type": "deploy", "deployment": {"address": "0x1", "class_hash": class,
            "salt": "0x3", "calldata": [], "version": 1}},
        "parameters": {"version": "0x1", "fee_mode": {"mode": "sponsored"}},
    });
    assert_eq!(
        code(&call(&e, "paymaster_buildTransaction", params).await),
        158
    );
    // 157: bounds reversed, or closing too late.
    let now = e.w.now().await;
    for bounds in [
        json!({"execute_after": now + 100, "execute_before": now + 50}),
        json!({"execute_after": 1, "execute_before": now + 10 * 86_400}),
        json!({"execute_after": 1, "execute_before": now.saturating_sub(10)}),
    ] {
        let params = build_params(&e, calls.clone(), Some(bounds.clone()));
        assert_eq!(
            code(&call(&e, "paymaster_buildTransaction", params).await),
            157,
            "{bounds}"
        );
    }
    // Bounds the client chooses within the service's window are the typed data's.
    let bounds = json!({"execute_after": 1, "execute_before": (now + 120).to_string()});
    let built = call(
        &e,
        "paymaster_buildTransaction",
        build_params(&e, calls.clone(), Some(bounds)),
    )
    .await;
    let (execution, _) = OutsideExecution::from_typed_data(&built.result()["typed_data"]).unwrap();
    assert_eq!(
        (execution.execute_after, execution.execute_before),
        (1, now + 120)
    );
    // 155: a predeployed account is not of a class this app sponsors.
    let mut params = build_params(&e, calls.clone(), None);
    params["transaction"]["invoke"]["user_address"] =
        json!(format!("{:#x}", e.w.devnet.accounts()[5].address));
    let refused = call(&e, "paymaster_buildTransaction", params).await;
    assert_eq!(code(&refused), 155, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["data"]["code"],
        "WALLET_NOT_SPONSORED"
    );
    // 163 carrying the sponsorship code: a denied call.
    let approve = json!([{
        "to": format!("{:#x}", chipi_devnet::STRK_ADDRESS),
        "selector": format!("{:#x}", selector("approve")),
        "calldata": ["0x1", "0x1", "0x0"],
    }]);
    let refused = call(
        &e,
        "paymaster_buildTransaction",
        build_params(&e, approve, None),
    )
    .await;
    assert_eq!(code(&refused), 163);
    assert_eq!(refused.body["error"]["data"]["code"], "CALL_NOT_SPONSORED");
    assert_eq!(refused.body["error"]["data"]["limit"], "deny");
    // 153: a signature that does not verify (the wallet refuses it in simulation).
    let built = call(
        &e,
        "paymaster_buildTransaction",
        build_params(&e, calls.clone(), None),
    )
    .await;
    let typed_data = built.result()["typed_data"].clone();
    let refused = call(
        &e,
        "paymaster_executeTransaction",
        execute_params(&e, &typed_data, &[Felt::ONE, Felt::TWO]),
    )
    .await;
    assert!(matches!(code(&refused), 153 | 156), "{}", refused.body);
    // Typed data this service did not issue: 163 OUTSIDE_EXECUTION_REJECTED.
    let (mut execution, _) = OutsideExecution::from_typed_data(&typed_data).unwrap();
    execution.nonce += Felt::ONE;
    let forged = execution.to_typed_data(e.pm.state.chain_id());
    let signature = e.w.owner_sign_outside(&execution);
    let refused = call(
        &e,
        "paymaster_executeTransaction",
        execute_params(&e, &forged, &signature),
    )
    .await;
    assert_eq!(code(&refused), 163);
    assert_eq!(
        refused.body["error"]["data"]["code"],
        "OUTSIDE_EXECUTION_REJECTED"
    );
    // 160: a tracking id nobody was given.
    let refused = call(
        &e,
        "paymaster_trackingIdToLatestHash",
        json!({"tracking_id": "0x1234"}),
    )
    .await;
    assert_eq!(code(&refused), 160);
    // 163 AUTHENTICATION_FAILED: an unknown key; a bad bearer token.
    let answer: Value = e
        .http
        .post(format!("{}/", e.pm.url))
        .header("x-paymaster-api-key", "pk_dev_unknown_key_000000000000")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "paymaster_buildTransaction",
            "params": build_params(&e, calls.clone(), None)}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["error"]["code"], 163);
    assert_eq!(answer["error"]["data"]["code"], "AUTHENTICATION_FAILED");
    let refused = post(
        &e,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "paymaster_buildTransaction",
            "params": build_params(&e, calls.clone(), None)}),
        Some("not-a-token"),
    )
    .await;
    assert_eq!(
        refused.body["error"]["data"]["code"],
        "AUTHENTICATION_FAILED"
    );
    // Nothing was sent by any of these.
    let sent = e.pm.state.store().transactions().await.unwrap();
    assert!(sent.iter().all(|row| row.hash.is_none()), "{sent:#?}");
    assert!(RpcCode::from_code(163).is_some());
}

#[tokio::test]
async fn a_user_token_binds_the_request_to_its_user_and_anonymous_use_can_be_switched_off() {
    let e = env_with(Options::default().policy(|policy| policy.anonymous = false)).await;
    let calls = json!([transfer("0x5e1", 1)]);
    let params = json!({"jsonrpc": "2.0", "id": 1, "method": "paymaster_buildTransaction",
        "params": build_params(&e, calls.clone(), None)});
    // Without a token: refused, this app wants to know its users.
    let refused = post(&e, &params, None).await;
    assert_eq!(refused.body["error"]["code"], 163);
    assert_eq!(
        refused.body["error"]["data"]["code"],
        "AUTHENTICATION_FAILED"
    );
    // With the user's token: built, and only that user may execute it.
    let built = post(&e, &params, Some(&e.token)).await;
    let typed_data = built.result()["typed_data"].clone();
    let (execution, _) = OutsideExecution::from_typed_data(&typed_data).unwrap();
    let signature = e.w.owner_sign_outside(&execution);
    let execute = json!({"jsonrpc": "2.0", "id": 2, "method": "paymaster_executeTransaction",
        "params": execute_params(&e, &typed_data, &signature)});
    let other = post(&e, &execute, Some(&user_token("someone-else"))).await;
    assert_eq!(
        other.body["error"]["data"]["code"],
        "OUTSIDE_EXECUTION_REJECTED"
    );
    let executed = post(&e, &execute, Some(&user_token(USER))).await;
    let hash = felt(&executed.result()["transaction_hash"]);
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    let record = e.settled(&format!("{hash:#x}")).await;
    assert_eq!(record.user_id, USER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_default_mode_the_user_pays_the_fee_by_a_final_transfer_the_service_checks() {
    let e = env().await;
    let strk = format!("{:#x}", chipi_devnet::STRK_ADDRESS);
    let collector = e.w.devnet.accounts()[3].address; // the relayer, by default
    let calls = json!([transfer("0x5e3", 5)]);
    let mut params = build_params(&e, calls.clone(), None);
    params["parameters"]["fee_mode"] = json!({"mode": "default", "gas_token": strk});
    let built = call(&e, "paymaster_buildTransaction", params.clone()).await;
    let result = built.result();
    let fee = &result["fee"];
    let amount = amount(&fee["suggested_max_fee_in_gas_token"]);
    assert_eq!(amount, amount_of(fee, "suggested_max_fee_in_strk"));
    assert!(amount > amount_of(fee, "estimated_fee_in_gas_token"));
    // What starknet.js checks before signing: the user's calls, then exactly one transfer
    // of the gas token whose amount is the suggested fee.
    let typed_data = result["typed_data"].clone();
    let (execution, _) = OutsideExecution::from_typed_data(&typed_data).unwrap();
    assert_eq!(execution.calls.len(), 2);
    let last = &execution.calls[1];
    assert_eq!(last.to, chipi_devnet::STRK_ADDRESS);
    assert_eq!(last.selector, selector("transfer"));
    assert_eq!(
        last.calldata,
        vec![collector, Felt::from(amount), Felt::ZERO]
    );

    // Executed in default mode: the wallet pays the transfer and the fee payment.
    let wallet_before = e.balance(e.w.address).await;
    let signature = e.w.owner_sign_outside(&execution);
    let mut execute = execute_params(&e, &typed_data, &signature);
    execute["parameters"] = params["parameters"].clone();
    let executed = call(&e, "paymaster_executeTransaction", execute).await;
    let hash = felt(&executed.result()["transaction_hash"]);
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    let record = e.settled(&format!("{hash:#x}")).await;
    assert_eq!(e.balance(e.w.address).await, wallet_before - 5 - amount);
    // The relayer paid the fee and was paid more than that.
    assert!(record.fee.expect("a fee") <= amount, "{record:?}");

    // A sponsored build executed as if paid: its calls do not end with the fee transfer
    // (154), nothing is sent.
    let built = call(
        &e,
        "paymaster_buildTransaction",
        build_params(&e, calls, None),
    )
    .await;
    let typed_data = built.result()["typed_data"].clone();
    let (execution, _) = OutsideExecution::from_typed_data(&typed_data).unwrap();
    let mut execute = execute_params(&e, &typed_data, &e.w.owner_sign_outside(&execution));
    execute["parameters"] = params["parameters"].clone();
    let refused = call(&e, "paymaster_executeTransaction", execute).await;
    assert_eq!(refused.error_code(), 154, "{}", refused.body);
    assert_eq!(e.pm.state.store().transactions().await.unwrap().len(), 1);
}

fn amount_of(fee: &Value, field: &str) -> u128 {
    amount(&fee[field])
}

/// Builds, signs as the owner and executes `calls` over SNIP-29 with the user's token:
/// the execute's answer, or the build's refusal.
async fn run_snip29(e: &Env, calls: Value) -> Rpc {
    let token = user_token(USER);
    let built = post(
        e,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "paymaster_buildTransaction",
            "params": build_params(e, calls, None)}),
        Some(&token),
    )
    .await;
    if built.body.get("error").is_some() {
        return built;
    }
    let typed_data = &built.result()["typed_data"];
    let (execution, chain) = OutsideExecution::from_typed_data(typed_data).expect("typed data");
    let (r, s) = chipi_core::sign_hash(&e.w.owner_key, execution.message_hash(chain, e.w.address))
        .expect("signs");
    post(
        e,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "paymaster_executeTransaction",
            "params": execute_params(e, typed_data, &[r, s])}),
        Some(&token),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_budget_holds_across_both_front_ends() {
    use chipi_paymaster::{Limit, Scope, Window};
    let options = Options::default().policy(|policy| {
        policy.limits = vec![Limit {
            scope: Scope::User,
            window: Window::Day,
            max_transactions: Some(3),
            max_fee_fri: None,
        }];
    });
    let e = env_with(options).await;
    // Three of the user's transactions, alternating the APIs: all pass.
    let first = e.run(json!([e.transfer("0x5e2", 1)])).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = run_snip29(&e, json!([transfer("0x5e2", 1)])).await;
    let hash = felt(&second.result()["transaction_hash"]);
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    let third = e.run(json!([e.transfer("0x5e2", 1)])).await;
    assert_eq!(third.status, 200, "{:?}", third.body);

    // The budget is one: spent through either API, refused through both.
    let refused = run_snip29(&e, json!([transfer("0x5e2", 1)])).await;
    assert_eq!(refused.error_code(), 163, "{}", refused.body);
    assert_eq!(refused.body["error"]["data"]["code"], "RATE_LIMITED");
    assert_eq!(
        refused.body["error"]["data"]["limit"],
        "user.transactions_per_day"
    );
    let prepared = e.prepare(json!([e.transfer("0x5e2", 1)])).await;
    let refused = if prepared.status == 200 {
        e.execute(&e.execute_body(&prepared.body["typedData"]))
            .await
    } else {
        prepared
    };
    assert_eq!(
        (refused.status, refused.code()),
        (429, "RATE_LIMITED"),
        "{:?}",
        refused.body
    );
    assert_eq!(e.pm.state.store().transactions().await.unwrap().len(), 3);
    assert_eq!(e.balance(Felt::from(0x5e2u32)).await, 3);
}

/// A price source whose one token's price a test moves.
#[derive(Debug)]
struct MovingPrice {
    token: Felt,
    fri_per_token: std::sync::atomic::AtomicU64,
}

impl chipi_paymaster::PriceSource for MovingPrice {
    fn price(&self, token: Felt) -> Option<chipi_paymaster::TokenPrice> {
        (token == self.token).then(|| chipi_paymaster::TokenPrice {
            token,
            decimals: 18,
            fri_per_token: u128::from(self.fri_per_token.load(std::sync::atomic::Ordering::SeqCst)),
        })
    }

    fn tokens(&self) -> Vec<chipi_paymaster::TokenPrice> {
        self.price(self.token).into_iter().collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_transfer_signed_before_the_price_fell_is_refused_until_it_covers_it() {
    use std::sync::atomic::Ordering;
    let e = env().await;
    let token = chipi_devnet::STRK_ADDRESS;
    // Quoted as if the token were worth 1 STRK; it then falls to a quarter.
    let source = std::sync::Arc::new(MovingPrice {
        token,
        fri_per_token: std::sync::atomic::AtomicU64::new(1_000_000_000_000_000_000),
    });
    e.pm.state.engine().set_price_source(source.clone());
    let tokens = call(&e, "paymaster_getSupportedTokens", json!({})).await;
    assert_eq!(tokens.result()[0]["price_in_strk"], "0xde0b6b3a7640000");

    let mut params = build_params(&e, json!([transfer("0x5e4", 5)]), None);
    params["parameters"]["fee_mode"] =
        json!({"mode": "default", "gas_token": format!("{token:#x}")});
    let built = call(&e, "paymaster_buildTransaction", params.clone()).await;
    let typed_data = built.result()["typed_data"].clone();
    let (execution, _) = OutsideExecution::from_typed_data(&typed_data).unwrap();
    let mut execute = execute_params(&e, &typed_data, &e.w.owner_sign_outside(&execution));
    execute["parameters"] = params["parameters"].clone();

    source
        .fri_per_token
        .store(250_000_000_000_000_000, Ordering::SeqCst);
    let refused = call(&e, "paymaster_executeTransaction", execute.clone()).await;
    assert_eq!(refused.error_code(), 154, "{}", refused.body);
    assert!(e.pm.state.store().transactions().await.unwrap().is_empty());

    // Back to its price: the same signed request now covers the fee and lands.
    source
        .fri_per_token
        .store(1_000_000_000_000_000_000, Ordering::SeqCst);
    let executed = call(&e, "paymaster_executeTransaction", execute).await;
    let hash = felt(&executed.result()["transaction_hash"]);
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    assert_eq!(e.balance(Felt::from(0x5e4u32)).await, 5);
}

/// The fee a sponsored build of `burn(rounds)` quotes, in fri.
async fn burn_quote(e: &Env, burner: Felt, rounds: u32, mode: Value) -> u128 {
    let burn = json!({
        "to": format!("{burner:#x}"),
        "selector": format!("{:#x}", selector("burn")),
        "calldata": [format!("{rounds:#x}")],
    });
    let mut params = build_params(e, json!([burn]), None);
    params["parameters"]["fee_mode"] = mode;
    let built = call(e, "paymaster_buildTransaction", params).await;
    amount(&built.result()["fee"]["estimated_fee_in_strk"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sponsored_quotes_of_one_call_shape_are_reused_and_paid_ones_never() {
    let strk =
        json!({"mode": "default", "gas_token": format!("{:#x}", chipi_devnet::STRK_ADDRESS)});
    let sponsored = json!({"mode": "sponsored"});
    for cache in [30, 0] {
        let options =
            Options::default().configure(move |c| c.snip29.sponsored_quote_cache_seconds = cache);
        let e = env_with(options).await;
        let burner =
            e.w.devnet
                .deploy(chipi_contracts::gas_burner(), vec![], Felt::from(12u8))
                .await
                .unwrap();
        let light = burn_quote(&e, burner, 1, sponsored.clone()).await;
        // Same shape (one calldata felt), 300 storage writes instead of one.
        let heavy = burn_quote(&e, burner, 300, sponsored.clone()).await;
        if cache > 0 {
            assert_eq!(heavy, light, "the shape's quote is reused");
        } else {
            assert!(
                heavy > 2 * light,
                "simulated each time: {light} then {heavy}"
            );
        }
        // Paying: always simulated, since the quote sets what the user pays.
        let paid = burn_quote(&e, burner, 300, strk.clone()).await;
        assert!(paid > 2 * light, "{light} then {paid}");
    }
}
