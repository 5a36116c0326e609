//! Configuration: [`ChipiSdkBuilder`], the [`Transport`] and the [`Clock`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chipi_core::{ErrorCode, Felt, KdfLimits};
use starknet_rust_providers::jsonrpc::HttpTransport;
use starknet_rust_providers::JsonRpcClient;
use tokio::sync::OnceCell;
use url::Url;

use crate::client::{ChipiSdk, Inner};
use crate::snip29::Snip29Paymaster;
use crate::sponsored::{Paymaster, DEFAULT_MAX_EXECUTION_WINDOW_SECONDS};
use crate::{SessionError, Snip29Fee};

/// How writes reach the chain.
///
/// ```
/// use chipi_sdk::{ChipiSdk, Transport};
///
/// // Any SNIP-29 paymaster (ours serves it at `/`), sponsored by default.
/// let sdk = ChipiSdk::builder("http://127.0.0.1:5050/rpc")
///     .transport(Transport::Snip29 {
///         url: "https://paymaster.example/".into(),
///         api_key: Some("pk_dev_0123456789abcdef0123456789abcdef".into()),
///     })
///     .build()?;
/// assert!(matches!(sdk.transport(), Transport::Snip29 { .. }));
/// // The key never shows.
/// assert!(!format!("{sdk:?}").contains("pk_dev"));
/// # Ok::<(), chipi_sdk::SessionError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum Transport {
    /// Through Chipi's paymaster API as SNIP-9 outside executions: the user pays no gas
    /// (the seed's default; needs a paymaster URL and an API key, see
    /// [`ChipiSdkBuilder::paymaster`]).
    Sponsored,
    /// INVOKE v3 transactions through the node, fees paid by the wallet.
    Direct,
    /// Through any SNIP-29 paymaster (ours at `POST /`, AVNU's, Cartridge's) as SNIP-9
    /// outside executions; who pays is [`ChipiSdkBuilder::snip29_fee`] (sponsored by
    /// default). The typed data is checked as for [`Transport::Sponsored`].
    Snip29 {
        /// The JSON-RPC endpoint.
        url: String,
        /// Sent as `x-paymaster-api-key` when given.
        api_key: Option<String>,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sponsored => f.write_str("Sponsored"),
            Self::Direct => f.write_str("Direct"),
            Self::Snip29 { url, api_key } => f
                .debug_struct("Snip29")
                .field("url", &shown_url(url))
                .field("api_key", &api_key.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// A source of the current unix time, in seconds.
pub trait Clock: Send + Sync {
    /// Now, in unix seconds.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

impl<F: Fn() -> u64 + Send + Sync> Clock for F {
    fn now(&self) -> u64 {
        self()
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> SessionError {
    SessionError::new(ErrorCode::InvalidInput, message)
}

/// A URL as it may be shown: scheme, host and port. Node and paymaster URLs may carry
/// an API key in their path, query or user info (`https://host/v2/<KEY>`).
pub(crate) fn shown_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("");
            match url.port() {
                Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
                None => format!("{}://{host}/…", url.scheme()),
            }
        }
        Err(_) => "<not a URL>".into(),
    }
}

/// Builds a [`ChipiSdk`]. Secrets given here (API key, bearer token, the paths of the
/// node and paymaster URLs) never appear in `Debug` output or errors.
///
/// ```
/// use chipi_sdk::ChipiSdk;
///
/// let builder = ChipiSdk::builder("https://rpc.example/v2/SECRET");
/// assert!(!format!("{builder:?}").contains("SECRET"));
/// let sdk = builder.build()?;
/// assert!(!format!("{sdk:?}").contains("SECRET"));
/// # Ok::<(), chipi_sdk::SessionError>(())
/// ```
#[must_use]
pub struct ChipiSdkBuilder {
    rpc_url: String,
    chain_id: Option<Felt>,
    paymaster_url: Option<String>,
    api_key: Option<String>,
    bearer_token: Option<String>,
    transport: Option<Transport>,
    snip29_fee: Snip29Fee,
    clock: Option<Arc<dyn Clock>>,
    max_execution_window: u64,
    timeout: Duration,
    confirmation_timeout: Duration,
    kdf_limits: KdfLimits,
}

impl std::fmt::Debug for ChipiSdkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChipiSdkBuilder")
            .field("rpc_url", &shown_url(&self.rpc_url))
            .field("chain_id", &self.chain_id)
            .field(
                "paymaster_url",
                &self.paymaster_url.as_deref().map(shown_url),
            )
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl ChipiSdkBuilder {
    pub(crate) fn new(rpc_url: String) -> Self {
        Self {
            rpc_url,
            chain_id: None,
            paymaster_url: None,
            api_key: None,
            bearer_token: None,
            transport: None,
            snip29_fee: Snip29Fee::Sponsored,
            clock: None,
            max_execution_window: DEFAULT_MAX_EXECUTION_WINDOW_SECONDS,
            timeout: Duration::from_secs(30),
            confirmation_timeout: Duration::from_secs(120),
            kdf_limits: KdfLimits::default(),
        }
    }

    /// The chain id (e.g. [`chipi_core::chain_id::SEPOLIA`]); read from the node when
    /// not given.
    pub fn chain_id(mut self, chain_id: Felt) -> Self {
        self.chain_id = Some(chain_id);
        self
    }

    /// The paymaster's base URL (the API's `/v1` paths go under it) and the app's API
    /// key (`pk_dev_...` / `pk_prod_...`). Makes [`Transport::Sponsored`] the default.
    pub fn paymaster(mut self, url: impl Into<String>, api_key: impl Into<String>) -> Self {
        self.paymaster_url = Some(url.into());
        self.api_key = Some(api_key.into());
        self
    }

    /// The bearer token (JWT) used when a call passes none.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// The transport for writes; by default sponsored when a paymaster is configured,
    /// direct otherwise.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Who pays a [`Transport::Snip29`] paymaster (default: its sponsorship).
    pub fn snip29_fee(mut self, fee: Snip29Fee) -> Self {
        self.snip29_fee = fee;
        self
    }

    /// The time source for expiry and time windows. By default the chain's time (the
    /// latest block's, read through the node and cached briefly, see
    /// [`ChipiSdk::chain_now`]), with the system clock as the fallback: the wallet and
    /// the paymaster judge by the chain, which may be ahead of or behind this machine.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The longest time window, in seconds, of an outside execution the SDK agrees to
    /// sign for the paymaster (default one hour).
    pub fn max_execution_window(mut self, seconds: u64) -> Self {
        self.max_execution_window = seconds;
        self
    }

    /// The timeout of each paymaster request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long [`ChipiSdk::wait_for_transaction`] waits for a receipt (default 120 s).
    pub fn confirmation_timeout(mut self, timeout: Duration) -> Self {
        self.confirmation_timeout = timeout;
        self
    }

    /// The most a strong-format key file may ask of this machine's KDF (default: 4x
    /// [`Argon2Settings::default`](crate::Argon2Settings)); a file asking for more fails
    /// with `SESSION_DECRYPTION_FAILED` before the KDF runs.
    pub fn kdf_limits(mut self, limits: KdfLimits) -> Self {
        self.kdf_limits = limits;
        self
    }

    /// Checks the configuration and builds the client; makes no network call.
    pub fn build(self) -> Result<ChipiSdk, SessionError> {
        let rpc_url = Url::parse(&self.rpc_url)
            .map_err(|e| invalid(format!("the RPC URL is not a URL ({e})")))?;
        let paymaster = match (self.paymaster_url, self.api_key) {
            (Some(url), Some(api_key)) => {
                let mut url = Url::parse(&url)
                    .map_err(|e| invalid(format!("the paymaster URL is not a URL ({e})")))?;
                // `join` keeps the base's last segment only if it ends with '/'.
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                if api_key.is_empty() {
                    return Err(invalid("the paymaster API key is empty"));
                }
                Some(Paymaster::new(url, api_key, self.timeout)?)
            }
            _ => None,
        };
        let transport = self.transport.unwrap_or(if paymaster.is_some() {
            Transport::Sponsored
        } else {
            Transport::Direct
        });
        if transport == Transport::Sponsored && paymaster.is_none() {
            return Err(invalid(
                "the sponsored transport needs a paymaster URL and an API key",
            ));
        }
        let snip29 = match &transport {
            Transport::Snip29 { url, api_key } => {
                let url = Url::parse(url)
                    .map_err(|e| invalid(format!("the SNIP-29 URL is not a URL ({e})")))?;
                if api_key.as_deref() == Some("") {
                    return Err(invalid("the SNIP-29 API key is empty (pass None for none)"));
                }
                Some(Snip29Paymaster::new(
                    url,
                    api_key.clone(),
                    self.snip29_fee,
                    self.timeout,
                )?)
            }
            _ => None,
        };
        Ok(ChipiSdk {
            inner: Arc::new(Inner {
                provider: JsonRpcClient::new(HttpTransport::new(rpc_url)),
                rpc_url_shown: shown_url(&self.rpc_url),
                chain_id: match self.chain_id {
                    Some(id) => OnceCell::new_with(Some(id)),
                    None => OnceCell::new(),
                },
                paymaster,
                snip29,
                bearer_token: self.bearer_token,
                transport,
                chain_clock: self.clock.is_none(),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                chain_offset: std::sync::Mutex::new(None),
                max_execution_window: self.max_execution_window,
                confirmation_timeout: self.confirmation_timeout,
                kdf_limits: self.kdf_limits,
            }),
        })
    }
}
