//! The sponsored transport end to end: the SDK client, the real paymaster service over
//! real HTTP (behind a front that can turn hostile), the embedded devnet. The wallet
//! pays no gas; a hostile paymaster gets no signature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::*;
use chipi_core::{ErrorCode, Felt};
use chipi_sdk::*;
use serde_json::{json, Value};

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use chipi_contract_tests::paymaster::{user_token, LocalPaymaster, API_KEY, USER};
use hostile::{Hostile, Lie};

const OWNER_PIN: &str = "owner-pin";
const SESSION_PIN: &str = "session-pin";

struct Setup {
    w: TestWallet,
    sdk: ChipiSdk,
    service: LocalPaymaster,
    paymaster: Hostile,
    bearer: String,
    wallet: WalletData,
    session: SessionKeyData,
    token: String,
}

async fn setup() -> Setup {
    let w = TestWallet::new().await;
    let service = LocalPaymaster::start(&w.devnet).await.unwrap();
    let paymaster = Hostile::start(&service.url, w.devnet.account(4)).await;
    let sdk = ChipiSdk::builder(w.devnet.rpc_url().as_str())
        .paymaster(&paymaster.url, API_KEY)
        // The devnet mines at once: a receipt missing after seconds is not coming.
        .confirmation_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(sdk.transport(), &Transport::Sponsored);
    let wallet = common::wallet_data(&w, OWNER_PIN);
    let session = sdk
        .sessions()
        .create_session_key(CreateSessionKey::new(SESSION_PIN).duration_seconds(3600))
        .unwrap();
    Setup {
        w,
        sdk,
        service,
        paymaster,
        bearer: user_token(USER),
        wallet,
        session,
        token: format!("{:#x}", chipi_devnet::STRK_ADDRESS),
    }
}

fn transfer(token: &str, to: &str, amount: u64) -> Call {
    Call {
        contract_address: token.into(),
        entrypoint: "transfer".into(),
        calldata: vec![to.into(), amount.to_string(), "0".into()],
    }
}

impl Setup {
    async fn register(&self, max_calls: u32, allowed: &[&str]) {
        let config = SessionConfig {
            session_public_key: self.session.public_key.clone(),
            valid_until: self.session.valid_until,
            max_calls,
            allowed_entrypoints: allowed.iter().map(|s| s.to_string()).collect(),
        };
        let hash = self
            .sdk
            .sessions()
            .add_session_key_to_contract(
                AddSessionKey {
                    encrypt_key: OWNER_PIN,
                    wallet: &self.wallet,
                    session_config: &config,
                },
                Some(self.bearer.as_str()),
            )
            .await
            .unwrap();
        self.sdk.wait_for_transaction(&hash).await.unwrap();
    }

    async fn execute(&self, calls: &[Call]) -> Result<Submitted, SessionError> {
        self.sdk
            .execute_transaction_with_session(
                ExecuteWithSession {
                    encrypt_key: SESSION_PIN,
                    wallet: &self.wallet,
                    session: &self.session,
                    calls,
                },
                Some(self.bearer.as_str()),
            )
            .await
    }

    async fn revoke(&self) -> Result<Submitted, SessionError> {
        self.sdk
            .sessions()
            .revoke_session_key(
                RevokeSessionKey {
                    encrypt_key: OWNER_PIN,
                    wallet: &self.wallet,
                    session_public_key: &self.session.public_key,
                },
                Some(self.bearer.as_str()),
            )
            .await
    }

