//! The SNIP-29 transport end to end: the SDK client, the real paymaster service's
//! JSON-RPC API (`POST /`) over real HTTP, behind a front that can turn hostile, on the
//! embedded devnet. Sponsored: the wallet pays no gas. Paying in STRK: the wallet pays
//! exactly the fee transfer it signed, never more than the caller's maximum. A hostile
//! paymaster gets no signature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::paymaster::{user_token, LocalPaymaster, Options, API_KEY, USER};
use chipi_contract_tests::*;
use chipi_core::{ErrorCode, Felt};
use chipi_paymaster::CallRule;
use chipi_sdk::*;
use serde_json::{json, Value};

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use hostile::{Hostile, Lie};

const OWNER_PIN: &str = "owner-pin";
const SESSION_PIN: &str = "session-pin";
/// Where default-mode fees go: an address that holds nothing else.
const FEE_COLLECTOR: Felt = Felt::from_hex_unchecked("0xfee5");

struct Setup {
    w: TestWallet,
    _service: LocalPaymaster,
    front: Hostile,
    wallet: WalletData,
    session: SessionKeyData,
    token: String,
}

async fn setup() -> Setup {
    let w = TestWallet::new().await;
    let options = Options::default()
        .configure(|config| config.snip29.fee_collector = Some(FEE_COLLECTOR))
        .policy(|policy| {
            policy.deny = vec![CallRule {
                contract: None,
                selector: Some(selector("approve")),
            }];
        });
    let service = LocalPaymaster::start_with(&w.devnet, options)
        .await
        .unwrap();
    let front = Hostile::start(&service.url, w.devnet.account(4)).await;
    let wallet = common::wallet_data(&w, OWNER_PIN);
    let session =
        create_session_key(CreateSessionKey::new(SESSION_PIN).duration_seconds(3600)).unwrap();
    Setup {
        w,
        _service: service,
        front,
        wallet,
        session,
        token: format!("{:#x}", chipi_devnet::STRK_ADDRESS),
    }
}

impl Setup {
    /// A client of the front's SNIP-29 API with the user's token, paying as `fee` says.
    fn sdk(&self, fee: Snip29Fee) -> ChipiSdk {
        ChipiSdk::builder(self.w.devnet.rpc_url().as_str())
            .transport(Transport::Snip29 {
                url: format!("{}/", self.front.url),
                api_key: Some(API_KEY.into()),
            })
            .snip29_fee(fee)
            .bearer_token(user_token(USER))
            .confirmation_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap()
    }

    async fn register(&self, sdk: &ChipiSdk) -> Result<Submitted, SessionError> {
        let config = SessionConfig {
            session_public_key: self.session.public_key.clone(),
            valid_until: self.session.valid_until,
            max_calls: 10,
            allowed_entrypoints: Vec::new(),
        };
        sdk.sessions()
            .add_session_key_to_contract(
                AddSessionKey {
                    encrypt_key: OWNER_PIN,
                    wallet: &self.wallet,
                    session_config: &config,
                },
                None,
            )
            .await
    }

    async fn execute(&self, sdk: &ChipiSdk, calls: &[Call]) -> Result<Submitted, SessionError> {
        sdk.execute_transaction_with_session(
            ExecuteWithSession {
                encrypt_key: SESSION_PIN,
                wallet: &self.wallet,
                session: &self.session,
                calls,
            },
            None,
        )
        .await
    }

    async fn remaining_calls(&self, sdk: &ChipiSdk) -> u32 {
        sdk.sessions()
            .get_session_data(GetSessionData {
                wallet_address: &self.wallet.public_key,
                session_public_key: &self.session.public_key,
            })
            .await
            .unwrap()
            .remaining_calls
    }
}

fn transfer(token: &str, to: &str, amount: u64) -> Call {
    Call {
        contract_address: token.into(),
        entrypoint: "transfer".into(),
        calldata: vec![to.into(), amount.to_string(), "0".into()],
    }
}

