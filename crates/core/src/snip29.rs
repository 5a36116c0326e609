//! SNIP-29, the standard paymaster JSON-RPC API (`docs/API.md` section 7): its method
//! parameters and results, its error codes and the JSON-RPC 2.0 envelope, one
//! definition each, shared by the paymaster (server) and the SDK (client).
//!
//! Felts are written as lower-case `0x` hex and read strictly (hex or decimal strings
//! below the field prime, see [`crate::parse_felt_strict`]); amounts are written as
//! `0x` hex; timestamps are read as JSON numbers or numeric strings (starknet.js 9 sends
//! numbers where the SNIP's OpenRPC file says strings). Unknown fields are ignored.
//!
//! ```
//! use chipi_core::snip29::{BuildParams, FeeMode, Transaction};
//!
//! // What starknet.js 9's `PaymasterRpc.buildTransaction` sends for a sponsored invoke.
//! let params: BuildParams = serde_json::from_str(r#"{
//!     "transaction": {"type": "invoke", "invoke": {"user_address": "0x1234",
//!         "calls": [{"to": "0x49d", "selector": "0x83afd3", "calldata": ["0x1", "0x2"]}]}},
//!     "parameters": {"version": "0x1", "fee_mode": {"mode": "sponsored"},
//!         "time_bounds": {"execute_after": 1, "execute_before": 1900000000}}
//! }"#)?;
//! assert!(matches!(params.parameters.fee_mode, FeeMode::Sponsored { tip: None }));
//! let Transaction::Invoke { invoke } = &params.transaction else { unreachable!() };
//! assert_eq!(invoke.calls[0].calldata.len(), 2);
//! # Ok::<(), serde_json::Error>(())
//! ```

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use starknet_rust_core::types::{Call, Felt};

use crate::felt::parse_felt_strict;

/// The JSON-RPC method names this API serves.
pub mod methods {
    /// `true` when the service can take transactions.
    pub const IS_AVAILABLE: &str = "paymaster_isAvailable";
    /// The tokens fees can be paid in, with their prices.
    pub const GET_SUPPORTED_TOKENS: &str = "paymaster_getSupportedTokens";
    /// Typed data to sign, and the fee.
    pub const BUILD_TRANSACTION: &str = "paymaster_buildTransaction";
    /// The signed typed data, sent.
    pub const EXECUTE_TRANSACTION: &str = "paymaster_executeTransaction";
    /// The latest transaction of an executed request.
    pub const TRACKING_ID_TO_LATEST_HASH: &str = "paymaster_trackingIdToLatestHash";
}

/// The only `parameters.version` of SNIP-29 0.1.
pub const EXECUTION_VERSION: &str = "0x1";

/// Serde for a felt on the wire (written `0x` hex, read strictly).
pub mod felt_hex {
    use super::*;

    /// Writes `0x` hex.
    pub fn serialize<S: Serializer>(felt: &Felt, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{felt:#x}"))
    }

    /// Reads a hex or decimal string (or a small JSON number), below the prime.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Felt, D::Error> {
        let value = Value::deserialize(deserializer)?;
        felt_of(&value).ok_or_else(|| D::Error::custom(format!("not a felt: {}", shown(&value))))
    }
}

/// Serde for a list of felts.
pub mod felts_hex {
    use super::*;

    /// Writes `0x` hex strings.
    pub fn serialize<S: Serializer>(felts: &[Felt], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(felts.iter().map(|f| format!("{f:#x}")))
    }

    /// Reads hex or decimal strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Felt>, D::Error> {
        let values = Vec::<Value>::deserialize(deserializer)?;
        values
            .iter()
            .map(|v| {
                felt_of(v).ok_or_else(|| D::Error::custom(format!("not a felt: {}", shown(v))))
            })
            .collect()
    }
}

/// Serde for an optional list of felts.
mod opt_felts_hex {
    use super::*;

