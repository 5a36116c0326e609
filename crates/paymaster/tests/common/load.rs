//! Many wallets at once, a node that can be cut off, and the service as a real child
//! process: what the load and fault tests share.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chipi_contract_tests::paymaster::{user_token, API_KEY, JWT_SECRET, SECRET_KEY, USER};
use chipi_contract_tests::{random_key, STRK};
use chipi_core::{public_key_of, Felt, OutsideExecution};
use chipi_devnet::Devnet;
use serde_json::{json, Value};

/// A session wallet and its owner key.
pub struct Wallet {
    pub key: Felt,
    pub address: Felt,
}

/// The wallet of `e`, and `more` new ones deployed with 10 STRK each.
pub async fn wallets(e: &super::Env, more: usize) -> Vec<Wallet> {
    let mut wallets = vec![Wallet {
        key: e.w.owner_key,
        address: e.w.address,
    }];
    for _ in 0..more {
        let key = random_key();
        let address =
            e.w.devnet
                .deploy_session_wallet(public_key_of(&key).unwrap(), 10 * STRK)
                .await
                .unwrap();
        wallets.push(Wallet { key, address });
    }
    wallets
}

/// A STRK transfer of `amount` to `to`, as the API takes calls.
pub fn transfer(to: u64, amount: u64) -> Value {
    json!({
        "contractAddress": format!("{:#x}", chipi_devnet::STRK_ADDRESS),
        "entrypoint": "transfer",
        "calldata": [format!("{to:#x}"), amount.to_string(), "0"],
    })
}

/// POSTs `body` to `url` as the local app's user; status and JSON body, or why no
/// answer came (a connection cut by a killed instance).
pub async fn try_post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> Result<(u16, Value), String> {
    let response = http
        .post(url)
        .header("x-api-key", API_KEY)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.json().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// [`try_post`], answered.
pub async fn post(http: &reqwest::Client, url: &str, token: &str, body: &Value) -> (u16, Value) {
    try_post(http, url, token, body).await.unwrap()
}

/// Prepare at `base` and sign as the owner: the execute request's body.
pub async fn signed_body(
    http: &reqwest::Client,
    base: &str,
    wallet: &Wallet,
    call: Value,
) -> Value {
    let token = user_token(USER);
    let address = format!("{:#x}", wallet.address);
    let (status, prepared) = post(
        http,
        &format!("{base}/v1/transactions/prepare-typed-data"),
        &token,
        &json!({ "publicKey": address, "calls": [call] }),
    )
    .await;
    assert_eq!(status, 200, "{prepared}");
    let typed_data = &prepared["typedData"];
    let (execution, chain) = OutsideExecution::from_typed_data(typed_data).unwrap();
    let (r, s) =
        chipi_core::sign_hash(&wallet.key, execution.message_hash(chain, wallet.address)).unwrap();
    json!({
        "publicKey": address,
        "typedData": typed_data,
        "userSignature": { "r": format!("{r:#x}"), "s": format!("{s:#x}") },
    })
}

/// The execute route at `base`.
pub fn execute_url(base: &str) -> String {
    format!("{base}/v1/transactions/execute-sponsored-transaction")
}

/// Prepare, sign as the owner, execute: the execute's answer.
pub async fn sponsored(
    http: &reqwest::Client,
    base: &str,
    wallet: &Wallet,
    call: Value,
) -> (u16, Value) {
    let body = signed_body(http, base, wallet, call).await;
    post(http, &execute_url(base), &user_token(USER), &body).await
}

/// A TCP relay to the devnet that can be cut and restored.
pub struct Cable {
    pub url: String,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Cable {
    pub async fn to(target: &url::Url) -> Self {
        let address: SocketAddr = format!(
            "{}:{}",
            target.host_str().unwrap(),
            target.port_or_known_default().unwrap()
        )
        .parse()
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut url = target.clone();
        url.set_port(Some(listener.local_addr().unwrap().port()))
            .unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (flag, list) = (down.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: connection reset
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(address).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            url: url.to_string(),
            down,
            connections,
        }
    }

    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// The `chipi-paymaster` binary serving as a child process, killed when dropped.
pub struct Process {
    pub url: String,
    child: std::process::Child,
    dir: PathBuf,
}

/// Settings of the local stack's configuration a child process takes as TOML lines
/// (`[table]` headers included), beside its relayers, node and database.
pub struct ProcessConfig<'a> {
    pub devnet: &'a Devnet,
    pub rpc_url: &'a str,
    pub database: &'a str,
    pub relayers: &'a [usize],
    pub estimator: usize,
    /// Top-level settings (tables included), before the relayers.
    pub extra: &'a str,
    /// The local app's own tables (`[apps.sponsorship]`), after its keys.
    pub app_extra: &'a str,
}

impl Process {
    /// Starts the binary with `config` (and `--dev`: the devnet's well-known keys) on a
    /// free port; returns once it answers `/health`.
    pub async fn start(config: ProcessConfig<'_>) -> Self {
        let dir = std::env::temp_dir().join(format!("chipi-pm-child-{:x}", random_key()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let accounts = config.devnet.accounts();
        let account = |i: usize| {
            format!(
                "address = \"{:#x}\"\nprivate_key = \"{:#x}\"\n",
                accounts[i].address, accounts[i].private_key
            )
        };
        let mut text = format!(
            "listen = \"127.0.0.1:{port}\"\nrpc_url = \"{}\"\ndatabase_url = \"{}\"\n\
             account_classes = [\"{:#x}\"]\nfee_token = \"{:#x}\"\n",
            config.rpc_url,
            config.database,
            config.devnet.session_class_hash(),
            chipi_devnet::STRK_ADDRESS,
        );
        text.push_str(config.extra);
        for &i in config.relayers {
            text.push_str(&format!("\n[[relayers]]\n{}", account(i)));
        }
        text.push_str(&format!("\n[estimator]\n{}", account(config.estimator)));
        text.push_str(&format!(
            "\n[[apps]]\nname = \"local\"\npublic_key = \"{API_KEY}\"\nsecret_key_sha256 = \"{}\"\n\
             [apps.jwt]\nhs256_secret = \"{JWT_SECRET}\"\n{}",
            chipi_paymaster::hash_secret(SECRET_KEY),
            config.app_extra,
        ));
        let file = dir.join("paymaster.toml");
        std::fs::write(&file, text).unwrap();
        let log = std::fs::File::create(dir.join("paymaster.log")).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_chipi-paymaster"))
            .arg("--config")
            .arg(&file)
            .arg("--dev")
            .env_remove("CHIPI_PAYMASTER_CONFIG")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut process = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if http
                .get(format!("{}/health", process.url))
                .send()
                .await
                .is_ok()
            {
                return process;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "the paymaster exited at start ({status}): {}",
                    process.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        process.kill();
        panic!("the paymaster never answered: {}", process.log());
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("paymaster.log")).unwrap_or_default()
    }

    /// SIGKILL: it stops wherever it is, nothing finished or recorded.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
