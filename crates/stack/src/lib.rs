//! The local stack: the paymaster service (its library, on 127.0.0.1, SQLite in a file,
//! or a fresh PostgreSQL database when [`TEST_POSTGRES_ENV`] names a server)
//! on an embedded devnet, with a configured app, funded relayers and user tokens. The
//! `chipi` CLI's `demo` and `dev` run on it, and so do the tests of the SDK, the service
//! and the JS interop.
//!
//! The app's keys and token secret here are public test values: this stack is for a
//! local devnet, never for a real network.
#![deny(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use chipi_core::SecretKey;
use chipi_devnet::Devnet;
pub use chipi_paymaster::Policy;
use chipi_paymaster::{
    AppConfig, AppState, Config, ConfigError, JwtConfig, RelayerConfig, RpcUrl, StartError,
};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use chipi_paymaster::dev::{
    temp_database, temp_postgres, temp_sqlite, API_KEY, JWT_SECRET, OTHER_API_KEY,
    OTHER_SECRET_KEY, SECRET_KEY, TEST_POSTGRES_ENV,
};
/// The predeployed account fee estimates run from by default (no test or demo sends
/// from it).
pub const ESTIMATOR: usize = 9;
/// The user the default token names.
pub const USER: &str = "user-1";

/// Why the stack did not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The configuration was refused (a bad `Options::configure` change).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The service did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The listening socket could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// The service's own runtime could not be started.
    #[error("cannot start the service's runtime: {0}")]
    Runtime(String),
    /// A test database could not be created.
    #[error("test database: {0}")]
    Database(#[from] sqlx::Error),
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

/// Changes a configuration in code (a policy, a limit) before the service starts.
pub type Configure = Arc<dyn Fn(&mut Config) + Send + Sync>;

/// How to configure the service.
#[derive(Clone)]
pub struct Options {
    /// Which predeployed devnet accounts relay.
    pub relayers: Vec<usize>,
    /// Which predeployed devnet account fee estimates run from (`None`: from a leased
    /// relayer).
    pub estimator: Option<usize>,
    /// Applied to the configuration before the service starts.
    pub configure: Option<Configure>,
    /// The database URL (a fresh one from [`temp_database`] when `None`).
    pub database: Option<String>,
    /// The node URL (the devnet's when `None`).
    pub rpc_url: Option<String>,
    /// Where to listen (a free port on 127.0.0.1 when `None`).
    pub listen: Option<SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            relayers: vec![3],
            estimator: Some(ESTIMATOR),
            configure: None,
            database: None,
            rpc_url: None,
            listen: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("relayers", &self.relayers)
            .field("estimator", &self.estimator)
            .field(
                "database",
                &self
                    .database
                    .as_deref()
                    .map(chipi_paymaster::DatabaseUrl::from),
            )
            .field("configured", &self.configure.is_some())
            .finish_non_exhaustive()
    }
}

impl Options {
    /// These options with `change` applied to the configuration (after any before it).
    #[must_use]
    pub fn configure(mut self, change: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        let before = self.configure.take();
        self.configure = Some(Arc::new(move |config: &mut Config| {
            if let Some(before) = &before {
                before(config);
            }
            change(config);
        }));
        self
    }

    /// These options with `change` applied to the local app's sponsorship policy.
    #[must_use]
    pub fn policy(self, change: impl Fn(&mut Policy) + Send + Sync + 'static) -> Self {
        self.configure(move |config| {
            if let Some(app) = config.apps.iter_mut().find(|a| a.public_key == API_KEY) {
                change(&mut app.sponsorship);
            }
        })
    }
}

/// A running service, on a runtime of its own (as the binary runs it: its tasks never
/// share threads with the caller's); stops gracefully with [`LocalPaymaster::stop`], at
/// once with [`LocalPaymaster::kill`] or when dropped.
pub struct LocalPaymaster {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The service's state (its database, metrics).
    pub state: AppState,
    /// The database URL.
    pub database: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for LocalPaymaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPaymaster")
            .field("url", &self.url)
            .field(
                "database",
                &chipi_paymaster::DatabaseUrl::from(self.database.as_str()),
            )
            .finish_non_exhaustive()
    }
}

