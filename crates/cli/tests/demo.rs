//! `chipi demo` as the README's first command runs it: the library's demo (the same code
//! as the binary) must pass every step, and the binary itself exits 0 with the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[tokio::test]
async fn the_demo_passes_every_step() {
    let report = chipi_cli::demo::run(true).await.unwrap();
    let failed: Vec<_> = report
        .steps
        .iter()
        .filter(|s| s.outcome == "failed")
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(report.ok);
    // Every refusal the issue lists, with its code.
    let codes: Vec<_> = report.steps.iter().filter_map(|s| s.code.clone()).collect();
    for code in [
        "SESSION_ENTRYPOINT_NOT_ALLOWED",
        "SPENDING_LIMIT_EXCEEDED",
        "SESSION_DECRYPTION_FAILED",
        "SESSION_MAX_CALLS_EXCEEDED",
        "SESSION_REVOKED",
    ] {
        assert!(
            codes.iter().any(|c| c == code),
            "{code} missing from {codes:?}"
        );
    }
    // The wallet paid no fee; the relayers paid them all.
    assert_eq!(report.money.wallet_fees, "0");
    assert!(report.money.relayer_fees.parse::<u128>().unwrap() > 0);
    let summary = chipi_cli::demo::summary(&report);
    assert!(
        summary.contains("every step behaved as expected"),
        "{summary}"
    );
}

#[test]
fn the_binary_prints_the_report_and_exits_0() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chipi"))
        .args(["demo", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["money"]["wallet_fees"], "0");
}

#[test]
fn bad_usage_exits_2_with_help() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chipi"))
        .args(["demo", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--no-such-flag"));
}

#[tokio::test]
async fn dev_token_mints_a_token_the_service_takes_for_that_user_only() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chipi"))
        .args(["dev", "token", "alice"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert_eq!(token.split('.').count(), 3);

    // The local stack's service, as `chipi dev` runs it, asked for wallets by user.
    let w = chipi_contract_tests::TestWallet::new().await;
    let pm = chipi_contract_tests::paymaster::LocalPaymaster::start(&w.devnet)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let ask = |user: &'static str, bearer: String| {
        let request = http
            .get(format!(
                "{}/v1/chipi-wallets/by-user?externalUserId={user}",
                pm.url
            ))
            .header("x-api-key", chipi_contract_tests::paymaster::API_KEY)
            .bearer_auth(bearer);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Alice's token is alice's: accepted for her (she has no wallet yet)...
    let (status, body) = ask("alice", token.clone()).await;
    assert!(status == 200 || status == 404, "{status} {body}");
    assert_ne!(body["code"], "UNAUTHORIZED", "{body}");
    // ...refused for bob...
    let (status, body) = ask("bob", token.clone()).await;
    assert_eq!(status, 401, "{body}");
    // ...and a token with its signature altered is nobody's.
    let mut forged = token.into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let (status, body) = ask("alice", String::from_utf8(forged).unwrap()).await;
    assert_eq!(status, 401, "{body}");
    pm.stop().await;
}
