//! What a Chipi developer expects from the JS SDK 14.13/14.14 and finds here, on the
//! embedded devnet, over both transports (direct, and sponsored through the real
//! paymaster service): owner writes of any calls, a session and its spending limit set
//! up in one transaction, listing and revoking every session, waiting with options, the
//! session state decided in one place (its boundary second included), a wallet that is
//! not a session account, and times judged by the chain's clock when it is ahead of or
//! behind this machine's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chipi_contract_tests::paymaster::{user_token, LocalPaymaster, API_KEY, USER};
use chipi_contract_tests::*;
use chipi_core::{ErrorCode, Felt};
use chipi_sdk::*;

mod common;

const OWNER_PIN: &str = "owner-pin";
const SESSION_PIN: &str = "session-pin";

/// A test wallet with a client for each transport (the paymaster stays up with it).
struct Both {
    w: TestWallet,
    wallet: WalletData,
    direct: ChipiSdk,
    sponsored: ChipiSdk,
    _paymaster: LocalPaymaster,
}

async fn both() -> Both {
    let w = TestWallet::new().await;
    let paymaster = LocalPaymaster::start(&w.devnet).await.unwrap();
    let builder = || {
        ChipiSdk::builder(w.devnet.rpc_url().as_str()).confirmation_timeout(Duration::from_secs(10))
    };
    let direct = builder().transport(Transport::Direct).build().unwrap();
    let sponsored = builder()
        .paymaster(&paymaster.url, API_KEY)
        .bearer_token(user_token(USER))
        .build()
        .unwrap();
    Both {
        wallet: common::wallet_data(&w, OWNER_PIN),
        w,
        direct,
        sponsored,
        _paymaster: paymaster,
    }
}

