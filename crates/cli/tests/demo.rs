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

#[test]
fn dev_token_mints_a_user_token() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chipi"))
        .args(["dev", "token", "alice"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert_eq!(token.split('.').count(), 3);
}
