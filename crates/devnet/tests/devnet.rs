//! The embedded devnet: several at once, the declared class, time control, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_devnet::{Devnet, DevnetOptions, STRK_ADDRESS};
use starknet_rust::core::types::{BlockId, BlockTag, Felt};
use starknet_rust::providers::Provider;

#[tokio::test]
async fn two_devnets_run_side_by_side_with_the_session_class_declared() {
    let (a, b) = tokio::join!(Devnet::start(), Devnet::start());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.rpc_url(), b.rpc_url());
    let expected = chipi_contracts::session_account().class_hash;
    for devnet in [&a, &b] {
        assert_eq!(devnet.session_class_hash(), expected);
        let provider = devnet.provider();
        assert_eq!(provider.chain_id().await.unwrap(), devnet.chain_id());
        assert_eq!(devnet.chain_id(), chipi_core::chain_id::SEPOLIA);
        provider
            .get_class(BlockId::Tag(BlockTag::Latest), expected)
            .await
            .unwrap();
        assert_eq!(devnet.accounts().len(), 10);
        assert!(
            devnet
                .strk_balance(devnet.accounts()[0].address)
                .await
                .unwrap()
                > 0
        );
    }
    a.shutdown();
    // b still serves after a stopped.
    assert!(b.block_timestamp().await.unwrap() > 0);
}

#[tokio::test]
async fn wallets_deploy_at_their_counterfactual_address_and_get_funded() {
    let devnet = Devnet::start().await.unwrap();
    let owner = chipi_core::public_key_of(&Felt::from(77u8)).unwrap();
    let address = devnet.deploy_session_wallet(owner, 5).await.unwrap();
    let expected = starknet_rust::core::utils::get_contract_address(
        owner,
        devnet.session_class_hash(),
        &[owner],
        Felt::ZERO,
    );
    assert_eq!(address, expected);
    assert_eq!(devnet.strk_balance(address).await.unwrap(), 5);
    // Again: same address, funded again, nothing redeployed.
    assert_eq!(
        devnet.deploy_session_wallet(owner, 5).await.unwrap(),
        address
    );
    assert_eq!(devnet.strk_balance(address).await.unwrap(), 10);
    let class = devnet
        .provider()
        .get_class_hash_at(BlockId::Tag(BlockTag::Latest), address)
        .await
        .unwrap();
    assert_eq!(class, devnet.session_class_hash());
    let _ = STRK_ADDRESS;
}

#[tokio::test]
async fn time_moves_forward_and_can_be_set_exactly() {
    let devnet = Devnet::start().await.unwrap();
    let start = devnet.block_timestamp().await.unwrap();
    devnet.increase_time(3600).await;
    assert!(devnet.block_timestamp().await.unwrap() >= start + 3600);
    devnet.set_time(start + 10_000).await;
    assert_eq!(devnet.block_timestamp().await.unwrap(), start + 10_000);
}

#[test]
fn devnet_recompiles_the_sierra_to_the_committed_compiled_class_hash() {
    // Devnet (cairo-lang 2.19) recompiles every declared Sierra class and compares
    // the V2 compiled class hash with the declared one: they must agree.
    let sierra: serde_json::Value =
        serde_json::from_str(chipi_contracts::SESSION_ACCOUNT_SIERRA).unwrap();
    let casm = starknet_devnet_types::compile_sierra_contract_json(sierra).unwrap();
    let recompiled = Felt::from_bytes_be(&casm.compiled_class_hash().to_bytes_be());
    assert_eq!(
        recompiled,
        chipi_contracts::session_account().compiled_class_hash
    );
}

#[tokio::test]
async fn a_chain_kept_in_a_state_file_survives_a_restart() {
    let file = std::env::temp_dir().join(format!("chipi-devnet-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let options = || DevnetOptions {
        state_file: Some(file.clone()),
        ..DevnetOptions::default()
    };
    let devnet = Devnet::start_with(options()).await.unwrap();
    let owner = Felt::from(0x5eedu32);
    let wallet = devnet
        .deploy_session_wallet(owner, 7 * 10u128.pow(17))
        .await
        .unwrap();
    devnet.shutdown();
    assert!(file.exists());

    let devnet = Devnet::start_with(options()).await.unwrap();
    assert_eq!(
        devnet.strk_balance(wallet).await.unwrap(),
        7 * 10u128.pow(17)
    );
    let class = devnet
        .provider()
        .get_class_hash_at(BlockId::Tag(BlockTag::Latest), wallet)
        .await
        .unwrap();
    assert_eq!(class, devnet.session_class_hash());
    devnet.shutdown();
    let _ = std::fs::remove_file(&file);
}
