//! The local stack's keys (`chipi dev`, the tests): public test values. The binary
//! refuses a configuration that uses any of them unless it runs with `--dev`, so a
//! development configuration cannot be put on a real network by mistake.

use crate::auth::hash_secret;
use crate::config::Config;

pub use crate::store::{temp_database, temp_postgres, temp_sqlite, TEST_POSTGRES_ENV};

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

impl Config {
    /// The first key of the local stack this configuration uses (its configuration path),
    /// or `None`.
    ///
    /// ```
    /// # let text = |key: &str| format!(r#"
    /// #     rpc_url = "http://127.0.0.1:5050/rpc"
    /// #     account_classes = ["0x561fd5a"]
    /// #     [[relayers]]
    /// #     address = "0x1234"
    /// #     private_key = "0x5678"
    /// #     [[apps]]
    /// #     name = "demo"
    /// #     public_key = "{key}"
    /// #     secret_key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    /// # "#);
    /// use chipi_paymaster::{dev, Config};
    /// let none = std::iter::empty::<(String, String)>;
    /// let local = Config::from_toml_str(&text(dev::API_KEY), none())?;
    /// assert_eq!(local.dev_keys_used().as_deref(), Some("apps[0].public_key"));
    /// let mine = Config::from_toml_str(&text("pk_prod_0123456789abcdef0123456789abcdeX"), none())?;
    /// assert_eq!(mine.dev_keys_used(), None);
    /// # Ok::<(), chipi_paymaster::ConfigError>(())
    /// ```
    pub fn dev_keys_used(&self) -> Option<String> {
        let secrets = [hash_secret(SECRET_KEY), hash_secret(OTHER_SECRET_KEY)];
        for (i, app) in self.apps.iter().enumerate() {
            if [API_KEY, OTHER_API_KEY].contains(&app.public_key.as_str()) {
                return Some(format!("apps[{i}].public_key"));
            }
            if app
                .secret_key_sha256
                .is_some_and(|hash| secrets.contains(&hex::encode(hash)))
            {
                return Some(format!("apps[{i}].secret_key_sha256"));
            }
            let jwt = app.jwt.as_ref().and_then(|j| j.hs256_secret.as_ref());
            if jwt.is_some_and(|secret| secret.expose() == JWT_SECRET) {
                return Some(format!("apps[{i}].jwt.hs256_secret"));
            }
        }
        None
    }
}
