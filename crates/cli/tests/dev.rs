//! `chipi dev`'s stack: it serves a healthy paymaster on the port asked for, keeps its
//! database where asked, and the printed details are the ones that work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[tokio::test]
async fn the_dev_stack_serves_what_it_prints() {
    let database = std::env::temp_dir().join(format!("chipi-dev-{}.db", std::process::id()));
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let stack = chipi_cli::dev::start(chipi_cli::dev::DevOptions {
        listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        database: Some(database.clone()),
    })
    .await
    .unwrap();
    let info = &stack.info;
    assert_eq!(info.paymaster_url, format!("http://127.0.0.1:{port}"));
    assert_eq!(info.database, database.display().to_string());
    let text = chipi_cli::dev::describe(info);
    for needle in [
        &info.rpc_url,
        &info.api_public_key,
        &info.api_secret_key,
        &info.session_class_hash,
    ] {
        assert!(text.contains(needle.as_str()), "{needle} not in {text}");
    }
    let health = reqwest::get(format!("{}/health", info.paymaster_url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The printed user token and keys are accepted by the service.
    let client = reqwest::Client::new();
    let status = client
        .get(format!(
            "{}/v1/chipi-wallets/by-user?externalUserId=demo-user",
            info.paymaster_url
        ))
        .header("x-api-key", &info.api_public_key)
        .bearer_auth(&info.user_token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404, "authenticated; no wallet yet");
    stack.paymaster.stop().await;
    assert!(database.exists(), "the database is kept");
    let _ = std::fs::remove_file(database);
}
