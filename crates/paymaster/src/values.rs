//! Typed values of the configuration that its parts share: the error that names a key,
//! secrets and URLs that are never shown, amounts and felts as the file writes them.

use std::fmt;

use chipi_core::Felt;
use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

pub(crate) fn wrong(key: impl fmt::Display, why: impl fmt::Display) -> ConfigError {
    ConfigError(format!("`{key}`: {why}"))
}

/// A secret from the configuration: zeroized on drop, never shown.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self(Zeroizing::new(s)))
    }
}

impl Secret {
    /// The secret's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(Zeroizing::new(text.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A URL that may hold a key (a node's, a JWKS endpoint's): `Debug` shows
/// `scheme://host:port/…` only, and a malformed one is not echoed.
#[derive(Clone)]
pub struct RpcUrl(pub Url);

impl<'de> Deserialize<'de> for RpcUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        match Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Self(url)),
            _ => Err(serde::de::Error::custom("not an http(s) URL")),
        }
    }
}

impl RpcUrl {
    /// An http(s) URL, or `None`.
    pub fn parse(text: &str) -> Option<Self> {
        Url::parse(text)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .map(Self)
    }
}

impl fmt::Debug for RpcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", redact_url(&self.0))
    }
}

/// `scheme://host:port/…`: what may be shown of a URL that could hold a key.
pub fn redact_url(url: &Url) -> String {
    format!(
        "{}://{}:{}/…",
        url.scheme(),
        url.host_str().unwrap_or("?"),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://path` or `sqlite::memory:`: one process.
    Sqlite,
    /// `postgres://` or `postgresql://`: any number of instances.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The backend of `url` by its scheme, or `None`.
    ///
    /// ```
    /// use chipi_paymaster::Backend;
    /// assert_eq!(Backend::of("sqlite://pm.db"), Some(Backend::Sqlite));
    /// assert_eq!(Backend::of("postgresql://pm@db/pm"), Some(Backend::Postgres));
    /// assert_eq!(Backend::of("mysql://db"), None);
    /// ```
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Connections a store opens when the configuration does not say
/// (`database_max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

/// The database's URL (`sqlite://path`, `postgres://user:password@host:port/db`): it may
/// hold a password, so `Debug` and `Display` show [`DatabaseUrl::redacted`] only.
///
/// ```
/// use chipi_paymaster::DatabaseUrl;
/// let url = DatabaseUrl::from("postgres://pm:hunter2@db.internal:5432/pm?sslmode=require");
/// assert_eq!(url.redacted(), "postgres://pm@db.internal:5432/pm");
/// assert!(!format!("{url:?} {url}").contains("hunter2"));
/// assert_eq!(DatabaseUrl::from("sqlite://pm.db").redacted(), "sqlite://pm.db");
/// ```
#[derive(Clone)]
pub struct DatabaseUrl(Zeroizing<String>);

impl DatabaseUrl {
    /// The URL's text, to connect with.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What may be shown: a SQLite URL as it is (a file name); any other without its
    /// password and query (which may carry one), a malformed one as its scheme only.
    pub fn redacted(&self) -> String {
        if self.0.starts_with("sqlite:") {
            return self.0.to_string();
        }
        match Url::parse(&self.0) {
            Ok(url) => {
                let user = match url.username() {
                    "" => String::new(),
                    user => format!("{user}@"),
                };
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!(
                    "{}://{user}{}{port}{}",
                    url.scheme(),
                    url.host_str().unwrap_or(""),
                    url.path()
                )
            }
            Err(_) => match self.0.split_once("://") {
                Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                    format!("{scheme}://…")
                }
                _ => "…".to_string(),
            },
        }
    }
}

impl From<&str> for DatabaseUrl {
    fn from(text: &str) -> Self {
        Self(Zeroizing::new(text.to_string()))
    }
}

impl From<String> for DatabaseUrl {
    fn from(text: String) -> Self {
        Self(Zeroizing::new(text))
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// An amount in fri: a TOML integer, or a decimal string for amounts past 2^63.
pub(crate) fn amount<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Amount {
        Integer(u64),
        Text(String),
    }
    match Amount::deserialize(deserializer)? {
        Amount::Integer(n) => Ok(n as u128),
        Amount::Text(text) => text
            .parse()
            .map_err(|_| serde::de::Error::custom("not an amount (a decimal integer)")),
    }
}

/// [`amount`], for optional keys.
pub(crate) fn optional_amount<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u128>, D::Error> {
    amount(deserializer).map(Some)
}

/// A felt's text (hex or decimal), parsed.
pub(crate) fn felt(text: &str) -> Result<Felt, &'static str> {
    chipi_core::parse_felt_strict(text).ok_or("not a felt (hex or decimal)")
}
