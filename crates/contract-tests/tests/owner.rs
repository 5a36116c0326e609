//! The owner path, management guards, key rotation, SRC-5, is_valid_signature, atomicity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::{
    accept_ownership_hash, owner_signature, public_key_of, session_signature, VALIDATED,
};
use chipi_devnet::STRK_ADDRESS;
use starknet_rust::core::types::Felt;

const RECIPIENT: Felt = Felt::from_hex_unchecked("0x4321");

#[tokio::test]
async fn the_owner_invokes_directly_and_a_bad_owner_signature_is_rejected() {
    let w = TestWallet::new().await;
    w.owner_invoke(vec![strk_transfer(RECIPIENT, 10)])
        .await
        .unwrap();
    assert_eq!(w.balance(RECIPIENT).await, 10);
    let stranger = w.account_with_key(random_key());
    assert_fails_with(
        w.send(&stranger, vec![strk_transfer(RECIPIENT, 10)]).await,
        "Account: invalid signature",
    );
    assert_eq!(w.balance(RECIPIENT).await, 10);
    // The owner's outside execution works too.
    w.owner_outside(vec![strk_transfer(RECIPIENT, 5)])
        .await
        .unwrap();
    assert_eq!(w.balance(RECIPIENT).await, 15);
}

#[tokio::test]
async fn management_entrypoints_refuse_any_caller_but_the_account() {
    let w = TestWallet::new().await;
    let session = Session::random(w.now().await + 3600);
    let outsider = w.relayer(2);
    let calls = vec![
        w.register_call(&session, 5, &[]),
        w.self_call("revoke_session_key", vec![session.public_key]),
        w.policy_call(session.public_key, STRK_ADDRESS, (1, 0), (2, 0), 60),
        w.self_call(
            "remove_spending_policy",
            vec![session.public_key, STRK_ADDRESS],
        ),
        w.self_call("set_public_key", vec![Felt::ONE, Felt::ZERO]),
    ];
    for call in calls {
        assert_fails_with(w.send(&outsider, vec![call]).await, "Account: unauthorized");
    }
    // __validate__ and __execute__ accept only the protocol. Starknet itself already
    // refuses a contract call to them ('Invalid argument'); the account's own check
    // ('Account: invalid caller') stands behind that.
    for name in ["__validate__", "__execute__"] {
        let failure = w
            .send(&outsider, vec![w.self_call(name, vec![Felt::ZERO])])
            .await
            .unwrap_err();
        assert!(
            failure.mentions("Account: invalid caller") || failure.mentions("Invalid argument"),
            "{name}: {failure}"
        );
    }
    // A session cannot reach them either (blocked before anything else).
    let live = w.new_session(10, &[]).await;
    for path in PATHS {
        assert_fails_with(
            w.session_exec(path, &live, vec![w.register_call(&session, 5, &[])])
                .await,
            "Session: entrypoint blocked",
        );
    }
    // The owner can, directly or gaslessly.
    w.owner_outside(vec![w.register_call(&session, 5, &[])])
        .await
        .unwrap();
    assert_eq!(
        w.session_data(session.public_key).await,
        (session.valid_until, 5, 0, 0)
    );
}

