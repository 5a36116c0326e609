//! `chipi demo`: the whole system in one process, through the product's own path: the
//! embedded devnet, the paymaster (its library, on a free port, SQLite in a temporary
//! file), and the seed's lifecycle through the SDK's sponsored transport.

use std::time::Instant;

use chipi_core::{ErrorCode, Felt};
use chipi_devnet::{Devnet, STRK_ADDRESS};
use chipi_sdk::{
    AddSessionKey, Call, ChipiSdk, CreateSessionKey, CreateWallet, ExecuteWithSession,
    GetSessionData, RevokeSessionKey, SessionConfig, SessionError, SetSpendingPolicy,
    SpendingPolicyConfig, Submitted, WalletData,
};
use chipi_stack::{LocalPaymaster, Options, API_KEY};
use serde::Serialize;

use crate::narrator::Narrator;

/// One STRK in fri.
pub const STRK: u128 = 1_000_000_000_000_000_000;
const OWNER_PIN: &str = "correct horse battery staple";
const SESSION_PIN: &str = "1234-session";
const USER: &str = "demo-user";

/// What the demo did, step by step; `ok` only if every step behaved as expected.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Every step behaved as expected.
    pub ok: bool,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// The wallet created.
    pub wallet: Option<String>,
    /// The session's public key.
    pub session_public_key: Option<String>,
    /// STRK moved and fees, in fri (decimal strings).
    pub money: Money,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// One step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// 1-based.
    pub n: usize,
    /// What it does.
    pub title: String,
    /// `ok`, `refused as expected`, or `failed`.
    pub outcome: String,
    /// The error code of an expected refusal (or of a failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The transaction sent, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// What happened, in words.
    pub details: Vec<String>,
}

/// Balances and fees.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Money {
    /// Test STRK sent to the wallet.
    pub funded: String,
    /// Sent by the session to the recipient.
    pub transferred: String,
    /// What the wallet holds at the end.
    pub wallet_end: String,
    /// Fees the wallet paid (funded - transferred - end): zero when sponsored.
    pub wallet_fees: String,
    /// Fees the paymaster's relayers paid, as the service recorded them.
    pub relayer_fees: String,
    /// Transactions the paymaster sent (and paid for).
    pub sponsored_transactions: usize,
}

/// `1.2500 STRK`.
pub fn strk(fri: u128) -> String {
    format!("{}.{:04} STRK", fri / STRK, (fri % STRK) / (STRK / 10_000))
}

struct Demo {
    narrator: Narrator,
    steps: Vec<StepReport>,
}

enum Expect {
    Success,
    Refusal(ErrorCode),
}

impl Demo {
    fn begin(&mut self, title: &str) -> usize {
        let n = self.steps.len() + 1;
        self.narrator.start(n, title);
        n
    }

    fn end(&mut self, n: usize, title: &str, report: StepReport) {
        let ok = report.outcome != "failed";
        self.narrator.finish(n, title, ok, &report.details);
        self.steps.push(report);
    }

    fn ok(&mut self, n: usize, title: &str, transaction: Option<String>, details: Vec<String>) {
        self.end(
            n,
            title,
            StepReport {
                n,
                title: title.into(),
                outcome: "ok".into(),
                code: None,
                transaction,
                details,
            },
        );
    }

    fn failed(&mut self, n: usize, title: &str, why: String, code: Option<String>) {
        self.end(
            n,
            title,
            StepReport {
                n,
                title: title.into(),
                outcome: "failed".into(),
                code,
                transaction: None,
                details: vec![why],
            },
        );
    }

    /// Records a write's result against what was expected; the hash when it was sent.
    fn judge(
        &mut self,
        n: usize,
        title: &str,
        expect: Expect,
        result: Result<Submitted, SessionError>,
        mut details: Vec<String>,
    ) -> Option<Submitted> {
        match (expect, result) {
            (Expect::Success, Ok(sent)) => {
                details.insert(0, format!("tx {sent}"));
                self.ok(n, title, Some(sent.to_string()), details);
                Some(sent)
            }
            (Expect::Refusal(code), Err(error)) if error.code() == code => {
                details.insert(0, format!("{}: {}", error.code(), error.message()));
                self.end(
                    n,
                    title,
                    StepReport {
                        n,
                        title: title.into(),
                        outcome: "refused as expected".into(),
                        code: Some(code.as_str().into()),
                        transaction: None,
                        details,
                    },
                );
                None
            }
            (Expect::Refusal(code), Ok(sent)) => {
                self.failed(
                    n,
                    title,
                    format!("accepted ({sent}) but {code} was expected"),
                    None,
                );
                None
            }
            (_, Err(error)) => {
                self.failed(
                    n,
                    title,
                    format!("{}: {}", error.code(), error.message()),
                    Some(error.code().as_str().into()),
                );
                None
            }
        }
    }
}

