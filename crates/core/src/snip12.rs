//! SNIP-12 revision 1 hash of a SNIP-9 v2 OutsideExecution (PROTOCOL.md section 4), and
//! its typed-data JSON form.

use serde_json::{json, Value};
use starknet_rust_core::types::{Call, Felt};
use starknet_rust_core::utils::{cairo_short_string_to_felt, get_selector_from_name};
use starknet_rust_crypto::poseidon_hash_many;

use crate::constants::{
    CALL_TYPE_HASH, OUTSIDE_EXECUTION_DOMAIN_NAME, OUTSIDE_EXECUTION_TYPE_HASH,
    STARKNET_DOMAIN_TYPE_HASH, STARKNET_MESSAGE_PREFIX,
};

/// A SNIP-9 v2 outside execution: calls that `caller` may submit for the account
/// between `execute_after` and `execute_before` (exclusive), once (`nonce`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideExecution {
    /// Who may submit it, or [`crate::ANY_CALLER`].
    pub caller: Felt,
    /// A nonce the account has not seen.
    pub nonce: Felt,
    /// Valid strictly after this unix time.
    pub execute_after: u64,
    /// Valid strictly before this unix time.
    pub execute_before: u64,
    /// The calls, run in order, atomically.
    pub calls: Vec<Call>,
}

/// Typed data that is not a SNIP-9 v2 OutsideExecution of revision 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypedDataError {
    /// A field is missing or has the wrong JSON type.
    #[error("typed data: missing or malformed `{0}`")]
    Field(String),
    /// The types, domain or primary type are not those of SNIP-9 v2, revision 1.
    #[error("typed data is not a SNIP-9 v2 OutsideExecution (revision 1): {0}")]
    Schema(String),
}

/// The calldata of a call list as accounts take it (`__execute__`, and inside
/// `execute_from_outside_v2`): `[n, (to, selector, calldata_len, calldata...)...]`.
pub fn encode_calls(calls: &[Call]) -> Vec<Felt> {
    let mut out = Vec::with_capacity(1 + calls.iter().map(|c| 3 + c.calldata.len()).sum::<usize>());
    out.push(Felt::from(calls.len()));
    for call in calls {
        out.push(call.to);
        out.push(call.selector);
        out.push(Felt::from(call.calldata.len()));
        out.extend_from_slice(&call.calldata);
    }
    out
}

/// The inverse of [`encode_calls`]: the calls in an account's `__execute__` calldata, or
/// `None` when the felts are not exactly such a list.
///
/// ```
/// use chipi_core::{decode_calls, encode_calls, Call, Felt};
/// let calls = vec![Call { to: Felt::ONE, selector: Felt::TWO, calldata: vec![Felt::THREE] }];
/// assert_eq!(decode_calls(&encode_calls(&calls)), Some(calls));
/// assert_eq!(decode_calls(&[Felt::TWO, Felt::ONE]), None);
/// ```
pub fn decode_calls(calldata: &[Felt]) -> Option<Vec<Call>> {
    let (calls, rest) = decode_calls_prefix(calldata)?;
    rest.is_empty().then_some(calls)
}

/// The call list at the start of `calldata`, and what follows it.
fn decode_calls_prefix(calldata: &[Felt]) -> Option<(Vec<Call>, &[Felt])> {
    let (count, mut rest) = calldata.split_first()?;
    let count = usize::try_from(u64::try_from(*count).ok()?).ok()?;
    // Each call takes at least 3 felts: no allocation beyond what the input can hold.
    let mut calls = Vec::with_capacity(count.min(rest.len() / 3));
    for _ in 0..count {
        let [to, selector, len, tail @ ..] = rest else {
            return None;
        };
        let len = usize::try_from(u64::try_from(*len).ok()?).ok()?;
        if tail.len() < len {
            return None;
        }
        calls.push(Call {
            to: *to,
            selector: *selector,
            calldata: tail[..len].to_vec(),
        });
        rest = &tail[len..];
    }
    Some((calls, rest))
}

impl OutsideExecution {
    /// The calldata of `execute_from_outside_v2(self, signature)`.
    pub fn calldata(&self, signature: &[Felt]) -> Vec<Felt> {
        let mut out = vec![
            self.caller,
            self.nonce,
            Felt::from(self.execute_after),
            Felt::from(self.execute_before),
        ];
        out.extend(encode_calls(&self.calls));
        out.push(Felt::from(signature.len()));
        out.extend_from_slice(signature);
        out
    }