    pub fn serialize<S: Serializer>(
        felts: &Option<Vec<Felt>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match felts {
            Some(felts) => super::felts_hex::serialize(felts, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<Felt>>, D::Error> {
        #[derive(Deserialize)]
        struct Felts(#[serde(with = "super::felts_hex")] Vec<Felt>);
        Ok(Option::<Felts>::deserialize(deserializer)?.map(|f| f.0))
    }
}

/// Serde for an amount (fri or token units): written `0x` hex, read as a hex or decimal
/// string or a JSON number.
pub mod amount_hex {
    use super::*;

    /// Writes `0x` hex.
    pub fn serialize<S: Serializer>(amount: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{amount:#x}"))
    }

    /// Reads an amount that fits 128 bits.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let value = Value::deserialize(deserializer)?;
        felt_of(&value)
            .and_then(|f| u128::try_from(f).ok())
            .ok_or_else(|| D::Error::custom(format!("not an amount: {}", shown(&value))))
    }
}

/// Serde for a timestamp: a JSON number or a numeric string (hex accepted), written as a
/// decimal string as the OpenRPC file says.
mod seconds {
    use super::*;

    pub fn serialize<S: Serializer>(seconds: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&seconds.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let value = Value::deserialize(deserializer)?;
        felt_of(&value)
            .and_then(|f| u64::try_from(f).ok())
            .ok_or_else(|| D::Error::custom(format!("not a timestamp: {}", shown(&value))))
    }
}

fn felt_of(value: &Value) -> Option<Felt> {
    match value {
        Value::String(text) => parse_felt_strict(text),
        Value::Number(number) => number.as_u64().map(Felt::from),
        _ => None,
    }
}

/// At most 40 characters of a refused value, for error messages.
fn shown(value: &Value) -> String {
    value.to_string().chars().take(40).collect()
}

/// A call on the SNIP-29 wire (`{to, selector, calldata}`, selector already hashed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcCall {
    /// The contract called.
    #[serde(with = "felt_hex")]
    pub to: Felt,
    /// The entry point's selector.
    #[serde(with = "felt_hex")]
    pub selector: Felt,
    /// Its calldata.
    #[serde(with = "felts_hex")]
    pub calldata: Vec<Felt>,
}

impl From<RpcCall> for Call {
    fn from(call: RpcCall) -> Self {
        Call {
            to: call.to,
            selector: call.selector,
            calldata: call.calldata,
        }
    }
}

impl From<&Call> for RpcCall {
    fn from(call: &Call) -> Self {
        Self {
            to: call.to,
            selector: call.selector,
            calldata: call.calldata.clone(),
        }
    }
}

/// The calls a user wants made by their account (`transaction.invoke` of a build).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoke {
    /// The account.
    #[serde(with = "felt_hex")]
    pub user_address: Felt,
    /// The calls, in order.
    pub calls: Vec<RpcCall>,
}

/// An account to deploy through the Universal Deployer (`deployment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The address it will have (checked against the other fields).
    #[serde(with = "felt_hex")]
    pub address: Felt,
    /// Its class.
    #[serde(with = "felt_hex")]
    pub class_hash: Felt,
    /// The deployment salt.
    #[serde(with = "felt_hex")]
    pub salt: Felt,
    /// The constructor's calldata.
    #[serde(with = "felts_hex")]
    pub calldata: Vec<Felt>,
    /// Data some classes take in their constructor besides the calldata.
    #[serde(
        default,
        with = "opt_felts_hex",
        skip_serializing_if = "Option::is_none"
    )]
    pub sigdata: Option<Vec<Felt>>,
    /// `1`.
    pub version: u8,
}

/// What a build asks for (`transaction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transaction {
    /// Calls by a deployed account.
    Invoke {
        /// The calls.
        invoke: Invoke,
    },
    /// An account deployment alone.
    Deploy {
        /// The account.
        deployment: Deployment,
    },
    /// An account deployment, then its first calls.
    DeployAndInvoke {
        /// The account.
        deployment: Deployment,
        /// The calls.
        invoke: Invoke,
    },
}

/// The tip the relayer's transaction carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tip {
    /// The lowest of the service's tips.
    Slow,
    /// Its usual tip.
    Normal,
    /// Its highest.
    Fast,
    /// A tip in fri per L2 gas unit, bounded by the service's configuration.
    Custom(u64),
}

