//! Who is calling (API.md section 2): the app named by `x-api-key`, and either a user
//! (a JWT checked against the app's verifier) or the app itself (its secret key).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;

use crate::config::{is_public_key, is_secret_key, AppConfig, ConfigError, JwtConfig, RpcUrl};
use crate::policy::Policy;
use crate::store::felt_text;
use chipi_core::Felt;

/// SHA-256 of a secret key, hex: what the configuration stores.
///
/// ```
/// assert_eq!(
///     chipi_paymaster::hash_secret("test"),
///     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
/// );
/// ```
pub fn hash_secret(secret: &str) -> String {
    hex::encode(secret_digest(secret))
}

/// The SHA-256 of a secret API key, as `AppConfig::secret_key_sha256` holds it.
pub fn secret_digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Why a caller was not accepted. The reasons echo nothing the caller sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed or wrong credentials.
    #[error("{0}")]
    Refused(&'static str),
    /// The app's token keys cannot be fetched (its JWKS endpoint is down and nothing is
    /// cached).
    #[error("the token keys cannot be fetched; retry later")]
    KeysUnavailable,
}

/// An app allowed to use the service.
#[derive(Debug)]
pub struct App {
    /// Its name (logs, records).
    pub name: String,
    /// Its `pk_...` key.
    pub public_key: String,
    /// Its sponsorship policy.
    pub policy: Policy,
    secret_hash: Option<[u8; 32]>,
    verifier: Option<Verifier>,
}

/// Who, within an app, is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The app's secret key: its server, which may act for any of its users.
    App,
    /// A user token's subject.
    User(String),
    /// The app's public key alone (SNIP-29 without a token, API.md section 7): anyone
    /// holding it; the wallet in the request is the user.
    Anyone,
}

/// The caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The app.
    pub app: Arc<App>,
    /// Who within it.
    pub who: Principal,
}

impl Caller {
    /// The user a request acts for: the token's subject, else `fallback` (the body's
    /// `externalUserId` or the wallet address, API.md section 2).
    pub fn user_or(&self, fallback: &str) -> String {
        match &self.who {
            Principal::User(user) => user.clone(),
            Principal::App | Principal::Anyone => fallback.to_string(),
        }
    }

    /// The user token's subject, when the caller presented one.
    pub fn token_user(&self) -> Option<&str> {
        match &self.who {
            Principal::User(user) => Some(user),
            Principal::App | Principal::Anyone => None,
        }
    }

    /// Whether this is the app's secret key.
    pub fn is_app(&self) -> bool {
        self.who == Principal::App
    }

    /// Whether this caller may see or spend what was done for `user_id` with `wallet`:
    /// the app's secret key anything of its app, a user their own, anyone holding the
    /// public key what was done with the wallet as its user.
    pub fn owns(&self, user_id: &str, wallet: Felt) -> bool {
        match &self.who {
            Principal::App => true,
            Principal::User(user) => user == user_id,
            Principal::Anyone => user_id == felt_text(wallet),
        }
    }
}

/// Every app, by public key.
#[derive(Debug, Default)]
pub struct Apps {
    by_key: HashMap<String, Arc<App>>,
}

#[derive(Debug)]
enum Verifier {
    Hs256 {
        key: DecodingKey,
        validation: Box<Validation>,
    },
    Jwks {
        source: JwksSource,
        config: JwtSettings,
    },
}

