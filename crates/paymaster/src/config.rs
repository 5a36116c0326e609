//! The service's configuration: one TOML file, environment overrides, validated at start
//! with messages that name the wrong key.
//!
//! Every top-level key can be overridden by `CHIPI_PAYMASTER_<KEY>`, and a nested one by
//! `CHIPI_PAYMASTER_<TABLE>__<KEY>` (e.g. `CHIPI_PAYMASTER_WINDOW__VALIDITY_SECONDS=300`).
//! The value is read as a TOML value when it is one (`[{address = "0x1", ...}]`,
//! `300`), otherwise as a string (`http://localhost:5050`).
//!
//! ```
//! use chipi_paymaster::Config;
//!
//! let config = Config::from_toml_str(r#"
//!     rpc_url = "http://127.0.0.1:5050/rpc"
//!     account_classes = ["0x561fd5a"]
//!     [[relayers]]
//!     address = "0x1234"
//!     private_key = "0x5678"
//!     [[apps]]
//!     name = "demo"
//!     public_key = "pk_dev_0123456789abcdef0123456789abcdef"
//!     secret_key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//!     [apps.jwt]
//!     hs256_secret = "a-long-shared-secret-of-the-demo-app"
//! "#, [("CHIPI_PAYMASTER_FEE_MARGIN_PERCENT", "20")])?;
//! assert_eq!(config.fee_margin_percent, 20);
//! assert!(!format!("{config:?}").contains("0x5678"));
//! # Ok::<(), chipi_paymaster::ConfigError>(())
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use chipi_core::{Felt, SecretKey};
use serde::Deserialize;

use crate::policy::Policy;
pub(crate) use crate::values::{amount, felt, wrong};
pub use crate::values::{redact_url, ConfigError, DatabaseUrl, RpcUrl, Secret};
use zeroize::Zeroizing;

/// The environment prefix of overrides.
pub const ENV_PREFIX: &str = "CHIPI_PAYMASTER_";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// Where `/health` and `/metrics` are served instead of `listen` (the operator's
    /// network); on `listen` when absent.
    #[serde(default)]
    pub operations_listen: Option<SocketAddr>,
    /// The Starknet node's JSON-RPC URL (it may hold a key: never logged).
    pub rpc_url: RpcUrl,
    /// `sqlite://path` (created when missing; one instance) or `sqlite::memory:`, or
    /// `postgres://user:password@host:port/db` (several instances; the database must
    /// exist). Never shown whole: its password is redacted in every message.
    #[serde(default = "defaults::database_url")]
    pub database_url: DatabaseUrl,
    /// The most connections the service opens to the database.
    #[serde(default = "defaults::database_max_connections")]
    pub database_max_connections: u32,
    /// The account classes this paymaster deploys and relays for; the first is the default.
    #[serde(deserialize_with = "felts")]
    pub account_classes: Vec<Felt>,
    /// Margin over the fee estimate, in percent, for the transaction's resource bounds.
    #[serde(default = "defaults::fee_margin_percent")]
    pub fee_margin_percent: u32,
    /// The largest fee (in fri) one sponsored transaction may be bounded by, for every app
    /// (an app's policy may only lower it).
    #[serde(default = "defaults::max_fee_fri", deserialize_with = "amount")]
    pub max_fee_fri: u128,
    /// The token relayers pay fees in (STRK).
    #[serde(default = "defaults::fee_token", deserialize_with = "felt_value")]
    pub fee_token: Felt,
    /// Outside-execution windows handed out.
    #[serde(default)]
    pub window: WindowConfig,
    /// HTTP limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// How relayers are leased, retried and parked.
    #[serde(default)]
    pub relaying: RelayingConfig,
    /// The accounts that pay.
    pub relayers: Vec<RelayerConfig>,
    /// The account fee estimates run from: of the relayers' class, deployed, never used
    /// to send (it needs no balance). With it a simulation holds no relayer; without it
    /// each estimate leases one, and a slow simulation keeps it from paying for others.
    #[serde(default)]
    pub estimator: Option<RelayerConfig>,
    /// The apps allowed to use the service.
    pub apps: Vec<AppConfig>,
    /// The standard API's fee payments (SNIP-29 `default` mode).
    #[serde(default)]
    pub snip29: Snip29Config,
}

/// The standard API's knobs: SNIP-29's `default` fee mode (the user pays the fee in a
/// token, by a final transfer to the fee collector) and the tips its clients may ask for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Snip29Config {
    /// Who receives the users' fee transfers; the first relayer when absent.
    #[serde(deserialize_with = "optional_felt")]
    pub fee_collector: Option<Felt>,
    /// Tokens fees may be paid in besides STRK (always accepted, 1:1), with fixed prices.
    pub gas_tokens: Vec<GasTokenConfig>,
    /// The relayer transaction's tip (fri per L2 gas unit) for `slow`, `normal`, `fast`.
    pub tips: TipsConfig,
    /// The largest `{custom}` tip (fri per L2 gas unit); above it a build is refused.
    pub max_tip: u64,
    /// How long a sponsored build's fee quote is reused for the same wallet, tip and
    /// call shape (targets, selectors, calldata lengths); 0: every build simulates. The
    /// quote is informational when the app pays (the execute simulates what is sent and
    /// caps it), so the build need not cost the node a simulation each time; `default`
    /// mode, where the quote sets what the user pays, always simulates.
    pub sponsored_quote_cache_seconds: u64,
}