impl Serialize for Tip {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Slow => serializer.serialize_str("slow"),
            Self::Normal => serializer.serialize_str("normal"),
            Self::Fast => serializer.serialize_str("fast"),
            Self::Custom(tip) => {
                serde_json::json!({ "custom": format!("{tip:#x}") }).serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Tip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match &value {
            Value::String(s) if s == "slow" => Ok(Self::Slow),
            Value::String(s) if s == "normal" => Ok(Self::Normal),
            Value::String(s) if s == "fast" => Ok(Self::Fast),
            Value::Object(object) => object
                .get("custom")
                .and_then(felt_of)
                .and_then(|f| u64::try_from(f).ok())
                .map(Self::Custom)
                .ok_or_else(|| D::Error::custom("tip.custom: a number that fits 64 bits")),
            _ => Err(D::Error::custom(
                "tip: \"slow\", \"normal\", \"fast\" or {\"custom\": <amount>}",
            )),
        }
    }
}

/// Who pays (`parameters.fee_mode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum FeeMode {
    /// The app's sponsorship pays (its policy applies, API.md section 10).
    Sponsored {
        /// The tip asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tip: Option<Tip>,
    },
    /// The user pays in `gas_token`: the calls end with one transfer of it to the
    /// service's fee collector.
    Default {
        /// The token paid in.
        #[serde(with = "felt_hex")]
        gas_token: Felt,
        /// The tip asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tip: Option<Tip>,
    },
}

impl FeeMode {
    /// The tip asked for, if any.
    pub fn tip(&self) -> Option<Tip> {
        match self {
            Self::Sponsored { tip } | Self::Default { tip, .. } => *tip,
        }
    }
}

/// When the signed calls may run (`time_bounds`, unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBounds {
    /// Not before (exclusive, as SNIP-9 says).
    #[serde(with = "seconds")]
    pub execute_after: u64,
    /// Not after (exclusive).
    #[serde(with = "seconds")]
    pub execute_before: u64,
}

/// How to execute (`parameters`), echoed by the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameters {
    /// [`EXECUTION_VERSION`].
    pub version: String,
    /// Who pays.
    pub fee_mode: FeeMode,
    /// When, if the client chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_bounds: Option<TimeBounds>,
}

/// `paymaster_buildTransaction`'s params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildParams {
    /// What to build.
    pub transaction: Transaction,
    /// How.
    pub parameters: Parameters,
}

/// The fee of a built transaction, in STRK (fri) and in the gas token's units. Present
/// in every mode; in sponsored mode the gas token is STRK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeEstimate {
    /// Fri per whole gas token (10^decimals units).
    #[serde(with = "amount_hex")]
    pub gas_token_price_in_strk: u128,
    /// The simulated fee.
    #[serde(with = "amount_hex")]
    pub estimated_fee_in_strk: u128,
    /// The same in the gas token.
    #[serde(with = "amount_hex")]
    pub estimated_fee_in_gas_token: u128,
    /// The most the transaction may cost.
    #[serde(with = "amount_hex")]
    pub suggested_max_fee_in_strk: u128,
    /// The same in the gas token: in default mode, the amount of the final transfer.
    #[serde(with = "amount_hex")]
    pub suggested_max_fee_in_gas_token: u128,
}

/// `paymaster_buildTransaction`'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Built {
    /// Typed data to sign.
    Invoke {
        /// The SNIP-12 OutsideExecution to sign.
        typed_data: Value,
        /// The parameters, echoed.
        parameters: Parameters,
        /// The fee.
        fee: FeeEstimate,
    },
    /// Nothing to sign.
    Deploy {
        /// The deployment, echoed.
        deployment: Deployment,
        /// The parameters, echoed.
        parameters: Parameters,
        /// The fee.
        fee: FeeEstimate,
    },
    /// The deployment, and typed data to sign for the calls.
    DeployAndInvoke {
        /// The deployment, echoed.
        deployment: Deployment,
        /// The SNIP-12 OutsideExecution to sign.
        typed_data: Value,
        /// The parameters, echoed.
        parameters: Parameters,
        /// The fee.
        fee: FeeEstimate,
    },
}