impl Both {
    fn clients(&self) -> [(&'static str, &ChipiSdk); 2] {
        [("direct", &self.direct), ("sponsored", &self.sponsored)]
    }
}

fn session_config(session: &SessionKeyData, max_calls: u32) -> SessionConfig {
    SessionConfig {
        session_public_key: session.public_key.clone(),
        valid_until: session.valid_until,
        max_calls,
        allowed_entrypoints: vec!["transfer".into()],
    }
}

fn strk_transfer_js(to: &str, amount: u64) -> Call {
    Call {
        contract_address: format!("{:#x}", chipi_core::STRK_ADDRESS),
        entrypoint: "transfer".into(),
        calldata: vec![to.into(), amount.to_string(), "0".into()],
    }
}

async fn new_session(sdk: &ChipiSdk) -> SessionKeyData {
    sdk.chain_now().await;
    sdk.sessions()
        .create_session_key(CreateSessionKey::new(SESSION_PIN).duration_seconds(3600))
        .unwrap()
}

#[tokio::test]
async fn the_owner_executes_any_calls_over_both_transports() {
    let b = both().await;
    for (i, (name, sdk)) in b.clients().into_iter().enumerate() {
        let to = format!("{:#x}", 0x0a00 + i);
        let before = b.w.balance(b.w.address).await;
        let sent = sdk
            .execute_transaction(
                ExecuteTransaction {
                    encrypt_key: OWNER_PIN,
                    wallet: &b.wallet,
                    calls: &[strk_transfer_js(&to, 1_000), strk_transfer_js(&to, 234)],
                },
                None,
            )
            .await
            .unwrap();
        let confirmed = sdk
            .wait_for_transaction_with(
                &sent,
                WaitOptions {
                    timeout: Duration::from_secs(10),
                    poll_interval: Duration::from_millis(50),
                },
            )
            .await
            .unwrap();
        assert!(confirmed.fee > 0 && confirmed.block_number > 0, "{name}");
        assert_eq!(
            b.w.balance(Felt::from_hex(&to).unwrap()).await,
            1_234,
            "{name}"
        );
        let paid = before - b.w.balance(b.w.address).await - 1_234;
        match name {
            // The wallet paid exactly its receipt's fee; sponsored, nothing.
            "direct" => assert_eq!(paid, confirmed.fee, "{name}"),
            _ => assert_eq!(paid, 0, "{name}"),
        }
        // A wrong PIN signs nothing; no calls is refused before anything.
        let error = sdk
            .execute_transaction(
                ExecuteTransaction {
                    encrypt_key: "wrong",
                    wallet: &b.wallet,
                    calls: &[strk_transfer_js(&to, 1)],
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::SessionDecryptionFailed, "{name}");
        let error = sdk
            .execute_transaction(
                ExecuteTransaction {
                    encrypt_key: OWNER_PIN,
                    wallet: &b.wallet,
                    calls: &[],
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidInput, "{name}");
    }
}

#[tokio::test]
async fn a_session_and_its_spending_limit_are_set_up_in_one_transaction() {
    let b = both().await;
    let strk = format!("{:#x}", chipi_core::STRK_ADDRESS);
    for (name, sdk) in b.clients() {
        let session = new_session(sdk).await;
        let policy = SpendingPolicyConfig {
            session_public_key: session.public_key.clone(),
            token: strk.clone(),
            max_per_call: "500".into(),
            max_per_window: "800".into(),
            window_seconds: 3600,
        };
        let sent = sdk
            .sessions()
            .setup_session(
                SetupSession {
                    encrypt_key: OWNER_PIN,
                    wallet: &b.wallet,
                    session_config: &session_config(&session, 5),
                    spending_policies: std::slice::from_ref(&policy),
                },
                None,
            )
            .await
            .unwrap();
        let confirmed = sdk.wait_for_transaction(&sent).await.unwrap();
        // One transaction did both.
        let events = confirmed.receipt.events().len();
        assert!(events >= 2, "{name}: {events} events");
        let data = sdk
            .sessions()
            .get_session_data(GetSessionData {
                wallet_address: &b.wallet.public_key,
                session_public_key: &session.public_key,
            })
            .await
            .unwrap();
        assert!(data.is_active && data.remaining_calls == 5, "{name}");
        let stored = sdk
            .sessions()
            .get_spending_policy(GetSpendingPolicy {
                wallet_address: &b.wallet.public_key,
                session_public_key: &session.public_key,
                token: &strk,
            })
            .await
            .unwrap();
        assert_eq!(
            (stored.max_per_call.as_str(), stored.max_per_window.as_str()),
            ("500", "800"),
            "{name}"
        );
        // The limit holds: 600 in one call is refused with its code.
        let error = sdk
            .execute_transaction_with_session(
                ExecuteWithSession {
                    encrypt_key: SESSION_PIN,
                    wallet: &b.wallet,
                    session: &session,
                    calls: &[strk_transfer_js("0x77", 600)],
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::SpendingLimitExceeded, "{name}");

        // A policy naming another key is refused before anything is signed.
        let other = SpendingPolicyConfig {
            session_public_key: "0x1234".into(),
            ..policy
        };
        let session = new_session(sdk).await;
        let error = sdk
            .sessions()
            .setup_session(
                SetupSession {
                    encrypt_key: OWNER_PIN,
                    wallet: &b.wallet,
                    session_config: &session_config(&session, 5),
                    spending_policies: &[other],
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidSpendingPolicy, "{name}");
    }
}

#[tokio::test]
async fn sessions_are_listed_with_their_state_and_revoked_all_at_once() {
    let b = both().await;
    for (name, sdk) in b.clients() {
        let mut keys = Vec::new();
        for _ in 0..3 {
            let session = new_session(sdk).await;
            let sent = sdk
                .sessions()
                .add_session_key_to_contract(
                    AddSessionKey {
                        encrypt_key: OWNER_PIN,
                        wallet: &b.wallet,
                        session_config: &session_config(&session, 3),
                    },
                    None,
                )
                .await
                .unwrap();
            sdk.wait_for_transaction(&sent).await.unwrap();
            keys.push(session.public_key);
        }
        let listed = sdk.sessions().list(&b.wallet.public_key).await.unwrap();
        let active: Vec<_> = listed
            .iter()
            .filter(|s| s.status() == SessionStatus::Active)
            .map(|s| s.session_public_key.clone())
            .collect();
        for key in &keys {
            assert!(
                active.contains(key),
                "{name}: {key} not active in {listed:?}"
            );
        }

        let sent = sdk
            .sessions()
            .revoke_all(
                RevokeAllSessions {
                    encrypt_key: OWNER_PIN,
                    wallet: &b.wallet,
                },
                None,
            )
            .await
            .unwrap()
            .expect("active sessions to revoke");
        sdk.wait_for_transaction(&sent).await.unwrap();
        let listed = sdk.sessions().list(&b.wallet.public_key).await.unwrap();
        assert!(
            listed.iter().all(|s| s.status() == SessionStatus::Revoked),
            "{name}: {listed:?}"
        );
        assert!(listed.len() >= keys.len());
        // Nothing left to revoke: nothing is sent.
        let again = sdk
            .sessions()
            .revoke_all(
                RevokeAllSessions {
                    encrypt_key: OWNER_PIN,
                    wallet: &b.wallet,
                },
                None,
            )
            .await
            .unwrap();
        assert!(again.is_none(), "{name}");
    }
}

#[tokio::test]
async fn the_last_second_of_a_session_is_active_and_the_next_is_not() {
    let b = both().await;
    let sdk = &b.direct;
    let session = new_session(sdk).await;
    let sent = sdk
        .sessions()
        .add_session_key_to_contract(
            AddSessionKey {
                encrypt_key: OWNER_PIN,
                wallet: &b.wallet,
                session_config: &session_config(&session, 3),
            },
            None,
        )
        .await
        .unwrap();
    sdk.wait_for_transaction(&sent).await.unwrap();
    let status = || async {
        let state = read_session_state(
            &b.w.devnet.provider(),
            &b.wallet.public_key,
            &session.public_key,
        )
        .await
        .unwrap();
        (state.chain_time, state.status())
    };
    b.w.devnet.set_time(session.valid_until).await;
    assert_eq!(
        status().await,
        (session.valid_until, SessionStatus::Active),
        "valid_until itself is still valid, as for the contract"
    );
    b.w.devnet.set_time(session.valid_until + 1).await;
    assert_eq!(
        status().await,
        (session.valid_until + 1, SessionStatus::Expired)
    );
    let listed = sdk.sessions().list(&b.wallet.public_key).await.unwrap();
    assert_eq!(listed[0].status(), SessionStatus::Expired);
}

#[tokio::test]
async fn session_data_of_a_wallet_that_is_not_a_session_account_says_so() {
    let b = both().await;
    // A predeployed OpenZeppelin account: deployed, but no session views.
    let oz = format!("{:#x}", b.w.devnet.accounts()[0].address);
    let error = b
        .direct
        .sessions()
        .get_session_data(GetSessionData {
            wallet_address: &oz,
            session_public_key: "0x1234",
        })
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        ErrorCode::InvalidWalletTypeForSession,
        "{error}"
    );
}

/// Registers and uses a session with a client that judges time by `sdk`'s clock.
async fn register_and_use(b: &Both, sdk: &ChipiSdk) -> Result<(), SessionError> {
    let session = new_session(sdk).await;
    let sent = sdk
        .sessions()
        .add_session_key_to_contract(
            AddSessionKey {
                encrypt_key: OWNER_PIN,
                wallet: &b.wallet,
                session_config: &session_config(&session, 3),
            },
            None,
        )
        .await?;
    sdk.wait_for_transaction(&sent).await?;
    let sent = sdk
        .execute_transaction_with_session(
            ExecuteWithSession {
                encrypt_key: SESSION_PIN,
                wallet: &b.wallet,
                session: &session,
                calls: &[strk_transfer_js("0x77", 5)],
            },
            None,
        )
        .await?;
    sdk.wait_for_transaction(&sent).await.map(|_| ())
}

#[tokio::test]
async fn windows_and_expiry_are_judged_by_the_chains_clock_ahead_or_behind() {
    let b = both().await;
    let machine = || Clock::now(&SystemClock);
    // A client that trusts this machine's clock, as every client did before.
    let machine_clock = ChipiSdk::builder(b.w.devnet.rpc_url().as_str())
        .paymaster(&b._paymaster.url, API_KEY)
        .bearer_token(user_token(USER))
        .clock(SystemClock)
        .build()
        .unwrap();

    // The chain 4.8 hours ahead (tests that travel in time leave a devnet so).
    b.w.devnet.set_time(machine() + 17_280).await;
    let error = register_and_use(&b, &machine_clock).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::TypedDataMismatch, "{error}");
    assert!(error.message().contains("opens in the future"), "{error}");
    for (name, sdk) in b.clients() {
        register_and_use(&b, sdk)
            .await
            .unwrap_or_else(|e| panic!("{name}, chain ahead: {e}"));
    }

    // The chain 4.8 hours behind.
    b.w.devnet.set_time(machine() - 17_280).await;
    let error = register_and_use(&b, &machine_clock).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::TypedDataMismatch, "{error}");
    assert!(error.message().contains("already closed"), "{error}");
    // New clients (nothing cached) and the same ones (their cache refreshes).
    let fresh = ChipiSdk::builder(b.w.devnet.rpc_url().as_str())
        .paymaster(&b._paymaster.url, API_KEY)
        .bearer_token(user_token(USER))
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    for (name, sdk) in [("fresh", &fresh), b.clients()[0], b.clients()[1]] {
        register_and_use(&b, sdk)
            .await
            .unwrap_or_else(|e| panic!("{name}, chain behind: {e}"));
    }
}
