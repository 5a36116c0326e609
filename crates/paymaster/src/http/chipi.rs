//! The Chipi API's handlers (API.md sections 3-6 and 10): parse the wire types of the
//! core, call the engine, map its error. Nothing here decides anything.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use chipi_core::{
    felt_field, parse_calls, Ciphertext, CreateWalletRequest, ExecuteRawRequest,
    ExecuteSponsoredRequest, OutsideExecution, PrepareTypedDataRequest, PrepareTypedDataResponse,
    PrepareWalletCreationRequest, PrepareWalletCreationResponse, TransactionHashResponse,
    TransactionStatusResponse, UserSignature, WalletRecord, WalletSummary,
};

use super::ApiJson;
use crate::auth::Caller;
use crate::engine::{CreateWallet, UsageReport};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{felt_text, TxStatus, WalletRow};

/// `POST /v1/transactions/prepare-typed-data`.
pub(super) async fn prepare(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PrepareTypedDataRequest>,
) -> Result<Json<PrepareTypedDataResponse>, ApiError> {
    let wallet = felt_field(&request.public_key, "publicKey")?;
    let calls = parse_calls(&request.calls)?;
    let execution = state.0.prepare(&caller, wallet, calls).await?;
    Ok(Json(PrepareTypedDataResponse {
        typed_data: execution.to_typed_data(state.0.chain_id()),
        wallet_type: "CHIPI".into(),
    }))
}

/// `POST /v1/transactions/execute-sponsored-transaction`.
pub(super) async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ExecuteSponsoredRequest>,
) -> Result<Json<TransactionHashResponse>, ApiError> {
    let wallet = felt_field(&request.public_key, "publicKey")?;
    let (execution, chain) = OutsideExecution::from_typed_data(&request.typed_data)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let hash = state
        .0
        .execute(
            &caller,
            wallet,
            execution,
            chain,
            request.user_signature.to_felts(),
        )
        .await?;
    Ok(Json(TransactionHashResponse {
        transaction_hash: felt_text(hash),
    }))
}

/// `POST /v1/transactions/execute-sponsored-raw`: an outside execution the client built
/// and signed itself, as complete `execute_from_outside_v2` calldata.
pub(super) async fn execute_raw(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<ExecuteRawRequest>,
) -> Result<Json<TransactionHashResponse>, ApiError> {
    let wallet = felt_field(&request.account_address, "accountAddress")?;
    if request.calldata.len() > MAX_RAW_CALLDATA {
        return Err(ApiError::invalid(format!(
            "`calldata`: at most {MAX_RAW_CALLDATA} felts"
        )));
    }
    let calldata = request
        .calldata
        .iter()
        .map(|felt| felt_field(felt, "calldata"))
        .collect::<Result<Vec<_>, _>>()?;
    let hash = state
        .0
        .execute_raw(
            &caller,
            wallet,
            request.external_user_id.as_deref(),
            &calldata,
        )
        .await?;
    Ok(Json(TransactionHashResponse {
        transaction_hash: felt_text(hash),
    }))
}

/// The longest raw calldata read (64 calls of 60 felts, and a signature).
const MAX_RAW_CALLDATA: usize = 4096;

/// `GET /v1/transactions/{hash}/status`.
pub(super) async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
) -> Result<Json<TransactionStatusResponse>, ApiError> {
    let hash = chipi_core::parse_felt_strict(&hash)
        .ok_or_else(|| ApiError::invalid("the transaction hash is not a felt"))?;
    let row = state.0.sent(&caller, hash).await?;
    let status = row.status();
    Ok(Json(TransactionStatusResponse {
        transaction_hash: felt_text(hash),
        status: status.api().into(),
        block_number: row.block_number.map(|b| b as u64),
        revert_reason: match status {
            TxStatus::Reverted | TxStatus::Failed | TxStatus::Refused => row.reason,
            _ => None,
        },
    }))
}

