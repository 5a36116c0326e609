use std::error::Error;
use std::sync::Arc;

use chipi_core::ErrorCode;

/// A failure of an SDK method, with the JS SDK's error code.
///
/// `message` says what went wrong in words a user can act on and never holds a secret
/// (key, PIN, ciphertext, token, a node URL's path); [`source`](Error::source) is the
/// underlying error where there is one that is safe to show.
#[derive(Clone)]
pub struct SessionError {
    code: ErrorCode,
    message: String,
    source: Option<Arc<dyn Error + Send + Sync>>,
}

impl SessionError {
    /// An error with `code` and a message a user can act on (never a secret).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
        }
    }

    /// The same error caused by `source` (which must not print a secret).
    pub(crate) fn with_source(mut self, source: impl Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The code, e.g. `SESSION_EXPIRED`.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::fmt::Debug for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("SessionError");
        debug
            .field("code", &self.code)
            .field("message", &self.message);
        if let Some(source) = &self.source {
            debug.field("source", &source.to_string());
        }
        debug.finish()
    }
}

impl Error for SessionError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Equal when code and message are: the source is detail.
impl PartialEq for SessionError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.message == other.message
    }
}

impl Eq for SessionError {}

/// Malformed input from the caller (a call, a felt, an entrypoint): `INVALID_INPUT`.
impl From<chipi_core::WireError> for SessionError {
    fn from(error: chipi_core::WireError) -> Self {
        SessionError::new(ErrorCode::InvalidInput, error.to_string()).with_source(error)
    }
}
