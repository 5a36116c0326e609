//! Runs the `local-paymaster` example (docs/paymaster.md) once: it starts, is healthy,
//! and stops gracefully.

#[allow(dead_code)] // the example's `main`
#[path = "../examples/local-paymaster.rs"]
mod local_paymaster;

#[tokio::test]
async fn the_local_paymaster_example_starts_healthy_and_stops() {
    local_paymaster::run(true).await;
}
