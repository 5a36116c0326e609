//! API.md section 6: sponsored wallet deployment and the wallet records of apps' users.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use chipi_core::{
    felt_field, verify_signature, wallet_address, Call, Ciphertext, CreateWalletRequest, ErrorCode,
    Felt, OutsideExecution, PrepareWalletCreationRequest, PrepareWalletCreationResponse,
    UserSignature, WalletRecord, WalletSummary,
};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::ApiJson;
use crate::state::{selector, AppState, Inner};
use crate::store::{felt_text, now, Claim, WalletRow};
use crate::transactions::{calls_hash, issue, send};

/// The Universal Deployer Contract (the current one, on every public network and the devnet).
pub const UDC_ADDRESS: Felt =
    Felt::from_hex_unchecked("0x02ceed65a4bd731034c01113685c831b01c15d7d432f71afb1cf1634b53a2125");

/// Now, ISO 8601 (UTC).
pub fn iso_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn served_list(state: &Inner) -> String {
    state
        .classes
        .iter()
        .map(|c| format!("{c:#x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The external user a request acts for: a user token's subject must be that user.
fn acting_user(caller: &Caller, external_user_id: &str) -> Result<String, ApiError> {
    if external_user_id.is_empty() || external_user_id.len() > 256 {
        return Err(ApiError::invalid("`externalUserId`: 1 to 256 characters"));
    }
    match &caller.user {
        Some(user) if user != external_user_id => Err(ApiError::unauthorized(
            "the token's subject is not this externalUserId",
        )),
        _ => Ok(external_user_id.to_string()),
    }
}

/// `POST /v1/chipi-wallets/prepare-creation`.
pub(crate) async fn prepare_creation(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PrepareWalletCreationRequest>,
) -> Result<Json<PrepareWalletCreationResponse>, ApiError> {
    let state = &state.0;
    let address = felt_field(&request.public_key, "publicKey")?;
    let owner = felt_field(&request.stark_key_pub_a_x, "starkKeyPubAX")?;
    let class = match &request.class_hash {
        Some(text) => {
            let class = felt_field(text, "classHash")?;
            if !state.classes.contains(&class) {
                return Err(ApiError::invalid(format!(
                    "this paymaster does not deploy class {class:#x}; it serves {}",
                    served_list(state)
                )));
            }
            class
        }
        None => state
            .classes
            .iter()
            .copied()
            .find(|class| wallet_address(owner, *class) == address)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "the address is not a wallet of this paymaster's class; pass `classHash` ({})",
                    served_list(state)
                ))
            })?,
    };
    if wallet_address(owner, class) != address {
        return Err(ApiError::invalid(
            "the address is not the counterfactual address of this owner key and class",
        ));
    }
    // Typed data over no calls, for the new owner key to sign: proof that the client
    // holds the key, with a nonce this service issued (no replay of an old proof).
    let execution = issue(state, &caller, address, Vec::new()).await?;
    Ok(Json(PrepareWalletCreationResponse {
        typed_data: execution.to_typed_data(state.chain_id),
        account_class_hash: format!("{class:#x}"),
    }))
}

fn record(row: &WalletRow) -> WalletRecord {
    let address = chipi_core::parse_felt_strict(&row.address).unwrap_or_default();
    WalletRecord {
        id: row.id.clone(),
        external_user_id: row.external_user_id.clone(),
        public_key: row.address.clone(),
        normalized_public_key: format!("{address:#066x}"),
        encrypted_private_key: Ciphertext(row.encrypted_private_key.clone()),
        wallet_type: row.wallet_type.clone(),
        chain: "STARKNET".into(),
        is_deployed: row.is_deployed,
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        tx_hash: row.tx_hash.clone(),
        wallet_public_key: row.address.clone(),
        wallet: WalletSummary {
            public_key: row.address.clone(),
            encrypted_private_key: Ciphertext(row.encrypted_private_key.clone()),
            wallet_type: row.wallet_type.clone(),
        },
    }
}

fn already_exists() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "WALLET_ALREADY_EXISTS",
        "this user already has a wallet at another address",
    )
}

