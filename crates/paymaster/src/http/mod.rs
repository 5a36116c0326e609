//! The HTTP surface: routes, the JSON body reader, the caller extractor, and the layers
//! (body limit, timeout, panic catcher, metrics). Every failure is the JSON error body,
//! the framework's own rejections included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use starknet_rust_providers::Provider;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::Caller;
use crate::error::{ApiError, CodeTag};
use crate::state::AppState;

mod chipi;
pub(crate) mod listen;
mod snip29;

/// The service's routes and layers over `state`. `/health` and `/metrics` are among them
/// unless the configuration gives them a listener of their own (`operations_listen`).
pub fn app(state: AppState) -> Router {
    let limit = state.0.config.http.body_limit_bytes;
    let concurrency = state.0.config.http.max_concurrent_requests;
    let separate_operations = state.0.config.operations_listen.is_some();
    let router = Router::new()
        .route("/", post(snip29::rpc))
        .route("/v1/transactions/prepare-typed-data", post(chipi::prepare))
        .route(
            "/v1/transactions/execute-sponsored-transaction",
            post(chipi::execute),
        )
        .route(
            "/v1/transactions/execute-sponsored-raw",
            post(chipi::execute_raw),
        )
        .route("/v1/transactions/{hash}/status", get(chipi::status))
        .route(
            "/v1/chipi-wallets/prepare-creation",
            post(chipi::prepare_creation),
        )
        .route("/v1/chipi-wallets", post(chipi::create_wallet))
        .route("/v1/chipi-wallets/by-user", get(chipi::wallet_by_user))
        .route("/v1/sponsorship/usage", get(chipi::usage));
    let router = if separate_operations {
        router
    } else {
        router.merge(operations_routes())
    };
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn_with_state(
            Arc::new(Semaphore::new(concurrency)),
            shed,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .with_state(state)
}

fn operations_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

/// `/health` and `/metrics` alone, for the operator's network (`operations_listen`).
pub fn operations_app(state: AppState) -> Router {
    operations_routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .with_state(state)
}

/// Past the concurrency limit a request is answered 503 `OVERLOADED` at once instead of
/// queueing: one semaphore for every route.
async fn shed(State(slots): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    match slots.try_acquire() {
        Ok(_slot) => next.run(request).await,
        Err(_) => ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "OVERLOADED",
                "the service is at its request limit; retry shortly",
            )
        }
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "method not allowed on this route",
    )
}

/// Times out slow requests (their started work still finishes on its own task) and
/// counts every request by route, status and code.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let timeout = Duration::from_secs(state.0.config.http.request_timeout_seconds);
    let response = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            "the request took too long; an execute may still complete: retry the same request",
        )
        .into_response(),
    };
    let code = response
        .extensions()
        .get::<CodeTag>()
        .map(|c| c.0)
        .unwrap_or("ok");
    let metrics = &state.0.metrics;
    metrics
        .requests
        .with_label_values(&[route.as_str(), response.status().as_str(), code])
        .inc();
    let elapsed = started.elapsed();
    metrics
        .latency
        .with_label_values(&[route.as_str()])
        .observe(elapsed.as_secs_f64());
    // The route pattern, never the path or query (which may name a user).
    tracing::info!(
        %method,
        route = %route,
        status = response.status().as_u16(),
        code,
        ms = elapsed.as_millis() as u64,
        "request"
    );
    response
}

/// A JSON request body: 415 without a JSON content type, 413 past the size limit, 400
/// for malformed JSON or a wrong field (the message names the field, never its value).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || (v.starts_with("application/") && v.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PAYLOAD_TOO_LARGE",
                        "the request body is too large",
                    )
                } else {
                    ApiError::invalid("the request body could not be read")
                }
            })?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let what = match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    "the body is not valid JSON".to_string()
                }
                _ if path == "." => "the body does not have the expected fields".to_string(),
                _ => format!("`{path}` is missing or has the wrong type"),
            };
            ApiError::invalid(what)
        })?;
        deserializer
            .end()
            .map_err(|_| ApiError::invalid("trailing characters after the JSON body"))?;
        Ok(Self(value))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(state.0.apps.authenticate(&parts.headers).await?)
    }
}

/// `GET /health`: the node answers and every relayer holds at least the floor.
async fn health(State(state): State<AppState>) -> Response {
    let inner = &state.0;
    let node_ok = inner.node.block_number().await.is_ok();
    let floor = inner.config.relaying.min_balance_fri;
    let mut relayers = Vec::new();
    let mut funded = true;
    for address in inner.relayers.addresses() {
        let balance = if node_ok {
            inner.relayer_balance(address).await
        } else {
            None
        };
        let ok = balance.is_some_and(|b| b >= floor);
        funded &= ok;
        relayers.push(json!({
            "address": format!("{address:#x}"),
            "balance": balance.map(|b| b.to_string()),
            "funded": ok,
        }));
    }
    let healthy = node_ok && funded;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "node": if node_ok { "reachable" } else { "unreachable" },
        "chainId": format!("{:#x}", inner.chain_id),
        "instance": inner.store.instance(),
        "leases": inner.relayers.held().iter().map(|a| format!("{a:#x}")).collect::<Vec<_>>(),
        "database": inner.store.backend().as_str(),
        "relayers": relayers,
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text, relayer balances read at most once a second.
async fn metrics(State(state): State<AppState>) -> Response {
    for address in state.0.relayers.addresses() {
        state.0.relayer_balance(address).await;
    }
    let metrics = &state.0.metrics;
    metrics
        .instance
        .with_label_values(&[state.0.store.instance(), state.0.store.backend().as_str()])
        .set(1);
    metrics
        .leases_held
        .set(i64::try_from(state.0.relayers.held().len()).unwrap_or(i64::MAX));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.0.metrics.render(),
    )
        .into_response()
}
