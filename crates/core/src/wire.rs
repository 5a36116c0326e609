//! Wire types of the paymaster API (`docs/API.md`), one definition each, shared by the
//! SDK and the paymaster so the two cannot drift apart: the JS-shaped call and its one
//! strict parser, the transaction and wallet requests and responses, the user
//! signature and the error body.
//!
//! Requests ignore unknown fields (Chipi's JS SDK sends many this API does not use);
//! felts are read as hex (any case) or decimal strings and written as lower-case `0x` hex.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use starknet_rust_core::types::{Call, Felt};
use starknet_rust_core::utils::{get_contract_address, get_selector_from_name};

use crate::felt::parse_felt_strict;

/// Input the wire types refuse; the text quotes at most a short prefix of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A field is not a canonical felt (hex or decimal, below the field prime).
    #[error("{field} is not a felt: {value:?}")]
    Felt {
        /// The field, as the JSON names it.
        field: &'static str,
        /// The start of the value.
        value: String,
    },
    /// An entrypoint that is neither a Cairo name nor a hex selector.
    #[error("{0:?} is neither an entry-point name nor a hex selector")]
    Entrypoint(String),
    /// A call list without calls.
    #[error("calls must not be empty")]
    NoCalls,
}

fn shown(text: &str) -> String {
    text.chars().take(80).collect()
}

/// `text` as a felt of `field`, strictly (see [`parse_felt_strict`]).
pub fn felt_field(text: &str, field: &'static str) -> Result<Felt, WireError> {
    parse_felt_strict(text).ok_or_else(|| WireError::Felt {
        field,
        value: shown(text),
    })
}

/// A selector from an entry-point name (`transfer`) or a hex selector (`0x83af…`).
///
/// ```
/// use chipi_core::{resolve_selector, selectors};
/// assert_eq!(resolve_selector("transfer"), Ok(selectors::TRANSFER));
/// assert_eq!(resolve_selector(&format!("{:#x}", selectors::TRANSFER)), Ok(selectors::TRANSFER));
/// assert!(resolve_selector("transfer()").is_err());
/// ```
pub fn resolve_selector(entrypoint: &str) -> Result<Felt, WireError> {
    if entrypoint.starts_with("0x") || entrypoint.starts_with("0X") {
        return felt_field(entrypoint, "entrypoint");
    }
    let valid_name = entrypoint
        .bytes()
        .next()
        .is_some_and(|first| !first.is_ascii_digit())
        && entrypoint
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_name {
        return Err(WireError::Entrypoint(shown(entrypoint)));
    }
    get_selector_from_name(entrypoint).map_err(|_| WireError::Entrypoint(shown(entrypoint)))
}

/// A contract call as the JS SDK writes it: `{contractAddress, entrypoint, calldata}`,
/// `entrypoint` a name or a hex selector, a missing `calldata` meaning `[]`.
///
/// ```
/// use chipi_core::{selectors, Felt, JsCall};
///
/// let call: JsCall = serde_json::from_str(
///     r#"{"contractAddress": "0x1234", "entrypoint": "transfer", "calldata": ["0xAB", "100", "0"], "extra": 1}"#,
/// )?;
/// let parsed = call.parse().unwrap();
/// assert_eq!(parsed.selector, selectors::TRANSFER);
/// assert_eq!(parsed.calldata, vec![Felt::from(0xabu8), Felt::from(100u8), Felt::ZERO]);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsCall {
    /// Target contract, hex.
    pub contract_address: String,
    /// Entry-point name or hex selector.
    pub entrypoint: String,
    /// Arguments, hex or decimal strings.
    #[serde(default)]
    pub calldata: Vec<String>,
}

impl JsCall {
    /// The call with every felt checked: the one parser of JS-shaped calls.
    pub fn parse(&self) -> Result<Call, WireError> {
        Ok(Call {
            to: felt_field(&self.contract_address, "contractAddress")?,
            selector: resolve_selector(&self.entrypoint)?,
            calldata: self
                .calldata
                .iter()
                .map(|item| felt_field(item, "calldata"))
                .collect::<Result<_, _>>()?,
        })
    }

