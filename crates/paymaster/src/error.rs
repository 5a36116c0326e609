//! The one error type of the service and its JSON body (API.md section 1).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chipi_core::{ErrorBody, ErrorCode};

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
}

impl ApiError {
    /// A failure with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
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

    /// The wire body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status_code: self.status.as_u16(),
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        response
            .extensions_mut()
            .insert(crate::http::CodeTag(self.code));
        response
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