impl Default for Snip29Config {
    fn default() -> Self {
        Self {
            fee_collector: None,
            gas_tokens: Vec::new(),
            tips: TipsConfig::default(),
            max_tip: 10_000_000_000,
            sponsored_quote_cache_seconds: 30,
        }
    }
}

/// The named tips, in fri per L2 gas unit. The defaults suit a devnet (its L2 gas price
/// is 10^9 fri): a tip costs `tip x L2 gas bound` on top of the fee, sponsored or paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TipsConfig {
    /// `slow`: no tip by default.
    pub slow: u64,
    /// `normal`.
    pub normal: u64,
    /// `fast`.
    pub fast: u64,
}

impl Default for TipsConfig {
    fn default() -> Self {
        Self {
            slow: 0,
            normal: 100_000_000,
            fast: 1_000_000_000,
        }
    }
}

/// Why a tip cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fee_mode.tip: a custom tip of {asked} fri per L2 gas unit is above this service's maximum ({max})")]
pub struct TipTooHigh {
    /// The tip asked for.
    pub asked: u64,
    /// `snip29.max_tip`.
    pub max: u64,
}

impl Snip29Config {
    /// The tip (fri per L2 gas unit) for what a client asked; none asked is no tip.
    pub fn tip(&self, asked: Option<chipi_core::snip29::Tip>) -> Result<u64, TipTooHigh> {
        use chipi_core::snip29::Tip;
        match asked {
            None => Ok(0),
            Some(Tip::Slow) => Ok(self.tips.slow),
            Some(Tip::Normal) => Ok(self.tips.normal),
            Some(Tip::Fast) => Ok(self.tips.fast),
            Some(Tip::Custom(asked)) if asked > self.max_tip => Err(TipTooHigh {
                asked,
                max: self.max_tip,
            }),
            Some(Tip::Custom(tip)) => Ok(tip),
        }
    }
}

/// A token fees may be paid in, at a fixed price.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasTokenConfig {
    /// The ERC-20.
    #[serde(deserialize_with = "felt_value")]
    pub address: Felt,
    /// Its decimals (at most 36).
    pub decimals: u8,
    /// Fri per whole token (10^decimals units); above zero.
    #[serde(deserialize_with = "amount")]
    pub price_in_strk: u128,
}

impl Config {
    /// Who receives default-mode fee payments.
    pub fn fee_collector(&self) -> Felt {
        self.snip29
            .fee_collector
            .or_else(|| self.relayers.first().map(|r| r.address))
            .unwrap_or(Felt::ZERO)
    }
}

/// Outside-execution time windows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// `execute_after` = chain time minus this.
    pub after_slack_seconds: u64,
    /// `execute_before` = chain time plus this; also how long an issued nonce is honoured.
    pub validity_seconds: u64,
    /// Prepared and not yet executed nonces one user, or one wallet, may hold at once.
    pub max_outstanding: u32,
    /// How long the chain time read for a window is reused (0: read it every time).
    pub chain_time_cache_ms: u64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            after_slack_seconds: 60,
            validity_seconds: 600,
            max_outstanding: 128,
            chain_time_cache_ms: 1000,
        }
    }
}

/// HTTP limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body.
    pub body_limit_bytes: usize,
    /// A request not answered by then gets a 503 (its work, once started, still finishes).
    pub request_timeout_seconds: u64,
    /// Requests served at once; more are answered 503 `OVERLOADED` at once.
    pub max_concurrent_requests: usize,
    /// Requests of one user (of one app) in the service at once; more are answered 429
    /// `RATE_LIMITED` at once, before any database or node work.
    pub max_concurrent_per_user: usize,
    /// A client that has not sent its request's headers by then is disconnected.
    pub header_read_timeout_seconds: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 64 * 1024,
            request_timeout_seconds: 30,
            max_concurrent_requests: 1024,
            max_concurrent_per_user: 8,
            header_read_timeout_seconds: 10,
        }
    }
}

/// Relayer leasing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayingConfig {
    /// Retries after an invalid-nonce answer (each after a re-sync from the node).
    pub nonce_retries: u32,
    /// Consecutive failures after which a relayer is parked.
    pub park_after_failures: u32,
    /// How long a parked relayer rests.
    pub park_seconds: u64,
    /// Health requires every relayer to hold at least this (fri of the fee token).
    #[serde(deserialize_with = "amount")]
    pub min_balance_fri: u128,
    /// How often sent transactions are followed.
    pub follow_interval_ms: u64,
    /// Requests that may wait for a relayer at once; past it, 503 with `retryAfter`.
    pub max_waiting: usize,
    /// A row still claimed (nothing sent) this long after its last change is given up:
    /// its request died mid-way (a database error). Above `http.request_timeout_seconds`.
    pub abandon_claims_after_seconds: u64,
    /// An instance that has not written its heartbeat (every third of this) for this long
    /// is dead: the rows it claimed and never sent are given up by the others at once.
    pub instance_ttl_seconds: u64,
    /// A relayer's lease in the database lasts this long unless renewed (every third of
    /// it while held): an instance that stops (killed, stalled) loses its relayers to the
    /// others after at most this.
    pub lease_seconds: u64,
    /// The longest a transaction's send to the node may take. A send starts only while
    /// the relayer's lease holds for at least this more, so it ends before the lease can
    /// pass to another instance. At most half of `lease_seconds`.
    pub send_timeout_seconds: u64,
}