/// The signed calls (`transaction.invoke` of an execute).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedInvoke {
    /// The account.
    #[serde(with = "felt_hex")]
    pub user_address: Felt,
    /// The typed data the build returned.
    pub typed_data: Value,
    /// The account's signature over it, passed through unchanged.
    #[serde(with = "felts_hex")]
    pub signature: Vec<Felt>,
}

/// What an execute sends (`transaction`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Executable {
    /// Signed calls.
    Invoke {
        /// The calls.
        invoke: SignedInvoke,
    },
    /// A deployment.
    Deploy {
        /// The account.
        deployment: Deployment,
    },
    /// A deployment, then signed calls.
    DeployAndInvoke {
        /// The account.
        deployment: Deployment,
        /// The calls.
        invoke: SignedInvoke,
    },
}

/// `paymaster_executeTransaction`'s params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteParams {
    /// What to send.
    pub transaction: Executable,
    /// The parameters the build echoed.
    pub parameters: Parameters,
}

/// `paymaster_executeTransaction`'s result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    /// Follows this request across the transactions sent for it.
    #[serde(with = "felt_hex")]
    pub tracking_id: Felt,
    /// The transaction sent.
    #[serde(with = "felt_hex")]
    pub transaction_hash: Felt,
}

/// One token fees can be paid in (`paymaster_getSupportedTokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenData {
    /// The ERC-20.
    #[serde(with = "felt_hex")]
    pub token_address: Felt,
    /// Its decimals.
    pub decimals: u8,
    /// Fri per whole token (10^decimals units).
    #[serde(with = "amount_hex")]
    pub price_in_strk: u128,
}

/// `paymaster_trackingIdToLatestHash`'s params.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingParams {
    /// From an execute's result.
    #[serde(with = "felt_hex")]
    pub tracking_id: Felt,
}

/// Where a tracked request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    /// Sent, not in a block yet.
    Active,
    /// In a block (succeeded or reverted: the fee was paid).
    Accepted,
    /// No transaction of it will land.
    Dropped,
}

/// `paymaster_trackingIdToLatestHash`'s result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    /// The latest transaction sent for the request.
    #[serde(with = "felt_hex")]
    pub transaction_hash: Felt,
    /// Where it stands.
    pub status: TrackingStatus,
}

/// The SNIP-29 error codes, and JSON-RPC 2.0's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcCode {
    /// -32700: the body is not JSON.
    ParseError,
    /// -32600: not a JSON-RPC 2.0 request.
    InvalidRequest,
    /// -32601.
    MethodNotFound,
    /// -32602: params missing or of the wrong shape.
    InvalidParams,
    /// -32603.
    InternalError,
    /// 150: an address that is not a usable account.
    InvalidAddress,
    /// 151: fees cannot be paid in this token.
    TokenNotSupported,
    /// 153: the signature does not verify.
    InvalidSignature,
    /// 154: the signed fee transfer does not cover the fee.
    MaxAmountTooLow,
    /// 155: the account's class is not one the service relays for.
    ClassHashNotSupported,
    /// 156: the transaction would fail; `data.execution_error` says why.
    TransactionExecutionError,
    /// 157: the time bounds are unusable.
    InvalidTimeBounds,
    /// 158: the deployment data does not give its address.
    InvalidDeploymentData,
    /// 159: the class hash is not a declared class.
    InvalidClassHash,
    /// 160: no such tracking id.
    InvalidId,
    /// 163: anything else (authentication, sponsorship refusals: `data.code` says which).
    UnknownError,
}

impl RpcCode {
    /// Every code.
    pub const ALL: [Self; 16] = [
        Self::ParseError,
        Self::InvalidRequest,
        Self::MethodNotFound,
        Self::InvalidParams,
        Self::InternalError,
        Self::InvalidAddress,
        Self::TokenNotSupported,
        Self::InvalidSignature,
        Self::MaxAmountTooLow,
        Self::ClassHashNotSupported,
        Self::TransactionExecutionError,
        Self::InvalidTimeBounds,
        Self::InvalidDeploymentData,
        Self::InvalidClassHash,
        Self::InvalidId,
        Self::UnknownError,
    ];

