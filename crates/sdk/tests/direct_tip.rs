//! A direct session transaction sends `tip = 0`: the wallet refuses tipped session
//! transactions (the wallet pays), while starknet-rust would take the latest block's
//! median tip, so on a network where others tip every session transaction would fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::Felt;
use starknet_rust_accounts::Account;
use starknet_rust_core::types::{BlockId, BlockTag, InvokeTransaction, Transaction};
use starknet_rust_providers::Provider;

mod common;

const PIN: &str = "session-pin";

#[tokio::test]
async fn a_direct_session_transaction_sends_no_tip_after_tipped_blocks() {
    let w = TestWallet::new().await;
    let now = w.now().await;
    let sdk = common::direct_sdk(&w, now);
    let (session, _) = common::registered_session(&w, &sdk, PIN, 5, &[]).await;

    // Others tip: the latest block's median tip is not zero.
    let tipper = w.devnet.account(2);
    let tipped = tipper
        .execute_v3(vec![strk_transfer(Felt::from(0x99u8), 1)])
        .tip(1_000_000)
        .send()
        .await
        .unwrap();
    w.devnet
        .wait_for_success(tipped.transaction_hash)
        .await
        .unwrap();
    let provider = w.devnet.provider();
    let latest = provider
        .get_block_with_txs(BlockId::Tag(BlockTag::Latest), None)
        .await
        .unwrap();
    assert!(latest.median_tip() > 0, "the setup needs a tipped block");

    let wallet = common::session_wallet(&w);
    let calls = [common::strk_transfer_call("0x77", 5)];
    let sent = common::run_session(&sdk, &wallet, &session, PIN, &calls)
        .await
        .unwrap();
    sdk.wait_for_transaction(&sent).await.unwrap();
    assert_eq!(w.balance(Felt::from(0x77u8)).await, 5);
    let transaction = provider
        .get_transaction_by_hash(sent.transaction_hash, None)
        .await
        .unwrap();
    let Transaction::Invoke(InvokeTransaction::V3(transaction)) = transaction else {
        panic!("not an INVOKE v3: {transaction:?}");
    };
    assert_eq!(transaction.tip, 0);
}
