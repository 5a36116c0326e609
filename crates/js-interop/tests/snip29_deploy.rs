//! starknet.js 9's `executePaymasterTransaction` with `deploymentData` against our
//! paymaster (`js/snip29_deploy.mjs`): a session account that does not exist yet is
//! deployed and runs its first call in one sponsored `deploy_and_invoke` transaction,
//! its typed data signed by starknet.js with the new owner key. Checked from Rust: the
//! class at the address, the transfer on chain, nothing paid by the new account beyond
//! its transfer, one record.
//!
//! Needs Node.js and npm: without them this test fails, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::paymaster::{LocalPaymaster, API_KEY};
use chipi_contract_tests::{random_key, STRK};
use chipi_core::{parse_felt_strict, public_key_of, wallet_address, Felt};
use chipi_devnet::{Devnet, STRK_ADDRESS};
use chipi_js_interop::run_node;
use serde_json::json;
use starknet_rust::core::types::{BlockId, BlockTag};
use starknet_rust::providers::Provider;

const AMOUNT: u128 = 1_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starknet_js_deploys_a_new_session_account_and_runs_its_first_call() {
    let devnet = Devnet::start().await.unwrap();
    let pm = LocalPaymaster::start(&devnet).await.unwrap();
    let key = random_key();
    let owner = public_key_of(&key).unwrap();
    let class = devnet.session_class_hash();
    let address = wallet_address(owner, class);
    // Funded before it exists, as a user receiving tokens at a counterfactual address.
    devnet
        .transfer_strk(&devnet.account(0), address, STRK)
        .await
        .unwrap();
    let recipient = Felt::from(0x5e_d3_u64);
    let input = json!({
        "rpc_url": devnet.rpc_url().as_str(),
        "paymaster_url": format!("{}/", pm.url),
        "api_key": API_KEY,
        "address": format!("{address:#x}"),
        "private_key": format!("{key:#x}"),
        "class_hash": format!("{class:#x}"),
        "salt": format!("{owner:#x}"),
        "calldata": [format!("{owner:#x}")],
        "strk": format!("{STRK_ADDRESS:#x}"),
        "recipient": format!("{recipient:#x}"),
        "amount": AMOUNT.to_string(),
    });
    let out = tokio::task::spawn_blocking(move || run_node("snip29_deploy.mjs", &[], &input))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out["ok"], true, "{out:#}");
    assert!(
        out["fee"]["suggested_max_fee_in_strk"].is_string(),
        "{out:#}"
    );
    let hash = parse_felt_strict(out["transaction_hash"].as_str().unwrap()).unwrap();
    devnet.wait_for_success(hash).await.expect("lands");

    let deployed = devnet
        .provider()
        .get_class_hash_at(BlockId::Tag(BlockTag::Latest), address)
        .await
        .unwrap();
    assert_eq!(deployed, class);
    assert_eq!(devnet.strk_balance(recipient).await.unwrap(), AMOUNT);
    assert_eq!(
        devnet.strk_balance(address).await.unwrap(),
        STRK - AMOUNT,
        "the new account paid its transfer and no fee"
    );
    let rows = pm.state.store().transactions().await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].hash, Some(hash));
}