    /// `call` in the JS shape, written as lower-case hex.
    pub fn from_call(call: &Call) -> Self {
        Self {
            contract_address: hex(call.to),
            entrypoint: hex(call.selector),
            calldata: call.calldata.iter().map(|f| hex(*f)).collect(),
        }
    }
}

/// An encrypted private key on the wire: serialized as the plain string, shown by
/// `Debug` as `<redacted>` (a compatible-format one falls to a PIN search in seconds).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ciphertext(pub String);

impl std::fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Parses a non-empty list of JS-shaped calls.
pub fn parse_calls(calls: &[JsCall]) -> Result<Vec<Call>, WireError> {
    if calls.is_empty() {
        return Err(WireError::NoCalls);
    }
    calls.iter().map(JsCall::parse).collect()
}

/// The standard counterfactual address of a wallet (PROTOCOL.md, API.md section 6):
/// deployer 0 (the UDC, not unique), salt = the owner public key, constructor calldata
/// `[owner public key]`.
///
/// ```
/// use chipi_core::{wallet_address, Felt};
/// let a = wallet_address(Felt::from(1u8), Felt::from(2u8));
/// assert_ne!(a, wallet_address(Felt::from(3u8), Felt::from(2u8)));
/// ```
pub fn wallet_address(owner_public_key: Felt, class_hash: Felt) -> Felt {
    get_contract_address(
        owner_public_key,
        class_hash,
        &[owner_public_key],
        Felt::ZERO,
    )
}

/// `POST /v1/transactions/prepare-typed-data` (API.md section 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepareTypedDataRequest {
    /// The wallet address (Chipi's naming).
    pub public_key: String,
    /// The calls to run.
    pub calls: Vec<JsCall>,
    /// A hint, untrusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_class_hash: Option<String>,
    /// A hint, untrusted (`"CHIPI"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_type: Option<String>,
}

/// The answer to [`PrepareTypedDataRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepareTypedDataResponse {
    /// SNIP-12 revision 1 typed data of an OutsideExecution.
    pub typed_data: Value,
    /// Always present (without it the JS SDK sends `"READY"` next).
    pub wallet_type: String,
}

/// `POST /v1/transactions/execute-sponsored-transaction` (API.md section 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteSponsoredRequest {
    /// The wallet address.
    pub public_key: String,
    /// The typed data as returned by `prepare-typed-data`.
    pub typed_data: Value,
    /// The owner's or a session's signature.
    pub user_signature: UserSignature,
    /// `true` for a session signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_session_signature: Option<bool>,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_to_database: Option<bool>,
    /// A hint (`"CHIPI"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_type: Option<String>,
}

/// `POST /v1/transactions/execute-sponsored-raw` (API.md section 7, what Chipi's JS SDK
/// 14.13 sends for an outside execution it built and signed itself): the complete
/// `execute_from_outside_v2` calldata, caller `ANY_CALLER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteRawRequest {
    /// The wallet address.
    pub account_address: String,
    /// `[caller, nonce, execute_after, execute_before, calls..., signature_len, signature...]`.
    pub calldata: Vec<String>,
    /// How the wallet signs (`STARK`, ...): the wallet checks the signature, not this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_kind: Option<String>,
    /// The user, with the app's secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
}

/// The answer to [`ExecuteSponsoredRequest`] (and to a wallet creation's deployment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionHashResponse {
    /// The relayer's transaction, hex.
    pub transaction_hash: String,
}

/// `GET /v1/transactions/{hash}/status` (API.md section 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionStatusResponse {
    /// The transaction, hex.
    pub transaction_hash: String,
    /// `PENDING`, `ACCEPTED`, `REVERTED` or `FAILED`.
    pub status: String,
    /// The block, once included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_number: Option<u64>,
    /// Why it reverted or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_reason: Option<String>,
}

