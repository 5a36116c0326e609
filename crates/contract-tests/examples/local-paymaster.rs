//! The paymaster service on the embedded devnet, for trying the API by hand:
//!
//! ```sh
//! cargo run -p chipi-contract-tests --example local-paymaster          # until Ctrl-C
//! cargo run -p chipi-contract-tests --example local-paymaster -- --once # start, print, stop
//! ```
//!
//! It prints the service URL, the test app's keys, a user token, the node URL and the
//! session-account class, then serves until interrupted (and shuts down gracefully).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_contract_tests::paymaster::{
    user_token, LocalPaymaster, Options, API_KEY, SECRET_KEY, USER,
};
use chipi_devnet::Devnet;

#[tokio::main]
async fn main() {
    run(std::env::args().any(|a| a == "--once")).await;
}

/// Starts everything and prints it; serves until Ctrl-C unless `once`.
/// `tests/local_paymaster_example.rs` runs it with `once`.
pub async fn run(once: bool) {
    let devnet = Devnet::start().await.expect("devnet starts");
    let pm = LocalPaymaster::start_with(
        &devnet,
        Options {
            relayers: vec![3, 4],
            ..Options::default()
        },
    )
    .await;
    println!("paymaster      {}", pm.url);
    println!("x-api-key      {API_KEY}");
    println!("secret key     {SECRET_KEY}   (Authorization: Bearer …, acts for any user)");
    println!(
        "user token     {}   (sub = {USER}, 1 hour)",
        user_token(USER)
    );
    println!("node           {}", devnet.rpc_url());
    println!("session class  {:#x}", devnet.session_class_hash());
    println!("database       {}", pm.database.display());
    println!(
        "try            curl -s {}/health | head -c 300; echo",
        pm.url
    );
    let health = reqwest::get(format!("{}/health", pm.url))
        .await
        .expect("health");
    assert!(health.status().is_success(), "the service is healthy");
    if !once {
        println!("serving; Ctrl-C stops");
        let _ = tokio::signal::ctrl_c().await;
    }
    pm.stop().await;
}
