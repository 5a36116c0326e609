//! SNIP-29 deployments and tips (API.md section 7), over real HTTP on an embedded devnet:
//! `deploy_and_invoke` of a new session account in one relayer transaction, `deploy`
//! alone, the checks on deployment data, the app's policy on deployments, and the
//! relayer transaction's tip (configured, quoted, sent, paid for in default mode).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chipi_contract_tests::paymaster::{Options, API_KEY};
use chipi_contract_tests::{random_key, selector, STRK};
use chipi_core::{owner_signature, public_key_of, wallet_address, Felt, OutsideExecution};
use chipi_paymaster::{Limit, Scope, TipsConfig, TxKind, Window, RELAY_OVERHEAD_L2_GAS};
use common::{env, env_with, Env};
use serde_json::{json, Value};
use starknet_rust::core::types::{
    BlockId, BlockTag, InvokeTransaction, StarknetError, Transaction,
};
use starknet_rust::providers::{Provider, ProviderError};

/// The tips the tip tests configure (fri per L2 gas unit; the devnet's L2 gas price is
/// 10^9 fri).
const TIPS: TipsConfig = TipsConfig {
    slow: 0,
    normal: 20_000_000,
    fast: 300_000_000,
};
const MAX_TIP: u64 = 2_000_000_000;

/// A JSON-RPC answer.
struct Rpc(Value);

impl Rpc {
    fn result(&self) -> &Value {
        assert!(self.0.get("error").is_none(), "an error: {}", self.0);
        &self.0["result"]
    }

    fn code(&self) -> i64 {
        self.0["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an error: {}", self.0))
    }

    fn data_code(&self) -> &str {
        self.0["error"]["data"]["code"].as_str().unwrap_or("")
    }
}

async fn call(e: &Env, method: &str, params: Value) -> Rpc {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let response = e
        .http
        .post(format!("{}/", e.pm.url))
        .header("x-paymaster-api-key", API_KEY)
        .json(&body)
        .send()
        .await
        .expect("service answers");
    assert_eq!(response.status().as_u16(), 200);
    Rpc(response.json().await.expect("JSON"))
}

async fn build(e: &Env, transaction: Value, parameters: Value) -> Rpc {
    let params = json!({"transaction": transaction, "parameters": parameters});
    call(e, "paymaster_buildTransaction", params).await
}

async fn execute(e: &Env, transaction: Value, parameters: Value) -> Rpc {
    let params = json!({"transaction": transaction, "parameters": parameters});
    call(e, "paymaster_executeTransaction", params).await
}

fn sponsored() -> Value {
    json!({"version": "0x1", "fee_mode": {"mode": "sponsored"}})
}

fn hex(felt: Felt) -> String {
    format!("{felt:#x}")
}

fn felt(value: &Value) -> Felt {
    chipi_core::parse_felt_strict(value.as_str().expect("a string")).expect("a felt")
}

fn amount(value: &Value) -> u128 {
    u128::try_from(felt(value)).expect("an amount")
}

fn transfer(to: Felt, amount: u128) -> Value {
    json!({
        "to": hex(chipi_devnet::STRK_ADDRESS),
        "selector": hex(selector("transfer")),
        "calldata": [hex(to), hex(Felt::from(amount)), "0x0"],
    })
}

/// A new owner key and the session account it would deploy.
struct NewAccount {
    key: Felt,
    owner: Felt,
    address: Felt,
    class: Felt,
}

impl NewAccount {
    fn new(e: &Env) -> Self {
        let key = random_key();
        let owner = public_key_of(&key).unwrap();
        let class = e.w.devnet.session_class_hash();
        Self {
            key,
            owner,
            address: wallet_address(owner, class),
            class,
        }
    }

    /// Its SNIP-29 deployment data.
    fn deployment(&self) -> Value {
        json!({
            "address": hex(self.address),
            "class_hash": hex(self.class),
            "salt": hex(self.owner),
            "calldata": [hex(self.owner)],
            "version": 1,
        })
    }

    fn sign(&self, typed_data: &Value) -> (OutsideExecution, Vec<String>) {
        let (execution, chain) = OutsideExecution::from_typed_data(typed_data).unwrap();
        let signature = owner_signature(&self.key, execution.message_hash(chain, self.address))
            .unwrap()
            .into_iter()
            .map(hex)
            .collect();
        (execution, signature)
    }
}