/// The demo's failures that stop it (the node or the service would not start).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The devnet did not start.
    #[error("the embedded devnet did not start: {0}")]
    Devnet(String),
    /// The paymaster did not start.
    #[error("the paymaster did not start: {0}")]
    Paymaster(String),
    /// The SDK could not be configured.
    #[error("the SDK could not be configured: {0}")]
    Sdk(String),
}

/// Runs the demo, narrating unless `quiet`.
pub async fn run(quiet: bool) -> Result<DemoReport, DemoError> {
    let started = Instant::now();
    let mut demo = Demo {
        narrator: Narrator::new(quiet),
        steps: Vec::new(),
    };
    let mut money = Money::default();

    let title = "Start starknet-devnet in this process";
    let n = demo.begin(title);
    let devnet = Devnet::start()
        .await
        .map_err(|e| DemoError::Devnet(e.to_string()))?;
    demo.ok(
        n,
        title,
        None,
        vec![
            format!("RPC {}", devnet.rpc_url()),
            format!("session-account class {:#x}", devnet.session_class_hash()),
        ],
    );

    let title = "Start the paymaster (its library, a free port, SQLite file)";
    let n = demo.begin(title);
    let paymaster = LocalPaymaster::start_with(
        &devnet,
        Options {
            relayers: vec![3, 4],
            ..Options::default()
        },
    )
    .await
    .map_err(|e| DemoError::Paymaster(e.to_string()))?;
    demo.ok(n, title, None, vec![format!("API {}", paymaster.url)]);
    let bearer = chipi_stack::user_token(USER);
    let sdk = ChipiSdk::builder(devnet.rpc_url().as_str())
        .paymaster(&paymaster.url, API_KEY)
        .bearer_token(&bearer)
        .build()
        .map_err(|e| DemoError::Sdk(e.to_string()))?;

    let report = lifecycle(&mut demo, &devnet, &sdk, &mut money).await;
    // The follower records each fee once the transaction is final: wait for it.
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = paymaster
            .state
            .store()
            .transactions()
            .await
            .unwrap_or_default();
        let sent = rows.iter().filter(|r| r.hash.is_some());
        if sent.clone().all(|r| r.fee.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent: Vec<_> = rows.iter().filter(|r| r.hash.is_some()).collect();
    let relayer_fees: u128 = sent.iter().filter_map(|r| r.fee).sum();
    money.relayer_fees = relayer_fees.to_string();
    money.sponsored_transactions = sent.len();
    paymaster.stop().await;
    let (wallet, session_public_key) = report;
    let ok = demo.steps.iter().all(|s| s.outcome != "failed");
    Ok(DemoReport {
        ok,
        steps: demo.steps,
        wallet,
        session_public_key,
        money,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn transfer(to: &str, amount: u128) -> Call {
    Call {
        contract_address: format!("{STRK_ADDRESS:#x}"),
        entrypoint: "transfer".into(),
        calldata: vec![to.into(), amount.to_string(), "0".into()],
    }
}

/// The lifecycle; stops at the first step whose failure makes the rest meaningless.
async fn lifecycle(
    demo: &mut Demo,
    devnet: &Devnet,
    sdk: &ChipiSdk,
    money: &mut Money,
) -> (Option<String>, Option<String>) {
    let title = "Create a wallet (the paymaster deploys it: no STRK needed)";
    let n = demo.begin(title);
    let created = sdk
        .create_wallet(
            CreateWallet {
                encrypt_key: OWNER_PIN,
                external_user_id: USER,
                class_hash: devnet.session_class_hash(),
            },
            None,
        )
        .await;
    let created = match created {
        Ok(created) => created,
        Err(e) => {
            demo.failed(n, title, e.to_string(), Some(e.code().as_str().into()));
            return (None, None);
        }
    };
    if let Err(e) = sdk.wait_for_wallet(&created).await {
        demo.failed(n, title, e.to_string(), Some(e.code().as_str().into()));
        return (None, None);
    }
    let wallet: WalletData = created.wallet.clone();
    let Some(address) = chipi_core::parse_felt_strict(&wallet.public_key) else {
        demo.failed(n, title, "bad wallet address".into(), None);
        return (None, None);
    };
    demo.ok(
        n,
        title,
        created.transaction_hash.map(|h| format!("{h:#x}")),
        vec![
            format!("wallet {}", wallet.public_key),
            "owner key made here, encrypted with the user's PIN (JS SDK format)".into(),
        ],
    );
    let wallet_address = Some(wallet.public_key.clone());

    let title = "Fund the wallet with 10 test STRK (a devnet account)";
    let n = demo.begin(title);
    let funded = 10 * STRK;
    match devnet
        .transfer_strk(&devnet.account(0), address, funded)
        .await
    {
        Ok(_) => demo.ok(
            n,
            title,
            None,
            vec![format!("wallet holds {}", strk(funded))],
        ),
        Err(e) => {
            demo.failed(n, title, e.to_string(), None);
            return (wallet_address, None);
        }
    }
    money.funded = funded.to_string();

    let title = "createSessionKey: 1 hour, encrypted with a PIN";
    let n = demo.begin(title);
    let session = match sdk
        .sessions()
        .create_session_key(CreateSessionKey::new(SESSION_PIN).duration_seconds(3600))
    {
        Ok(session) => session,
        Err(e) => {
            demo.failed(n, title, e.to_string(), Some(e.code().as_str().into()));
            return (wallet_address, None);
        }
    };
    demo.ok(
        n,
        title,
        None,
        vec![format!("session key {}", session.public_key)],
    );
    let session_key = Some(session.public_key.clone());

    let title = "addSessionKeyToContract: `transfer` only, maxCalls 5";
    let n = demo.begin(title);
    let config = SessionConfig {
        session_public_key: session.public_key.clone(),
        valid_until: session.valid_until,
        max_calls: 5,
        allowed_entrypoints: vec!["transfer".into()],
    };
    let sent = sdk
        .sessions()
        .add_session_key_to_contract(
            AddSessionKey {
                encrypt_key: OWNER_PIN,
                wallet: &wallet,
                session_config: &config,
            },
            None,
        )
        .await;
    let sent = confirm(sdk, sent).await;
    if demo
        .judge(n, title, Expect::Success, sent, Vec::new())
        .is_none()
    {
        return (wallet_address, session_key);
    }

    let title = "setSpendingPolicy: at most 2 STRK per call, 3 STRK per hour";
    let n = demo.begin(title);
    let token = format!("{STRK_ADDRESS:#x}");
    let policy = SpendingPolicyConfig {
        session_public_key: session.public_key.clone(),
        token: token.clone(),
        max_per_call: (2 * STRK).to_string(),
        max_per_window: (3 * STRK).to_string(),
        window_seconds: 3600,
    };
    let sent = sdk
        .sessions()
        .set_spending_policy(
            SetSpendingPolicy {
                encrypt_key: OWNER_PIN,
                wallet: &wallet,
                policy: &policy,
            },
            None,
        )
        .await;
    let sent = confirm(sdk, sent).await;
    if demo
        .judge(n, title, Expect::Success, sent, Vec::new())
        .is_none()
    {
        return (wallet_address, session_key);
    }

    let recipient = "0x7777";
    let recipient_felt = Felt::from(0x7777u32);
    let query = GetSessionData {
        wallet_address: &wallet.public_key,
        session_public_key: &session.public_key,
    };
    let session_run = |calls: Vec<Call>, pin: &'static str| {
        let sdk = sdk.clone();
        let wallet = wallet.clone();
        let session = session.clone();
        async move {
            let sent = sdk
                .execute_transaction_with_session(
                    ExecuteWithSession {
                        encrypt_key: pin,
                        wallet: &wallet,
                        session: &session,
                        calls: &calls,
                    },
                    None,
                )
                .await;
            confirm(&sdk, sent).await
        }
    };
    let mut transferred = 0u128;
    let amounts = [STRK, STRK / 2, STRK / 10, STRK / 10, STRK / 10];
    // Calls 1-2 are shown; the refusals come between them and calls 3-5.
    for (i, amount) in amounts.iter().take(2).enumerate() {
        let title = format!(
            "Session transfer #{}: {} to {recipient}, gasless",
            i + 1,
            strk(*amount)
        );
        let n = demo.begin(&title);
        let sent = session_run(vec![transfer(recipient, *amount)], SESSION_PIN).await;
        let details = after(devnet, sdk, &query, address, recipient_felt).await;
        if demo
            .judge(n, &title, Expect::Success, sent, details)
            .is_none()
        {
            return (wallet_address, session_key);
        }
        transferred += amount;
    }

    let refusals: [(&str, Vec<Call>, &'static str, ErrorCode); 3] = [
        (
            "Refused: `approve` is not whitelisted",
            vec![Call {
                entrypoint: "approve".into(),
                ..transfer(recipient, 1)
            }],
            SESSION_PIN,
            ErrorCode::SessionEntrypointNotAllowed,
        ),
        (
            "Refused: 2.5 STRK is over the 2 STRK per-call limit",
            vec![transfer(recipient, 5 * STRK / 2)],
            SESSION_PIN,
            ErrorCode::SpendingLimitExceeded,
        ),
        (
            "Refused: the wrong PIN decrypts nothing",
            vec![transfer(recipient, 1)],
            "0000",
            ErrorCode::SessionDecryptionFailed,
        ),
    ];
    for (title, calls, pin, code) in refusals {
        let n = demo.begin(title);
        let result = session_run(calls, pin).await;
        demo.judge(n, title, Expect::Refusal(code), result, Vec::new());
    }

    for (i, amount) in amounts.iter().enumerate().skip(2) {
        let title = format!("Session transfer #{}: {}", i + 1, strk(*amount));
        let n = demo.begin(&title);
        let sent = session_run(vec![transfer(recipient, *amount)], SESSION_PIN).await;
        let details = after(devnet, sdk, &query, address, recipient_felt).await;
        if demo
            .judge(n, &title, Expect::Success, sent, details)
            .is_none()
        {
            return (wallet_address, session_key);
        }
        transferred += amount;
    }
    let title = "Refused: a sixth call, past maxCalls 5";
    let n = demo.begin(title);
    let result = session_run(vec![transfer(recipient, 1)], SESSION_PIN).await;
    demo.judge(
        n,
        title,
        Expect::Refusal(ErrorCode::SessionMaxCallsExceeded),
        result,
        Vec::new(),
    );

    let title = "revokeSessionKey (owner-signed, gasless)";
    let n = demo.begin(title);
    let sent = sdk
        .sessions()
        .revoke_session_key(
            RevokeSessionKey {
                encrypt_key: OWNER_PIN,
                wallet: &wallet,
                session_public_key: &session.public_key,
            },
            None,
        )
        .await;
    let sent = confirm(sdk, sent).await;
    let details = after(devnet, sdk, &query, address, recipient_felt).await;
    demo.judge(n, title, Expect::Success, sent, details);

    let title = "Refused: the revoked session";
    let n = demo.begin(title);
    let result = session_run(vec![transfer(recipient, 1)], SESSION_PIN).await;
    demo.judge(
        n,
        title,
        Expect::Refusal(ErrorCode::SessionRevoked),
        result,
        Vec::new(),
    );

    let end = devnet.strk_balance(address).await.unwrap_or_default();
    money.transferred = transferred.to_string();
    money.wallet_end = end.to_string();
    money.wallet_fees = funded
        .saturating_sub(transferred)
        .saturating_sub(end)
        .to_string();
    (wallet_address, session_key)
}

/// Waits for a sent write to be on chain and checked.
async fn confirm(
    sdk: &ChipiSdk,
    sent: Result<Submitted, SessionError>,
) -> Result<Submitted, SessionError> {
    let sent = sent?;
    sdk.wait_for_transaction(&sent).await?;
    Ok(sent)
}

/// Balances and the session's state after a step.
async fn after(
    devnet: &Devnet,
    sdk: &ChipiSdk,
    query: &GetSessionData<'_>,
    wallet: Felt,
    recipient: Felt,
) -> Vec<String> {
    let mut lines = Vec::new();
    if let (Ok(w), Ok(r)) = (
        devnet.strk_balance(wallet).await,
        devnet.strk_balance(recipient).await,
    ) {
        lines.push(format!("wallet {}, recipient {}", strk(w), strk(r)));
    }
    if let Ok(data) = sdk.sessions().get_session_data(*query).await {
        lines.push(format!(
            "getSessionData: isActive={} remainingCalls={}",
            data.is_active, data.remaining_calls
        ));
    }
    lines
}

/// The closing table.
pub fn summary(report: &DemoReport) -> String {
    let mut out = String::new();
    out.push_str(&format!("\n  #  {:<62}outcome\n", "step"));
    for step in &report.steps {
        let title: String = step.title.chars().take(60).collect();
        let outcome = match &step.code {
            Some(code) if step.outcome != "failed" => format!("{} ({code})", step.outcome),
            _ => step.outcome.clone(),
        };
        out.push_str(&format!("{:>3}  {title:<62}{outcome}\n", step.n));
    }
    let amount = |text: &str| text.parse::<u128>().map(strk).unwrap_or_default();
    out.push_str(&format!(
        "\n  wallet funded {}, sent {}, holds {}: it paid {} in fees\n",
        amount(&report.money.funded),
        amount(&report.money.transferred),
        amount(&report.money.wallet_end),
        amount(&report.money.wallet_fees),
    ));
    out.push_str(&format!(
        "  the paymaster's relayers paid {} in fees for its {} transactions\n",
        amount(&report.money.relayer_fees),
        report.money.sponsored_transactions
    ));
    out.push_str(&format!(
        "\n  {} in {:.1} s\n",
        if report.ok {
            "every step behaved as expected"
        } else {
            "SOME STEPS FAILED"
        },
        report.seconds
    ));
    out
}