    /// The inverse of [`OutsideExecution::calldata`]: the outside execution and the
    /// signature in a complete `execute_from_outside_v2` calldata, or `None` when the
    /// felts are not exactly that (times that do not fit 64 bits included).
    ///
    /// ```
    /// use chipi_core::{Call, Felt, OutsideExecution, ANY_CALLER};
    /// let oe = OutsideExecution {
    ///     caller: ANY_CALLER,
    ///     nonce: Felt::from(9u8),
    ///     execute_after: 1,
    ///     execute_before: 2,
    ///     calls: vec![Call { to: Felt::ONE, selector: Felt::TWO, calldata: vec![Felt::THREE] }],
    /// };
    /// let signature = [Felt::from(7u8), Felt::from(8u8)];
    /// let calldata = oe.calldata(&signature);
    /// assert_eq!(OutsideExecution::from_calldata(&calldata), Some((oe, signature.to_vec())));
    /// assert_eq!(OutsideExecution::from_calldata(&calldata[..calldata.len() - 1]), None);
    /// ```
    pub fn from_calldata(calldata: &[Felt]) -> Option<(Self, Vec<Felt>)> {
        let [caller, nonce, after, before, rest @ ..] = calldata else {
            return None;
        };
        let (calls, rest) = decode_calls_prefix(rest)?;
        let (length, signature) = rest.split_first()?;
        let length = usize::try_from(u64::try_from(*length).ok()?).ok()?;
        if signature.len() != length {
            return None;
        }
        let execution = Self {
            caller: *caller,
            nonce: *nonce,
            execute_after: u64::try_from(*after).ok()?,
            execute_before: u64::try_from(*before).ok()?,
            calls,
        };
        Some((execution, signature.to_vec()))
    }

    /// Hash of the `StarknetDomain` for `chain_id`.
    pub fn domain_hash(chain_id: Felt) -> Felt {
        poseidon_hash_many(&[
            STARKNET_DOMAIN_TYPE_HASH,
            OUTSIDE_EXECUTION_DOMAIN_NAME,
            Felt::TWO,
            chain_id,
            Felt::ONE,
        ])
    }

    /// Hash of the `OutsideExecution` struct.
    pub fn struct_hash(&self) -> Felt {
        let call_hashes: Vec<Felt> = self
            .calls
            .iter()
            .map(|call| {
                poseidon_hash_many(&[
                    CALL_TYPE_HASH,
                    call.to,
                    call.selector,
                    poseidon_hash_many(&call.calldata),
                ])
            })
            .collect();
        poseidon_hash_many(&[
            OUTSIDE_EXECUTION_TYPE_HASH,
            self.caller,
            self.nonce,
            Felt::from(self.execute_after),
            Felt::from(self.execute_before),
            poseidon_hash_many(&call_hashes),
        ])
    }

    /// The SNIP-12 message hash that the owner or a session signs for `account`.
    pub fn message_hash(&self, chain_id: Felt, account: Felt) -> Felt {
        poseidon_hash_many(&[
            STARKNET_MESSAGE_PREFIX,
            Self::domain_hash(chain_id),
            account,
            self.struct_hash(),
        ])
    }