impl Default for RelayingConfig {
    fn default() -> Self {
        Self {
            nonce_retries: 3,
            park_after_failures: 3,
            park_seconds: 30,
            min_balance_fri: 10u128.pow(18),
            follow_interval_ms: 250,
            max_waiting: 256,
            abandon_claims_after_seconds: 120,
            instance_ttl_seconds: 15,
            lease_seconds: 30,
            send_timeout_seconds: 10,
        }
    }
}

/// One relayer account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayerConfig {
    /// The account's address.
    #[serde(deserialize_with = "felt_value")]
    pub address: Felt,
    /// Its signing key (`Debug` shows nothing of it).
    #[serde(deserialize_with = "secret_key")]
    pub private_key: SecretKey,
}

/// One app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// A name for logs and records.
    pub name: String,
    /// `pk_dev_...` / `pk_prod_...`.
    pub public_key: String,
    /// SHA-256 (64 hex digits in the file) of the app's `sk_...` secret key
    /// (`chipi-paymaster hash-secret`).
    #[serde(default, deserialize_with = "sha256_hex")]
    pub secret_key_sha256: Option<[u8; 32]>,
    /// How user tokens are verified; without it only the secret key is accepted.
    pub jwt: Option<JwtConfig>,
    /// Who may make the relayers pay for this app, and how much (API.md section 10).
    #[serde(default)]
    pub sponsorship: Policy,
}

impl AppConfig {
    /// App `name` with API key `public_key`, no credential yet (set `secret_key_sha256`,
    /// `jwt` or both) and the default sponsorship policy.
    pub fn new(name: &str, public_key: &str) -> Self {
        Self {
            name: name.into(),
            public_key: public_key.into(),
            secret_key_sha256: None,
            jwt: None,
            sponsorship: Policy::default(),
        }
    }
}

