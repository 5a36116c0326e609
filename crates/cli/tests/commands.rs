//! The commands for real use, run as the binary against the local stack (a devnet and
//! the paymaster over real HTTP): the whole path and its error paths, with exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use chipi_contract_tests::paymaster::{user_token, LocalPaymaster, Options, API_KEY};
use chipi_core::Felt;
use chipi_devnet::{Devnet, STRK_ADDRESS};
use serde_json::Value;

struct Stack {
    devnet: Devnet,
    pm: LocalPaymaster,
    dir: PathBuf,
}

struct Run {
    code: i32,
    json: Value,
    stderr: String,
}

impl Stack {
    async fn start() -> Self {
        let devnet = Devnet::start().await.unwrap();
        let pm = LocalPaymaster::start_with(
            &devnet,
            Options {
                relayers: vec![3],
                ..Options::default()
            },
        )
        .await
        .unwrap();
        let dir = std::env::temp_dir().join(format!("chipi-cli-{:016x}", rand_id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { devnet, pm, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `chipi --json --rpc-url .. --paymaster-url .. --api-key .. <args>` with `env`.
    async fn chipi(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.chipi_at(&self.pm.url, args, env).await
    }

    /// [`Stack::chipi`] with the paymaster at `paymaster_url`.
    async fn chipi_at(&self, paymaster_url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipi"));
        command
            .arg("--json")
            .args(["--rpc-url", self.devnet.rpc_url().as_str()])
            .args(["--paymaster-url", paymaster_url, "--api-key", API_KEY])
            .args(args)
            .env_remove("CHIPI_OWNER_PIN")
            .env_remove("CHIPI_SESSION_PIN")
            .env("CHIPI_TOKEN", user_token("alice"));
        for (key, value) in env {
            command.env(key, value);
        }
        run(command).await
    }
}

async fn run(mut command: tokio::process::Command) -> Run {
    let output = command.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    Run {
        code: output.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).unwrap_or(Value::String(stdout)),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

fn rand_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ std::process::id() as u64
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

const OWNER: (&str, &str) = ("CHIPI_OWNER_PIN", "owner-pin-1");
const SESSION: (&str, &str) = ("CHIPI_SESSION_PIN", "session-pin-1");

#[tokio::test]
async fn wallet_session_and_policy_commands_end_to_end() {
    let st = Stack::start().await;
    let wallet = st.path("wallet.json");
    let session = st.path("session.json");
    let class = format!("{:#x}", st.devnet.session_class_hash());
    let strk = format!("{STRK_ADDRESS:#x}");

    // wallet create: deployed by the paymaster, written in the JS shape, not overwritten.
    let r = st
        .chipi(
            &[
                "wallet",
                "create",
                "--user",
                "alice",
                "--class-hash",
                &class,
                "--out",
                s(&wallet),
            ],
            &[OWNER],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&wallet).unwrap()).unwrap();
    assert_eq!(file["walletType"], "CHIPI");
    assert!(file["encryptedPrivateKey"]
        .as_str()
        .unwrap()
        .starts_with("U2FsdGVkX1"));
    assert!(!r.stderr.contains("owner-pin-1") && !r.json.to_string().contains("owner-pin-1"));
    let address = Felt::from_hex(file["publicKey"].as_str().unwrap()).unwrap();
    let again = st
        .chipi(
            &[
                "wallet",
                "create",
                "--user",
                "alice",
                "--class-hash",
                &class,
                "--out",
                s(&wallet),
            ],
            &[OWNER],
        )
        .await;
    assert_eq!(again.code, 5, "{:?}", again.json);
    st.devnet
        .transfer_strk(&st.devnet.account(0), address, 10u128.pow(18))
        .await
        .unwrap();

    // The node from a config file instead of flags.
    let config = st.path("chipi.toml");
    std::fs::write(&config, format!("rpc_url = \"{}\"\n", st.devnet.rpc_url())).unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipi"));
    command.args([
        "--json",
        "--config",
        s(&config),
        "wallet",
        "show",
        "--wallet",
        s(&wallet),
    ]);
    let r = run(command).await;
    assert_eq!(r.code, 0, "{:?}", r.json);
    assert_eq!(r.json["deployed"], true);
    assert_eq!(r.json["classHash"], Value::String(class.clone()));
    assert_eq!(r.json["strkBalance"], "1000000000000000000");

    // session create (local) and register (owner, sponsored).
    let r = st
        .chipi(
            &[
                "session",
                "create",
                "--out",
                s(&session),
                "--duration",
                "3600",
            ],
            &[SESSION],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    let r = st
        .chipi(
            &[
                "session",
                "register",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
                "--max-calls",
                "3",
                "--allow",
                "transfer",
            ],
            &[OWNER],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    assert_eq!(r.json["sponsored"], true);

    // exec: a gasless transfer; status shows the call used.
    let call = format!("{strk}:transfer:0x77,100,0");
    let exec = |pin: &'static str, call: String| {
        let (wallet, session) = (wallet.clone(), session.clone());
        let st = &st;
        async move {
            st.chipi(
                &[
                    "session",
                    "exec",
                    "--wallet",
                    s(&wallet),
                    "--session",
                    s(&session),
                    "--call",
                    &call,
                ],
                &[("CHIPI_SESSION_PIN", pin)],
            )
            .await
        }
    };
    let r = exec("session-pin-1", call.clone()).await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    assert_eq!(
        st.devnet.strk_balance(Felt::from(0x77u8)).await.unwrap(),
        100
    );
    let r = st
        .chipi(
            &[
                "session",
                "status",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
            ],
            &[],
        )
        .await;
    assert_eq!(r.json["remainingCalls"], 2);
    assert_eq!(r.json["isActive"], true);

    // policy set / get; a transfer over it is refused with its code and exit family 7.
    let r = st
        .chipi(
            &[
                "policy",
                "set",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
                "--token",
                &strk,
                "--max-per-call",
                "50",
                "--max-per-window",
                "100",
                "--window-seconds",
                "3600",
            ],
            &[OWNER],
        )
        .await;
    assert_eq!(r.code, 0, "{:?}", r.json);
    let r = st
        .chipi(
            &[
                "policy",
                "get",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
                "--token",
                &strk,
            ],
            &[],
        )
        .await;
    assert_eq!(r.json["policy"]["maxPerCall"], "50", "{:?}", r.json);
    let r = exec("session-pin-1", format!("{strk}:transfer:0x77,60,0")).await;
    assert_eq!(r.code, 7, "{:?}", r.json);
    assert_eq!(r.json["code"], "SPENDING_LIMIT_EXCEEDED");
    let r = st
        .chipi(
            &[
                "policy",
                "remove",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
                "--token",
                &strk,
            ],
            &[OWNER],
        )
        .await;
    assert_eq!(r.code, 0, "{:?}", r.json);

    // A wrong PIN: family 6, nothing sent.
    let r = exec("wrong-pin", call.clone()).await;
    assert_eq!(r.code, 6, "{:?}", r.json);
    assert_eq!(r.json["code"], "SESSION_DECRYPTION_FAILED");

    // Without a paymaster the same command sends a direct transaction: the wallet pays.
    let before = st.devnet.strk_balance(address).await.unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipi"));
    command
        .args(["--json", "--rpc-url", st.devnet.rpc_url().as_str()])
        .args([
            "session",
            "exec",
            "--wallet",
            s(&wallet),
            "--session",
            s(&session),
        ])
        .args(["--call", &call])
        .env_remove("CHIPI_PAYMASTER_URL")
        .env("CHIPI_SESSION_PIN", "session-pin-1");
    let r = run(command).await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    assert_eq!(r.json["sponsored"], false);
    assert!(
        st.devnet.strk_balance(address).await.unwrap() < before - 100,
        "a fee was paid"
    );

    // list, revoke, refused after, listed as revoked.
    let r = st
        .chipi(&["session", "list", "--wallet", s(&wallet)], &[])
        .await;
    assert_eq!(r.json["sessions"][0]["state"], "active", "{:?}", r.json);
    let r = st
        .chipi(
            &[
                "session",
                "revoke",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
            ],
            &[OWNER],
        )
        .await;
    assert_eq!(r.code, 0, "{:?}", r.json);
    let r = exec("session-pin-1", call.clone()).await;
    assert_eq!(
        (r.code, r.json["code"].as_str()),
        (7, Some("SESSION_REVOKED"))
    );
    let r = st
        .chipi(&["session", "list", "--wallet", s(&wallet)], &[])
        .await;
    assert_eq!(r.json["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["sessions"][0]["state"], "revoked");
}

#[tokio::test]
async fn session_commands_speak_snip29_when_asked() {
    let st = Stack::start().await;
    let wallet = st.path("wallet.json");
    let session = st.path("session.json");
    let class = format!("{:#x}", st.devnet.session_class_hash());
    let strk = format!("{STRK_ADDRESS:#x}");
    let wallet_args = [
        "--user",
        "alice",
        "--class-hash",
        &class,
        "--out",
        s(&wallet),
    ];
    let r = st
        .chipi(
            &[&["wallet", "create"][..], &wallet_args].concat(),
            &[OWNER],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&wallet).unwrap()).unwrap();
    let address = Felt::from_hex(file["publicKey"].as_str().unwrap()).unwrap();
    st.devnet
        .transfer_strk(&st.devnet.account(0), address, 10u128.pow(18))
        .await
        .unwrap();
    let session_args = ["--out", s(&session), "--duration", "3600"];
    let r = st
        .chipi(
            &[&["session", "create"][..], &session_args].concat(),
            &[SESSION],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    assert_eq!(snip29_executes(&st).await, 0);

    // `--paymaster-kind snip29`: the owner registers the session over JSON-RPC.
    let snip29_url = format!("{}/", st.pm.url);
    let r = st
        .chipi_at(
            &snip29_url,
            &[
                "--paymaster-kind",
                "snip29",
                "session",
                "register",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
                "--max-calls",
                "3",
            ],
            &[OWNER],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    assert_eq!(r.json["sponsored"], true);

    // A `snip29+` URL: the session's transfer over JSON-RPC too.
    let r = st
        .chipi_at(
            &format!("snip29+{snip29_url}"),
            &[
                "session",
                "exec",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
                "--call",
                &format!("{strk}:transfer:0x7a,100,0"),
            ],
            &[SESSION],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    assert_eq!(
        st.devnet.strk_balance(Felt::from(0x7au8)).await.unwrap(),
        100
    );
    // Both went through the SNIP-29 API.
    assert_eq!(snip29_executes(&st).await, 2);
}

/// The paymaster's count of successful `paymaster_executeTransaction` calls.
async fn snip29_executes(st: &Stack) -> u64 {
    let text = reqwest::get(format!("{}/metrics", st.pm.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix =
        "chipi_paymaster_rpc_calls_total{code=\"ok\",method=\"paymaster_executeTransaction\"} ";
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn error_paths_have_their_exit_codes() {
    let st = Stack::start().await;
    let session = st.path("session.json");
    let r = st
        .chipi(
            &["session", "create", "--out", s(&session), "--duration", "1"],
            &[SESSION],
        )
        .await;
    assert_eq!(r.code, 0);
    // A wallet nobody deployed, in a well-formed file.
    let ghost = st.path("ghost.json");
    std::fs::write(
        &ghost,
        r#"{"publicKey": "0x123456789", "encryptedPrivateKey": "x", "walletType": "CHIPI"}"#,
    )
    .unwrap();
    let r = st
        .chipi(&["wallet", "show", "--wallet", s(&ghost)], &[])
        .await;
    assert_eq!((r.code, &r.json["deployed"]), (0, &Value::Bool(false)));
    let r = st
        .chipi(
            &[
                "session",
                "status",
                "--wallet",
                s(&ghost),
                "--session",
                s(&session),
            ],
            &[],
        )
        .await;
    assert_ne!(r.code, 0, "{:?}", r.json);
    assert!(r.json["code"].is_string());

    // Expired by the chain's clock (moved past it; the machine's does not matter):
    // refused before anything is signed.
    st.devnet.increase_time(3).await;
    let call = format!("{STRK_ADDRESS:#x}:transfer:0x77,1,0");
    let r = st
        .chipi(
            &[
                "session",
                "exec",
                "--wallet",
                s(&ghost),
                "--session",
                s(&session),
                "--call",
                &call,
            ],
            &[SESSION],
        )
        .await;
    assert_eq!(
        (r.code, r.json["code"].as_str()),
        (7, Some("SESSION_EXPIRED")),
        "{:?}",
        r.json
    );

    // A malformed session file: family 5, the field named, nothing of the content shown.
    let broken = st.path("broken.json");
    std::fs::write(
        &broken,
        r#"{"publicKey": "0x1", "encryptedPrivateKey": "SECRETSTUFF"}"#,
    )
    .unwrap();
    let r = st
        .chipi(
            &[
                "session",
                "status",
                "--wallet",
                s(&ghost),
                "--session",
                s(&broken),
            ],
            &[],
        )
        .await;
    assert_eq!(r.code, 5, "{:?}", r.json);
    let message = r.json["message"].as_str().unwrap();
    assert!(
        message.contains("validUntil") && !message.contains("SECRETSTUFF"),
        "{message}"
    );

    // The paymaster refusing a bad token: family 4.
    let wallet = st.path("w.json");
    let class = format!("{:#x}", st.devnet.session_class_hash());
    let r = st
        .chipi(
            &[
                "wallet",
                "create",
                "--user",
                "alice",
                "--class-hash",
                &class,
                "--out",
                s(&wallet),
            ],
            &[OWNER, ("CHIPI_TOKEN", "not-a-token")],
        )
        .await;
    assert_eq!(
        (r.code, r.json["code"].as_str()),
        (4, Some("AUTHENTICATION_FAILED")),
        "{:?}",
        r.json
    );
    assert!(!wallet.exists());

    // An unreachable node: family 3, its URL not shown.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipi"));
    command.args([
        "--json",
        "--rpc-url",
        "http://127.0.0.1:9/rpc/KEY123",
        "wallet",
        "show",
        "--wallet",
        s(&ghost),
    ]);
    let r = run(command).await;
    assert_eq!(
        (r.code, r.json["code"].as_str()),
        (3, Some("NETWORK_ERROR")),
        "{:?}",
        r.json
    );
    assert!(!r.json.to_string().contains("KEY123"));

    // No PIN and no terminal: a clear refusal, not a hang.
    let r = st
        .chipi(
            &["session", "create", "--out", s(&st.path("other.json"))],
            &[],
        )
        .await;
    assert_eq!(r.code, 5, "{:?} {}", r.json, r.stderr);
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .contains("CHIPI_SESSION_PIN"));
}

#[tokio::test]
async fn a_session_file_written_by_chipis_js_sdk_works_unchanged() {
    let st = Stack::start().await;
    let wallet = st.path("wallet.json");
    let class = format!("{:#x}", st.devnet.session_class_hash());
    let r = st
        .chipi(
            &[
                "wallet",
                "create",
                "--user",
                "alice",
                "--class-hash",
                &class,
                "--out",
                s(&wallet),
            ],
            &[OWNER],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    let address: Value = serde_json::from_str(&std::fs::read_to_string(&wallet).unwrap()).unwrap();
    let address = Felt::from_hex(address["publicKey"].as_str().unwrap()).unwrap();
    st.devnet
        .transfer_strk(&st.devnet.account(0), address, 10u128.pow(18))
        .await
        .unwrap();

    // `sessions.createSessionKey` of @chipi-stack/backend 14.4.0, stored as JSON.
    let input =
        serde_json::json!({ "create": [{ "pin": "js-pin-77", "duration": 3600 }], "load": [] });
    let output = tokio::task::spawn_blocking(move || {
        chipi_js_interop::run_node("interop.mjs", &["sessions"], &input)
    })
    .await
    .unwrap()
    .unwrap();
    let session = st.path("js-session.json");
    std::fs::write(&session, output["results"]["created"][0].as_str().unwrap()).unwrap();

    let r = st
        .chipi(
            &[
                "session",
                "register",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
                "--max-calls",
                "2",
            ],
            &[OWNER],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    let call = format!("{STRK_ADDRESS:#x}:transfer:0x88,7,0");
    let r = st
        .chipi(
            &[
                "session",
                "exec",
                "--wallet",
                s(&wallet),
                "--session",
                s(&session),
                "--call",
                &call,
            ],
            &[("CHIPI_SESSION_PIN", "js-pin-77")],
        )
        .await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    assert_eq!(st.devnet.strk_balance(Felt::from(0x88u8)).await.unwrap(), 7);
}

/// `chipi --json <args>` with no node, paymaster or PIN from the caller's environment;
/// for the commands that need none (`session create`).
async fn chipi_offline(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipi"));
    command.arg("--json").args(args);
    for variable in [
        "CHIPI_OWNER_PIN",
        "CHIPI_SESSION_PIN",
        "CHIPI_RPC_URL",
        "CHIPI_PAYMASTER_URL",
        "CHIPI_API_KEY",
        "CHIPI_CONFIG",
    ] {
        command.env_remove(variable);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    run(command).await
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chipi-cli-offline-{:016x}", rand_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// README: PINs come from the environment or the terminal, never from a flag. clap
/// refuses every spelling a user might try (usage error, exit 2) and nothing is written,
/// even with a PIN in the environment that would otherwise let the command succeed.
#[tokio::test]
async fn a_pin_is_never_taken_from_a_flag() {
    let dir = scratch_dir();
    for (i, flag) in [
        "--pin",
        "--session-pin",
        "--encrypt-key",
        "--password",
        "--pin=1234",
    ]
    .iter()
    .enumerate()
    {
        let out = dir.join(format!("session-{i}.json"));
        let mut args = vec!["session", "create", "--out", s(&out), flag];
        if !flag.contains('=') {
            args.push("1234");
        }
        let r = chipi_offline(&args, &[SESSION]).await;
        assert_eq!(r.code, 2, "{flag}: {:?} {}", r.json, r.stderr);
        assert!(
            r.stderr.contains("unexpected argument"),
            "{flag}: {}",
            r.stderr
        );
        assert!(!out.exists(), "{flag}: a file was written");
    }
    // The same command without the flag works: the refusal was the flag's.
    let out = dir.join("session.json");
    let r = chipi_offline(&["session", "create", "--out", s(&out)], &[SESSION]).await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    assert!(out.exists());
}

/// README: the CLI writes key files mode 0600 (and never overwrites one).
#[cfg(unix)]
#[tokio::test]
async fn key_files_the_cli_writes_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir();
    let out = dir.join("session.json");
    let r = chipi_offline(&["session", "create", "--out", s(&out)], &[SESSION]).await;
    assert_eq!(r.code, 0, "{:?} {}", r.json, r.stderr);
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    // A second create to the same path is refused and leaves the file as it was.
    let before = std::fs::read_to_string(&out).unwrap();
    let r = chipi_offline(&["session", "create", "--out", s(&out)], &[SESSION]).await;
    assert_eq!(r.code, 5, "{:?} {}", r.json, r.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);
}
