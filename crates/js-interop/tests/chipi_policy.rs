//! Chipi's JS server SDK (`@chipi-stack/backend` 14.4.0) in Node against our paymaster
//! under a tight sponsorship policy (`js/chipi_policy.mjs`): the section-10 refusals
//! reach its caller as `ChipiApiError` with the code and the HTTP status set.
//!
//! Needs Node.js and npm: without them this test fails, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::paymaster::{
    user_token, LocalPaymaster, Options, API_KEY, SECRET_KEY, USER,
};
use chipi_devnet::{Devnet, STRK_ADDRESS};
use chipi_js_interop::run_node;
use chipi_paymaster::{CallRule, Limit, Scope, Window};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chipi_js_sdk_sees_the_sponsorship_codes() {
    let devnet = Devnet::start().await.expect("devnet starts");
    let options = Options::default().policy(|policy| {
        policy.deny = vec![CallRule {
            contract: None,
            selector: Some(chipi_contract_tests::selector("approve")),
        }];
        policy.limits = vec![Limit {
            scope: Scope::User,
            window: Window::Month,
            max_transactions: Some(2),
            max_fee_fri: None,
        }];
    });
    let pm = LocalPaymaster::start_with(&devnet, options).await.unwrap();
    let input = json!({
        "rpc_url": devnet.rpc_url().as_str(),
        "service_url": pm.url,
        "api_key": API_KEY,
        "secret_key": SECRET_KEY,
        "user": USER,
        "user_token": user_token(USER),
        "class_hash": format!("{:#x}", devnet.session_class_hash()),
        "strk": format!("{STRK_ADDRESS:#x}"),
        "pin": "482916",
    });
    let output = tokio::task::spawn_blocking(move || run_node("chipi_policy.mjs", &[], &input))
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("the JS SDK run failed: {error}"));
    let pretty = serde_json::to_string_pretty(&output).unwrap();
    assert_eq!(output["versions"]["backend"], "14.4.0", "{pretty}");
    assert_eq!(output["ok"], true, "a step failed: {pretty}");
    let r = &output["results"];
    assert_eq!(r["deploy_status"]["status"], "ACCEPTED", "{pretty}");
    assert_eq!(r["allowed_status"]["status"], "ACCEPTED", "{pretty}");
    for (step, code, status) in [
        ("denied_call", "CALL_NOT_SPONSORED", 403),
        ("over_the_count", "RATE_LIMITED", 429),
    ] {
        let error = &r[step]["error"];
        assert_eq!(error["name"], "ChipiApiError", "{step}: {pretty}");
        assert_eq!(error["code"], code, "{step}: {pretty}");
        assert_eq!(error["status"], status, "{step}: {pretty}");
    }
    // Two sponsored transactions (the deployment and the transfer), nothing else sent.
    let rows = pm.state.store().transactions().await.unwrap();
    let sent = rows.iter().filter(|r| r.hash.is_some()).count();
    assert_eq!(sent, 2, "{rows:#?}");
    pm.stop().await;
}