/// `POST /v1/chipi-wallets`.
pub(crate) async fn create(
    State(app_state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateWalletRequest>,
) -> Result<Json<WalletRecord>, ApiError> {
    let state = &app_state.0;
    let user = acting_user(&caller, &request.external_user_id)?;
    let address = felt_field(&request.public_key, "publicKey")?;
    let deployment = &request.deployment_data;
    let class = felt_field(&deployment.class_hash, "deploymentData.class_hash")?;
    let owner = felt_field(&deployment.salt, "deploymentData.salt")?;
    let unique = felt_field(&deployment.unique, "deploymentData.unique")?;
    let calldata = deployment
        .calldata
        .iter()
        .map(|c| felt_field(c, "deploymentData.calldata"))
        .collect::<Result<Vec<_>, _>>()?;
    if !state.classes.contains(&class) {
        return Err(ApiError::invalid(format!(
            "this paymaster does not deploy class {class:#x}; it serves {}",
            served_list(state)
        )));
    }
    if unique != Felt::ZERO || calldata != [owner] || wallet_address(owner, class) != address {
        return Err(ApiError::invalid(
            "the deployment data does not give this address (salt and calldata = [owner key], unique = 0)",
        ));
    }
    let (execution, chain) = OutsideExecution::from_typed_data(&request.typed_data)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let issued = state
        .store
        .issued(&felt_text(address), &felt_text(execution.nonce))
        .await?
        .filter(|i| i.app == caller.app.public_key && i.calls_hash == calls_hash(&[]));
    let Some(issued) = issued.filter(|_| chain == state.chain_id) else {
        return Err(ApiError::bad_request(
            ErrorCode::OutsideExecutionRejected,
            "the typed data was not issued by this paymaster for this address",
        ));
    };
    let UserSignature::Owner { r, s, .. } = request.user_signature else {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidSignature,
            "a wallet creation is signed by the owner key",
        ));
    };
    let hash = execution.message_hash(state.chain_id, address);
    if !verify_signature(&owner, &hash, &r, &s) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidSignature,
            "the signature does not verify against the owner key",
        ));
    }
    let stamp = iso_now();
    let candidate = WalletRow {
        id: format!("wal_{:032x}", rand::random::<u128>()),
        app: caller.app.public_key.clone(),
        external_user_id: user.clone(),
        address: felt_text(address),
        owner_public_key: felt_text(owner),
        class_hash: felt_text(class),
        encrypted_private_key: request.encrypted_private_key.0.clone(),
        wallet_type: request
            .wallet_type
            .clone()
            .unwrap_or_else(|| "CHIPI".into()),
        tx_hash: None,
        is_deployed: false,
        created_at: stamp.clone(),
        updated_at: stamp.clone(),
    };
    let fresh = state.store.insert_wallet(&candidate).await?;
    let mut row = state
        .store
        .wallet_of_user(&caller.app.public_key, &user)
        .await?
        .ok_or_else(ApiError::internal)?;
    if row.address != candidate.address {
        return Err(already_exists());
    }
    if row.is_deployed {
        return Ok(Json(record(&row)));
    }
    if fresh && issued.expires_at < now() {
        return Err(ApiError::bad_request(
            ErrorCode::OutsideExecutionRejected,
            "the typed data expired; prepare the creation again",
        ));
    }
    // Deployed already (by anyone): record it, send nothing.
    if state.is_deployed(address).await? {
        state
            .store
            .wallet_deployed(&row.id, None, true, &stamp)
            .await?;
        row.is_deployed = true;
        return Ok(Json(record(&row)));
    }
    let wallet_text = felt_text(address);
    let hash = match state
        .store
        .claim(
            "deploy",
            &caller.app.public_key,
            &user,
            &wallet_text,
            "deploy",
        )
        .await?
    {
        Claim::Owned(id) => {
            let call = Call {
                to: UDC_ADDRESS,
                selector: selector("deploy_contract"),
                calldata: vec![class, owner, Felt::ZERO, Felt::ONE, owner],
            };
            let task_state = app_state.clone();
            state
                .tasks
                .spawn(async move { send(&task_state.0, id, address, vec![call]).await })
                .await
                .map_err(|_| ApiError::internal())??
        }
        Claim::Taken(taken) => match taken
            .hash
            .as_deref()
            .and_then(chipi_core::parse_felt_strict)
        {
            Some(hash) => hash,
            None => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::PaymasterError.as_str(),
                    "this wallet's deployment is being sent; retry the same request",
                ))
            }
        },
    };
    state
        .store
        .wallet_deployed(&row.id, Some(&felt_text(hash)), false, &stamp)
        .await?;
    row.tx_hash = Some(felt_text(hash));
    tracing::info!(app = %caller.app.name, wallet = %wallet_text, "wallet deployment sent");
    Ok(Json(record(&row)))
}

/// `GET /v1/chipi-wallets/by-user?externalUserId=...`.
pub(crate) async fn by_user(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<WalletRecord>, ApiError> {
    let query = query.unwrap_or_default();
    let external_user_id = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "externalUserId")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| ApiError::invalid("`externalUserId` query parameter required"))?;
    let user = acting_user(&caller, &external_user_id)?;
    let row = state
        .0
        .store
        .wallet_of_user(&caller.app.public_key, &user)
        .await?
        .ok_or_else(|| ApiError::not_found("no wallet for this user"))?;
    Ok(Json(record(&row)))
}

impl Inner {
    /// Whether a contract is deployed at `address`.
    pub async fn is_deployed(&self, address: Felt) -> Result<bool, ApiError> {
        use starknet_rust_core::types::{BlockId, BlockTag, StarknetError};
        use starknet_rust_providers::{Provider, ProviderError};
        match self
            .node
            .get_class_hash_at(BlockId::Tag(BlockTag::PreConfirmed), address)
            .await
        {
            Ok(_) => Ok(true),
            Err(ProviderError::StarknetError(StarknetError::ContractNotFound)) => Ok(false),
            Err(_) => Err(ApiError::node_unavailable()),
        }
    }
}