/// The configuration of a service on `devnet` with its database at `database`, and
/// `options.configure` applied: the local app (HS256 tokens, secret key), a second app
/// with the secret key only, relayers from the predeployed accounts.
pub fn local_config(
    devnet: &Devnet,
    options: &Options,
    database: &str,
) -> Result<Config, StackError> {
    let rpc_url = match &options.rpc_url {
        Some(text) => {
            RpcUrl::parse(text).ok_or_else(|| ConfigError("rpc_url: not an http(s) URL".into()))?
        }
        None => RpcUrl(devnet.rpc_url().clone()),
    };
    let account = |index: &usize| {
        let account = devnet
            .accounts()
            .get(*index)
            .ok_or_else(|| ConfigError(format!("no predeployed account {index}")))?;
        // A predeployed account's key is a non-zero felt: always a valid key.
        SecretKey::from_hex(&format!("{:#x}", account.private_key))
            .map(|private_key| RelayerConfig {
                address: account.address,
                private_key,
            })
            .map_err(|_| ConfigError("a predeployed key is not a key".into()))
    };
    let relayers = options
        .relayers
        .iter()
        .map(account)
        .collect::<Result<Vec<_>, _>>()?;
    let mut local = AppConfig::new("local", API_KEY);
    local.secret_key_sha256 = Some(chipi_paymaster::secret_digest(SECRET_KEY));
    local.jwt = Some(JwtConfig::hs256(JWT_SECRET));
    let mut other = AppConfig::new("other", OTHER_API_KEY);
    other.secret_key_sha256 = Some(chipi_paymaster::secret_digest(OTHER_SECRET_KEY));
    let mut config = Config::new(
        rpc_url,
        vec![devnet.session_class_hash()],
        relayers,
        vec![local, other],
    );
    config.estimator = options.estimator.as_ref().map(account).transpose()?;
    config.database_url = database.into();
    config.fee_token = chipi_devnet::STRK_ADDRESS;
    config.relaying.follow_interval_ms = 50;
    config.relaying.min_balance_fri = 10u128.pow(18);
    // A local devnet's clock is moved by tests and demos: read it on every prepare.
    config.window.chain_time_cache_ms = 0;
    if let Some(configure) = &options.configure {
        configure(&mut config);
    }
    config.validate()?;
    Ok(config)
}

impl LocalPaymaster {
    /// Starts a service on `devnet` relaying from predeployed account 3.
    pub async fn start(devnet: &Devnet) -> Result<Self, StackError> {
        Self::start_with(devnet, Options::default()).await
    }

    /// Starts a service on `devnet` with `options`.
    pub async fn start_with(devnet: &Devnet, options: Options) -> Result<Self, StackError> {
        let database = match options.database.clone() {
            Some(database) => database,
            None => temp_database().await?,
        };
        let config = local_config(devnet, &options, &database)?;
        let listen = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        Self::start_config(config, database, listen).await
    }

    /// Starts a service with `config` (its database at `database`) on `listen`.
    pub async fn start_config(
        config: Config,
        database: String,
        listen: SocketAddr,
    ) -> Result<Self, StackError> {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chipi-paymaster")
            .enable_all()
            .build()
            .map_err(|e| StackError::Runtime(e.to_string()))?;
        // Built on its runtime, so its connections and tasks live there.
        let state = runtime
            .spawn(AppState::new(config))
            .await
            .map_err(|e| StackError::Runtime(e.to_string()))??;
        let (shutdown, signal) = oneshot::channel::<()>();
        let serving = state.clone();
        let task = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            chipi_paymaster::serve(listener, serving, async move {
                let _ = signal.await;
            })
            .await
        });
        Ok(Self {
            url,
            state,
            database,
            shutdown: Some(shutdown),
            task: Some(task),
            runtime: Some(runtime),
        })
    }

    /// Begins a graceful stop and returns at once: the service takes no new connection;
    /// what is in flight goes on. `stop` waits for the end.
    pub fn begin_stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Stops gracefully: in-flight requests and sends finish, the database closes.
    pub async fn stop(mut self) {
        self.begin_stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Stops at once, as a killed process does: every task of the service (requests,
    /// sends, the follower) is dropped where it stands; nothing is finished or recorded.
    /// What a restart on the same database must then resolve is left as it is.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        // The graceful signal is never sent; dropping it after the runtime is gone is inert.
        self.shutdown.take();
    }
}

impl Drop for LocalPaymaster {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Not awaited (a drop cannot wait): the service's threads are let go.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