#[tokio::test]
async fn owner_key_rotation_needs_the_new_keys_signature() {
    let w = TestWallet::new().await;
    let new_key = random_key();
    let new_public = public_key_of(&new_key).unwrap();
    let message = accept_ownership_hash(w.address, w.owner_public_key);
    let wrong = owner_signature(&random_key(), message).unwrap();
    let mut rotate = vec![new_public];
    rotate.push(Felt::TWO);
    rotate.extend(wrong);
    assert_fails_with(
        w.owner_invoke(vec![w.self_call("set_public_key", rotate)])
            .await,
        "Account: invalid new key sig",
    );
    assert_fails_with(
        w.owner_invoke(vec![
            w.self_call("set_public_key", vec![new_public, Felt::ZERO])
        ])
        .await,
        "Account: invalid new key sig",
    );
    assert_fails_with(
        w.owner_invoke(vec![
            w.self_call("set_public_key", vec![Felt::ZERO, Felt::ZERO])
        ])
        .await,
        "Account: zero public key",
    );
    let good = owner_signature(&new_key, message).unwrap();
    let mut rotate = vec![new_public, Felt::TWO];
    rotate.extend(good);
    w.owner_invoke(vec![w.self_call("set_public_key", rotate)])
        .await
        .unwrap();
    assert_eq!(
        w.view("get_public_key", vec![]).await.unwrap(),
        vec![new_public]
    );
    assert_fails_with(
        w.owner_invoke(vec![strk_transfer(RECIPIENT, 1)]).await,
        "Account: invalid signature",
    );
    w.send(
        &w.account_with_key(new_key),
        vec![strk_transfer(RECIPIENT, 1)],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn src5_answers_for_the_registered_interface_ids() {
    let w = TestWallet::new().await;
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../../vectors/interop.json")).unwrap();
    for id in [
        "src5_interface_id",
        "src6_interface_id",
        "src9_v2_interface_id",
        "session_key_manager_interface_id",
    ] {
        let id = Felt::from_hex(vectors["constants"][id].as_str().unwrap()).unwrap();
        assert_eq!(
            w.view("supports_interface", vec![id]).await.unwrap(),
            vec![Felt::ONE]
        );
    }
    for other in [Felt::ZERO, Felt::ONE, selector("transfer")] {
        assert_eq!(
            w.view("supports_interface", vec![other]).await.unwrap(),
            vec![Felt::ZERO]
        );
    }
}

fn is_valid_calldata(hash: Felt, signature: &[Felt]) -> Vec<Felt> {
    let mut calldata = vec![hash, Felt::from(signature.len())];
    calldata.extend_from_slice(signature);
    calldata
}

#[tokio::test]
async fn is_valid_signature_for_owner_and_session_without_writing() {
    let w = TestWallet::new().await;
    let hash = Felt::from(0xC0FFEEu32);
    let owner = owner_signature(&w.owner_key, hash).unwrap();
    let check = |sig: Vec<Felt>| {
        let w = &w;
        async move {
            w.view("is_valid_signature", is_valid_calldata(hash, &sig))
                .await
                .unwrap()[0]
        }
    };
    assert_eq!(check(owner.clone()).await, VALIDATED);
    assert_eq!(
        check(owner_signature(&random_key(), hash).unwrap()).await,
        Felt::ZERO
    );

    // Sessions answer only when opted in (see the next test).
    let opt_in = [selector("is_valid_signature"), selector("transfer")];
    let session = w.new_session(1, &opt_in).await;
    let session_sig = session_signature(&session.private_key, hash, session.valid_until).unwrap();
    assert_eq!(check(session_sig.clone()).await, VALIDATED);
    // Wrong lengths.
    for len in [0usize, 1, 3, 5] {
        let sig: Vec<Felt> = session_sig
            .iter()
            .chain(owner.iter())
            .copied()
            .cycle()
            .take(len)
            .collect();
        assert_eq!(check(sig).await, Felt::ZERO, "length {len}");
    }
    // Unregistered.
    let stranger = Session::random(session.valid_until);
    assert_eq!(
        check(session_signature(&stranger.private_key, hash, stranger.valid_until).unwrap()).await,
        Felt::ZERO
    );
    // Writes nothing: checked in a real transaction, calls_used stays 0.
    let relayer = w.relayer(1);
    w.send(
        &relayer,
        vec![w.self_call("is_valid_signature", is_valid_calldata(hash, &session_sig))],
    )
    .await
    .unwrap();
    assert_eq!(w.calls_used(session.public_key).await, 0);
    // Exhausted.
    w.session_exec(Path::Outside, &session, vec![strk_transfer(RECIPIENT, 1)])
        .await
        .unwrap();
    assert_eq!(check(session_sig.clone()).await, Felt::ZERO);
    // Expired.
    let short = w.new_session(5, &opt_in).await;
    let short_sig = session_signature(&short.private_key, hash, short.valid_until).unwrap();
    assert_eq!(check(short_sig.clone()).await, VALIDATED);
    w.devnet.set_time(short.valid_until + 1).await;
    assert_eq!(check(short_sig).await, Felt::ZERO);
}

#[tokio::test]
async fn a_failing_second_call_undoes_the_first() {
    let w = TestWallet::new().await;
    let too_much = strk_transfer(RECIPIENT, 10_000 * STRK);
    assert!(w
        .owner_invoke(vec![strk_transfer(RECIPIENT, 1), too_much.clone()])
        .await
        .is_err());
    assert!(w
        .owner_outside(vec![strk_transfer(RECIPIENT, 1), too_much.clone()])
        .await
        .is_err());
    let session = w.new_session(10, &[]).await;
    for path in PATHS {
        assert!(w
            .session_exec(
                path,
                &session,
                vec![strk_transfer(RECIPIENT, 1), too_much.clone()]
            )
            .await
            .is_err());
    }
    assert_eq!(w.balance(RECIPIENT).await, 0);
}

#[tokio::test]
async fn management_input_is_checked() {
    let w = TestWallet::new().await;
    let now = w.now().await;
    let session = Session::random(now + 3600);
    let owner = |call| w.owner_invoke(vec![call]);
    let zero = Session {
        public_key: Felt::ZERO,
        ..session
    };
    assert_fails_with(
        owner(w.register_call(&zero, 5, &[])).await,
        "Session: zero key",
    );
    let past = session.with_valid_until(now.saturating_sub(1));
    assert_fails_with(
        owner(w.register_call(&past, 5, &[])).await,
        "Session: valid_until in past",
    );
    assert_fails_with(
        owner(w.register_call(&session, 0, &[])).await,
        "Session: zero max_calls",
    );
    let many: Vec<Felt> = (1..=33u32).map(Felt::from).collect();
    assert_fails_with(
        owner(w.register_call(&session, 5, &many)).await,
        "Session: too many entrypoints",
    );
    // The bound itself is fine.
    owner(w.register_call(&session, 5, &many[..32]))
        .await
        .unwrap();
    assert_eq!(w.session_data(session.public_key).await.3, 32);

    let absent = Session::random(now + 3600);
    assert_fails_with(
        owner(w.self_call("revoke_session_key", vec![absent.public_key])).await,
        "Session: not registered",
    );
    owner(w.self_call("revoke_session_key", vec![session.public_key]))
        .await
        .unwrap();
    assert_fails_with(
        owner(w.self_call("revoke_session_key", vec![session.public_key])).await,
        "Session: revoked",
    );
}

#[tokio::test]
async fn a_wallet_deploys_itself_with_a_deploy_account_transaction() {
    use starknet_rust::accounts::{AccountFactory, OpenZeppelinAccountFactory};
    use starknet_rust::signers::{LocalWallet, SigningKey};

    let devnet = chipi_devnet::Devnet::start().await.unwrap();
    let owner_key = random_key();
    let owner_public = public_key_of(&owner_key).unwrap();
    let factory = OpenZeppelinAccountFactory::new(
        devnet.session_class_hash(),
        devnet.chain_id(),
        LocalWallet::from_signing_key(SigningKey::from_secret_scalar(owner_key)),
        devnet.provider(),
    )
    .await
    .unwrap();
    let deployment = factory.deploy_v3(owner_public);
    let address = deployment.address();
    devnet
        .transfer_strk(&devnet.account(0), address, 10 * STRK)
        .await
        .unwrap();
    let result = deployment.send().await.unwrap();
    devnet
        .wait_for_success(result.transaction_hash)
        .await
        .unwrap();
    assert_eq!(result.contract_address, address);
    // The same owner key, the same counterfactual address as a UDC deployment.
    let w = TestWallet {
        devnet,
        owner_key,
        owner_public_key: owner_public,
        address,
    };
    assert_eq!(
        w.view("get_public_key", vec![]).await.unwrap(),
        vec![owner_public]
    );
    w.owner_invoke(vec![strk_transfer(RECIPIENT, 1)])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_session_signs_arbitrary_hashes_only_when_its_whitelist_names_is_valid_signature() {
    let w = TestWallet::new().await;
    // E.g. an ERC-20 Permit's hash: valid for it would bypass whitelist, policy and budget.
    let hash = Felt::from(0x5045524d4954u64);
    let check = |session: Session| {
        let w = &w;
        async move {
            let sig = session_signature(&session.private_key, hash, session.valid_until).unwrap();
            w.view("is_valid_signature", is_valid_calldata(hash, &sig))
                .await
                .unwrap()[0]
        }
    };
    // A whitelist without it.
    let session = w.new_session(10, &[selector("transfer")]).await;
    assert_eq!(check(session).await, Felt::ZERO, "not opted in");
    // An empty whitelist (every selector allowed for calls) does not grant it.
    w.register(&session, 10, &[]).await;
    assert_eq!(check(session).await, Felt::ZERO, "empty whitelist");
    // Opted in.
    w.register(
        &session,
        10,
        &[selector("transfer"), selector("is_valid_signature")],
    )
    .await;
    assert_eq!(check(session).await, VALIDATED, "opted in");
    // Another key over the same hash is still refused.
    let forged = Session {
        private_key: random_key(),
        ..session
    };
    assert_eq!(check(forged).await, Felt::ZERO, "wrong signer");
    // The whitelist replaced without it: refused again.
    w.register(&session, 10, &[selector("transfer")]).await;
    assert_eq!(check(session).await, Felt::ZERO, "opt-in withdrawn");
    w.register(&session, 10, &[]).await;
    assert_eq!(check(session).await, Felt::ZERO, "opt-in withdrawn, empty");
    // The owner path is unchanged.
    assert_eq!(
        w.view(
            "is_valid_signature",
            is_valid_calldata(hash, &owner_signature(&w.owner_key, hash).unwrap())
        )
        .await
        .unwrap()[0],
        VALIDATED
    );
}