/// A user-token verifier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// HS256 shared secret.
    pub hs256_secret: Option<Secret>,
    /// A JWKS document on disk (RS256/ES256 keys).
    pub jwks_file: Option<PathBuf>,
    /// A JWKS document by URL, cached.
    pub jwks_url: Option<RpcUrl>,
    /// How long a fetched JWKS is used.
    #[serde(default = "defaults::jwks_cache_seconds")]
    pub jwks_cache_seconds: u64,
    /// The least time between two fetches of the JWKS URL for an unknown key id, or after
    /// a failed fetch (a flood of made-up key ids costs the provider one request).
    #[serde(default = "defaults::jwks_refetch_seconds")]
    pub jwks_refetch_seconds: u64,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud`.
    pub audience: Option<String>,
    /// Clock leeway for `exp`/`nbf`.
    #[serde(default = "defaults::leeway_seconds")]
    pub leeway_seconds: u64,
}

impl JwtConfig {
    /// HS256 tokens signed with `secret`, no `iss`/`aud` required, default leeway.
    pub fn hs256(secret: &str) -> Self {
        Self {
            hs256_secret: Some(Secret::from(secret)),
            ..Self::keys_elsewhere()
        }
    }

    /// RS256/ES256 tokens whose keys are in the JWKS document at `url`.
    pub fn jwks_url(url: RpcUrl) -> Self {
        Self {
            jwks_url: Some(url),
            ..Self::keys_elsewhere()
        }
    }

    /// RS256/ES256 tokens whose keys are in the JWKS file at `path`.
    pub fn jwks_file(path: PathBuf) -> Self {
        Self {
            jwks_file: Some(path),
            ..Self::keys_elsewhere()
        }
    }

    fn keys_elsewhere() -> Self {
        Self {
            hs256_secret: None,
            jwks_file: None,
            jwks_url: None,
            jwks_cache_seconds: defaults::jwks_cache_seconds(),
            jwks_refetch_seconds: defaults::jwks_refetch_seconds(),
            issuer: None,
            audience: None,
            leeway_seconds: defaults::leeway_seconds(),
        }
    }
}

fn felt_value<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Felt, D::Error> {
    felt(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

fn optional_felt<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Felt>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| felt(&text).map_err(serde::de::Error::custom))
        .transpose()
}

fn felts<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Felt>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| felt(text).map_err(serde::de::Error::custom))
        .collect()
}

fn secret_key<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SecretKey, D::Error> {
    let text = Zeroizing::new(String::deserialize(deserializer)?);
    chipi_core::parse_felt_strict(&text)
        .filter(|k| *k != Felt::ZERO)
        .and_then(|k| SecretKey::from_hex(&format!("{k:#x}")).ok())
        .ok_or_else(|| serde::de::Error::custom("not a private key (a non-zero felt)"))
}

fn sha256_hex<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<[u8; 32]>, D::Error> {
    let text = String::deserialize(deserializer)?;
    hex::decode(&text)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(
                "expected 64 hex digits (chipi-paymaster hash-secret prints them)",
            )
        })
}

mod defaults {
    use std::net::SocketAddr;

    pub fn listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8787))
    }
    pub fn database_url() -> super::DatabaseUrl {
        "sqlite://chipi-paymaster.db".into()
    }
    pub fn database_max_connections() -> u32 {
        crate::values::DEFAULT_MAX_CONNECTIONS
    }
    pub fn fee_margin_percent() -> u32 {
        50
    }
    pub fn max_fee_fri() -> u128 {
        crate::policy::ONE_STRK
    }
    pub fn fee_token() -> chipi_core::Felt {
        chipi_core::Felt::from_hex_unchecked(
            "0x04718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d",
        )
    }
    pub fn jwks_cache_seconds() -> u64 {
        300
    }
    pub fn jwks_refetch_seconds() -> u64 {
        10
    }
    pub fn leeway_seconds() -> u64 {
        30
    }
}

fn is_api_key(text: &str, kind: &str) -> bool {
    ["dev", "prod"].iter().any(|env| {
        text.strip_prefix(&format!("{kind}_{env}_"))
            .is_some_and(|rest| rest.len() >= 32 && rest.chars().all(|c| c.is_ascii_alphanumeric()))
    })
}

/// Whether `text` has the shape of a public API key (`pk_dev_`/`pk_prod_` + 32+ alphanumerics).
pub fn is_public_key(text: &str) -> bool {
    is_api_key(text, "pk")
}

/// Whether `text` has the shape of a secret API key (`sk_dev_`/`sk_prod_` + 32+ alphanumerics).
pub fn is_secret_key(text: &str) -> bool {
    is_api_key(text, "sk")
}

impl Config {
    /// A configuration built in code: `relayers` pay, through the node at `rpc_url`, for
    /// `apps` and accounts of `account_classes`; every other key has the file's default.
    /// Change fields, then [`Config::validate`].
    ///
    /// ```
    /// use chipi_core::{Felt, SecretKey};
    /// use chipi_paymaster::{AppConfig, Config, JwtConfig, RelayerConfig, RpcUrl};
    ///
    /// let mut app = AppConfig::new("demo", "pk_dev_0123456789abcdef0123456789abcdef");
    /// app.jwt = Some(JwtConfig::hs256("a-long-shared-secret-of-the-demo-app"));
    /// app.sponsorship.max_calls = Some(4);
    /// let relayer = RelayerConfig {
    ///     address: Felt::from(0x1234u32),
    ///     private_key: SecretKey::from_hex("0x5678")?,
    /// };
    /// let mut config = Config::new(
    ///     RpcUrl::parse("http://127.0.0.1:5050/rpc").unwrap(),
    ///     vec![Felt::from(0x561fd5au32)],
    ///     vec![relayer],
    ///     vec![app],
    /// );
    /// config.window.validity_seconds = 120;
    /// config.validate()?;
    /// assert_eq!(config.fee_margin_percent, 50);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        rpc_url: RpcUrl,
        account_classes: Vec<Felt>,
        relayers: Vec<RelayerConfig>,
        apps: Vec<AppConfig>,
    ) -> Self {
        Self {
            listen: defaults::listen(),
            operations_listen: None,
            rpc_url,
            database_url: defaults::database_url(),
            database_max_connections: defaults::database_max_connections(),
            account_classes,
            fee_margin_percent: defaults::fee_margin_percent(),
            max_fee_fri: defaults::max_fee_fri(),
            fee_token: defaults::fee_token(),
            window: WindowConfig::default(),
            http: HttpConfig::default(),
            relaying: RelayingConfig::default(),
            relayers,
            estimator: None,
            apps,
            snip29: Snip29Config::default(),
        }
    }

    /// Reads `path` and applies the process environment's overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml_str(&text, std::env::vars())
    }

    /// Parses `text`, applies the overrides among `env`, and validates.
    pub fn from_toml_str<K: AsRef<str>, V: AsRef<str>>(
        text: &str,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError(e.message().to_string()))?;
        for (name, value) in env {
            let Some(path) = name.as_ref().strip_prefix(ENV_PREFIX) else {
                continue;
            };
            // The binary's own `--config` variable names the file, not a key in it.
            if path == "CONFIG" {
                continue;
            }
            let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
            let value = env_value(value.as_ref());
            set(&mut table, &keys, value)
                .map_err(|why| wrong(format!("{ENV_PREFIX}{path}"), why))?;
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let path = e.path().to_string();
                let message = e.inner().message().to_string();
                if path == "." {
                    ConfigError(message)
                } else {
                    wrong(path, message)
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// The checks serde cannot make.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.account_classes.is_empty() {
            return Err(wrong("account_classes", "name at least one class hash"));
        }
        if self.relayers.is_empty() {
            return Err(wrong("relayers", "configure at least one relayer account"));
        }
        if let Some(estimator) = &self.estimator {
            if self.relayers.iter().any(|r| r.address == estimator.address) {
                return Err(wrong(
                    "estimator.address",
                    "a relayer's: the estimator must be an account that never sends",
                ));
            }
        }
        if !(3..=3600).contains(&self.relaying.instance_ttl_seconds) {
            return Err(wrong("relaying.instance_ttl_seconds", "between 3 and 3600"));
        }
        if !(3..=3600).contains(&self.relaying.lease_seconds) {
            return Err(wrong("relaying.lease_seconds", "between 3 and 3600"));
        }
        let send = self.relaying.send_timeout_seconds;
        if send == 0 || send.saturating_mul(2) > self.relaying.lease_seconds {
            return Err(wrong(
                "relaying.send_timeout_seconds",
                "at least 1 and at most half of relaying.lease_seconds",
            ));
        }
        if self.relaying.abandon_claims_after_seconds <= self.http.request_timeout_seconds {
            return Err(wrong(
                "relaying.abandon_claims_after_seconds",
                "must be above http.request_timeout_seconds (a live request is never given up)",
            ));
        }
        if self.max_fee_fri == 0 || self.max_fee_fri > MAX_FEE_CEILING {
            return Err(wrong(
                "max_fee_fri",
                "between 1 fri and 1000 STRK per transaction",
            ));
        }
        let tips = &self.snip29.tips;
        if !(tips.slow <= tips.normal && tips.normal <= tips.fast) {
            return Err(wrong("snip29.tips", "slow <= normal <= fast"));
        }
        if self.snip29.max_tip > MAX_TIP_CEILING {
            return Err(wrong(
                "snip29.max_tip",
                format!("at most {MAX_TIP_CEILING} fri per L2 gas unit"),
            ));
        }
        if tips.fast > self.snip29.max_tip {
            return Err(wrong("snip29.tips.fast", "at most snip29.max_tip"));
        }
        for token in &self.snip29.gas_tokens {
            if token.decimals > 36 || token.price_in_strk == 0 {
                return Err(wrong(
                    "snip29.gas_tokens",
                    "decimals at most 36 and price_in_strk above zero",
                ));
            }
        }
        if self.apps.is_empty() {
            return Err(wrong("apps", "configure at least one app"));
        }
        for (i, app) in self.apps.iter().enumerate() {
            if !is_public_key(&app.public_key) {
                return Err(wrong(
                    format!("apps[{i}].public_key"),
                    "expected pk_dev_ or pk_prod_ and 32+ letters or digits",
                ));
            }
            if self.apps[..i]
                .iter()
                .any(|a| a.public_key == app.public_key)
            {
                return Err(wrong(format!("apps[{i}].public_key"), "used by two apps"));
            }
            app.sponsorship
                .validate(&format!("apps[{i}].sponsorship"))?;
            // A request reserves the per-transaction cap before it is simulated: a fee
            // budget below it would refuse every request.
            let cap = app.sponsorship.fee_cap(self.max_fee_fri);
            for (j, limit) in app.sponsorship.limits.iter().enumerate() {
                if limit.max_fee_fri.is_some_and(|budget| budget < cap) {
                    return Err(wrong(
                        format!("apps[{i}].sponsorship.limits[{j}].max_fee_fri"),
                        format!(
                            "below the per-transaction cap ({cap} fri), so nothing could be sponsored; \
                             lower apps[{i}].sponsorship.max_fee_fri"
                        ),
                    ));
                }
            }
            if app.secret_key_sha256.is_none() && app.jwt.is_none() {
                return Err(wrong(
                    format!("apps[{i}]"),
                    "set secret_key_sha256, jwt, or both: otherwise nobody can use the app",
                ));
            }
            if let Some(jwt) = &app.jwt {
                let sources = [
                    jwt.hs256_secret.is_some(),
                    jwt.jwks_file.is_some(),
                    jwt.jwks_url.is_some(),
                ];
                if sources.iter().filter(|s| **s).count() != 1 {
                    return Err(wrong(
                        format!("apps[{i}].jwt"),
                        "set exactly one of hs256_secret, jwks_file, jwks_url",
                    ));
                }
                if jwt
                    .hs256_secret
                    .as_ref()
                    .is_some_and(|s| s.expose().len() < 32)
                {
                    return Err(wrong(
                        format!("apps[{i}].jwt.hs256_secret"),
                        "too short: use 32 bytes or more",
                    ));
                }
                if let Some(url) = &jwt.jwks_url {
                    let loopback = match url.0.host() {
                        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                        Some(url::Host::Domain(name)) => name == "localhost",
                        None => false,
                    };
                    if url.0.scheme() != "https" && !loopback {
                        return Err(wrong(
                            format!("apps[{i}].jwt.jwks_url"),
                            "must be https (http only on a loopback address)",
                        ));
                    }
                }
                // Keys shared by several apps (one identity provider) verify any of their
                // tokens: only the audience tells one app's tokens from another's.
                let source = |j: &JwtConfig| {
                    j.jwks_url
                        .as_ref()
                        .map(|u| u.0.to_string())
                        .or_else(|| j.jwks_file.as_ref().map(|f| f.display().to_string()))
                };
                let shared = source(jwt).is_some_and(|mine| {
                    self.apps.iter().enumerate().any(|(k, other)| {
                        k != i && other.jwt.as_ref().and_then(source).as_ref() == Some(&mine)
                    })
                });
                if shared && jwt.audience.is_none() {
                    return Err(wrong(
                        format!("apps[{i}].jwt.audience"),
                        "required: another app uses the same token keys",
                    ));
                }
            }
        }
        if self.window.validity_seconds == 0 || self.window.validity_seconds > 24 * 3600 {
            return Err(wrong(
                "window.validity_seconds",
                "between 1 and 86400 seconds",
            ));
        }
        if self.window.after_slack_seconds > 3600 {
            return Err(wrong("window.after_slack_seconds", "at most 3600 seconds"));
        }
        if self.fee_margin_percent > 1000 {
            return Err(wrong("fee_margin_percent", "at most 1000"));
        }
        if self.http.body_limit_bytes < 1024 {
            return Err(wrong("http.body_limit_bytes", "at least 1024"));
        }
        if self.http.max_concurrent_requests == 0 {
            return Err(wrong("http.max_concurrent_requests", "at least 1"));
        }
        if self.http.max_concurrent_per_user == 0 {
            return Err(wrong("http.max_concurrent_per_user", "at least 1"));
        }
        if self.http.header_read_timeout_seconds == 0 {
            return Err(wrong("http.header_read_timeout_seconds", "at least 1"));
        }
        if self.window.chain_time_cache_ms > 10_000 {
            return Err(wrong("window.chain_time_cache_ms", "at most 10000"));
        }
        if self.operations_listen == Some(self.listen) {
            return Err(wrong("operations_listen", "must differ from listen"));
        }
        if self.http.request_timeout_seconds == 0 {
            return Err(wrong("http.request_timeout_seconds", "at least 1"));
        }
        if crate::values::Backend::of(self.database_url.expose()).is_none() {
            return Err(wrong(
                "database_url",
                "neither a sqlite: nor a postgres:// (postgresql://) URL",
            ));
        }
        if !(1..=1000).contains(&self.database_max_connections) {
            return Err(wrong("database_max_connections", "between 1 and 1000"));
        }
        Ok(())
    }
}