#[tokio::test]
async fn sponsored_writes_through_snip29_cost_the_wallet_nothing() {
    let s = setup().await;
    let sdk = s.sdk(Snip29Fee::Sponsored);
    let before = s.w.balance(s.w.address).await;

    // An owner write, then a session write, both confirmed as what was signed.
    let sent = s.register(&sdk).await.unwrap();
    assert!(sent.outside_nonce.is_some());
    sdk.wait_for_transaction(&sent).await.unwrap();
    let sent = s
        .execute(&sdk, &[transfer(&s.token, "0x77", 100)])
        .await
        .unwrap();
    sdk.wait_for_transaction(&sent).await.unwrap();

    assert_eq!(s.w.balance(Felt::from(0x77u32)).await, 100);
    assert_eq!(s.w.balance(s.w.address).await, before - 100, "no gas paid");
    assert_eq!(s.remaining_calls(&sdk).await, 9);
    assert_eq!(s.front.executes(), 2);
}

#[tokio::test]
async fn paying_in_strk_costs_exactly_the_signed_fee_transfer_within_the_maximum() {
    let s = setup().await;
    // Registered sponsored; the session then pays its own fees in STRK.
    let sponsored = s.sdk(Snip29Fee::Sponsored);
    let sent = s.register(&sponsored).await.unwrap();
    sponsored.wait_for_transaction(&sent).await.unwrap();

    let strk = chipi_devnet::STRK_ADDRESS;
    let max_amount = STRK / 10;
    let paying = s.sdk(Snip29Fee::PayIn {
        gas_token: strk,
        max_amount,
    });
    let before = s.w.balance(s.w.address).await;
    let sent = s
        .execute(&paying, &[transfer(&s.token, "0x78", 1_000)])
        .await
        .unwrap();
    paying.wait_for_transaction(&sent).await.unwrap();
    let fee = s.w.balance(FEE_COLLECTOR).await;
    assert!(fee > 0 && fee <= max_amount, "fee {fee}");
    assert_eq!(s.w.balance(Felt::from(0x78u32)).await, 1_000);
    assert_eq!(
        s.w.balance(s.w.address).await,
        before - 1_000 - fee,
        "the wallet paid the transfer and the signed fee, no gas"
    );

    // A maximum below the quote: refused before anything is signed.
    let stingy = s.sdk(Snip29Fee::PayIn {
        gas_token: strk,
        max_amount: 1,
    });
    let executes = s.front.executes();
    let error = s
        .execute(&stingy, &[transfer(&s.token, "0x78", 1_000)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::TypedDataMismatch, "{error}");
    assert!(
        error.message().contains("more than the 1 allowed"),
        "{error}"
    );
    assert_eq!(s.front.executes(), executes);

    // A token the paymaster does not take: its refusal, before anything is signed.
    let other = s.sdk(Snip29Fee::PayIn {
        gas_token: Felt::from(0xdeadu32),
        max_amount,
    });
    let error = s
        .execute(&other, &[transfer(&s.token, "0x78", 1_000)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::PaymasterError, "{error}");
    assert!(error.message().contains("(151"), "{error}");
    assert_eq!(s.front.executes(), executes);
}

/// Ways a hostile SNIP-29 paymaster could change the appended fee transfer.
fn fee_tampers() -> Vec<(&'static str, hostile::Tamper)> {
    fn last_call(td: &mut Value) -> &mut Value {
        td["message"]["Calls"]
            .as_array_mut()
            .unwrap()
            .last_mut()
            .unwrap()
    }
    vec![
        (
            "fee amount raised",
            Box::new(|td: &mut Value| last_call(td)["Calldata"][1] = json!("0xde0b6b3a7640000")),
        ),
        (
            "fee in another token",
            Box::new(|td: &mut Value| last_call(td)["To"] = json!("0x999")),
        ),
        (
            "fee transfer dropped for an approve",
            Box::new(|td: &mut Value| {
                last_call(td)["Selector"] = json!(format!("{:#x}", chipi_core::selectors::APPROVE))
            }),
        ),
        (
            "a second fee transfer",
            Box::new(|td: &mut Value| {
                let fee = last_call(td).clone();
                td["message"]["Calls"].as_array_mut().unwrap().push(fee);
            }),
        ),
        (
            "a user call changed",
            Box::new(|td: &mut Value| td["message"]["Calls"][0]["Calldata"][1] = json!("0xf4240")),
        ),
        (
            "another chain",
            Box::new(|td: &mut Value| td["domain"]["chainId"] = json!("SN_MAIN")),
        ),
    ]
}

#[tokio::test]
async fn typed_data_a_snip29_paymaster_changed_is_never_signed() {
    let s = setup().await;
    let sponsored = s.sdk(Snip29Fee::Sponsored);
    let sent = s.register(&sponsored).await.unwrap();
    sponsored.wait_for_transaction(&sent).await.unwrap();
    let paying = s.sdk(Snip29Fee::PayIn {
        gas_token: chipi_devnet::STRK_ADDRESS,
        max_amount: STRK,
    });
    let executes = s.front.executes();
    let balance = s.w.balance(s.w.address).await;
    let calls = [transfer(&s.token, "0x79", 10)];

    for (name, tamper) in hostile::tampers() {
        s.front.tamper(tamper);
        let error = s.execute(&sponsored, &calls).await.unwrap_err();
        assert_eq!(
            error.code(),
            ErrorCode::TypedDataMismatch,
            "{name}: {error}"
        );
    }
    for (name, tamper) in fee_tampers() {
        s.front.tamper(tamper);
        let error = s.execute(&paying, &calls).await.unwrap_err();
        assert_eq!(
            error.code(),
            ErrorCode::TypedDataMismatch,
            "{name}: {error}"
        );
    }
    assert_eq!(s.front.executes(), executes, "no signature left the SDK");
    assert_eq!(s.w.balance(s.w.address).await, balance);
    assert_eq!(s.remaining_calls(&sponsored).await, 10);

    // Honest again: both modes go through.
    s.front.honest();
    for sdk in [&sponsored, &paying] {
        let sent = s.execute(sdk, &calls).await.unwrap();
        sdk.wait_for_transaction(&sent).await.unwrap();
    }
    assert_eq!(s.remaining_calls(&sponsored).await, 8);
}

#[tokio::test]
async fn snip29_refusals_and_lies_have_their_codes() {
    let s = setup().await;
    let sdk = s.sdk(Snip29Fee::Sponsored);
    let sent = s.register(&sdk).await.unwrap();
    sdk.wait_for_transaction(&sent).await.unwrap();

    // The app's policy denies `approve`: the section-10 refusal code reaches the caller.
    let approve = Call {
        contract_address: s.token.clone(),
        entrypoint: "approve".into(),
        calldata: vec!["0x77".into(), "1".into(), "0".into()],
    };
    let error = s.execute(&sdk, &[approve]).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::PaymasterError, "{error}");
    assert!(error.message().contains("(163"), "{error}");

    // A wrong API key: authentication, and the key is not repeated.
    let wrong_key = "pk_dev_ffffffffffffffffffffffffffffffff";
    let bad = ChipiSdk::builder(s.w.devnet.rpc_url().as_str())
        .transport(Transport::Snip29 {
            url: s.front.url.clone(),
            api_key: Some(wrong_key.into()),
        })
        .build()
        .unwrap();
    let error = s
        .execute(&bad, &[transfer(&s.token, "0x77", 1)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuthenticationFailed, "{error}");
    assert!(!error.message().contains(wrong_key));

    // A paymaster that answers with another transaction is caught by the wait.
    s.front.lie(Lie::OtherTransaction);
    let sent = s
        .execute(&sdk, &[transfer(&s.token, "0x77", 1)])
        .await
        .unwrap();
    let error = sdk.wait_for_transaction(&sent).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::PaymasterError, "{error}");
    // An answer past the size bound is refused.
    s.front.lie(Lie::HugeAnswer);
    let error = s
        .execute(&sdk, &[transfer(&s.token, "0x77", 1)])
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::PaymasterError, "{error}");
    assert!(error.message().contains("larger than"), "{error}");
}
