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
    let options = chipi_cli::dev::DevOptions {
        listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        rpc_port: None,
        database: Some(database.clone()),
        policy: None,
    };
    let stack = chipi_cli::dev::start(options.clone()).await.unwrap();
    let info = &stack.info;
    assert_eq!(info.paymaster_url, format!("http://127.0.0.1:{port}"));
    assert_eq!(info.database, database.display().to_string());
    let text = chipi_cli::dev::describe(info);
    for needle in [
        &info.rpc_url,
        &info.api_public_key,
        &info.api_secret_key,
        &info.session_class_hash,
        &info.snip29_url,
    ] {
        assert!(text.contains(needle.as_str()), "{needle} not in {text}");
    }
    // The printed SNIP-29 URL answers JSON-RPC with the printed key.
    let available: serde_json::Value = reqwest::Client::new()
        .post(&info.snip29_url)
        .header("x-paymaster-api-key", &info.api_public_key)
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "paymaster_isAvailable"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(available["result"], true, "{available}");
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
    // Something on the chain and in the paymaster's records: a sponsored wallet.
    let owner = chipi_core::SecretKey::random().public_key();
    let funded = stack
        .devnet
        .deploy_session_wallet(owner, 123)
        .await
        .unwrap();
    let prepared = client
        .post(format!("{}/v1/transactions/prepare-typed-data", info.paymaster_url))
        .header("x-api-key", &info.api_public_key)
        .bearer_auth(&info.user_token)
        .json(&serde_json::json!({
            "publicKey": format!("{funded:#x}"),
            "calls": [{"contractAddress": "0x1", "entrypoint": "transfer", "calldata": ["0x2", "1", "0"]}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(prepared.status(), 200);
    let stack_records = stack.paymaster.state.store().issued_count().await.unwrap();
    assert_eq!(stack_records, 1);
    stack.paymaster.stop().await;
    stack.devnet.shutdown();
    assert!(database.exists(), "the database is kept");
    assert!(
        chipi_cli::dev::chain_file(&database).exists(),
        "the chain is kept"
    );

    // Restarted on the same files: the chain and the records are still there.
    let stack = chipi_cli::dev::start(options).await.unwrap();
    assert_eq!(stack.devnet.strk_balance(funded).await.unwrap(), 123);
    assert_eq!(
        stack.paymaster.state.store().issued_count().await.unwrap(),
        stack_records
    );
    stack.paymaster.stop().await;
    let _ = std::fs::remove_file(chipi_cli::dev::chain_file(&database));
    let _ = std::fs::remove_file(database);
}

#[tokio::test]
async fn a_policy_file_limits_the_dev_stack() {
    let dir = std::env::temp_dir().join(format!("chipi-dev-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.toml");
    std::fs::write(
        &file,
        "deny = [{ contract = \"*\", selector = \"approve\" }]\n\
         [[limits]]\nscope = \"user\"\nwindow = \"day\"\nmax_transactions = 1\n",
    )
    .unwrap();
    let policy = chipi_cli::dev::read_policy(&file).unwrap();
    let stack = chipi_cli::dev::start(chipi_cli::dev::DevOptions {
        policy: Some(policy),
        ..Default::default()
    })
    .await
    .unwrap();
    let info = &stack.info;
    let owner = chipi_core::SecretKey::random().public_key();
    let wallet = stack.devnet.deploy_session_wallet(owner, 0).await.unwrap();
    let client = reqwest::Client::new();
    let prepare = |entrypoint: &str| {
        client
            .post(format!("{}/v1/transactions/prepare-typed-data", info.paymaster_url))
            .header("x-api-key", &info.api_public_key)
            .bearer_auth(&info.user_token)
            .json(&serde_json::json!({
                "publicKey": format!("{wallet:#x}"),
                "calls": [{"contractAddress": "0x1", "entrypoint": entrypoint, "calldata": ["0x2", "1", "0"]}],
            }))
            .send()
    };
    let refused = prepare("approve").await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "CALL_NOT_SPONSORED");
    assert_eq!(body["limit"], "deny");
    assert_eq!(prepare("transfer").await.unwrap().status(), 200);
    stack.paymaster.stop().await;
    stack.devnet.shutdown();

    // A wrong key is named; the file's text (which may hold a webhook secret) is not quoted.
    std::fs::write(
        &file,
        "[webhook]\nurl = \"https://hook.example/\"\nsecret = \"s3cr3t-s3cr3t\"\ntimeout = 5\n",
    )
    .unwrap();
    let error = chipi_cli::dev::read_policy(&file).unwrap_err();
    assert!(error.contains("webhook"), "{error}");
    assert!(!error.contains("s3cr3t"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
