//! `sessions.createSessionKey` (PROTOCOL.md section 2): local, nothing stored.

use std::time::{SystemTime, UNIX_EPOCH};

use chipi_core::{encrypt_private_key, ErrorCode, KeyFormat, SecretKey};

use crate::{SessionError, SessionKeyData};

/// Default session length: 6 hours.
pub const DEFAULT_SESSION_DURATION_SECONDS: u64 = 21_600;

/// Parameters of [`create_session_key`]. `Debug` hides the encryptKey.
#[derive(Clone)]
#[must_use]
pub struct CreateSessionKey<'a> {
    encrypt_key: &'a str,
    duration_seconds: u64,
    format: KeyFormat,
    now: Option<u64>,
}

impl std::fmt::Debug for CreateSessionKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateSessionKey")
            .field("encrypt_key", &"<redacted>")
            .field("duration_seconds", &self.duration_seconds)
            .field("format", &self.format)
            .finish()
    }
}

impl<'a> CreateSessionKey<'a> {
    /// A 6-hour session whose key is encrypted with `encrypt_key` in the
    /// JS-compatible format (what Chipi's JS SDK can read).
    pub fn new(encrypt_key: &'a str) -> Self {
        Self {
            encrypt_key,
            duration_seconds: DEFAULT_SESSION_DURATION_SECONDS,
            format: KeyFormat::Compatible,
            now: None,
        }
    }

    /// Session length in seconds (must be positive).
    pub fn duration_seconds(mut self, seconds: u64) -> Self {
        self.duration_seconds = seconds;
        self
    }

    /// The key format: [`KeyFormat::Strong`] resists PIN guessing; only this SDK reads it.
    pub fn format(mut self, format: KeyFormat) -> Self {
        self.format = format;
        self
    }

    pub(crate) fn has_now(&self) -> bool {
        self.now.is_some()
    }

    /// The current unix time to count from (by default the system clock).
    pub fn now(mut self, unix_seconds: u64) -> Self {
        self.now = Some(unix_seconds);
        self
    }
}

/// Generates a session key pair and encrypts its private key; stores nothing.
pub fn create_session_key(params: CreateSessionKey<'_>) -> Result<SessionKeyData, SessionError> {
    let failed = |message: &str| SessionError::new(ErrorCode::SessionCreationFailed, message);
    if params.duration_seconds == 0 {
        return Err(failed(
            "durationSeconds must be a positive number of seconds",
        ));
    }
    if params.encrypt_key.is_empty() {
        return Err(failed("encryptKey must not be empty"));
    }
    let now = match params.now {
        Some(now) => now,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| failed("the system clock is before 1970"))?
            .as_secs(),
    };
    let valid_until = now
        .checked_add(params.duration_seconds)
        .ok_or_else(|| failed("durationSeconds overflows the expiry time"))?;
    let key = SecretKey::random();
    let encrypted_private_key = encrypt_private_key(&key, params.encrypt_key, params.format)
        .map_err(|e| failed(&e.to_string()))?;
    Ok(SessionKeyData {
        public_key: format!("{:#x}", key.public_key()),
        encrypted_private_key,
        valid_until,
    })
}
