//! starknet.js 9.2.1's SNIP-29 client (`js/snip29_accounts.mjs`) against our paymaster
//! for a wallet that is not our session account (issue 15): `Snip9Account`, an
//! OpenZeppelin-like SNIP-9 v2 account signed by starknet.js's own Signer, whose class
//! the app sponsors. Fee estimates in both modes, sponsored and STRK-paid executions
//! with the money checked on chain to the fri, and the SNIP-29 error codes starknet.js
//! surfaces for a bad signature, an unsupported gas token, a payment below the fee and
//! a wallet class the app does not sponsor.
//!
//! Needs Node.js and npm: without them these tests fail, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::paymaster::{LocalPaymaster, Options, API_KEY};
use chipi_contract_tests::{deploy_snip9_account, random_key, snip9_account, TestWallet, STRK};
use chipi_core::{parse_felt_strict, public_key_of, Felt};
use chipi_devnet::{ETH_ADDRESS, STRK_ADDRESS};
use chipi_js_interop::run_node;
use serde_json::{json, Value};
use starknet_rust::core::types::TransactionReceipt;

const AMOUNT: u128 = 1_000_000_000_000_000;
/// Receives the default-mode fee transfers: an address nothing else pays or spends.
const COLLECTOR: Felt = Felt::from_hex_unchecked("0xc011ec7");

/// A devnet with a funded `Snip9Account`, and our service sponsoring its class.
struct Setup {
    w: TestWallet,
    pm: LocalPaymaster,
    key: Felt,
    address: Felt,
}

async fn setup() -> Setup {
    let w = TestWallet::new().await;
    let options = Options::default().configure(|config| {
        config.account_classes.push(snip9_account().class_hash);
        config.snip29.fee_collector = Some(COLLECTOR);
    });
    let pm = LocalPaymaster::start_with(&w.devnet, options)
        .await
        .unwrap();
    let key = random_key();
    let address = deploy_snip9_account(&w.devnet, public_key_of(&key).unwrap(), 10 * STRK).await;
    Setup {
        w,
        pm,
        key,
        address,
    }
}

impl Setup {
    /// Runs the script in `mode` with the common input and `extra`; asserts it finished.
    async fn node(&self, mode: &'static str, extra: Value) -> Value {
        let mut input = json!({
            "rpc_url": self.w.devnet.rpc_url().as_str(),
            "paymaster_url": self.pm.url,
            "api_key": API_KEY,
            "address": format!("{:#x}", self.address),
            "private_key": format!("{:#x}", self.key),
            "strk": format!("{STRK_ADDRESS:#x}"),
            "recipient": format!("{:#x}", Felt::from(0x5e_0a11_u64)),
            "amount": AMOUNT.to_string(),
        });
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        // Node runs on a blocking thread; the devnet and the service keep serving here.
        let out =
            tokio::task::spawn_blocking(move || run_node("snip29_accounts.mjs", &[mode], &input))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(out["ok"], true, "{out:#}");
        assert_eq!(out["version"], "9.2.1");
        out
    }

    async fn balance(&self, address: Felt) -> u128 {
        self.w.devnet.strk_balance(address).await.unwrap()
    }

    /// The fee the relayer paid for `hash`, from its receipt, once it succeeded.
    async fn fee_paid(&self, hash: &Value) -> u128 {
        let hash = parse_felt_strict(hash.as_str().expect("a hash")).unwrap();
        let receipt = self.w.devnet.wait_for_success(hash).await.expect("lands");
        let TransactionReceipt::Invoke(receipt) = receipt.receipt else {
            panic!("not an invoke: {receipt:?}");
        };
        u128::try_from(receipt.actual_fee.amount).unwrap()
    }
}

fn amount(value: &Value) -> u128 {
    u128::try_from(parse_felt_strict(value.as_str().expect("a hex amount")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starknet_js_estimates_and_executes_for_an_oz_like_account_in_both_fee_modes() {
    let s = setup().await;
    let recipient = Felt::from(0x5e_0a11_u64);
    let relayer = s.w.devnet.accounts()[3].address;
    let user_before = s.balance(s.address).await;
    let relayer_before = s.balance(relayer).await;

    let out = s.node("flows", json!({})).await;

    // The estimates: a sponsored quote, and a quote in STRK (price 1:1) whose suggested
    // maximum covers the estimate.
    let sponsored = &out["sponsored_fee"];
    let estimated = amount(&sponsored["estimated_fee_in_strk"]);
    assert!(
        estimated > 0 && estimated <= amount(&sponsored["suggested_max_fee_in_strk"]),
        "{sponsored}"
    );
    let quote = &out["default_fee"];
    assert_eq!(amount(&quote["gas_token_price_in_strk"]), 10u128.pow(18));
    assert!(
        amount(&quote["suggested_max_fee_in_gas_token"])
            > amount(&quote["estimated_fee_in_gas_token"]),
        "{quote}"
    );

    // Both transactions landed; the relayer paid exactly their two fees.
    let sponsored_fee = s.fee_paid(&out["sponsored_hash"]).await;
    let default_fee = s.fee_paid(&out["default_hash"]).await;
    assert_eq!(
        s.balance(relayer).await,
        relayer_before - sponsored_fee - default_fee
    );
    // The user paid the two transfers and, in default mode only, the appended fee
    // transfer of exactly the quote starknet.js checked; the collector received it.
    let paid = amount(&out["default_build_fee"]["suggested_max_fee_in_gas_token"]);
    assert!(paid >= default_fee, "paid {paid} < fee {default_fee}");
    assert_eq!(s.balance(recipient).await, 2 * AMOUNT);
    assert_eq!(s.balance(COLLECTOR).await, paid);
    assert_eq!(s.balance(s.address).await, user_before - 2 * AMOUNT - paid);
    assert_eq!(s.pm.state.store().transactions().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starknet_js_surfaces_the_snip29_error_codes_and_nothing_is_sent() {
    let s = setup().await;
    let predeployed = s.w.devnet.accounts()[5].address;
    let before = s.balance(s.address).await;
    let out = s
        .node(
            "errors",
            json!({
                "other_key": format!("{:#x}", random_key()),
                "unsupported_token": format!("{ETH_ADDRESS:#x}"),
                "predeployed": format!("{predeployed:#x}"),
            }),
        )
        .await;
    // Every case with the code it got, compared at once (a failure shows them all).
    let expected = [
        ("bad_signature", 153),
        ("unsupported_token", 151),
        ("amount_too_low", 154),
        ("unpaid", 154),
        ("not_sponsored", 155),
    ];
    let got: Vec<(&str, Value)> = expected
        .iter()
        .map(|(case, _)| (*case, out[case]["code"].clone()))
        .collect();
    let expected: Vec<(&str, Value)> = expected.iter().map(|(c, n)| (*c, json!(n))).collect();
    assert_eq!(got, expected, "{out:#}");
    assert_eq!(out["not_sponsored"]["data"]["code"], "WALLET_NOT_SPONSORED");
    // starknet.js's Account itself refuses a wallet without SNIP-9 before asking us.
    let local = &out["not_snip9_locally"];
    assert!(
        local["code"].is_null() && local["message"].as_str().unwrap().contains("SNIP-9"),
        "{local:#}"
    );
    // Nothing was sent and the user paid nothing.
    let rows = s.pm.state.store().transactions().await.unwrap();
    assert!(rows.iter().all(|r| r.hash.is_none()), "{rows:#?}");
    assert_eq!(s.balance(s.address).await, before);
}