    /// The number on the wire.
    pub const fn code(self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
            Self::InvalidAddress => 150,
            Self::TokenNotSupported => 151,
            Self::InvalidSignature => 153,
            Self::MaxAmountTooLow => 154,
            Self::ClassHashNotSupported => 155,
            Self::TransactionExecutionError => 156,
            Self::InvalidTimeBounds => 157,
            Self::InvalidDeploymentData => 158,
            Self::InvalidClassHash => 159,
            Self::InvalidId => 160,
            Self::UnknownError => 163,
        }
    }

    /// The code of a number, if it is one of these.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The message the SNIP gives the code.
    pub const fn message(self) -> &'static str {
        match self {
            Self::ParseError => "Parse error",
            Self::InvalidRequest => "Invalid Request",
            Self::MethodNotFound => "Method not found",
            Self::InvalidParams => "Invalid params",
            Self::InternalError => "Internal error",
            Self::InvalidAddress => "An error occurred (INVALID_ADDRESS)",
            Self::TokenNotSupported => "An error occurred (TOKEN_NOT_SUPPORTED)",
            Self::InvalidSignature => "An error occurred (INVALID_SIGNATURE)",
            Self::MaxAmountTooLow => "An error occurred (MAX_AMOUNT_TOO_LOW)",
            Self::ClassHashNotSupported => "An error occurred (CLASS_HASH_NOT_SUPPORTED)",
            Self::TransactionExecutionError => "An error occurred (TRANSACTION_EXECUTION_ERROR)",
            Self::InvalidTimeBounds => "An error occurred (INVALID_TIME_BOUNDS)",
            Self::InvalidDeploymentData => "An error occurred (INVALID_DEPLOYMENT_DATA)",
            Self::InvalidClassHash => "An error occurred (INVALID_CLASS_HASH)",
            Self::InvalidId => "An error occurred (INVALID_ID)",
            Self::UnknownError => "An error occurred (UNKNOWN_ERROR)",
        }
    }
}

/// A JSON-RPC 2.0 error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// [`RpcCode::code`], or another server's number.
    pub code: i64,
    /// What happened.
    pub message: String,
    /// More: `{execution_error}` for 156, `{code, message, limit?, retryAfter?}` for
    /// refusals carried by 163.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// `code` with its SNIP message and `data`.
    pub fn new(code: RpcCode, data: Option<Value>) -> Self {
        Self {
            code: code.code(),
            message: code.message().to_string(),
            data,
        }
    }

    /// The code, when it is one of SNIP-29's or JSON-RPC's.
    pub fn kind(&self) -> Option<RpcCode> {
        RpcCode::from_code(self.code)
    }
}

/// A JSON-RPC 2.0 request. `params` may be missing (starknet.js omits it for the
/// methods without parameters); without an `id` it is a notification (no answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcRequest {
    /// `"2.0"`.
    pub jsonrpc: String,
    /// The method.
    pub method: String,
    /// Named params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// A number, a string or null (`Some(Value::Null)`); absent (`None`) for a
    /// notification.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<Value>,
}