/// Every failure's body (API.md section 1). Reads leniently (a server may omit
/// `statusCode` or `code`); the JS SDK needs `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status.
    #[serde(default)]
    pub status_code: u16,
    /// An [`crate::ErrorCode`] wire name, or another code of the server's.
    #[serde(default)]
    pub code: String,
    /// What went wrong, for a user.
    pub message: String,
    /// The sponsorship knob that refused (API.md section 10), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// Seconds after which the same request may pass, when waiting helps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// `POST /v1/chipi-wallets/prepare-creation` (API.md section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepareWalletCreationRequest {
    /// The counterfactual wallet address.
    pub public_key: String,
    /// The owner's public key.
    pub stark_key_pub_a_x: String,
    /// `"CHIPI"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_type: Option<String>,
    /// The class to deploy; the paymaster's session account when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_hash: Option<String>,
    /// `"STARKNET"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

/// The answer to [`PrepareWalletCreationRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepareWalletCreationResponse {
    /// OutsideExecution typed data for the new address, signed by the new owner key.
    pub typed_data: Value,
    /// The class that will be deployed.
    pub account_class_hash: String,
}

/// How the wallet is deployed: through the UDC, not unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentData {
    /// The account class.
    pub class_hash: String,
    /// The owner public key.
    pub salt: String,
    /// `"0x0"`.
    pub unique: String,
    /// `[owner public key]`.
    pub calldata: Vec<String>,
}

/// `POST /v1/chipi-wallets` (API.md section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateWalletRequest {
    /// The app's user.
    pub external_user_id: String,
    /// The wallet address.
    pub public_key: String,
    /// `"CHIPI"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_type: Option<String>,
    /// The owner's signature over `typed_data`.
    pub user_signature: UserSignature,
    /// As returned by `prepare-creation`.
    pub typed_data: Value,
    /// The owner key encrypted with the user's PIN (stored, never read).
    pub encrypted_private_key: Ciphertext,
    /// How to deploy.
    pub deployment_data: DeploymentData,
}

/// The wallet as the JS SDK reads it under `.wallet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletSummary {
    /// The wallet address.
    pub public_key: String,
    /// The owner key, encrypted.
    pub encrypted_private_key: Ciphertext,
    /// `"CHIPI"`.
    pub wallet_type: String,
}

/// A stored wallet: the answer to a creation and to `GET /v1/chipi-wallets/by-user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletRecord {
    /// The record's id.
    pub id: String,
    /// The app's user.
    pub external_user_id: String,
    /// The wallet address.
    pub public_key: String,
    /// The address, 0x + 64 hex digits.
    pub normalized_public_key: String,
    /// The owner key, encrypted.
    pub encrypted_private_key: Ciphertext,
    /// `"CHIPI"`.
    pub wallet_type: String,
    /// `"STARKNET"`.
    pub chain: String,
    /// Whether the deployment is on chain.
    pub is_deployed: bool,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601.
    pub updated_at: String,
    /// The deployment transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// The wallet address again (the JS SDK's docs read it).
    pub wallet_public_key: String,
    /// The same, nested.
    pub wallet: WalletSummary,
}

/// What a user signs for the paymaster (`userSignature`): the owner's `{r, s, recovery}`
/// or a session's `[session_public_key, r, s, valid_until]` (PROTOCOL.md 3.2).
///
/// Reads `{r, s}` with or without `recovery`, felts as hex or decimal strings (or JSON
/// numbers); writes lower-case `0x` hex.
///
/// ```
/// use chipi_core::{Felt, UserSignature};
///
/// let owner: UserSignature = serde_json::from_str(r#"{"r": "0x1f", "s": "31"}"#)?;
/// assert_eq!(owner.to_felts(), vec![Felt::from(31u8), Felt::from(31u8)]);
/// let session: UserSignature = serde_json::from_str(r#"["0xabc", "0x1", "0x2", "1900000000"]"#)?;
/// assert!(session.is_session());
/// assert_eq!(session.to_felts()[3], Felt::from(1_900_000_000u64));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSignature {
    /// The owner's ECDSA signature; `recovery` is the parity bit of the nonce point.
    Owner {
        /// `r`.
        r: Felt,
        /// `s`.
        s: Felt,
        /// 0 or 1 when known.
        recovery: Option<u8>,
    },
    /// A session's signature.
    Session {
        /// The session's public key.
        public_key: Felt,
        /// `r`.
        r: Felt,
        /// `s`.
        s: Felt,
        /// The session's expiry as registered on the wallet.
        valid_until: Felt,
    },
}

