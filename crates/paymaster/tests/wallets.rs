//! API.md section 6: sponsored wallet deployment at the standard counterfactual address,
//! one wallet per (app, user), and the checks that keep a creation honest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chipi_contract_tests::paymaster::{user_token, OTHER_API_KEY, OTHER_SECRET_KEY};
use chipi_contract_tests::random_key;
use chipi_core::{public_key_of, wallet_address, Felt, OutsideExecution};
use serde_json::{json, Value};
use starknet_rust::core::types::{BlockId, BlockTag};
use starknet_rust::providers::Provider;

struct Owner {
    key: Felt,
    public_key: Felt,
    address: Felt,
}

fn owner(class: Felt) -> Owner {
    let key = random_key();
    let public_key = public_key_of(&key).unwrap();
    Owner {
        key,
        public_key,
        address: wallet_address(public_key, class),
    }
}

impl Owner {
    fn prepare_body(&self, class: Option<Felt>) -> Value {
        let mut body = json!({
            "publicKey": format!("{:#x}", self.address),
            "starkKeyPubAX": format!("{:#x}", self.public_key),
            "walletType": "CHIPI",
            "chain": "STARKNET",
        });
        if let Some(class) = class {
            body["classHash"] = json!(format!("{class:#x}"));
        }
        body
    }

    fn create_body(&self, user: &str, class: Felt, typed_data: &Value) -> Value {
        let (execution, chain) = OutsideExecution::from_typed_data(typed_data).unwrap();
        let (r, s) =
            chipi_core::sign_hash(&self.key, execution.message_hash(chain, self.address)).unwrap();
        json!({
            "externalUserId": user,
            "publicKey": format!("{:#x}", self.address),
            "walletType": "CHIPI",
            "userSignature": { "r": format!("{r:#x}"), "s": format!("{s:#x}"), "recovery": 0 },
            "typedData": typed_data,
            "encryptedPrivateKey": "opaque-ciphertext-from-the-client",
            "deploymentData": {
                "class_hash": format!("{class:#x}"),
                "salt": format!("{:#x}", self.public_key),
                "unique": "0x0",
                "calldata": [format!("{:#x}", self.public_key)],
            },
            "encryptedPrivateKeyBackup": "ignored",
        })
    }
}

async fn create(e: &common::Env, owner: &Owner, user: &str, token: &str) -> common::Answer {
    let class = e.w.devnet.session_class_hash();
    let prepared = e
        .post_as(
            "/v1/chipi-wallets/prepare-creation",
            &owner.prepare_body(Some(class)),
            chipi_contract_tests::paymaster::API_KEY,
            Some(token),
        )
        .await;
    assert_eq!(prepared.status, 200, "{:?}", prepared.body);
    let body = owner.create_body(user, class, &prepared.body["typedData"]);
    e.post_as(
        "/v1/chipi-wallets",
        &body,
        chipi_contract_tests::paymaster::API_KEY,
        Some(token),
    )
    .await
}

#[tokio::test]
async fn a_wallet_is_deployed_once_per_user_at_its_counterfactual_address() {
    let e = common::env().await;
    let class = e.w.devnet.session_class_hash();
    let alice = owner(class);
    let token = user_token("alice");

    let answer = create(&e, &alice, "alice", &token).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let record = answer.body.clone();
    let address = format!("{:#x}", alice.address);
    assert_eq!(record["publicKey"], json!(address));
    assert_eq!(record["walletPublicKey"], json!(address));
    assert_eq!(record["wallet"]["publicKey"], json!(address));
    assert_eq!(record["normalizedPublicKey"].as_str().unwrap().len(), 66);
    assert_eq!(
        record["encryptedPrivateKey"],
        "opaque-ciphertext-from-the-client"
    );
    assert_eq!(record["externalUserId"], "alice");
    assert_eq!(record["walletType"], "CHIPI");
    let tx_hash = record["txHash"].as_str().unwrap().to_string();
    e.settled(&tx_hash).await;

    // On chain, with the class asked for; the wallet paid nothing (it has nothing).
    let deployed =
        e.w.devnet
            .provider()
            .get_class_hash_at(BlockId::Tag(BlockTag::Latest), alice.address)
            .await
            .unwrap();
    assert_eq!(deployed, class);
    let by_user = e
        .get("/v1/chipi-wallets/by-user?externalUserId=alice")
        .await;
    // The token is alice's: `get` sends the default user's token, so ask with alice's.
    assert_eq!(by_user.status, 401, "another user's record is not readable");
    let by_user = e
        .http
        .get(format!(
            "{}/v1/chipi-wallets/by-user?externalUserId=alice",
            e.pm.url
        ))
        .header("x-api-key", chipi_contract_tests::paymaster::API_KEY)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_user.status(), 200);
    let by_user: Value = by_user.json().await.unwrap();
    assert_eq!(by_user["id"], record["id"]);
    assert_eq!(by_user["isDeployed"], true);

    // Asking again for the deployed address deploys nothing and returns the same record.
    let rows = e.pm.state.store().transactions().await.unwrap().len();
    let relayer_nonce = e.relayer_nonce(3).await;
    let again = create(&e, &alice, "alice", &token).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["id"], record["id"]);
    // A second key for the same user: 409, nothing deployed.
    let other_key = owner(class);
    let conflict = create(&e, &other_key, "alice", &token).await;
    assert_eq!(conflict.status, 409, "{:?}", conflict.body);
    assert_eq!(conflict.code(), "WALLET_ALREADY_EXISTS");
    assert_eq!(e.pm.state.store().transactions().await.unwrap().len(), rows);
    assert_eq!(e.relayer_nonce(3).await, relayer_nonce);

    // The app's secret key acts for any user; another app sees nothing of this one's.
    let unknown = e
        .post_as(
            "/v1/chipi-wallets/by-user",
            &json!({}),
            chipi_contract_tests::paymaster::API_KEY,
            Some(&token),
        )
        .await;
    assert_eq!(unknown.status, 405);
    let other_app = e
        .http
        .get(format!(
            "{}/v1/chipi-wallets/by-user?externalUserId=alice",
            e.pm.url
        ))
        .header("x-api-key", OTHER_API_KEY)
        .bearer_auth(OTHER_SECRET_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(other_app.status(), 404);
    let body: Value = other_app.json().await.unwrap();
    assert_eq!(body["statusCode"], 404);
}

