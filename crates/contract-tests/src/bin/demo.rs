//! The session lifecycle on the embedded devnet: deploy a wallet, register a scoped
//! session, spend with it gaslessly and directly, hit its limits, revoke it.
//!
//! `cargo run -p chipi-contract-tests --bin demo`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use chipi_contract_tests::*;
use chipi_devnet::STRK_ADDRESS;
use starknet_rust::core::types::Felt;

const RECIPIENT: Felt = Felt::from_hex_unchecked("0xC0FFEE");

fn step(text: &str) {
    println!("\n▸ {text}");
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    step("starting starknet-devnet in-process and declaring the session account");
    let w = TestWallet::new().await;
    println!("  rpc        {}", w.devnet.rpc_url());
    println!("  class hash {:#x}", w.devnet.session_class_hash());
    println!(
        "  wallet     {:#x} (owner key {:#x}), funded with 100 STRK",
        w.address, w.owner_public_key
    );

    step("owner registers a 1-hour session: 3 calls, only `transfer`, at most 5 STRK per call");
    let session = Session::random(w.now().await + 3600);
    w.owner_outside(vec![
        w.register_call(&session, 3, &[selectors::TRANSFER]),
        w.policy_call(
            session.public_key,
            STRK_ADDRESS,
            (5 * STRK, 0),
            (8 * STRK, 0),
            3600,
        ),
    ])
    .await
    .unwrap();
    let (valid_until, max_calls, used, allowed) = w.session_data(session.public_key).await;
    println!("  session {:#x}: valid_until {valid_until}, max_calls {max_calls}, used {used}, {allowed} selector(s)", session.public_key);

    step("session sends 2 STRK gaslessly (SNIP-9 outside execution, a relayer pays)");
    let receipt = w
        .session_outside(&session, vec![strk_transfer(RECIPIENT, 2 * STRK)])
        .await
        .unwrap();
    println!(
        "  tx {:#x}; recipient balance {} STRK",
        receipt.receipt.transaction_hash(),
        w.balance(RECIPIENT).await / STRK
    );

    step("session sends 3 STRK in a direct transaction (the wallet pays its fee)");
    let receipt = w
        .session_invoke(&session, vec![strk_transfer(RECIPIENT, 3 * STRK)])
        .await
        .unwrap();
    println!(
        "  tx {:#x}; recipient balance {} STRK",
        receipt.receipt.transaction_hash(),
        w.balance(RECIPIENT).await / STRK
    );

    step("the wallet refuses what the session may not do");
    let attempts = [
        (
            "6 STRK in one call",
            vec![strk_transfer(RECIPIENT, 6 * STRK)],
        ),
        (
            "4 STRK more this hour",
            vec![strk_transfer(RECIPIENT, 4 * STRK)],
        ),
        (
            "approve (not whitelisted)",
            vec![call(
                STRK_ADDRESS,
                "approve",
                vec![RECIPIENT, Felt::ONE, Felt::ZERO],
            )],
        ),
        (
            "register another session",
            vec![w.register_call(&Session::random(u64::MAX), 9, &[])],
        ),
    ];
    for (what, calls) in attempts {
        let error = w.session_outside(&session, calls).await.unwrap_err();
        println!("  {what:<28} refused: {}", short_reason(&error.0));
    }

    step("owner revokes the session");
    w.owner_outside(vec![
        w.self_call("revoke_session_key", vec![session.public_key])
    ])
    .await
    .unwrap();
    let error = w
        .session_outside(&session, vec![strk_transfer(RECIPIENT, STRK)])
        .await
        .unwrap_err();
    println!("  after revoke: {}", short_reason(&error.0));
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
}

/// The contract's message inside a node error.
fn short_reason(text: &str) -> String {
    for message in [
        "Policy: per-call limit exceeded",
        "Policy: window limit exceeded",
        "Session: entrypoint not allowed",
        "Session: entrypoint blocked",
        "Session: revoked",
    ] {
        if TxFailure(text.to_string()).mentions(message) {
            return message.to_string();
        }
    }
    text.chars().take(120).collect()
}
