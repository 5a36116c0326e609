//! The local stack: the paymaster service (its library, on 127.0.0.1, SQLite in a file)
//! on an embedded devnet, with a configured app, funded relayers and user tokens. The
//! `chipi` CLI's `demo` and `dev` run on it, and so do the tests of the SDK, the service
//! and the JS interop.
//!
//! The app's keys and token secret here are public test values: this stack is for a
//! local devnet, never for a real network.
#![deny(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;

use chipi_devnet::Devnet;
use chipi_paymaster::{AppState, Config, ConfigError, StartError};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The local app's public key (`x-api-key`).
pub const API_KEY: &str = "pk_dev_0123456789abcdef0123456789abcdef";
/// The local app's secret key (a bearer that acts for any of its users).
pub const SECRET_KEY: &str = "sk_dev_fedcba9876543210fedcba9876543210";
/// A second app (for cross-app tests).
pub const OTHER_API_KEY: &str = "pk_dev_otherotherotherotherotherother01";
/// The second app's secret key.
pub const OTHER_SECRET_KEY: &str = "sk_dev_otherotherotherotherotherother01";
/// The local app's HS256 user-token secret.
pub const JWT_SECRET: &str = "a-test-only-hs256-secret-of-32-bytes-or-more";
/// The user the default token names.
pub const USER: &str = "user-1";

/// Why the stack did not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The generated configuration was refused (a bug of this crate, or a bad `extra`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The service did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The listening socket could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// A user token for `sub` (HS256 with [`JWT_SECRET`]), valid for an hour.
///
/// ```
/// let token = chipi_stack::user_token("alice");
/// assert_eq!(token.split('.').count(), 3);
/// ```
pub fn user_token(sub: &str) -> String {
    token(json!({ "sub": sub, "exp": now() + 3600, "iat": now() }))
}

/// An HS256 token over arbitrary `claims` with [`JWT_SECRET`].
pub fn token(claims: serde_json::Value) -> String {
    // HS256 over a JSON value with a non-empty secret cannot fail.
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap_or_default()
}

/// Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How to configure the service.
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
    /// Where to listen (a free port on 127.0.0.1 when `None`).
    pub listen: Option<SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            relayers: vec![3],
            extra: String::new(),
            database: None,
            rpc_url: None,
            listen: None,
        }
    }
}

/// A running service; stops (gracefully) with [`LocalPaymaster::stop`] or when dropped.
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

impl std::fmt::Debug for LocalPaymaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPaymaster")
            .field("url", &self.url)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The configuration text of a service on `devnet`.
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
        if let Some(account) = devnet.accounts().get(*index) {
            text.push_str(&format!(
                "[[relayers]]\naddress = \"{:#x}\"\nprivate_key = \"{:#x}\"\n",
                account.address, account.private_key
            ));
        }
    }
    text.push_str(&format!(
        "[[apps]]\nname = \"local\"\npublic_key = \"{API_KEY}\"\nsecret_key_sha256 = \"{}\"\n[apps.jwt]\nhs256_secret = \"{JWT_SECRET}\"\n",
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
    pub async fn start(devnet: &Devnet) -> Result<Self, StackError> {
        Self::start_with(devnet, Options::default()).await
    }

    /// Starts a service on `devnet` with `options`.
    pub async fn start_with(devnet: &Devnet, options: Options) -> Result<Self, StackError> {
        let database = options.database.clone().unwrap_or_else(temp_database);
        let text = config_text(devnet, &options, &database);
        let config = Config::from_toml_str(&text, std::iter::empty::<(String, String)>())?;
        let listen = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        Self::start_config(config, database, listen).await
    }

    /// Starts a service with `config` (its database at `database`) on `listen`.
    pub async fn start_config(
        config: Config,
        database: PathBuf,
        listen: SocketAddr,
    ) -> Result<Self, StackError> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = AppState::new(config).await?;
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(chipi_paymaster::serve(
            listener,
            state.clone(),
            async move {
                let _ = signal.await;
            },
        ));
        Ok(Self {
            url,
            state,
            database,
            shutdown: Some(shutdown),
            task: Some(task),
        })
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