    async fn data(&self) -> SessionDataResponse {
        self.sdk
            .sessions()
            .get_session_data(GetSessionData {
                wallet_address: &self.wallet.public_key,
                session_public_key: &self.session.public_key,
            })
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_whole_lifecycle_is_gasless_through_the_paymaster() {
    let s = setup().await;
    let wallet_before = s.w.balance(s.w.address).await;

    s.register(5, &["transfer"]).await;
    let data = s.data().await;
    assert!(data.is_active);
    assert_eq!(data.remaining_calls, 5);

    let hash = s.execute(&[transfer(&s.token, "0x77", 250)]).await.unwrap();
    s.sdk.wait_for_transaction(&hash).await.unwrap();
    assert_eq!(s.w.balance(Felt::from(0x77u8)).await, 250);
    assert_eq!(s.data().await.remaining_calls, 4);

    // A spending policy set through the paymaster; an over-limit transfer is refused by
    // the paymaster's simulation with the contract's code, and nothing is consumed.
    let policy = SpendingPolicyConfig {
        session_public_key: s.session.public_key.clone(),
        token: s.token.clone(),
        max_per_call: "100".into(),
        max_per_window: "1000".into(),
        window_seconds: 3600,
    };
    let hash = s
        .sdk
        .sessions()
        .set_spending_policy(
            SetSpendingPolicy {
                encrypt_key: OWNER_PIN,
                wallet: &s.wallet,
                policy: &policy,
            },
            Some(s.bearer.as_str()),
        )
        .await
        .unwrap();
    s.sdk.wait_for_transaction(&hash).await.unwrap();
    let error = s
        .execute(&[transfer(&s.token, "0x77", 101)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::SpendingLimitExceeded, "{error}");
    assert_eq!(s.data().await.remaining_calls, 4);
    // Removed through the paymaster: the same transfer goes through.
    let hash = s
        .sdk
        .sessions()
        .remove_spending_policy(
            RemoveSpendingPolicy {
                encrypt_key: OWNER_PIN,
                wallet: &s.wallet,
                session_public_key: &s.session.public_key,
                token: &s.token,
            },
            Some(s.bearer.as_str()),
        )
        .await
        .unwrap();
    s.sdk.wait_for_transaction(&hash).await.unwrap();
    let hash = s.execute(&[transfer(&s.token, "0x77", 101)]).await.unwrap();
    s.sdk.wait_for_transaction(&hash).await.unwrap();
    assert_eq!(s.w.balance(Felt::from(0x77u8)).await, 351);
    assert_eq!(s.data().await.remaining_calls, 3);

    let hash = s.revoke().await.unwrap();
    s.sdk.wait_for_transaction(&hash).await.unwrap();
    assert!(!s.data().await.is_active);
    let error = s
        .execute(&[transfer(&s.token, "0x77", 1)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::SessionRevoked);

    // The wallet paid for the transfers and nothing else: the relayer paid every fee.
    assert_eq!(s.w.balance(s.w.address).await, wallet_before - 351);
    // The service recorded each transaction it sent, with the fee it paid, and the
    // refusal it simulated.
    let rows = s.service.state.store().transactions().await.unwrap();
    let sent: Vec<_> = rows.iter().filter(|r| r.hash.is_some()).collect();
    assert_eq!(
        sent.len(),
        6,
        "register, execute, policy, removal, execute, revoke"
    );
    assert!(rows
        .iter()
        .any(|r| r.code.as_deref() == Some("SPENDING_LIMIT_EXCEEDED")));
}

#[tokio::test]
async fn typed_data_that_differs_from_the_request_is_never_signed() {
    let s = setup().await;
    s.register(5, &[]).await;
    let before = s.data().await.remaining_calls;
    let executes_before = s.paymaster.executes();
    let balance_before = s.w.balance(s.w.address).await;

    for (name, tamper) in hostile::tampers() {
        s.paymaster.tamper(tamper);
        let error = s
            .execute(&[transfer(&s.token, "0x77", 100)])
            .await
            .unwrap_err();
        assert_eq!(
            error.code(),
            ErrorCode::TypedDataMismatch,
            "{name}: {error}"
        );
        // Owner writes are protected the same way.
        let error = s.revoke().await.unwrap_err();
        assert_eq!(
            error.code(),
            ErrorCode::TypedDataMismatch,
            "{name}: {error}"
        );
    }
    assert_eq!(
        s.paymaster.executes(),
        executes_before,
        "no signature left the SDK for tampered typed data"
    );
    assert_eq!(s.data().await.remaining_calls, before);
    assert_eq!(s.w.balance(s.w.address).await, balance_before);

    // The same requests go through once the paymaster is honest.
    s.paymaster.honest();
    let hash = s.execute(&[transfer(&s.token, "0x77", 100)]).await.unwrap();
    s.sdk.wait_for_transaction(&hash).await.unwrap();
    assert_eq!(s.data().await.remaining_calls, before - 1);
}

#[tokio::test]
async fn auth_and_transport_failures_have_their_codes() {
    let s = setup().await;
    s.register(5, &[]).await;
    let calls = [transfer(&s.token, "0x77", 1)];
    let params = ExecuteWithSession {
        encrypt_key: SESSION_PIN,
        wallet: &s.wallet,
        session: &s.session,
        calls: &calls,
    };

    // No bearer token at all: refused before any request.
    let error = s
        .sdk
        .execute_transaction_with_session(params.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuthenticationFailed);
    // A bad one: the paymaster's 401 comes back as AUTHENTICATION_FAILED.
    let error = s
        .sdk
        .execute_transaction_with_session(params.clone(), Some("not-the-token"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuthenticationFailed);
    assert!(!error.to_string().contains("not-the-token"), "{error}");
    // The configured default token is used when none is passed.
    let with_default = ChipiSdk::builder(s.w.devnet.rpc_url().as_str())
        .paymaster(&s.paymaster.url, API_KEY)
        .bearer_token(&s.bearer)
        .build()
        .unwrap();
    let hash = with_default
        .execute_transaction_with_session(params.clone(), None)
        .await
        .unwrap();
    s.sdk.wait_for_transaction(&hash).await.unwrap();
    // A wrong API key.
    let bad_key = ChipiSdk::builder(s.w.devnet.rpc_url().as_str())
        .paymaster(&s.paymaster.url, "pk_dev_wrongwrongwrongwrongwrongwrongwr")
        .build()
        .unwrap();
    let error = bad_key
        .execute_transaction_with_session(params.clone(), Some(s.bearer.as_str()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuthenticationFailed);
    assert!(error.message().contains("<redacted>"), "{error}");
    assert!(!error.to_string().contains("pk_dev_wrong"), "{error}");
    // A paymaster that is not there.
    let gone = ChipiSdk::builder(s.w.devnet.rpc_url().as_str())
        .paymaster("http://127.0.0.1:9", API_KEY)
        .build()
        .unwrap();
    let error = gone
        .execute_transaction_with_session(params.clone(), Some(s.bearer.as_str()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::NetworkError);
    // Pre-flight still runs first: a wrong PIN never reaches the paymaster.
    let executes = s.paymaster.executes();
    let error = s
        .sdk
        .execute_transaction_with_session(
            ExecuteWithSession {
                encrypt_key: "wrong",
                ..params.clone()
            },
            Some(s.bearer.as_str()),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::SessionDecryptionFailed);
    assert_eq!(s.paymaster.executes(), executes);
}

#[tokio::test]
async fn the_client_reads_the_chain_id_and_switches_to_direct() {
    let s = setup().await;
    assert_eq!(s.sdk.chain_id().await.unwrap(), s.w.devnet.chain_id());
    // Direct transport: the wallet pays its own fee, no paymaster involved.
    let direct = ChipiSdk::builder(s.w.devnet.rpc_url().as_str())
        .transport(Transport::Direct)
        .build()
        .unwrap();
    s.register(2, &[]).await;
    let executes_before = s.paymaster.executes();
    let before = s.w.balance(s.w.address).await;
    let calls = [transfer(&s.token, "0x78", 5)];
    let hash = direct
        .execute_transaction_with_session(
            ExecuteWithSession {
                encrypt_key: SESSION_PIN,
                wallet: &s.wallet,
                session: &s.session,
                calls: &calls,
            },
            None,
        )
        .await
        .unwrap();
    s.sdk.wait_for_transaction(&hash).await.unwrap();
    let after = s.w.balance(s.w.address).await;
    assert!(after < before - 5, "the wallet paid a fee");
    assert_eq!(s.paymaster.executes(), executes_before);
    // Sponsored without a paymaster is a configuration error.
    let error = ChipiSdk::builder(s.w.devnet.rpc_url().as_str())
        .transport(Transport::Sponsored)
        .build()
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidInput);
    let error = ChipiSdk::builder("not a url").build().unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidInput);
}

#[tokio::test]
async fn a_paymaster_that_lies_about_what_it_sent_is_caught_by_the_wait() {
    let s = setup().await;
    s.register(5, &[]).await;
    for lie in [Lie::InventedHash, Lie::OtherTransaction] {
        s.paymaster.lie(lie);
        // The revoke is dropped, and the answer looks like success...
        let sent = s.revoke().await.unwrap();
        assert!(sent.outside_nonce.is_some());
        // ...until the SDK checks the chain.
        let error = s.sdk.wait_for_transaction(&sent).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::PaymasterError, "{lie:?}: {error}");
        assert!(
            s.data().await.is_active,
            "{lie:?}: the session was not revoked"
        );
    }
    // A wait for an honest revoke succeeds and the session is gone.
    s.paymaster.honest();
    let sent = s.revoke().await.unwrap();
    s.sdk.wait_for_transaction(&sent).await.unwrap();
    assert!(!s.data().await.is_active);
}

#[tokio::test]
async fn a_paymaster_answer_past_the_size_bound_is_refused() {
    let s = setup().await;
    s.register(5, &[]).await;
    s.paymaster.lie(Lie::HugeAnswer);
    let error = s
        .execute(&[transfer(&s.token, "0x77", 1)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::PaymasterError);
    assert!(error.message().contains("larger than"), "{error}");
}

#[tokio::test]
async fn create_wallet_deploys_a_wallet_that_pays_no_gas_and_takes_sessions() {
    let s = setup().await;
    let class_hash = s.w.devnet.session_class_hash();
    let params = CreateWallet {
        encrypt_key: "new-pin",
        external_user_id: USER,
        class_hash,
    };
    let created = s.sdk.create_wallet(params, Some(&s.bearer)).await.unwrap();
    s.sdk.wait_for_wallet(&created).await.unwrap();
    assert!(created.transaction_hash.is_some());
    // The standard counterfactual address of the encrypted owner key.
    let owner = chipi_core::decrypt_text(&created.wallet.encrypted_private_key, "new-pin").unwrap();
    let owner = chipi_core::SecretKey::from_hex(std::str::from_utf8(&owner).unwrap()).unwrap();
    let address = chipi_core::wallet_address(owner.public_key(), class_hash);
    assert_eq!(created.wallet.public_key, format!("{address:#x}"));
    assert_eq!(
        s.w.balance(address).await,
        0,
        "deployed at the paymaster's cost"
    );

    // One wallet per user: a second creation (a new key, so another address) is refused.
    let error = s
        .sdk
        .create_wallet(params, Some(&s.bearer))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::PaymasterError);
    assert!(error.message().contains("already has a wallet"), "{error}");

    // A front that slips a call into the creation typed data gets no signature.
    s.paymaster.tamper(|td: &mut Value| {
        let call = json!({"To": "0x1", "Selector": "0x2", "Calldata": []});
        td["message"]["Calls"].as_array_mut().unwrap().push(call);
    });
    let bearer = user_token("user-2");
    let params = CreateWallet {
        external_user_id: "user-2",
        ..params
    };
    let error = s
        .sdk
        .create_wallet(params, Some(&bearer))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::TypedDataMismatch, "{error}");
    s.paymaster.honest();

    // The new wallet registers a session and uses it, without a single STRK.
    let session = s
        .sdk
        .sessions()
        .create_session_key(CreateSessionKey::new("s-pin").duration_seconds(3600))
        .unwrap();
    let config = SessionConfig {
        session_public_key: session.public_key.clone(),
        valid_until: session.valid_until,
        max_calls: 2,
        allowed_entrypoints: vec!["transfer".into()],
    };
    let sent = s
        .sdk
        .sessions()
        .add_session_key_to_contract(
            AddSessionKey {
                encrypt_key: "new-pin",
                wallet: &created.wallet,
                session_config: &config,
            },
            Some(&s.bearer),
        )
        .await
        .unwrap();
    s.sdk.wait_for_transaction(&sent).await.unwrap();
    let calls = [transfer(&s.token, "0x77", 0)];
    let sent = s
        .sdk
        .execute_transaction_with_session(
            ExecuteWithSession {
                encrypt_key: "s-pin",
                wallet: &created.wallet,
                session: &session,
                calls: &calls,
            },
            Some(&s.bearer),
        )
        .await
        .unwrap();
    s.sdk.wait_for_transaction(&sent).await.unwrap();
}
