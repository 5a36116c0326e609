//! The gas targets of the session account, measured on the embedded devnet: L2 gas, L1
//! data gas and fee of one STRK transfer made each way. Asserts the targets of
//! `docs/gas.md`; prints the table (Markdown) with
//! `cargo test -p chipi-contract-tests --test gas -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_devnet::STRK_ADDRESS;
use starknet_rust::core::types::{Felt, TransactionReceipt, TransactionReceiptWithBlockInfo};

const RECIPIENT: Felt = Felt::from_hex_unchecked("0x9999");

struct Row {
    name: &'static str,
    l2_gas: u64,
    l1_data_gas: u64,
    fee: Felt,
}

fn row(name: &'static str, receipt: TransactionReceiptWithBlockInfo) -> Row {
    let TransactionReceipt::Invoke(receipt) = receipt.receipt else {
        panic!("not an invoke receipt");
    };
    Row {
        name,
        l2_gas: receipt.execution_resources.l2_gas,
        l1_data_gas: receipt.execution_resources.l1_data_gas,
        fee: receipt.actual_fee.amount,
    }
}

#[tokio::test]
async fn session_transactions_stay_within_the_gas_targets() {
    let w = TestWallet::new().await;
    let transfer = || vec![strk_transfer(RECIPIENT, 1)];
    let whitelist: Vec<Felt> = [
        "transfer",
        "approve",
        "increase_allowance",
        "increaseAllowance",
        "transfer_from",
        "balance_of",
        "allowance",
        "total_supply",
    ]
    .iter()
    .map(|name| selector(name))
    .collect();
    let open = w.new_session(1000, &[]).await;
    let listed = w.new_session(1000, &whitelist).await;
    let limited = w.new_session(1000, &[]).await;
    w.owner_invoke(vec![w.policy_call(
        limited.public_key,
        STRK_ADDRESS,
        (1_000_000, 0),
        (1_000_000_000, 0),
        86_400,
    )])
    .await
    .unwrap();

    // One warm-up of each so that every row measures the steady state.
    let mut rows = Vec::new();
    for round in 0..2 {
        let measured = vec![
            row(
                "owner, outside execution (reference)",
                w.owner_outside(transfer()).await.unwrap(),
            ),
            row(
                "session, outside execution, empty whitelist",
                w.session_outside(&open, transfer()).await.unwrap(),
            ),
            row(
                "session, outside execution, 8-selector whitelist",
                w.session_outside(&listed, transfer()).await.unwrap(),
            ),
            row(
                "session, outside execution, STRK spending policy",
                w.session_outside(&limited, transfer()).await.unwrap(),
            ),
            row(
                "session, direct invoke (wallet pays)",
                w.session_invoke(&open, transfer()).await.unwrap(),
            ),
            row(
                "owner, direct invoke",
                w.owner_invoke(transfer()).await.unwrap(),
            ),
            row(
                "devnet predeployed account, direct invoke (baseline)",
                w.send(&w.relayer(3), transfer()).await.unwrap(),
            ),
        ];
        if round == 1 {
            rows = measured;
        }
    }
    let reference = rows[0].l2_gas as f64;
    println!("| one STRK transfer | L2 gas | x owner OE | L1 data gas | fee (fri) |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.3} | {} | {} |",
            r.name,
            r.l2_gas,
            r.l2_gas as f64 / reference,
            r.l1_data_gas,
            r.fee.to_biguint()
        );
    }
    let ratio = |i: usize| rows[i].l2_gas as f64 / reference;
    println!();
    println!(
        "targets: session OE <= 1.10x owner OE (empty {:.3}, 8 selectors {:.3}); with policy <= 1.30x ({:.3})",
        ratio(1),
        ratio(2),
        ratio(3)
    );
    // Gas is deterministic on the devnet: these are exact, not timing, assertions.
    assert!(
        ratio(1) <= 1.10,
        "session OE, empty whitelist: {:.3}x",
        ratio(1)
    );
    assert!(
        ratio(2) <= 1.10,
        "session OE, 8 selectors: {:.3}x",
        ratio(2)
    );
    assert!(
        ratio(3) <= 1.30,
        "session OE with a policy: {:.3}x",
        ratio(3)
    );
}