/// `POST /v1/chipi-wallets/prepare-creation`.
pub(super) async fn prepare_creation(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PrepareWalletCreationRequest>,
) -> Result<Json<PrepareWalletCreationResponse>, ApiError> {
    let address = felt_field(&request.public_key, "publicKey")?;
    let owner = felt_field(&request.stark_key_pub_a_x, "starkKeyPubAX")?;
    let class = match &request.class_hash {
        Some(text) => Some(felt_field(text, "classHash")?),
        None => None,
    };
    let (execution, class) = state
        .0
        .prepare_creation(&caller, address, owner, class)
        .await?;
    Ok(Json(PrepareWalletCreationResponse {
        typed_data: execution.to_typed_data(state.0.chain_id()),
        account_class_hash: format!("{class:#x}"),
    }))
}

fn record(row: &WalletRow) -> WalletRecord {
    let address = felt_text(row.address);
    WalletRecord {
        id: row.id.clone(),
        external_user_id: row.external_user_id.clone(),
        public_key: address.clone(),
        normalized_public_key: format!("{:#066x}", row.address),
        encrypted_private_key: Ciphertext(row.encrypted_private_key.clone()),
        wallet_type: row.wallet_type.clone(),
        chain: "STARKNET".into(),
        is_deployed: row.is_deployed,
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        tx_hash: row.tx_hash.map(felt_text),
        wallet_public_key: address.clone(),
        wallet: WalletSummary {
            public_key: address,
            encrypted_private_key: Ciphertext(row.encrypted_private_key.clone()),
            wallet_type: row.wallet_type.clone(),
        },
    }
}

/// `POST /v1/chipi-wallets`.
pub(super) async fn create_wallet(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateWalletRequest>,
) -> Result<Json<WalletRecord>, ApiError> {
    let deployment = &request.deployment_data;
    let calldata = deployment
        .calldata
        .iter()
        .map(|c| felt_field(c, "deploymentData.calldata"))
        .collect::<Result<Vec<_>, _>>()?;
    let (execution, chain) = OutsideExecution::from_typed_data(&request.typed_data)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let owner_signature = match request.user_signature {
        UserSignature::Owner { r, s, .. } => Some((r, s)),
        _ => None,
    };
    let creation = CreateWallet {
        external_user_id: request.external_user_id.clone(),
        address: felt_field(&request.public_key, "publicKey")?,
        class: felt_field(&deployment.class_hash, "deploymentData.class_hash")?,
        salt: felt_field(&deployment.salt, "deploymentData.salt")?,
        unique: felt_field(&deployment.unique, "deploymentData.unique")?,
        calldata,
        execution,
        chain,
        owner_signature,
        encrypted_private_key: request.encrypted_private_key.0.clone(),
        wallet_type: request.wallet_type.unwrap_or_else(|| "CHIPI".into()),
    };
    let row = state.0.create_wallet(&caller, creation).await?;
    Ok(Json(record(&row)))
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `GET /v1/chipi-wallets/by-user?externalUserId=...`.
pub(super) async fn wallet_by_user(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<WalletRecord>, ApiError> {
    let user = query_param(query.as_deref(), "externalUserId")
        .ok_or_else(|| ApiError::invalid("`externalUserId` query parameter required"))?;
    let row = state.0.wallet_of(&caller, &user).await?;
    Ok(Json(record(&row)))
}

/// `GET /v1/sponsorship/usage[?externalUserId=...]`: the app's secret key only.
pub(super) async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<UsageReport>, ApiError> {
    if !caller.is_app() {
        return Err(ApiError::unauthorized(
            "the usage page needs the app's secret key",
        ));
    }
    let user = query_param(query.as_deref(), "externalUserId");
    if user.as_ref().is_some_and(|u| u.is_empty() || u.len() > 256) {
        return Err(ApiError::invalid("`externalUserId`: 1 to 256 characters"));
    }
    Ok(Json(state.0.usage(&caller, user.as_deref()).await?))
}