#[derive(Debug, Clone)]
struct JwtSettings {
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl JwtSettings {
    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

#[derive(Debug)]
enum JwksSource {
    Fixed(JwkSet),
    Url {
        url: RpcUrl,
        client: reqwest::Client,
        ttl: Duration,
        refetch: Duration,
        cache: Box<RwLock<JwksCache>>,
    },
}

/// A JWKS fetched by URL: the last set, when it came, and the last failure.
#[derive(Debug, Default)]
struct JwksCache {
    set: Option<(Instant, JwkSet)>,
    failed: Option<Instant>,
}

/// The largest JWKS document read.
const JWKS_MAX_BYTES: usize = 256 * 1024;

impl JwksCache {
    /// What the cache answers without a fetch: a key, "not found" (asked recently), or
    /// `None` (a fetch is due).
    fn answer(
        &self,
        pick: impl Fn(&JwkSet) -> Option<Jwk>,
        ttl: Duration,
        refetch: Duration,
    ) -> Option<Result<Jwk, AuthError>> {
        let recent_failure = self.failed.is_some_and(|at| at.elapsed() < refetch);
        match &self.set {
            Some((at, set)) => match pick(set) {
                // Fresh, or stale while the provider is failing: serve it.
                Some(jwk) if at.elapsed() < ttl || recent_failure => Some(Ok(jwk)),
                None if at.elapsed() < refetch || recent_failure => {
                    Some(Err(AuthError::Refused("token key not found")))
                }
                _ => None,
            },
            None if recent_failure => Some(Err(jwks_unavailable())),
            None => None,
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl Apps {
    /// The apps of the configuration (JWKS files are read here).
    pub fn from_config(apps: &[AppConfig]) -> Result<Self, ConfigError> {
        let mut by_key = HashMap::new();
        for (i, app) in apps.iter().enumerate() {
            let verifier = match &app.jwt {
                Some(jwt) => Some(Verifier::new(jwt, i)?),
                None => None,
            };
            by_key.insert(
                app.public_key.clone(),
                Arc::new(App {
                    name: app.name.clone(),
                    public_key: app.public_key.clone(),
                    policy: app.sponsorship.clone(),
                    secret_hash: app.secret_key_sha256,
                    verifier,
                }),
            );
        }
        Ok(Self { by_key })
    }

    /// The app with public key `public_key`.
    pub fn get(&self, public_key: &str) -> Option<&Arc<App>> {
        self.by_key.get(public_key)
    }

    /// The caller of a request with `headers`, or a 401 that echoes nothing it was sent.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let app = self.app_of(headers.get("x-api-key"), "missing x-api-key header")?;
        let token = bearer(headers).ok_or(AuthError::Refused("missing bearer token"))?;
        self.with_token(app, token).await
    }

    /// The caller of a SNIP-29 request: the app named by `x-paymaster-api-key` (or
    /// `x-api-key`); a bearer token is optional and, when present, checked as on the
    /// Chipi API. Without one the caller is [`Principal::Anyone`].
    pub async fn authenticate_rpc(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let app = self.app_of(
            headers
                .get("x-paymaster-api-key")
                .or_else(|| headers.get("x-api-key")),
            "missing x-paymaster-api-key header",
        )?;
        if headers.contains_key("authorization") {
            let token = bearer(headers).ok_or(AuthError::Refused("missing bearer token"))?;
            return self.with_token(app, token).await;
        }
        if !app.policy.anonymous {
            return Err(AuthError::Refused(
                "this app needs a user token or its secret key",
            ));
        }
        Ok(Caller {
            app,
            who: Principal::Anyone,
        })
    }

    /// The app whose public key is `header`'s value.
    fn app_of(
        &self,
        header: Option<&HeaderValue>,
        missing: &'static str,
    ) -> Result<Arc<App>, AuthError> {
        let api_key = header
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Refused(missing))?;
        if !is_public_key(api_key) {
            return Err(AuthError::Refused("malformed API key"));
        }
        self.by_key
            .get(api_key)
            .cloned()
            .ok_or(AuthError::Refused("unknown API key"))
    }

    /// The caller `token` makes of `app`: its secret key, or a user token.
    async fn with_token(&self, app: Arc<App>, token: &str) -> Result<Caller, AuthError> {
        if token.starts_with("sk_") {
            // The app's own secret key: compare hashes in constant time.
            let expected = app
                .secret_hash
                .ok_or(AuthError::Refused("secret key not accepted for this app"))?;
            let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            let shaped = is_secret_key(token);
            if !(bool::from(given.ct_eq(&expected)) && shaped) {
                return Err(AuthError::Refused("invalid secret key"));
            }
            return Ok(Caller {
                app,
                who: Principal::App,
            });
        }
        let verifier = app.verifier.as_ref().ok_or(AuthError::Refused(
            "user tokens are not accepted for this app",
        ))?;
        let user = verifier.verify(token).await?;
        Ok(Caller {
            app: app.clone(),
            who: Principal::User(user),
        })
    }
}

/// The `Authorization: Bearer` token, when there is a non-empty one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn token_error(error: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    let why = match error.kind() {
        ErrorKind::ExpiredSignature => "expired token",
        ErrorKind::ImmatureSignature => "token not valid yet",
        ErrorKind::InvalidAudience => "token for another audience",
        ErrorKind::InvalidIssuer => "token from another issuer",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "token algorithm not accepted"
        }
        ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
        ErrorKind::InvalidSignature => "invalid token signature",
        _ => "invalid token",
    };
    AuthError::Refused(why)
}

/// The algorithm a JWKS key may verify: RS256 for RSA, ES256 for P-256, nothing else
/// (no HMAC key from a key set: that is the algorithm-confusion door).
fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec)
            if ec.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(algorithm),
        Some(KeyAlgorithm::RS256) if algorithm == Algorithm::RS256 => Some(algorithm),
        Some(KeyAlgorithm::ES256) if algorithm == Algorithm::ES256 => Some(algorithm),
        Some(_) => None,
    }
}

