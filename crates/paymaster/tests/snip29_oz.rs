//! SNIP-29 for "any SNIP-9 v2 account whose class the app sponsors" (issue 15): a wallet
//! of `Snip9Account` (OpenZeppelin's account with the SRC9 component, not our session
//! account) is relayed for once its class is in `account_classes`, and refused with 155
//! while it is not. Over real HTTP at `POST /`, on an embedded devnet.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chipi_contract_tests::paymaster::{Options, API_KEY};
use chipi_contract_tests::{deploy_snip9_account, random_key, selector, STRK};
use chipi_core::{public_key_of, sign_hash, Felt, OutsideExecution};
use common::{env_with, Env};
use serde_json::{json, Value};
use starknet_rust::core::types::TransactionReceipt;

/// `Options` whose app sponsors the session account and, with `oz`, `Snip9Account` too.
fn options(oz: bool) -> Options {
    Options::default().configure(move |config| {
        if oz {
            config
                .account_classes
                .push(chipi_contracts::snip9_account().class_hash);
        }
    })
}

async fn rpc(e: &Env, method: &str, params: Value) -> Value {
    e.http
        .post(format!("{}/", e.pm.url))
        .header("x-paymaster-api-key", API_KEY)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .expect("service answers")
        .json()
        .await
        .expect("JSON")
}

fn build_params(wallet: Felt, recipient: Felt, amount: u128) -> Value {
    json!({
        "transaction": {"type": "invoke", "invoke": {
            "user_address": format!("{wallet:#x}"),
            "calls": [{
                "to": format!("{:#x}", chipi_devnet::STRK_ADDRESS),
                "selector": format!("{:#x}", selector("transfer")),
                "calldata": [format!("{recipient:#x}"), format!("{amount:#x}"), "0x0"],
            }],
        }},
        "parameters": {"version": "0x1", "fee_mode": {"mode": "sponsored"}},
    })
}

/// The owner's `[r, s]` over the typed data's SNIP-12 hash for `wallet`, as any
/// single-key wallet signs it.
fn sign(key: &Felt, wallet: Felt, typed_data: &Value) -> Vec<String> {
    let (execution, chain) = OutsideExecution::from_typed_data(typed_data).expect("typed data");
    let (r, s) = sign_hash(key, execution.message_hash(chain, wallet)).expect("signs");
    vec![format!("{r:#x}"), format!("{s:#x}")]
}

fn execute_params(wallet: Felt, typed_data: &Value, signature: Vec<String>) -> Value {
    json!({
        "transaction": {"type": "invoke", "invoke": {
            "user_address": format!("{wallet:#x}"),
            "typed_data": typed_data,
            "signature": signature,
        }},
        "parameters": {"version": "0x1", "fee_mode": {"mode": "sponsored"}},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oz_like_snip9_account_of_a_sponsored_class_is_relayed_for_and_pays_nothing() {
    let e = env_with(options(true)).await;
    let key = random_key();
    let wallet = deploy_snip9_account(&e.w.devnet, public_key_of(&key).unwrap(), 10 * STRK).await;
    let recipient = Felt::from(0x0a_5e1_u64);
    let amount = 12_345_u128;

    let built = rpc(
        &e,
        "paymaster_buildTransaction",
        build_params(wallet, recipient, amount),
    )
    .await;
    let typed_data = built["result"]["typed_data"].clone();
    assert!(typed_data.is_object(), "{built}");

    let relayer = e.w.devnet.accounts()[3].address;
    let (before, relayer_before) = (e.balance(wallet).await, e.balance(relayer).await);
    let executed = rpc(
        &e,
        "paymaster_executeTransaction",
        execute_params(wallet, &typed_data, sign(&key, wallet, &typed_data)),
    )
    .await;
    let hash = executed["result"]["transaction_hash"]
        .as_str()
        .unwrap_or_else(|| panic!("not executed: {executed}"));
    let receipt =
        e.w.devnet
            .wait_for_success(chipi_core::parse_felt_strict(hash).unwrap())
            .await
            .expect("lands");
    e.settled(hash).await;
    // The transfer is on chain and the wallet paid nothing else: the relayer paid the fee.
    assert_eq!(e.balance(recipient).await, amount);
    assert_eq!(e.balance(wallet).await, before - amount);
    let TransactionReceipt::Invoke(receipt) = receipt.receipt else {
        panic!("not an invoke: {receipt:?}");
    };
    let fee = u128::try_from(receipt.actual_fee.amount).unwrap();
    assert!(fee > 0);
    assert_eq!(e.balance(relayer).await, relayer_before - fee);
}

#[tokio::test]
async fn another_keys_signature_is_153_and_nothing_is_sent() {
    let e = env_with(options(true)).await;
    let key = random_key();
    let wallet = deploy_snip9_account(&e.w.devnet, public_key_of(&key).unwrap(), STRK).await;
    let built = rpc(
        &e,
        "paymaster_buildTransaction",
        build_params(wallet, Felt::from(0x0a_5e3_u64), 1),
    )
    .await;
    let typed_data = built["result"]["typed_data"].clone();
    assert!(typed_data.is_object(), "{built}");
    // The wallet refuses it in simulation with OpenZeppelin's 'SRC9: invalid signature'.
    let forged = rpc(
        &e,
        "paymaster_executeTransaction",
        execute_params(
            wallet,
            &typed_data,
            sign(&random_key(), wallet, &typed_data),
        ),
    )
    .await;
    assert_eq!(forged["error"]["code"], 153, "{forged}");
    let rows = e.pm.state.store().transactions().await.unwrap();
    assert!(rows.iter().all(|r| r.hash.is_none()), "{rows:#?}");
}

#[tokio::test]
async fn the_same_account_while_its_class_is_not_sponsored_gets_155() {
    let e = env_with(options(false)).await;
    let key = random_key();
    let wallet = deploy_snip9_account(&e.w.devnet, public_key_of(&key).unwrap(), STRK).await;
    let refused = rpc(
        &e,
        "paymaster_buildTransaction",
        build_params(wallet, Felt::from(0x0a_5e2_u64), 1),
    )
    .await;
    assert_eq!(refused["error"]["code"], 155, "{refused}");
    assert_eq!(refused["error"]["data"]["code"], "WALLET_NOT_SPONSORED");
    assert_eq!(refused["error"]["data"]["limit"], "account_classes");
    assert_eq!(e.pm.state.store().issued_count().await.unwrap(), 0);
}