#[tokio::test]
async fn a_creation_that_does_not_add_up_is_refused_and_deploys_nothing() {
    let e = common::env().await;
    let class = e.w.devnet.session_class_hash();
    let bob = owner(class);
    let token = user_token("bob");
    let relayer_nonce = e.relayer_nonce(3).await;
    let post = |path: &'static str, body: Value| {
        let token = token.clone();
        let e = &e;
        async move {
            e.post_as(
                path,
                &body,
                chipi_contract_tests::paymaster::API_KEY,
                Some(&token),
            )
            .await
        }
    };

    // prepare-creation: our class by default, a foreign class named, a foreign address.
    let answer = post("/v1/chipi-wallets/prepare-creation", bob.prepare_body(None)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.body["accountClassHash"],
        json!(format!("{class:#x}"))
    );
    let typed_data = answer.body["typedData"].clone();
    let served = format!("{class:#x}");
    let answer = post(
        "/v1/chipi-wallets/prepare-creation",
        bob.prepare_body(Some(Felt::from(0x1234u32))),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(answer.body["message"].as_str().unwrap().contains(&served));
    let foreign = owner(Felt::from(0x5678u32));
    let answer = post(
        "/v1/chipi-wallets/prepare-creation",
        foreign.prepare_body(None),
    )
    .await;
    assert_eq!(answer.status, 400);
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.contains("classHash") && message.contains(&served),
        "{message}"
    );

    // create: each piece that does not add up.
    let good = bob.create_body("bob", class, &typed_data);
    let mut bad_salt = good.clone();
    bad_salt["deploymentData"]["salt"] = json!("0x1");
    let mut unique = good.clone();
    unique["deploymentData"]["unique"] = json!("0x1");
    let mut bad_signature = good.clone();
    bad_signature["userSignature"] = json!({"r": "0x1", "s": "0x2"});
    let mut forged = typed_data.clone();
    forged["message"]["Nonce"] = json!("0x42");
    let not_issued = bob.create_body("bob", class, &forged);
    let mut other_user = good.clone();
    other_user["externalUserId"] = json!("mallory");
    for (name, body, status, code) in [
        ("salt", bad_salt, 400, "INVALID_INPUT"),
        ("unique", unique, 400, "INVALID_INPUT"),
        ("signature", bad_signature, 400, "INVALID_SIGNATURE"),
        (
            "nonce not issued",
            not_issued,
            400,
            "OUTSIDE_EXECUTION_REJECTED",
        ),
        (
            "another user than the token's",
            other_user,
            401,
            "AUTHENTICATION_FAILED",
        ),
    ] {
        let answer = post("/v1/chipi-wallets", body).await;
        assert_eq!(answer.status, status, "{name}: {:?}", answer.body);
        assert_eq!(answer.code(), code, "{name}");
    }
    assert_eq!(e.relayer_nonce(3).await, relayer_nonce, "nothing deployed");
    assert!(e.pm.state.store().transactions().await.unwrap().is_empty());

    // A wallet somebody else already deployed: recorded, not deployed again.
    let carol = owner(class);
    e.w.devnet
        .deploy_session_wallet(carol.public_key, 0)
        .await
        .unwrap();
    let relayer_nonce = e.relayer_nonce(3).await;
    let answer = create(&e, &carol, "carol", &user_token("carol")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["isDeployed"], true);
    assert_eq!(e.relayer_nonce(3).await, relayer_nonce);
}
