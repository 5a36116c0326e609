//! The Chipi API's error: an HTTP status and the JSON body of API.md section 1, and the
//! one mapping of the engine's errors to it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chipi_core::{ErrorBody, ErrorCode};

use crate::auth::AuthError;
use crate::engine::EngineError;
use crate::policy::{Refusal, RefusalKind};

/// A failure as the client sees it: an HTTP status, a code and a message for a user.
/// Messages never carry a key, a token, a ciphertext or the node's URL; 5xx messages say
/// nothing internal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A PROTOCOL.md section 5 code, or one of this service's (`NOT_FOUND`, ...).
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
    /// The sponsorship knob that refused.
    pub limit: Option<String>,
    /// Seconds after which the same request may pass (also the `Retry-After` header).
    pub retry_after: Option<u64>,
}

/// The code a response carries, for metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeTag(pub &'static str);

impl ApiError {
    /// A failure with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            limit: None,
            retry_after: None,
        }
    }

    /// 400 with a protocol code.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code.as_str(), message)
    }

    /// 400 `INVALID_INPUT`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorCode::InvalidInput, message)
    }

    /// 401 `AUTHENTICATION_FAILED`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::AuthenticationFailed.as_str(),
            message,
        )
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 503 `NETWORK_ERROR`: the Starknet node could not be reached or failed.
    pub fn node_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NetworkError.as_str(),
            "the Starknet node is unreachable; nothing was sent, retry later",
        )
    }

    /// 500 `PAYMASTER_ERROR`, saying nothing internal.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::PaymasterError.as_str(),
            "internal error",
        )
    }

    /// A sponsorship refusal (API.md section 10): 429, 402 or 403 with its knob.
    pub fn refused(refusal: Refusal) -> Self {
        let status = match refusal.kind {
            RefusalKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            RefusalKind::BudgetExceeded => StatusCode::PAYMENT_REQUIRED,
            _ => StatusCode::FORBIDDEN,
        };
        Self {
            status,
            code: refusal.kind.code(),
            message: refusal.message,
            limit: Some(refusal.limit),
            retry_after: refusal.retry_after,
        }
    }

    /// The wire body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status_code: self.status.as_u16(),
            code: self.code.to_string(),
            message: self.message.clone(),
            limit: self.limit.clone(),
            retry_after: self.retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(CodeTag(self.code));
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let message = error.to_string();
        match error {
            EngineError::Invalid(message)
            | EngineError::TimeBounds(message)
            | EngineError::ClassNotServed(message)
            | EngineError::Deployment(message) => Self::invalid(message),
            EngineError::Rejected { code, message } => Self::bad_request(code, message),
            EngineError::Refused(refusal) => Self::refused(refusal),
            EngineError::TokenNotSupported(_) | EngineError::PaymentTooLow(_) => {
                Self::invalid(message)
            }
            EngineError::Unauthorized(message) => Self::unauthorized(message),
            EngineError::NotFound(message) => Self::not_found(message),
            EngineError::WalletExists => {
                Self::new(StatusCode::CONFLICT, "WALLET_ALREADY_EXISTS", message)
            }
            EngineError::NodeUnavailable | EngineError::SubmissionUnknown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NetworkError.as_str(),
                message,
            ),
            EngineError::Unavailable(message) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::PaymasterError.as_str(),
                message,
            ),
            EngineError::Busy => Self {
                retry_after: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::PaymasterError.as_str(),
                    message,
                )
            },
            EngineError::RelayerRefused => Self::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::PaymasterError.as_str(),
                message,
            ),
            EngineError::Internal => Self::internal(),
        }
    }
}

impl From<AuthError> for ApiError {
    /// 401 `AUTHENTICATION_FAILED`, or 503 `AUTHENTICATION_UNAVAILABLE` while the token
    /// keys cannot be fetched.
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Refused(why) => Self::unauthorized(why),
            AuthError::KeysUnavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "AUTHENTICATION_UNAVAILABLE",
                error.to_string(),
            ),
        }
    }
}

impl From<chipi_core::WireError> for ApiError {
    /// Malformed input in a request (a felt, a call): 400 `INVALID_INPUT` naming the field.
    fn from(error: chipi_core::WireError) -> Self {
        Self::invalid(error.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(error = %error, "database error");
        Self::internal()
    }
}
