use chipi_core::ErrorCode;

/// A failure of a session method, with the JS SDK's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SessionError {
    code: ErrorCode,
    message: String,
}

impl SessionError {
    /// An error with `code` and a message a user can act on (never a secret).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
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
