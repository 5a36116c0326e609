//! The real paymaster service on the devnet, over real HTTP on 127.0.0.1, with a SQLite
//! database in a temporary file: what the SDK's and the service's tests talk to.

use std::path::PathBuf;

use chipi_devnet::Devnet;
use chipi_paymaster::{AppState, Config};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The test app's public key.
pub const API_KEY: &str = "pk_dev_0123456789abcdef0123456789abcdef";
/// The test app's secret key.
pub const SECRET_KEY: &str = "sk_dev_fedcba9876543210fedcba9876543210";
/// A second app (for cross-app tests).
pub const OTHER_API_KEY: &str = "pk_dev_otherotherotherotherotherother01";
/// The second app's secret key.
pub const OTHER_SECRET_KEY: &str = "sk_dev_otherotherotherotherotherother01";
/// The test app's HS256 user-token secret.
pub const JWT_SECRET: &str = "a-test-only-hs256-secret-of-32-bytes-or-more";
/// The user the default token names.
pub const USER: &str = "user-1";

/// A user token for `sub`, valid for an hour.
pub fn user_token(sub: &str) -> String {
    token(json!({ "sub": sub, "exp": now() + 3600, "iat": now() }))
}

/// An HS256 token over arbitrary `claims` with the test app's secret.
pub fn token(claims: serde_json::Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("token encodes")
}

/// Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// How to configure a test service.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which predeployed devnet accounts relay.
    pub relayers: Vec<usize>,
    /// Extra TOML appended to the configuration.
    pub extra: String,
    /// The database file (a fresh temporary one when `None`).
    pub database: Option<PathBuf>,
    /// The node URL (the devnet's when `None`).
    pub rpc_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            relayers: vec![3],
            extra: String::new(),
            database: None,
            rpc_url: None,
        }
    }
}

/// A running service; stops (gracefully) when dropped or with [`LocalPaymaster::stop`].
pub struct LocalPaymaster {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The service's state (its database, metrics).
    pub state: AppState,
    /// The database file.
    pub database: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// The configuration text of a test service on `devnet`.
pub fn config_text(devnet: &Devnet, options: &Options, database: &std::path::Path) -> String {
    let mut text = format!(
        "rpc_url = \"{}\"\ndatabase_url = \"sqlite://{}\"\naccount_classes = [\"{:#x}\"]\nfee_token = \"{:#x}\"\n",
        options
            .rpc_url
            .clone()
            .unwrap_or_else(|| devnet.rpc_url().to_string()),
        database.display(),
        devnet.session_class_hash(),
        chipi_devnet::STRK_ADDRESS,
    );
    if !options.extra.contains("[relaying]") {
        text.push_str(
            "[relaying]\nfollow_interval_ms = 50\nmin_balance_fri = 1000000000000000000\n",
        );
    }
    for index in &options.relayers {
        let account = &devnet.accounts()[*index];
        text.push_str(&format!(
            "[[relayers]]\naddress = \"{:#x}\"\nprivate_key = \"{:#x}\"\n",
            account.address, account.private_key
        ));
    }
    text.push_str(&format!(
        "[[apps]]\nname = \"test\"\npublic_key = \"{API_KEY}\"\nsecret_key_sha256 = \"{}\"\n[apps.jwt]\nhs256_secret = \"{JWT_SECRET}\"\n",
        chipi_paymaster::hash_secret(SECRET_KEY)
    ));
    text.push_str(&format!(
        "[[apps]]\nname = \"other\"\npublic_key = \"{OTHER_API_KEY}\"\nsecret_key_sha256 = \"{}\"\n",
        chipi_paymaster::hash_secret(OTHER_SECRET_KEY)
    ));
    text.push_str(&options.extra);
    text
}

/// A fresh temporary database path.
pub fn temp_database() -> PathBuf {
    std::env::temp_dir().join(format!(
        "chipi-paymaster-{:032x}.db",
        rand::random::<u128>()
    ))
}

impl LocalPaymaster {
    /// Starts a service on `devnet` relaying from predeployed account 3.
    pub async fn start(devnet: &Devnet) -> Self {
        Self::start_with(devnet, Options::default()).await
    }

    /// Starts a service on `devnet` with `options`.
    pub async fn start_with(devnet: &Devnet, options: Options) -> Self {
        let database = options.database.clone().unwrap_or_else(temp_database);
        let text = config_text(devnet, &options, &database);
        let config = Config::from_toml_str(&text, std::iter::empty::<(String, String)>())
            .expect("test configuration is valid");
        Self::start_config(config, database).await
    }

    /// Starts a service with `config` (its database at `database`).
    pub async fn start_config(config: Config, database: PathBuf) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = AppState::new(config).await.expect("service starts");
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(chipi_paymaster::serve(
            listener,
            state.clone(),
            async move {
                let _ = signal.await;
            },
        ));
        Self {
            url,
            state,
            database,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Stops gracefully: in-flight requests and sends finish, the database closes.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LocalPaymaster {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
