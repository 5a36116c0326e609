//! starknet.js 9's own SNIP-29 client against our paymaster, over real HTTP on the
//! embedded devnet (`js/snip29.mjs`): `PaymasterRpc` pointed at our URL, and
//! `Account.executePaymasterTransaction` for a wallet of our session account, signed by
//! its owner key: sponsored, then paying its fee in STRK (`default` mode), then sponsored
//! again signed by a session key (a starknet.js `Signer` giving the session form). What
//! starknet.js checks (the typed data, the fee object, the final fee transfer) it checks
//! against our answers; what matters is checked here from Rust: the transfers on chain,
//! the fee paid by the wallet only in default mode, one record each; and a call the app's
//! policy denies reaches starknet.js as the JSON-RPC error with the sponsorship code.
//!
//! Needs Node.js and npm: without them this test fails, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::paymaster::{LocalPaymaster, Options, API_KEY};
use chipi_contract_tests::{selector, TestWallet};
use chipi_core::{parse_felt_strict, Felt};
use chipi_devnet::STRK_ADDRESS;
use chipi_js_interop::run_node;
use chipi_paymaster::{CallRule, TxStatus};
use serde_json::json;

const AMOUNT: u128 = 1_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starknet_js_executes_a_sponsored_transaction_through_our_snip29_api() {
    let w = TestWallet::new().await;
    let options = Options::default().policy(|policy| {
        policy.deny = vec![CallRule {
            contract: None,
            selector: Some(selector("approve")),
        }];
    });
    let pm = LocalPaymaster::start_with(&w.devnet, options)
        .await
        .unwrap();
    let recipient = Felt::from(0x5e_1234_u64);
    // A session the owner registered: starknet.js signs one transfer with it.
    let session = w.new_session(5, &[selector("transfer")]).await;
    let before = w.devnet.strk_balance(w.address).await.unwrap();
    let input = json!({
        "rpc_url": w.devnet.rpc_url().as_str(),
        "paymaster_url": pm.url,
        "api_key": API_KEY,
        "address": format!("{:#x}", w.address),
        "private_key": format!("{:#x}", w.owner_key),
        "strk": format!("{STRK_ADDRESS:#x}"),
        "recipient": format!("{recipient:#x}"),
        "amount": AMOUNT.to_string(),
        "session": {
            "private_key": format!("{:#x}", session.private_key),
            "public_key": format!("{:#x}", session.public_key),
            "valid_until": session.valid_until,
        },
    });
    // Node runs on a blocking thread; the devnet and the service keep serving here.
    let out = tokio::task::spawn_blocking(move || run_node("snip29.mjs", &[], &input))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out["ok"], true, "{out:#}");
    assert_eq!(out["version"], "9.2.1");
    assert_eq!(out["available"], true);
    assert_eq!(
        out["tokens"][0]["token_address"],
        format!("{STRK_ADDRESS:#x}")
    );
    assert!(
        out["fee"]["suggested_max_fee_in_strk"].as_str().is_some(),
        "{out:#}"
    );

    // On chain: both transfers, from the wallet, which paid no fee for the sponsored one
    // and the quoted fee, in STRK, for the other.
    let hash = parse_felt_strict(out["transaction_hash"].as_str().unwrap()).unwrap();
    let paid_hash = parse_felt_strict(out["default_hash"].as_str().unwrap()).unwrap();
    w.devnet.wait_for_success(hash).await.expect("lands");
    w.devnet.wait_for_success(paid_hash).await.expect("lands");
    let fee_paid = u128::from_str_radix(
        out["default_fee"]["suggested_max_fee_in_gas_token"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert!(fee_paid > 0);
    let session_hash = parse_felt_strict(out["session_hash"].as_str().unwrap()).unwrap();
    w.devnet
        .wait_for_success(session_hash)
        .await
        .expect("lands");
    // The session signature passed through: the wallet counted one session call.
    assert_eq!(w.calls_used(session.public_key).await, 1);
    assert_eq!(w.devnet.strk_balance(recipient).await.unwrap(), 3 * AMOUNT);
    assert_eq!(
        w.devnet.strk_balance(w.address).await.unwrap(),
        before - 3 * AMOUNT - fee_paid
    );
    // Recorded once each, as the relayer's transactions.
    let rows = pm.state.store().transactions().await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(rows[0].hash, Some(hash));
    assert_eq!(rows[1].hash, Some(paid_hash));
    assert_eq!(rows[2].hash, Some(session_hash));
    assert!(rows
        .iter()
        .all(|r| r.tracking_id.is_some() && r.status != TxStatus::Refused));

    // The denied call: starknet.js surfaced our JSON-RPC error, code 163 with the
    // sponsorship code; nothing was recorded for it.
    let refused = &out["refused"];
    assert_eq!(refused["code"], 163, "{refused:#}");
    assert_eq!(refused["data"]["code"], "CALL_NOT_SPONSORED", "{refused:#}");
    assert_eq!(pm.state.store().transactions().await.unwrap().len(), 3);
}