impl UserSignature {
    /// The signature as the wallet reads it: `[r, s]` or `[key, r, s, valid_until]`.
    pub fn to_felts(&self) -> Vec<Felt> {
        match *self {
            Self::Owner { r, s, .. } => vec![r, s],
            Self::Session {
                public_key,
                r,
                s,
                valid_until,
            } => vec![public_key, r, s, valid_until],
        }
    }

    /// Whether it is a session's (the API's `isSessionSignature`).
    pub fn is_session(&self) -> bool {
        matches!(self, Self::Session { .. })
    }
}

fn hex(felt: Felt) -> String {
    format!("{felt:#x}")
}

impl Serialize for UserSignature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = match *self {
            Self::Owner { r, s, recovery } => {
                let mut object = serde_json::json!({ "r": hex(r), "s": hex(s) });
                if let Some(recovery) = recovery {
                    object["recovery"] = recovery.into();
                }
                object
            }
            Self::Session { .. } => {
                Value::Array(self.to_felts().into_iter().map(|f| hex(f).into()).collect())
            }
        };
        value.serialize(serializer)
    }
}

/// A felt in JSON: a hex or decimal string, or a non-negative integer.
fn felt_of(value: &Value) -> Option<Felt> {
    match value {
        Value::String(text) => parse_felt_strict(text),
        Value::Number(number) => number.as_u64().map(Felt::from),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for UserSignature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match &value {
            Value::Array(items) => {
                let felts: Option<Vec<Felt>> = items.iter().map(felt_of).collect();
                match felts.as_deref() {
                    Some(&[public_key, r, s, valid_until]) => Ok(Self::Session {
                        public_key,
                        r,
                        s,
                        valid_until,
                    }),
                    Some(_) => Err(D::Error::custom(
                        "a session signature is 4 felts: [publicKey, r, s, validUntil]",
                    )),
                    None => Err(D::Error::custom("a signature item is not a felt")),
                }
            }
            Value::Object(object) => {
                let field = |name: &str| {
                    object
                        .get(name)
                        .and_then(felt_of)
                        .ok_or_else(|| D::Error::custom(format!("`{name}` is not a felt")))
                };
                let recovery = match object.get("recovery") {
                    None | Some(Value::Null) => None,
                    Some(v) => match felt_of(v).and_then(|f| u8::try_from(f).ok()) {
                        Some(bit @ (0 | 1)) => Some(bit),
                        _ => return Err(D::Error::custom("`recovery` is not 0 or 1")),
                    },
                };
                Ok(Self::Owner {
                    r: field("r")?,
                    s: field("s")?,
                    recovery,
                })
            }
            _ => Err(D::Error::custom(
                "a signature is {r, s[, recovery]} or [publicKey, r, s, validUntil]",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn js_calls_read_what_the_js_sdk_sends() {
        let calls: Vec<JsCall> = serde_json::from_value(json!([
            {"contractAddress": "0x04718F5A0FC34CC1AF16A1CDEE98FFB20C31F5CD61D6AB07201858F4287C938D",
             "entrypoint": "transfer", "calldata": ["0xABC", "1000", "0"]},
            {"contractAddress": "0x1", "entrypoint": "0x83afd3f4caedc6eebf44246fe54e38c95e3179a5ec9ea81740eca5b482d12e"},
            {"contractAddress": "0x1", "entrypoint": "approve", "calldata": [], "unknown": {"x": 1}},
        ]))
        .unwrap();
        let parsed = parse_calls(&calls).unwrap();
        assert_eq!(
            parsed[0].calldata,
            vec![Felt::from(0xabcu16), Felt::from(1000u16), Felt::ZERO]
        );
        assert_eq!(parsed[1].selector, crate::selectors::TRANSFER);
        assert!(parsed[1].calldata.is_empty(), "a missing calldata is []");
        assert_eq!(parsed[2].selector, crate::selectors::APPROVE);
        // Written back as lower-case hex, it parses to the same calls.
        let again: Vec<JsCall> = parsed.iter().map(JsCall::from_call).collect();
        assert_eq!(parse_calls(&again).unwrap(), parsed);
        assert_eq!(
            serde_json::to_value(&again[1]).unwrap(),
            json!({"contractAddress": "0x1", "entrypoint": format!("{:#x}", crate::selectors::TRANSFER), "calldata": []})
        );
    }

    #[test]
    fn js_calls_refuse_what_is_not_a_felt() {
        let call = |address: &str, entrypoint: &str, calldata: &[&str]| JsCall {
            contract_address: address.into(),
            entrypoint: entrypoint.into(),
            calldata: calldata.iter().map(|s| s.to_string()).collect(),
        };
        let p = "0x800000000000011000000000000000000000000000000000000000000000001";
        for bad in [
            call(p, "transfer", &[]),
            call("0x1", "transfer", &[p]),
            call("0x1", "transfer", &["-1"]),
            call("0x1", "transfer", &[" 1"]),
            call("0x1", "trans fer", &[]),
            call("0x1", "1abc", &[]),
            call("0x1", "", &[]),
            call("0x1", "0xzz", &[]),
        ] {
            assert!(bad.parse().is_err(), "{bad:?}");
        }
        assert_eq!(parse_calls(&[]), Err(WireError::NoCalls));
        // Calldata that is not an array of strings is refused by serde.
        assert!(serde_json::from_value::<JsCall>(
            json!({"contractAddress": "0x1", "entrypoint": "transfer", "calldata": [1, 2]})
        )
        .is_err());
    }

    #[test]
    fn transaction_requests_round_trip_the_js_shapes() {
        let prepare = json!({
            "publicKey": "0xABC",
            "calls": [{"contractAddress": "0x1", "entrypoint": "transfer", "calldata": ["1"]}],
            "accountClassHash": "0x5",
            "walletType": "CHIPI",
            "userId": "ignored",
            "chain": "STARKNET",
        });
        let request: PrepareTypedDataRequest = serde_json::from_value(prepare).unwrap();
        assert_eq!(request.wallet_type.as_deref(), Some("CHIPI"));
        let written = serde_json::to_value(&request).unwrap();
        assert_eq!(written["publicKey"], "0xABC");
        assert!(written.get("userId").is_none());
        assert_eq!(
            serde_json::from_value::<PrepareTypedDataRequest>(written).unwrap(),
            request
        );

        // The owner's signature without `recovery`, as the JS SDK sends it.
        let execute = json!({
            "publicKey": "0xabc",
            "typedData": {"primaryType": "OutsideExecution"},
            "userSignature": {"r": "123", "s": "0x1C8"},
            "saveToDatabase": true,
            "walletType": "CHIPI",
            "encryptedPrivateKeyBackup": "ignored",
        });
        let request: ExecuteSponsoredRequest = serde_json::from_value(execute).unwrap();
        assert_eq!(
            request.user_signature,
            UserSignature::Owner {
                r: Felt::from(123u8),
                s: Felt::from(456u16),
                recovery: None
            }
        );
        let session = json!({
            "publicKey": "0xabc",
            "typedData": {},
            "userSignature": ["0xA", "0xb", "12", "0x70000000"],
            "isSessionSignature": true,
        });
        let request: ExecuteSponsoredRequest = serde_json::from_value(session).unwrap();
        assert!(request.user_signature.is_session());
        assert_eq!(request.is_session_signature, Some(true));
        let again: ExecuteSponsoredRequest =
            serde_json::from_value(serde_json::to_value(&request).unwrap()).unwrap();
        assert_eq!(again, request);

        let body: ErrorBody = serde_json::from_value(json!({"message": "nope"})).unwrap();
        assert_eq!((body.status_code, body.code.as_str()), (0, ""));
        let body = ErrorBody {
            status_code: 401,
            code: "AUTHENTICATION_FAILED".into(),
            message: "no".into(),
            limit: None,
            retry_after: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"statusCode": 401, "code": "AUTHENTICATION_FAILED", "message": "no"})
        );
        let limited: ErrorBody = serde_json::from_value(json!({
            "statusCode": 429, "code": "RATE_LIMITED", "message": "wait",
            "limit": "user.transactions_per_day", "retryAfter": 30
        }))
        .unwrap();
        assert_eq!(limited.limit.as_deref(), Some("user.transactions_per_day"));
        assert_eq!(limited.retry_after, Some(30));
        assert_eq!(serde_json::to_value(&limited).unwrap()["retryAfter"], 30);
    }

    #[test]
    fn wallet_requests_round_trip_and_hide_ciphertexts() {
        let create = json!({
            "externalUserId": "user-1",
            "publicKey": "0x123",
            "walletType": "CHIPI",
            "userSignature": {"r": "0x1", "s": "0x2", "recovery": 0},
            "typedData": {},
            "encryptedPrivateKey": "U2FsdGVkX1-SECRET",
            "deploymentData": {"class_hash": "0x5", "salt": "0x7", "unique": "0x0", "calldata": ["0x7"]},
            "authMethod": "ignored",
        });
        let request: CreateWalletRequest = serde_json::from_value(create).unwrap();
        assert_eq!(request.deployment_data.calldata, vec!["0x7"]);
        assert!(!format!("{request:?}").contains("SECRET"));
        let written = serde_json::to_value(&request).unwrap();
        assert_eq!(written["encryptedPrivateKey"], "U2FsdGVkX1-SECRET");
        assert_eq!(written["deploymentData"]["class_hash"], "0x5");
        let prepare: PrepareWalletCreationRequest = serde_json::from_value(json!({
            "publicKey": "0x123", "starkKeyPubAX": "0x7", "walletType": "CHIPI"
        }))
        .unwrap();
        assert_eq!(prepare.stark_key_pub_a_x, "0x7");
        assert_eq!(
            serde_json::to_value(&prepare).unwrap()["starkKeyPubAX"],
            "0x7"
        );
    }

    #[test]
    fn the_wallet_address_is_the_udc_not_unique_address() {
        use starknet_rust_core::utils::{get_udc_deployed_address, UdcUniqueness};
        let (owner, class) = (Felt::from(0x1234u32), Felt::from(0x5678u32));
        assert_eq!(
            wallet_address(owner, class),
            get_udc_deployed_address(owner, class, &UdcUniqueness::NotUnique, &[owner])
        );
    }

    #[test]
    fn owner_signatures_read_with_or_without_recovery_and_write_hex() {
        for text in [
            r#"{"r": "0xAB", "s": "0x0cd", "recovery": 1}"#,
            r#"{"r": "171", "s": "205", "recovery": "1"}"#,
        ] {
            let sig: UserSignature = serde_json::from_str(text).unwrap();
            assert_eq!(
                sig,
                UserSignature::Owner {
                    r: Felt::from(0xabu8),
                    s: Felt::from(0xcdu8),
                    recovery: Some(1)
                }
            );
            assert_eq!(
                serde_json::to_value(sig).unwrap(),
                json!({"r": "0xab", "s": "0xcd", "recovery": 1})
            );
        }
        let bare: UserSignature =
            serde_json::from_value(json!({"r": "1", "s": "2", "extra": true})).unwrap();
        assert_eq!(
            serde_json::to_value(bare).unwrap(),
            json!({"r": "0x1", "s": "0x2"})
        );
    }

    #[test]
    fn malformed_signatures_are_errors() {
        for bad in [
            json!(["0x1", "0x2", "0x3"]),
            json!(["0x1", "0x2", "0x3", "0x4", "0x5"]),
            json!(["0x1", "0x2", "-3", "0x4"]),
            json!({"r": "0x1"}),
            json!({"r": "0x1", "s": "0x800000000000011000000000000000000000000000000000000000000000001"}),
            json!({"r": "0x1", "s": "0x2", "recovery": 2}),
            json!("0x1"),
            json!(null),
        ] {
            assert!(
                serde_json::from_value::<UserSignature>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