    /// The typed-data JSON of this outside execution, as starknet.js and the paymaster
    /// API write it.
    pub fn to_typed_data(&self, chain_id: Felt) -> Value {
        let calls: Vec<Value> = self
            .calls
            .iter()
            .map(|call| {
                json!({
                    "To": hex(call.to),
                    "Selector": hex(call.selector),
                    "Calldata": call.calldata.iter().map(|f| hex(*f)).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "types": expected_types(),
            "primaryType": "OutsideExecution",
            "domain": {
                "name": "Account.execute_from_outside",
                "version": "2",
                "chainId": hex(chain_id),
                "revision": "1",
            },
            "message": {
                "Caller": hex(self.caller),
                "Nonce": hex(self.nonce),
                "Execute After": hex(Felt::from(self.execute_after)),
                "Execute Before": hex(Felt::from(self.execute_before)),
                "Calls": calls,
            },
        })
    }

    /// Reads typed data back, checking that it is exactly a SNIP-9 v2 OutsideExecution
    /// of revision 1; returns it with the domain's chain id.
    pub fn from_typed_data(typed_data: &Value) -> Result<(Self, Felt), TypedDataError> {
        if typed_data.get("primaryType").and_then(Value::as_str) != Some("OutsideExecution") {
            return Err(TypedDataError::Schema("primaryType".into()));
        }
        let types = typed_data
            .get("types")
            .ok_or_else(|| TypedDataError::Field("types".into()))?;
        let expected = expected_types();
        for name in ["StarknetDomain", "OutsideExecution", "Call"] {
            if types.get(name) != expected.get(name) {
                return Err(TypedDataError::Schema(format!("types.{name}")));
            }
        }
        let domain = typed_data
            .get("domain")
            .ok_or_else(|| TypedDataError::Field("domain".into()))?;
        if domain.get("name").and_then(Value::as_str) != Some("Account.execute_from_outside") {
            return Err(TypedDataError::Schema("domain.name".into()));
        }
        if parse_felt(domain.get("version"), "domain.version")? != Felt::TWO {
            return Err(TypedDataError::Schema("domain.version".into()));
        }
        if parse_felt(domain.get("revision"), "domain.revision")? != Felt::ONE {
            return Err(TypedDataError::Schema("domain.revision".into()));
        }
        let chain_id = parse_short_or_felt(domain.get("chainId"), "domain.chainId")?;

        let message = typed_data
            .get("message")
            .ok_or_else(|| TypedDataError::Field("message".into()))?;
        let calls = message
            .get("Calls")
            .and_then(Value::as_array)
            .ok_or_else(|| TypedDataError::Field("message.Calls".into()))?
            .iter()
            .map(|call| {
                let selector = match call.get("Selector") {
                    Some(Value::String(s)) if !is_number(s) => get_selector_from_name(s)
                        .map_err(|_| TypedDataError::Field("Calls[].Selector".into()))?,
                    other => parse_felt(other, "Calls[].Selector")?,
                };
                let calldata = call
                    .get("Calldata")
                    .and_then(Value::as_array)
                    .ok_or_else(|| TypedDataError::Field("Calls[].Calldata".into()))?
                    .iter()
                    .map(|v| parse_felt(Some(v), "Calls[].Calldata"))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Call {
                    to: parse_felt(call.get("To"), "Calls[].To")?,
                    selector,
                    calldata,
                })
            })
            .collect::<Result<Vec<_>, TypedDataError>>()?;
        let execution = OutsideExecution {
            caller: parse_felt(message.get("Caller"), "message.Caller")?,
            nonce: parse_felt(message.get("Nonce"), "message.Nonce")?,
            execute_after: parse_u64(message.get("Execute After"), "message.Execute After")?,
            execute_before: parse_u64(message.get("Execute Before"), "message.Execute Before")?,
            calls,
        };
        Ok((execution, chain_id))
    }
}

fn expected_types() -> Value {
    json!({
        "StarknetDomain": [
            {"name": "name", "type": "shortstring"},
            {"name": "version", "type": "shortstring"},
            {"name": "chainId", "type": "shortstring"},
            {"name": "revision", "type": "shortstring"},
        ],
        "OutsideExecution": [
            {"name": "Caller", "type": "ContractAddress"},
            {"name": "Nonce", "type": "felt"},
            {"name": "Execute After", "type": "u128"},
            {"name": "Execute Before", "type": "u128"},
            {"name": "Calls", "type": "Call*"},
        ],
        "Call": [
            {"name": "To", "type": "ContractAddress"},
            {"name": "Selector", "type": "selector"},
            {"name": "Calldata", "type": "felt*"},
        ],
    })
}

fn hex(felt: Felt) -> String {
    format!("{felt:#x}")
}

fn is_number(text: &str) -> bool {
    text.starts_with("0x")
        || text.starts_with("0X")
        || (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
}

/// A felt from a JSON number, a `0x` hex string or a decimal string.
fn parse_felt(value: Option<&Value>, field: &str) -> Result<Felt, TypedDataError> {
    let bad = || TypedDataError::Field(field.to_string());
    match value.ok_or_else(bad)? {
        Value::Number(n) => n.as_u64().map(Felt::from).ok_or_else(bad),
        Value::String(s) => crate::parse_felt_strict(s).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// A felt, or a Cairo short string such as `"SN_SEPOLIA"`.
fn parse_short_or_felt(value: Option<&Value>, field: &str) -> Result<Felt, TypedDataError> {
    match value {
        Some(Value::String(s)) if !is_number(s) => {
            cairo_short_string_to_felt(s).map_err(|_| TypedDataError::Field(field.to_string()))
        }
        other => parse_felt(other, field),
    }
}

fn parse_u64(value: Option<&Value>, field: &str) -> Result<u64, TypedDataError> {
    let felt = parse_felt(value, field)?;
    u64::try_from(felt).map_err(|_| TypedDataError::Field(field.to_string()))
}
