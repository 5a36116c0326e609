//! Chipi's real JS server SDK (`@chipi-stack/backend` 14.4.0, `ChipiServerSDK`) in Node
//! against our paymaster service on the embedded devnet, over real HTTP
//! (`js/chipi_e2e.mjs`): wallet creation with a user token and with the app secret key,
//! creation refusals, an owner transaction, a session made, registered, used, revoked and
//! then refused, transaction statuses and wallet records. Everything that matters is
//! checked from Rust: balances and session state on chain, and the service's records.
//!
//! Needs Node.js and npm: without them this test fails, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chipi_contract_tests::paymaster::{user_token, LocalPaymaster, API_KEY, SECRET_KEY, USER};
use chipi_contract_tests::STRK;
use chipi_core::{decrypt_private_key, parse_felt_strict, wallet_address, Felt};
use chipi_devnet::{Devnet, STRK_ADDRESS};
use chipi_js_interop::run_node;
use chipi_paymaster::{felt_text, TxRecord, TxStatus};
use serde_json::{json, Value};
use starknet_rust::core::types::{BlockId, BlockTag};
use starknet_rust::providers::Provider;

/// The second user, whose wallet is created with the app secret key.
const USER2: &str = "user-2-secret-key";
/// A user whose creation omits `classHash` (refused, nothing deployed).
const USER3: &str = "user-3-no-class-hash";
/// The externalUserId of a creation made with `USER`'s token (refused).
const OTHER_USER: &str = "someone-else";
/// A user with no wallet.
const UNKNOWN_USER: &str = "nobody-here";
const PIN: &str = "482916";
/// What the Rust side sends to the first wallet.
const FUND: u128 = 10 * STRK;
/// The owner transfer, the session transfer, and the one refused after the revoke.
const OWNER_AMOUNT: u128 = 1_250_000_000_000_000_000;
const SESSION_AMOUNT: u128 = 500_000_000_000_000_000;
const REFUSED_AMOUNT: u128 = 100_000_000_000_000_000;

fn felt(value: &Value) -> Felt {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    parse_felt_strict(text).unwrap_or_else(|| panic!("not a felt: {text:?}"))
}

