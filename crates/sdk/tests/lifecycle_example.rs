//! Runs the lifecycle example (the README's first command) as a test: its code is this
//! test's code, and it fails when a step that should be refused is accepted.

#[allow(dead_code)] // the example's `main`
#[path = "../examples/lifecycle.rs"]
mod lifecycle;

#[tokio::test]
async fn the_lifecycle_example_runs() {
    if let Err(error) = lifecycle::run().await {
        panic!("the lifecycle example failed: {error}");
    }
}
