//! The `chipi-paymaster` binary: its help names every configuration key, `check-config`
//! names the wrong key (and reads the file named by `CHIPI_PAYMASTER_CONFIG`),
//! `hash-secret` prints what `secret_key_sha256` wants, and `migrate` creates the tables
//! without ever showing the database's password.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

fn paymaster() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chipi-paymaster"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHIPI_PAYMASTER_")) {
        command.env_remove(key);
    }
    command
}

#[test]
fn the_help_documents_every_key_and_override() {
    let output = paymaster().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for key in [
        "listen",
        "rpc_url",
        "database_url",
        "database_max_connections",
        "postgres://",
        "account_classes",
        "fee_token",
        "fee_margin_percent",
        "max_fee_fri",
        "window.after_slack_seconds",
        "window.validity_seconds",
        "http.body_limit_bytes",
        "http.request_timeout_seconds",
        "relaying.nonce_retries",
        "relaying.park_after_failures",
        "relaying.park_seconds",
        "relaying.min_balance_fri",
        "relaying.follow_interval_ms",
        "[[relayers]] address, private_key",
        "secret_key_sha256",
        "hs256_secret",
        "jwks_file",
        "jwks_url",
        "jwks_cache_seconds",
        "issuer",
        "audience",
        "leeway_seconds",
        "CHIPI_PAYMASTER_<TABLE>__<KEY>",
        "check-config",
        "hash-secret",
        "migrate",
        "--log-json",
        "--dev",
        "apps.sponsorship",
        "in_flight_per_wallet",
        "/v1/sponsorship/usage",
    ] {
        assert!(help.contains(key), "{key} is not in --help");
    }
}

const CONFIG: &str = r#"
rpc_url = "http://127.0.0.1:1/rpc"
account_classes = ["0x561fd5a"]
[[relayers]]
address = "0x1234"
private_key = "0x5678"
[[apps]]
name = "demo"
public_key = "pk_dev_0123456789abcdef0123456789abcdef"
secret_key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
"#;

#[test]
fn check_config_names_the_wrong_key_and_reads_the_file_from_the_environment() {
    let dir = std::env::temp_dir().join(format!("chipi-pm-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, CONFIG).unwrap();
    let output = paymaster()
        .arg("check-config")
        .env("CHIPI_PAYMASTER_CONFIG", &good)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = paymaster()
        .args(["--config", good.to_str().unwrap(), "check-config"])
        .env(
            "CHIPI_PAYMASTER_RELAYERS",
            r#"[{address = "0x1", private_key = "0x0"}]"#,
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("relayers[0].private_key"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hash_secret_prints_the_sha256_of_standard_input() {
    let mut child = paymaster()
        .arg("hash-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"test\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
}

#[test]
fn the_local_stacks_keys_are_refused_without_dev() {
    let dir = std::env::temp_dir().join(format!("chipi-pm-dev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("local.toml");
    // CONFIG uses the local stack's public key; the node port answers nothing.
    std::fs::write(
        &file,
        CONFIG.replace(
            "rpc_url = ",
            &format!(
                "database_url = \"sqlite://{}/pm.db\"\nrpc_url = ",
                dir.display()
            ),
        ),
    )
    .unwrap();
    let run = |dev: bool| {
        let mut command = paymaster();
        command.args(["--config", file.to_str().unwrap()]);
        command.env("CHIPI_PAYMASTER_RPC_URL", "http://127.0.0.1:9/rpc");
        if dev {
            command.arg("--dev");
        }
        command.output().unwrap()
    };
    let refused = run(false);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("`apps[0].public_key`"), "{stderr}");
    assert!(stderr.contains("--dev"), "{stderr}");
    // With --dev the keys pass; it then stops at the node, which does not answer.
    let accepted = run(true);
    assert!(!accepted.status.success());
    let stderr = String::from_utf8_lossy(&accepted.stderr);
    assert!(stderr.contains("does not answer"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `migrate` on `database`: (succeeded, stdout and stderr).
fn migrate(database: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("chipi-pm-migrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pm.toml");
    std::fs::write(&file, CONFIG).unwrap();
    let output = paymaster()
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .env("CHIPI_PAYMASTER_DATABASE_URL", database)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn migrate_creates_the_tables_once_and_never_shows_the_password() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // SQLite, or PostgreSQL when the tests run on it; twice: the second finds it done.
    let database = runtime
        .block_on(chipi_contract_tests::paymaster::temp_database())
        .unwrap();
    for _ in 0..2 {
        let (ok, text) = migrate(&database);
        assert!(ok, "{text}");
        assert!(text.contains("migrated"), "{text}");
    }
    let store = runtime
        .block_on(chipi_paymaster::Store::open(&database))
        .unwrap();
    assert_eq!(runtime.block_on(store.issued_count()).unwrap(), 0);
    runtime.block_on(store.close());

    // A server that is not there: the error names the database without its password.
    let (ok, text) = migrate("postgres://pm:SECRET-PW@127.0.0.1:9/pm?password=SECRET-Q");
    assert!(!ok);
    assert!(text.contains("postgres://pm@127.0.0.1:9/pm"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");
}