/// The highest tip a configuration may allow, in fri per L2 gas unit (10^4 times a devnet's
/// L2 gas price): it keeps tips in the database's 64-bit integers and their cost in `u128`.
const MAX_TIP_CEILING: u64 = 10_000_000_000_000;

/// The highest per-transaction fee cap a configuration may set (1000 STRK).
const MAX_FEE_CEILING: u128 = 1000 * crate::policy::ONE_STRK;

fn env_value(text: &str) -> toml::Value {
    let parsed = format!("v = {text}").parse::<toml::Table>();
    match parsed.ok().and_then(|mut t| t.remove("v")) {
        Some(value) => value,
        None => toml::Value::String(text.to_string()),
    }
}

fn set(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    match keys {
        [] => Err("empty key".into()),
        [last] => {
            // A number-looking override of a string key stays a string (a felt, a path).
            let value = match (table.get(last), value) {
                (Some(toml::Value::String(_)), toml::Value::Integer(n)) => {
                    toml::Value::String(n.to_string())
                }
                (_, value) => value,
            };
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => set(inner, rest, value),
                _ => Err(format!("`{first}` is not a table")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BASE: &str = r#"
        rpc_url = "http://127.0.0.1:5050/rpc/SECRET"
        account_classes = ["0x561fd5a"]
        [[relayers]]
        address = "0x1234"
        private_key = "0x5678"
        [[apps]]
        name = "demo"
        public_key = "pk_dev_0123456789abcdef0123456789abcdef"
        secret_key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    "#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, env.iter().copied())
    }

    #[test]
    fn the_estimator_is_optional_and_never_a_relayer() {
        assert!(load(BASE, &[]).unwrap().estimator.is_none());
        let with = format!("{BASE}\n[estimator]\naddress = \"0x99\"\nprivate_key = \"0x98\"\n");
        let config = load(&with, &[]).unwrap();
        assert_eq!(config.estimator.unwrap().address, Felt::from(0x99u8));
        assert!(!format!("{:?}", load(&with, &[]).unwrap()).contains("0x98"));
        let relayer =
            format!("{BASE}\n[estimator]\naddress = \"0x1234\"\nprivate_key = \"0x98\"\n");
        let error = load(&relayer, &[]).unwrap_err().to_string();
        assert!(error.contains("estimator.address"), "{error}");
    }

    #[test]
    fn a_live_request_is_never_given_up() {
        let error = load(
            BASE,
            &[
                ("CHIPI_PAYMASTER_HTTP__REQUEST_TIMEOUT_SECONDS", "120"),
                (
                    "CHIPI_PAYMASTER_RELAYING__ABANDON_CLAIMS_AFTER_SECONDS",
                    "120",
                ),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("relaying.abandon_claims_after_seconds"),
            "{error}"
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let config = load(BASE, &[]).unwrap();
        assert_eq!(config.listen.port(), 8787);
        assert_eq!(config.window.validity_seconds, 600);
        let config = load(
            BASE,
            &[
                ("CHIPI_PAYMASTER_LISTEN", "0.0.0.0:9000"),
                ("CHIPI_PAYMASTER_WINDOW__VALIDITY_SECONDS", "120"),
                ("CHIPI_PAYMASTER_DATABASE_URL", "sqlite::memory:"),
                ("CHIPI_PAYMASTER_RPC_URL", "http://node:9545/"),
                (
                    "CHIPI_PAYMASTER_RELAYERS",
                    r#"[{address = "0x9", private_key = "0x10"}, {address = "0xa", private_key = "0x11"}]"#,
                ),
                ("OTHER_VARIABLE", "ignored"),
                ("CHIPI_PAYMASTER_CONFIG", "paymaster.toml"),
            ],
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.window.validity_seconds, 120);
        assert_eq!(config.database_url.expose(), "sqlite::memory:");
        let pg = load(
            BASE,
            &[
                (
                    "CHIPI_PAYMASTER_DATABASE_URL",
                    "postgres://pm:SECRET-PW@db:5432/pm",
                ),
                ("CHIPI_PAYMASTER_DATABASE_MAX_CONNECTIONS", "40"),
            ],
        )
        .unwrap();
        assert_eq!(pg.database_max_connections, 40);
        assert_eq!(pg.database_url.redacted(), "postgres://pm@db:5432/pm");
        assert!(!format!("{pg:?}").contains("SECRET-PW"));
        assert_eq!(config.rpc_url.0.host_str(), Some("node"));
        assert_eq!(config.relayers.len(), 2);
    }

    #[test]
    fn each_wrong_key_is_named() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("", &[("CHIPI_PAYMASTER_LISTEN", "nowhere")], "listen"),
            ("", &[("CHIPI_PAYMASTER_RPC_URL", "not a url")], "rpc_url"),
            (
                "",
                &[("CHIPI_PAYMASTER_FEE_MARGIN_PERCENT", "5000")],
                "fee_margin_percent",
            ),
            (
                "",
                &[("CHIPI_PAYMASTER_WINDOW__VALIDITY_SECONDS", "0")],
                "window.validity_seconds",
            ),
            ("", &[("CHIPI_PAYMASTER_RELAYERS", "[]")], "relayers"),
            (
                "",
                &[(
                    "CHIPI_PAYMASTER_RELAYERS",
                    r#"[{address = "0xzz", private_key = "0x1"}]"#,
                )],
                "relayers[0].address",
            ),
            (
                "",
                &[(
                    "CHIPI_PAYMASTER_RELAYERS",
                    r#"[{address = "0x1", private_key = "0x0"}]"#,
                )],
                "relayers[0].private_key",
            ),
            (
                "",
                &[("CHIPI_PAYMASTER_ACCOUNT_CLASSES", "[]")],
                "account_classes",
            ),
            (
                "",
                &[("CHIPI_PAYMASTER_DATABASE_URL", "mysql://u:SECRET@x/db")],
                "database_url",
            ),
            (
                "",
                &[("CHIPI_PAYMASTER_DATABASE_MAX_CONNECTIONS", "0")],
                "database_max_connections",
            ),
            ("typo = 1\n", &[], "typo"),
        ];
        for (extra, env, key) in cases {
            let error = load(&format!("{extra}{BASE}"), env).unwrap_err();
            assert!(error.0.contains(key), "{key}: {error}");
            assert!(!error.0.contains("SECRET"), "{error}");
        }
        let bad_app = BASE.replace("pk_dev_0123", "pk_test_0123");
        assert!(load(&bad_app, &[])
            .unwrap_err()
            .0
            .contains("apps[0].public_key"));
        let bad_hash = BASE.replace("9f86d0", "zz");
        assert!(load(&bad_hash, &[])
            .unwrap_err()
            .0
            .contains("secret_key_sha256"));
        let both = format!("{BASE}\n[apps.jwt]\nhs256_secret = \"0123456789abcdef0123456789abcdef\"\njwks_file = \"k.json\"\n");
        assert!(load(&both, &[]).unwrap_err().0.contains("apps[0].jwt"));
    }

    #[test]
    fn the_sponsorship_table_is_typed_and_checked() {
        let config = load(BASE, &[]).unwrap();
        let policy = &config.apps[0].sponsorship;
        assert!(policy.active);
        assert_eq!(policy.fee_cap(config.max_fee_fri), crate::policy::ONE_STRK);
        assert_eq!(config.relayers[0].address, Felt::from(0x1234u16));
        assert_eq!(config.account_classes, [Felt::from(0x561fd5au32)]);
        let with = |table: &str| load(&format!("{BASE}\n[apps.sponsorship]\n{table}\n"), &[]);
        let good = with(
            "max_fee_fri = 1000\nin_flight_per_wallet = 3\n\
             [[apps.sponsorship.limits]]\nscope = \"user\"\nwindow = \"day\"\nmax_fee_fri = 5000\n\
             [apps.sponsorship.webhook]\nurl = \"https://hook.example/SECRET\"\n\
             secret = \"hook-secret-hook-secret-hook-secret\"\non_error = \"sponsor\"",
        )
        .unwrap();
        let policy = &good.apps[0].sponsorship;
        assert_eq!(policy.in_flight_per_wallet, 3);
        assert!(!format!("{good:?}").contains("SECRET"));
        assert!(!format!("{good:?}").contains("hook-secret"));
        for (table, key) in [
            (
                "in_flight_per_wallet = 0",
                "apps[0].sponsorship.in_flight_per_wallet",
            ),
            ("starts_at = 10\nends_at = 5", "apps[0].sponsorship.ends_at"),
            (
                "[[apps.sponsorship.limits]]\nscope = \"app\"\nwindow = \"hour\"",
                "apps[0].sponsorship.limits[0]",
            ),
            (
                "[[apps.sponsorship.limits]]\nscope = \"app\"\nwindow = \"hour\"\nmax_fee_fri = 10",
                "apps[0].sponsorship.limits[0].max_fee_fri",
            ),
            (
                "allow = [{ contract = \"0xzz\", selector = \"*\" }]",
                "apps[0].sponsorship.allow[0].contract",
            ),
            (
                "[apps.sponsorship.webhook]\nurl = \"https://h.example/\"\nsecret = \"short\"",
                "apps[0].sponsorship.webhook.secret",
            ),
            ("max_fee_fri = 0", "apps[0].sponsorship.max_fee_fri"),
            ("typo = 1", "typo"),
        ] {
            let error = with(table).unwrap_err();
            assert!(error.0.contains(key), "{key}: {error}");
        }
        let error = load(BASE, &[("CHIPI_PAYMASTER_MAX_FEE_FRI", "0")]).unwrap_err();
        assert!(error.0.contains("max_fee_fri"), "{error}");
    }

    #[test]
    fn tips_are_named_ordered_and_capped() {
        use chipi_core::snip29::Tip;
        let config = load(BASE, &[]).unwrap();
        let snip29 = &config.snip29;
        assert_eq!(snip29.tip(None), Ok(0));
        assert_eq!(snip29.tip(Some(Tip::Slow)), Ok(0));
        assert!(snip29.tip(Some(Tip::Normal)).unwrap() < snip29.tip(Some(Tip::Fast)).unwrap());
        let with = |table: &str| load(&format!("{BASE}\n[snip29]\n{table}\n"), &[]);
        let set = with("tips = { slow = 1, normal = 2, fast = 3 }\nmax_tip = 10").unwrap();
        assert_eq!(set.snip29.tip(Some(Tip::Fast)), Ok(3));
        assert_eq!(set.snip29.tip(Some(Tip::Custom(10))), Ok(10));
        assert_eq!(
            set.snip29.tip(Some(Tip::Custom(11))),
            Err(TipTooHigh { asked: 11, max: 10 })
        );
        for (table, key) in [
            ("tips = { slow = 5, normal = 2, fast = 3 }", "snip29.tips"),
            (
                "tips = { slow = 0, normal = 0, fast = 20 }\nmax_tip = 10",
                "snip29.tips.fast",
            ),
            ("max_tip = 100000000000000", "snip29.max_tip"),
            ("tips = { faster = 1 }", "faster"),
        ] {
            let error = with(table).unwrap_err();
            assert!(error.0.contains(key), "{key}: {error}");
        }
    }

    #[test]
    fn jwks_urls_are_https_and_shared_keys_need_an_audience() {
        let app = |name: &str, key: &str, url: &str, audience: &str| {
            format!(
                "[[apps]]\nname = \"{name}\"\npublic_key = \"pk_dev_{key}\"\n[apps.jwt]\njwks_url = \"{url}\"\n{audience}\n"
            )
        };
        let one = "0123456789abcdef0123456789abcde1";
        let two = "0123456789abcdef0123456789abcde2";
        let with = |apps: &str| load(&format!("{BASE}{apps}"), &[]);
        assert!(with(&app("a", one, "https://idp.example/jwks", "")).is_ok());
        assert!(with(&app("a", one, "http://127.0.0.1:9/jwks", "")).is_ok());
        assert!(with(&app("a", one, "http://localhost:9/jwks", "")).is_ok());
        let error = with(&app("a", one, "http://idp.example/jwks", "")).unwrap_err();
        assert!(error.0.contains("apps[1].jwt.jwks_url"), "{error}");
        let shared = format!(
            "{}{}",
            app("a", one, "https://idp.example/jwks", "audience = \"a\""),
            app("b", two, "https://idp.example/jwks", "")
        );
        let error = with(&shared).unwrap_err();
        assert!(error.0.contains("apps[2].jwt.audience"), "{error}");
        let both = format!(
            "{}{}",
            app("a", one, "https://idp.example/jwks", "audience = \"a\""),
            app("b", two, "https://idp.example/jwks", "audience = \"b\"")
        );
        assert!(with(&both).is_ok());
    }

    #[test]
    fn debug_shows_no_secret() {
        let config = load(BASE, &[]).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("0x5678"), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("127.0.0.1:5050"), "{shown}");
    }

    #[test]
    fn api_key_shapes() {
        assert!(is_public_key("pk_dev_0123456789abcdef0123456789abcdef"));
        assert!(is_public_key("pk_prod_0123456789abcdef0123456789abcdefXYZ"));
        assert!(!is_public_key("pk_dev_short"));
        assert!(!is_public_key("pk_dev_0123456789abcdef0123456789abcde!"));
        assert!(!is_public_key("sk_dev_0123456789abcdef0123456789abcdef"));
        assert!(is_secret_key("sk_prod_0123456789abcdef0123456789abcdef"));
    }
}