async fn class_at(e: &Env, address: Felt) -> Option<Felt> {
    match e
        .w
        .devnet
        .provider()
        .get_class_hash_at(BlockId::Tag(BlockTag::Latest), address)
        .await
    {
        Ok(class) => Some(class),
        Err(ProviderError::StarknetError(StarknetError::ContractNotFound)) => None,
        Err(error) => panic!("the node: {error}"),
    }
}

/// The relayer transaction `hash` as the node holds it: its calldata and tip.
async fn relayer_transaction(e: &Env, hash: Felt) -> (Vec<Felt>, u64) {
    let transaction =
        e.w.devnet
            .provider()
            .get_transaction_by_hash(hash, None)
            .await
            .unwrap();
    let Transaction::Invoke(InvokeTransaction::V3(transaction)) = transaction else {
        panic!("not an INVOKE v3: {transaction:?}");
    };
    (transaction.calldata, transaction.tip)
}

async fn tracked(e: &Env, tracking_id: &Value) -> Value {
    let answer = call(
        e,
        "paymaster_trackingIdToLatestHash",
        json!({ "tracking_id": tracking_id }),
    )
    .await;
    answer.result().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_and_invoke_deploys_a_new_account_and_runs_its_calls_in_one_sponsored_transaction() {
    let e = env().await;
    let account = NewAccount::new(&e);
    // The counterfactual address holds STRK before it holds a contract.
    e.w.devnet
        .transfer_strk(&e.w.devnet.account(0), account.address, 10 * STRK)
        .await
        .unwrap();
    assert_eq!(class_at(&e, account.address).await, None);
    let recipient = Felt::from(0x5e1d_u32);
    let transaction = json!({
        "type": "deploy_and_invoke",
        "deployment": account.deployment(),
        "invoke": {"user_address": hex(account.address), "calls": [transfer(recipient, 7)]},
    });
    let built = build(&e, transaction, sponsored()).await;
    let result = built.result().clone();
    assert_eq!(result["type"], "deploy_and_invoke", "{result}");
    assert_eq!(result["deployment"], account.deployment());
    let fee = &result["fee"];
    let estimated = amount(&fee["estimated_fee_in_strk"]);
    let (execution, signature) = account.sign(&result["typed_data"]);
    assert_eq!(execution.calls.len(), 1);

    let transaction = json!({
        "type": "deploy_and_invoke",
        "deployment": account.deployment(),
        "invoke": {"user_address": hex(account.address), "typed_data": result["typed_data"],
            "signature": signature},
    });
    let executed = execute(&e, transaction.clone(), sponsored()).await;
    let hash = felt(&executed.result()["transaction_hash"]);
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    let record = e.settled(&hex(hash)).await;

    // Deployed with its class, the call made, and the account paid nothing but the call.
    assert_eq!(class_at(&e, account.address).await, Some(account.class));
    assert_eq!(e.balance(recipient).await, 7);
    assert_eq!(e.balance(account.address).await, 10 * STRK - 7);
    // One relayer transaction: the UDC deployment, then the signed outside execution.
    let (calldata, tip) = relayer_transaction(&e, hash).await;
    assert_eq!(calldata[0], Felt::TWO, "two calls: {calldata:?}");
    assert_eq!(calldata[1], chipi_paymaster::UDC_ADDRESS);
    assert_eq!(tip, 0);
    // One record, tracked like an invoke; the quote covered the fee paid.
    let rows = e.pm.state.store().transactions().await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].kind, TxKind::Execute);
    assert_eq!(
        (rows[0].wallet, rows[0].nonce),
        (account.address, Some(execution.nonce))
    );
    let paid = record.fee.expect("a fee");
    assert!(
        estimated >= paid && estimated <= paid + paid / 2,
        "the quote {estimated} is off the fee paid {paid}"
    );
    assert_eq!(
        tracked(&e, &executed.result()["tracking_id"]).await,
        json!({"transaction_hash": hex(hash), "status": "accepted"})
    );

    // The same execute again: the first hash, nothing sent.
    let again = execute(&e, transaction, sponsored()).await;
    assert_eq!(again.result(), executed.result());
    // Deployed now: a deploy_and_invoke builds as an invoke.
    let transaction = json!({
        "type": "deploy_and_invoke",
        "deployment": account.deployment(),
        "invoke": {"user_address": hex(account.address), "calls": [transfer(recipient, 1)]},
    });
    let built = build(&e, transaction, sponsored()).await;
    assert_eq!(built.result()["type"], "invoke", "{}", built.0);
    assert!(built.result().get("deployment").is_none());
    assert_eq!(e.pm.state.store().transactions().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_alone_is_quoted_sent_once_and_tracked() {
    let e = env().await;
    let account = NewAccount::new(&e);
    let transaction = json!({"type": "deploy", "deployment": account.deployment()});
    let built = build(&e, transaction.clone(), sponsored()).await;
    let result = built.result();
    assert_eq!(result["type"], "deploy");
    assert_eq!(result["deployment"], account.deployment());
    assert!(result.get("typed_data").is_none());
    let estimated = amount(&result["fee"]["estimated_fee_in_strk"]);
    let suggested = amount(&result["fee"]["suggested_max_fee_in_strk"]);
    assert!(estimated > 0 && estimated < suggested, "{result}");

    let executed = execute(&e, transaction.clone(), sponsored()).await;
    let hash = felt(&executed.result()["transaction_hash"]);
    assert_eq!(
        felt(&executed.result()["tracking_id"]),
        chipi_paymaster::tracking_id(account.address, None)
    );
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    let record = e.settled(&hex(hash)).await;
    assert_eq!(class_at(&e, account.address).await, Some(account.class));
    assert_eq!(record.kind, TxKind::Deploy);
    let paid = record.fee.expect("a fee");
    assert!(
        estimated >= paid && estimated <= paid + paid / 2,
        "the quote {estimated} is off the fee paid {paid}"
    );
    assert_eq!(
        tracked(&e, &executed.result()["tracking_id"]).await["status"],
        "accepted"
    );

    // Again: the first hash; a build of a deployed address is refused (158).
    let again = execute(&e, transaction.clone(), sponsored()).await;
    assert_eq!(again.result(), executed.result());
    assert_eq!(build(&e, transaction, sponsored()).await.code(), 158);
    // The devnet's own wallet was deployed by someone else: nothing to deploy (158).
    let other = json!({"type": "deploy", "deployment": {
        "address": hex(e.w.address),
        "class_hash": hex(account.class),
        "salt": hex(e.w.owner_public_key),
        "calldata": [hex(e.w.owner_public_key)],
        "version": 1,
    }});
    let refused = execute(&e, other, sponsored()).await;
    assert_eq!(refused.code(), 158);
    assert!(
        refused.0["error"]["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("is deployed at this address already")),
        "{}",
        refused.0
    );
    assert_eq!(e.pm.state.store().transactions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn deployment_data_is_checked_before_anything_is_sent() {
    let e = env().await;
    let account = NewAccount::new(&e);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut deployment = account.deployment();
        change(&mut deployment);
        json!({"type": "deploy", "deployment": deployment})
    };
    let cases: [(&str, Value, i64); 5] = [
        (
            "another address",
            with(&|d| d["address"] = json!(hex(account.address + Felt::ONE))),
            158,
        ),
        (
            "other calldata",
            with(&|d| d["calldata"] = json!([hex(account.owner), "0x1"])),
            158,
        ),
        ("version 2", with(&|d| d["version"] = json!(2)), 158),
        ("sigdata", with(&|d| d["sigdata"] = json!(["0x1"])), 158),
        (
            // The predeployed accounts' class: not one of `account_classes`.
            "a class not served",
            {
                let class = class_at(&e, e.w.devnet.accounts()[0].address)
                    .await
                    .unwrap();
                let address = wallet_address(account.owner, class);
                with(&|d| {
                    d["class_hash"] = json!(hex(class));
                    d["address"] = json!(hex(address));
                })
            },
            155,
        ),
    ];
    for (case, transaction, code) in cases {
        let built = build(&e, transaction.clone(), sponsored()).await;
        assert_eq!(built.code(), code, "{case}: {}", built.0);
        let executed = execute(&e, transaction, sponsored()).await;
        assert_eq!(executed.code(), code, "{case}: {}", executed.0);
    }
    // deploy_and_invoke whose calls are another account's.
    let transaction = json!({
        "type": "deploy_and_invoke",
        "deployment": account.deployment(),
        "invoke": {"user_address": e.wallet(), "calls": [transfer(Felt::ONE, 1)]},
    });
    assert_eq!(build(&e, transaction, sponsored()).await.code(), 158);
    // A deployment alone has nothing to sign, so nothing to pay with: -32602.
    let strk = hex(chipi_devnet::STRK_ADDRESS);
    let paid = json!({"version": "0x1", "fee_mode": {"mode": "default", "gas_token": strk}});
    let transaction = json!({"type": "deploy", "deployment": account.deployment()});
    assert_eq!(build(&e, transaction, paid).await.code(), -32602);
    // An empty sigdata is no sigdata.
    let transaction = with(&|d| d["sigdata"] = json!([]));
    assert_eq!(
        build(&e, transaction, sponsored()).await.result()["type"],
        "deploy"
    );
    assert!(e.pm.state.store().transactions().await.unwrap().is_empty());
    assert_eq!(class_at(&e, account.address).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_policy_limits_deployments_like_any_sponsored_transaction() {
    let options = Options::default().policy(|policy| {
        policy.limits = vec![Limit {
            scope: Scope::App,
            window: Window::Day,
            max_transactions: Some(1),
            max_fee_fri: None,
        }];
    });
    let e = env_with(options).await;
    let first = NewAccount::new(&e);
    let transaction = json!({"type": "deploy", "deployment": first.deployment()});
    let executed = execute(&e, transaction, sponsored()).await;
    let hash = felt(&executed.result()["transaction_hash"]);
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    e.settled(&hex(hash)).await;

    // The app's one transaction of the day is spent: refused, 163 with the code.
    let second = NewAccount::new(&e);
    let transaction = json!({"type": "deploy", "deployment": second.deployment()});
    let built = build(&e, transaction.clone(), sponsored()).await;
    assert_eq!(built.code(), 163, "{}", built.0);
    assert_eq!(built.data_code(), "RATE_LIMITED");
    let refused = execute(&e, transaction, sponsored()).await;
    assert_eq!(refused.code(), 163, "{}", refused.0);
    assert_eq!(refused.data_code(), "RATE_LIMITED");
    assert_eq!(
        refused.0["error"]["data"]["limit"],
        "app.transactions_per_day"
    );
    let transaction = json!({
        "type": "deploy_and_invoke",
        "deployment": second.deployment(),
        "invoke": {"user_address": hex(second.address), "calls": [transfer(Felt::ONE, 1)]},
    });
    assert_eq!(
        build(&e, transaction, sponsored()).await.data_code(),
        "RATE_LIMITED"
    );
    assert_eq!(class_at(&e, second.address).await, None);
    let sent: Vec<_> =
        e.pm.state
            .store()
            .transactions()
            .await
            .unwrap()
            .into_iter()
            .filter(|row| row.hash.is_some())
            .collect();
    assert_eq!(sent.len(), 1, "{sent:#?}");
}

#[tokio::test]
async fn a_class_the_app_does_not_sponsor_is_155() {
    let e = env_with(Options::default().policy(|policy| {
        policy.account_classes = Some(vec![Felt::from(0xc1a55_u32)]);
    }))
    .await;
    let account = NewAccount::new(&e);
    let transaction = json!({"type": "deploy", "deployment": account.deployment()});
    let built = build(&e, transaction, sponsored()).await;
    assert_eq!(built.code(), 155, "{}", built.0);
    assert_eq!(built.data_code(), "WALLET_NOT_SPONSORED");
}

fn tipped() -> Options {
    Options::default().configure(|config| {
        config.snip29.tips = TIPS;
        config.snip29.max_tip = MAX_TIP;
    })
}

fn with_tip(mut parameters: Value, tip: Value) -> Value {
    parameters["fee_mode"]["tip"] = tip;
    parameters
}

fn invoke(e: &Env, calls: Value) -> Value {
    json!({"type": "invoke", "invoke": {"user_address": e.wallet(), "calls": calls}})
}

/// Builds `calls` by the test wallet with `parameters`, signs as the owner, executes;
/// the build's result and the sent transaction's hash.
async fn run(e: &Env, calls: Value, parameters: Value) -> (Value, Felt) {
    let built = build(e, invoke(e, calls), parameters.clone()).await;
    let result = built.result().clone();
    let (execution, _) = OutsideExecution::from_typed_data(&result["typed_data"]).unwrap();
    let signature: Vec<String> =
        e.w.owner_sign_outside(&execution)
            .into_iter()
            .map(hex)
            .collect();
    let transaction = json!({"type": "invoke", "invoke": {"user_address": e.wallet(),
        "typed_data": result["typed_data"], "signature": signature}});
    let executed = execute(e, transaction, parameters).await;
    (result, felt(&executed.result()["transaction_hash"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_tip_is_quoted_sent_and_paid_by_the_sponsor() {
    let e = env_with(tipped()).await;
    let calls = json!([transfer(Felt::from(0x71_u8), 3)]);
    let plain = build(&e, invoke(&e, calls.clone()), sponsored()).await;
    let plain = amount(&plain.result()["fee"]["estimated_fee_in_strk"]);
    let slow = build(
        &e,
        invoke(&e, calls.clone()),
        with_tip(sponsored(), json!("slow")),
    )
    .await;
    assert_eq!(
        amount(&slow.result()["fee"]["estimated_fee_in_strk"]),
        plain
    );

    let parameters = with_tip(sponsored(), json!("fast"));
    let wallet_before = e.balance(e.w.address).await;
    let (built, hash) = run(&e, calls, parameters.clone()).await;
    assert_eq!(built["parameters"], parameters);
    // The quote grew by the tip on every L2 gas unit of it (more than the overhead).
    let estimated = amount(&built["fee"]["estimated_fee_in_strk"]);
    let grown = estimated - plain;
    let fast = u128::from(TIPS.fast);
    assert_eq!(grown % fast, 0, "{estimated} - {plain}");
    assert!(grown / fast > u128::from(RELAY_OVERHEAD_L2_GAS), "{grown}");
    // Sent with that tip; the sponsor paid it, within the quote.
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    let (_, tip) = relayer_transaction(&e, hash).await;
    assert_eq!(tip, TIPS.fast);
    let record = e.settled(&hex(hash)).await;
    let paid = record.fee.expect("a fee");
    assert!(paid <= estimated, "paid {paid} > quoted {estimated}");
    assert!(paid > plain, "the tip was paid: {paid} <= {plain}");
    assert_eq!(e.balance(e.w.address).await, wallet_before - 3);

    // A custom tip up to the maximum is served; above it, -32602 on build and execute.
    let custom = with_tip(sponsored(), json!({"custom": hex(Felt::from(MAX_TIP))}));
    let calls = json!([transfer(Felt::from(0x72_u8), 1)]);
    assert!(build(&e, invoke(&e, calls.clone()), custom).await.result()["typed_data"].is_object());
    let above = with_tip(sponsored(), json!({"custom": hex(Felt::from(MAX_TIP + 1))}));
    let refused = build(&e, invoke(&e, calls), above.clone()).await;
    assert_eq!(refused.code(), -32602, "{}", refused.0);
    assert!(refused.0["error"]["data"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("maximum")));
    let transaction = json!({"type": "deploy", "deployment": NewAccount::new(&e).deployment()});
    assert_eq!(execute(&e, transaction, above).await.code(), -32602);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_default_mode_the_fee_transfer_covers_the_tip() {
    let e = env_with(tipped()).await;
    let strk = hex(chipi_devnet::STRK_ADDRESS);
    let paid_mode = json!({"version": "0x1", "fee_mode": {"mode": "default", "gas_token": strk}});
    let calls = json!([transfer(Felt::from(0x73_u8), 2)]);
    let untipped = build(&e, invoke(&e, calls.clone()), paid_mode.clone()).await;
    let untipped = amount(&untipped.result()["fee"]["suggested_max_fee_in_gas_token"]);

    let wallet_before = e.balance(e.w.address).await;
    let (built, hash) = run(&e, calls, with_tip(paid_mode, json!("fast"))).await;
    let transferred = amount(&built["fee"]["suggested_max_fee_in_gas_token"]);
    assert!(
        transferred > untipped + u128::from(TIPS.fast) * u128::from(RELAY_OVERHEAD_L2_GAS),
        "{transferred} vs {untipped}"
    );
    e.w.devnet.wait_for_success(hash).await.expect("lands");
    let (_, tip) = relayer_transaction(&e, hash).await;
    assert_eq!(tip, TIPS.fast);
    let record = e.settled(&hex(hash)).await;
    // The user paid the transfer it signed; it covers the fee with its tip.
    assert_eq!(
        e.balance(e.w.address).await,
        wallet_before - 2 - transferred
    );
    let paid = record.fee.expect("a fee");
    assert!(
        paid <= transferred,
        "paid {paid} > transferred {transferred}"
    );
}