/// Waits until every record with a hash is final (the follower saw its receipt).
async fn followed(pm: &LocalPaymaster) -> Vec<TxRecord> {
    for _ in 0..400 {
        let rows = pm.state.store().transactions().await.unwrap();
        let open = rows.iter().any(|r| {
            r.hash.is_some() && !matches!(r.status(), TxStatus::Accepted | TxStatus::Reverted)
        });
        if !open {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "transactions not followed to their end: {:#?}",
        pm.state.store().transactions().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chipi_js_sdk_against_our_paymaster_end_to_end() {
    let devnet = Devnet::start().await.expect("devnet starts");
    let pm = LocalPaymaster::start(&devnet).await.unwrap();
    let class_hash = devnet.session_class_hash();
    let relayer = devnet.accounts()[3].address;
    let relayer_before = devnet.strk_balance(relayer).await.unwrap();
    let recipients = [
        Felt::from_hex_unchecked("0xa11ce0001"),
        Felt::from_hex_unchecked("0xb0b0002"),
        Felt::from_hex_unchecked("0xc4a70003"),
    ];

    let input = json!({
        "rpc_url": devnet.rpc_url().as_str(),
        "service_url": pm.url,
        "api_key": API_KEY,
        "secret_key": SECRET_KEY,
        "user": USER,
        "user_token": user_token(USER),
        "user2": USER2,
        "user3": USER3,
        "other_user": OTHER_USER,
        "unknown_user": UNKNOWN_USER,
        "class_hash": format!("{class_hash:#x}"),
        "strk": format!("{STRK_ADDRESS:#x}"),
        "pin": PIN,
        "fund": FUND.to_string(),
        "session_duration": 3600,
        "recipients": {
            "owner": format!("{:#x}", recipients[0]),
            "session": format!("{:#x}", recipients[1]),
            "refused": format!("{:#x}", recipients[2]),
        },
        "amounts": {
            "owner": OWNER_AMOUNT.to_string(),
            "session": SESSION_AMOUNT.to_string(),
            "refused": REFUSED_AMOUNT.to_string(),
        },
    });
    // Node runs on a blocking thread; the devnet and the service keep serving here.
    let node = tokio::task::spawn_blocking(move || run_node("chipi_e2e.mjs", &[], &input));

    // Fund the user's wallet from a predeployed account once the service has its record.
    let mut funded = None;
    for _ in 0..1200 {
        if let Some(row) = pm
            .state
            .store()
            .wallet_of_user(API_KEY, USER)
            .await
            .unwrap()
        {
            let address = row.address;
            devnet
                .transfer_strk(&devnet.account(0), address, FUND)
                .await
                .unwrap();
            funded = Some(address);
            break;
        }
        if node.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = match node.await.unwrap() {
        Ok(output) => output,
        Err(error) => panic!("the JS SDK run failed: {error}"),
    };
    let pretty = serde_json::to_string_pretty(&output).unwrap();
    eprintln!("JS SDK run: {pretty}");
    assert_eq!(output["versions"]["backend"], "14.4.0", "{pretty}");
    assert_eq!(output["ok"], true, "a step failed: {pretty}");
    let wallet = funded.expect("the user's wallet record appeared and was funded");
    let r = &output["results"];

    // 1. Wallets.
    let created = &r["create_wallet_user_token"];
    assert_eq!(felt(&created["publicKey"]), wallet, "{created}");
    assert_eq!(felt(&created["wallet"]["publicKey"]), wallet, "{created}");
    assert_eq!(created["externalUserId"], USER);
    assert_eq!(created["walletType"], "CHIPI");
    let created2 = &r["create_wallet_secret_key"];
    assert_eq!(created2["externalUserId"], USER2);
    let wallet2 = felt(&created2["publicKey"]);
    for status in ["deploy_status_user", "deploy_status_user2"] {
        assert_eq!(r[status]["status"], "ACCEPTED", "{status}: {}", r[status]);
        assert!(r[status]["blockNumber"].is_u64(), "{status}: {}", r[status]);
    }
    let provider = devnet.provider();
    for (address, user) in [(wallet, USER), (wallet2, USER2)] {
        // Our class, at the standard counterfactual address of the stored owner key, and
        // the stored key (the JS SDK's compatible format) decrypts in Rust to that owner.
        let on_chain = provider
            .get_class_hash_at(BlockId::Tag(BlockTag::Latest), address)
            .await
            .unwrap();
        assert_eq!(on_chain, class_hash, "{user}");
        let row = pm
            .state
            .store()
            .wallet_of_user(API_KEY, user)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.address, address);
        assert_eq!(row.class_hash, class_hash);
        assert!(row.is_deployed, "{user}: {row:?}");
        let owner = row.owner_public_key;
        assert_eq!(wallet_address(owner, class_hash), address, "{user}");
        let key = decrypt_private_key(&row.encrypted_private_key, PIN, owner)
            .unwrap_or_else(|e| panic!("{user}: the JS SDK's key does not decrypt: {e}"));
        assert_eq!(chipi_core::public_key_of(&key.to_felt()).unwrap(), owner);
    }
    // Refused creations deployed and stored nothing.
    let refused_creation = |step: &str| {
        let error = &r[step]["error"];
        assert_eq!(
            error["code"], "WALLET_CREATION_FAILED",
            "{step}: {}",
            r[step]
        );
        error["message"].as_str().unwrap().to_string()
    };
    let message = refused_creation("create_wallet_without_class_hash");
    assert!(
        message.contains("classHash") && message.contains(&format!("{class_hash:#x}")),
        "{message}"
    );
    let message = refused_creation("create_wallet_other_user");
    assert!(message.contains("externalUserId"), "{message}");
    let message = refused_creation("create_wallet_again");
    assert!(message.contains("already"), "{message}");
    for user in [USER3, OTHER_USER] {
        let row = pm
            .state
            .store()
            .wallet_of_user(API_KEY, user)
            .await
            .unwrap();
        assert!(row.is_none(), "{user}: {row:?}");
    }

    // 2-3. Transactions: statuses as the SDK read them.
    for status in [
        "owner_execute_status",
        "add_session_status",
        "session_execute_status",
        "revoke_session_status",
    ] {
        assert_eq!(r[status]["status"], "ACCEPTED", "{status}: {}", r[status]);
    }
    let unauthenticated = &r["add_session_without_bearer"]["error"];
    assert_eq!(
        unauthenticated["name"], "ChipiApiError",
        "{unauthenticated}"
    );
    assert_eq!(unauthenticated["status"], 401, "{unauthenticated}");
    let after_revoke = &r["session_execute_after_revoke"]["error"];
    assert_eq!(after_revoke["name"], "ChipiApiError", "{after_revoke}");
    assert_eq!(after_revoke["code"], "SESSION_REVOKED", "{after_revoke}");
    assert_eq!(after_revoke["status"], 400, "{after_revoke}");

    // The session on chain: revoked, no longer active.
    let session_key = r["session"]["publicKey"].as_str().unwrap();
    let state = chipi_sdk::read_session_state(&provider, &felt_text(wallet), session_key)
        .await
        .unwrap();
    assert!(state.revoked && !state.is_active(), "{state:?}");

    // Balances on chain: recipients got exactly what was sent, the refused transfer
    // moved nothing, and the wallet paid no gas.
    assert_eq!(
        devnet.strk_balance(recipients[0]).await.unwrap(),
        OWNER_AMOUNT
    );
    assert_eq!(
        devnet.strk_balance(recipients[1]).await.unwrap(),
        SESSION_AMOUNT
    );
    assert_eq!(devnet.strk_balance(recipients[2]).await.unwrap(), 0);
    assert_eq!(
        devnet.strk_balance(wallet).await.unwrap(),
        FUND - OWNER_AMOUNT - SESSION_AMOUNT
    );
    assert_eq!(devnet.strk_balance(wallet2).await.unwrap(), 0);

    // 4. Records through the SDK.
    let record = &r["get_wallet_user"];
    assert_eq!(felt(&record["publicKey"]), wallet, "{record}");
    assert_eq!(record["externalUserId"], USER);
    assert_eq!(record["isDeployed"], true, "{record}");
    assert_eq!(
        record["encryptedPrivateKey"],
        created["encryptedPrivateKey"]
    );
    assert_eq!(felt(&r["get_wallet_user2"]["publicKey"]), wallet2);
    assert_eq!(r["get_wallet_unknown"], Value::Null);

    // The service's records: every sponsored transaction, followed, with its fee; the
    // relayer paid exactly those fees.
    let rows = followed(&pm).await;
    let hash = felt;
    let wallet_text = felt_text(wallet);
    let expected: BTreeMap<Felt, (&str, &str)> = [
        (hash(&created["txHash"]), ("deploy", USER)),
        (hash(&created2["txHash"]), ("deploy", USER2)),
        (hash(&r["owner_execute"]), ("execute", USER)),
        (hash(&r["add_session"]), ("execute", USER)),
        // Sent with the app secret key: the user is the wallet.
        (
            hash(&r["session_execute"]),
            ("execute", wallet_text.as_str()),
        ),
        (hash(&r["revoke_session"]), ("execute", USER)),
    ]
    .into_iter()
    .collect();
    assert_eq!(expected.len(), 6, "distinct hashes");
    let mut fees = 0u128;
    let mut sent = 0;
    for row in &rows {
        assert_eq!(row.app, API_KEY, "{row:?}");
        let Some(tx) = &row.hash else { continue };
        sent += 1;
        let (kind, user) = expected
            .get(tx)
            .unwrap_or_else(|| panic!("a transaction the SDK did not ask for: {row:?}"));
        assert_eq!(row.kind.as_str(), *kind, "{row:?}");
        assert_eq!(row.user_id, *user, "{row:?}");
        assert_eq!(row.status(), TxStatus::Accepted, "{row:?}");
        let fee = row.fee.expect("fee recorded");
        let max_fee = row.max_fee.expect("fee bound recorded");
        assert!(fee > 0 && fee <= max_fee, "{row:?}");
        assert!(row.block_number.is_some(), "{row:?}");
        fees += fee;
    }
    assert_eq!(sent, expected.len(), "{rows:#?}");
    let refused: Vec<_> = rows.iter().filter(|r| r.hash.is_none()).collect();
    assert_eq!(refused.len(), 1, "{rows:#?}");
    assert_eq!(refused[0].status(), TxStatus::Refused, "{:?}", refused[0]);
    assert_eq!(refused[0].code.as_deref(), Some("SESSION_REVOKED"));
    assert_eq!(refused[0].wallet, wallet);
    assert_eq!(refused[0].user_id, USER);
    assert_eq!(
        devnet.strk_balance(relayer).await.unwrap(),
        relayer_before - fees,
        "the relayer paid exactly the recorded fees"
    );

    pm.stop().await;
}