/// A field that is there, even as `null` (serde's `Option` reads `null` as absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A JSON-RPC 2.0 response: exactly one of `result` and `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcResponse {
    /// `"2.0"`.
    pub jsonrpc: String,
    /// The request's id (null when it could not be read).
    pub id: Value,
    /// The method's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl RpcResponse {
    /// A success.
    pub fn result(id: Value, result: Value) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn error(id: Value, error: RpcError) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_starknet_js_sends_parses_and_writes_back_canonically() {
        // `executeTransaction` of starknet.js 9.2.1 for an invoke, time bounds as numbers.
        let sent = json!({
            "transaction": {"type": "invoke", "invoke": {
                "user_address": "0x0ABC",
                "typed_data": {"primaryType": "OutsideExecution"},
                "signature": ["0x1", "2"],
            }},
            "parameters": {"version": "0x1", "fee_mode": {"mode": "default", "gas_token": "0x4718"},
                "time_bounds": {"execute_after": 1, "execute_before": "1900000000"}},
        });
        let params: ExecuteParams = serde_json::from_value(sent).unwrap();
        let Executable::Invoke { invoke } = &params.transaction else {
            panic!("not an invoke")
        };
        assert_eq!(invoke.user_address, Felt::from(0xabcu16));
        assert_eq!(invoke.signature, vec![Felt::ONE, Felt::TWO]);
        assert_eq!(
            params.parameters.time_bounds,
            Some(TimeBounds {
                execute_after: 1,
                execute_before: 1_900_000_000
            })
        );
        let written = serde_json::to_value(&params).unwrap();
        assert_eq!(written["transaction"]["invoke"]["user_address"], "0xabc");
        assert_eq!(
            written["transaction"]["invoke"]["signature"],
            json!(["0x1", "0x2"])
        );
        assert_eq!(
            written["parameters"]["fee_mode"],
            json!({"mode": "default", "gas_token": "0x4718"})
        );
        assert_eq!(
            written["parameters"]["time_bounds"]["execute_before"],
            "1900000000"
        );
    }

    #[test]
    fn values_outside_their_range_are_refused() {
        let p = "0x800000000000011000000000000000000000000000000000000000000000001";
        let call = json!({"to": p, "selector": "0x1", "calldata": []});
        assert!(serde_json::from_value::<RpcCall>(call).is_err());
        let call = json!({"to": "0x1", "selector": "0x1", "calldata": ["-1"]});
        assert!(serde_json::from_value::<RpcCall>(call).is_err());
        let bounds = json!({"execute_after": 1, "execute_before": "0x10000000000000000"});
        assert!(serde_json::from_value::<TimeBounds>(bounds).is_err());
        let token = json!({"token_address": "0x1", "decimals": 18, "price_in_strk": format!("{:#x}", Felt::MAX)});
        assert!(serde_json::from_value::<TokenData>(token).is_err());
        assert!(
            serde_json::from_value::<FeeMode>(json!({"mode": "priority", "gas_token": "0x1"}))
                .is_err()
        );
    }

    #[test]
    fn tips_read_and_write_every_form() {
        for (text, tip) in [
            (json!("slow"), Tip::Slow),
            (json!("normal"), Tip::Normal),
            (json!("fast"), Tip::Fast),
            (json!({"custom": "0x10"}), Tip::Custom(16)),
        ] {
            assert_eq!(serde_json::from_value::<Tip>(text.clone()).unwrap(), tip);
            assert_eq!(serde_json::to_value(tip).unwrap(), text);
        }
        assert_eq!(
            serde_json::from_value::<Tip>(json!({"custom": 16})).unwrap(),
            Tip::Custom(16)
        );
        assert!(serde_json::from_value::<Tip>(json!("fastest")).is_err());
        let mode: FeeMode =
            serde_json::from_value(json!({"mode": "sponsored", "tip": "fast"})).unwrap();
        assert_eq!(mode.tip(), Some(Tip::Fast));
    }

    #[test]
    fn every_code_has_its_number_once() {
        let mut numbers: Vec<i64> = RpcCode::ALL.iter().map(|c| c.code()).collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), RpcCode::ALL.len());
        for code in RpcCode::ALL {
            assert_eq!(RpcCode::from_code(code.code()), Some(code));
        }
        assert_eq!(RpcCode::from_code(152), None);
    }

    #[test]
    fn a_request_without_params_or_id_reads() {
        let request: RpcRequest = serde_json::from_value(
            json!({"jsonrpc": "2.0", "method": "paymaster_isAvailable", "id": 1}),
        )
        .unwrap();
        assert_eq!(request.params, None);
        assert_eq!(request.id, Some(json!(1)));
        let notification: RpcRequest =
            serde_json::from_value(json!({"jsonrpc": "2.0", "method": "m"})).unwrap();
        assert_eq!(notification.id, None);
        let null_id: RpcRequest =
            serde_json::from_value(json!({"jsonrpc": "2.0", "method": "m", "id": null})).unwrap();
        assert_eq!(null_id.id, Some(Value::Null));
    }
}