impl Verifier {
    fn new(jwt: &JwtConfig, i: usize) -> Result<Self, ConfigError> {
        let settings = JwtSettings {
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
            leeway: jwt.leeway_seconds,
        };
        if let Some(secret) = &jwt.hs256_secret {
            return Ok(Self::Hs256 {
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
                validation: Box::new(settings.validation(Algorithm::HS256)),
            });
        }
        let source = if let Some(path) = &jwt.jwks_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!(
                    "`apps[{i}].jwt.jwks_file`: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
                ConfigError(format!(
                    "`apps[{i}].jwt.jwks_file`: not a JWKS document: {e}"
                ))
            })?;
            if !set.keys.iter().any(|k| jwk_algorithm(k).is_some()) {
                return Err(ConfigError(format!(
                    "`apps[{i}].jwt.jwks_file`: no RS256 or ES256 key in it"
                )));
            }
            JwksSource::Fixed(set)
        } else if let Some(url) = &jwt.jwks_url {
            JwksSource::Url {
                url: url.clone(),
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|_| ConfigError("cannot build an HTTP client".into()))?,
                ttl: Duration::from_secs(jwt.jwks_cache_seconds),
                refetch: Duration::from_secs(jwt.jwks_refetch_seconds),
                cache: Box::new(RwLock::new(JwksCache::default())),
            }
        } else {
            return Err(ConfigError(format!(
                "`apps[{i}].jwt`: set one of hs256_secret, jwks_file, jwks_url"
            )));
        };
        Ok(Self::Jwks {
            source,
            config: settings,
        })
    }

    async fn verify(&self, token: &str) -> Result<String, AuthError> {
        // `alg: none` and unknown algorithms fail here, before any key is chosen.
        let header = jsonwebtoken::decode_header(token).map_err(token_error)?;
        let (key, validation) = match self {
            Self::Hs256 { key, validation } => {
                if header.alg != Algorithm::HS256 {
                    return Err(AuthError::Refused("token algorithm not accepted"));
                }
                (key.clone(), (**validation).clone())
            }
            Self::Jwks { source, config } => {
                let jwk = source.find(header.kid.as_deref()).await?;
                let algorithm =
                    jwk_algorithm(&jwk).ok_or(AuthError::Refused("token key not usable"))?;
                if header.alg != algorithm {
                    return Err(AuthError::Refused("token algorithm not accepted"));
                }
                let key = DecodingKey::from_jwk(&jwk)
                    .map_err(|_| AuthError::Refused("token key not usable"))?;
                (key, config.validation(algorithm))
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(token_error)?;
        if data.claims.sub.is_empty() || data.claims.sub.len() > 256 {
            return Err(AuthError::Refused("token subject not usable"));
        }
        Ok(data.claims.sub)
    }
}

impl JwksSource {
    async fn find(&self, kid: Option<&str>) -> Result<Jwk, AuthError> {
        let pick = |set: &JwkSet| -> Option<Jwk> {
            match kid {
                Some(kid) => set.find(kid).cloned(),
                None => {
                    let usable: Vec<&Jwk> = set
                        .keys
                        .iter()
                        .filter(|k| jwk_algorithm(k).is_some())
                        .collect();
                    (usable.len() == 1).then(|| usable[0].clone())
                }
            }
        };
        match self {
            Self::Fixed(set) => pick(set).ok_or(AuthError::Refused("token key not found")),
            Self::Url {
                url,
                client,
                ttl,
                refetch,
                cache,
            } => {
                if let Some(answer) = cache.read().await.answer(pick, *ttl, *refetch) {
                    return answer;
                }
                // One fetch at a time; whoever waited re-checks what the last one brought.
                let mut cached = cache.write().await;
                if let Some(answer) = cached.answer(pick, *ttl, *refetch) {
                    return answer;
                }
                match fetch_jwks(client, url).await {
                    Ok(set) => {
                        let found = pick(&set);
                        *cached = JwksCache {
                            set: Some((Instant::now(), set)),
                            failed: None,
                        };
                        found.ok_or(AuthError::Refused("token key not found"))
                    }
                    Err(error) => {
                        cached.failed = Some(Instant::now());
                        // The provider is down: the keys it served last still verify.
                        match cached.set.as_ref().and_then(|(_, set)| pick(set)) {
                            Some(jwk) => Ok(jwk),
                            None => Err(error),
                        }
                    }
                }
            }
        }
    }
}

fn jwks_unavailable() -> AuthError {
    AuthError::KeysUnavailable
}

async fn fetch_jwks(client: &reqwest::Client, url: &RpcUrl) -> Result<JwkSet, AuthError> {
    let unavailable = |why: &str| {
        tracing::warn!(url = ?url, why, "JWKS endpoint unavailable");
        jwks_unavailable()
    };
    let mut response = client
        .get(url.0.clone())
        .send()
        .await
        .map_err(|_| unavailable("no answer"))?;
    if !response.status().is_success() {
        return Err(unavailable("not a success status"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| unavailable("body"))? {
        if body.len() + chunk.len() > JWKS_MAX_BYTES {
            return Err(unavailable("document too large"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice::<JwkSet>(&body).map_err(|_| unavailable("not a JWKS document"))
}
