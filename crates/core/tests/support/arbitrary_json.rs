//! Arbitrary JSON for the no-panic property tests (shared by the core's and the SDK's
//! tests): random documents, and valid documents with one node replaced at random.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Strings that parsers meet: felts in every spelling, edge numbers, odd text.
pub fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "0[xX][0-9a-fA-F]{0,70}",
        "[0-9]{0,90}",
        Just("0x800000000000011000000000000000000000000000000000000000000000001".to_string()),
        Just("-1".to_string()),
        Just(String::new()),
        Just("transfer".to_string()),
        Just("0x414e595f43414c4c4552".to_string()),
        Just("18446744073709551616".to_string()),
    ]
}

/// Object keys: the names the parsers look for, and random ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "types",
            "primaryType",
            "domain",
            "message",
            "name",
            "version",
            "chainId",
            "revision",
            "Caller",
            "Nonce",
            "Execute After",
            "Execute Before",
            "Calls",
            "To",
            "Selector",
            "Calldata",
            "contractAddress",
            "entrypoint",
            "calldata",
            "publicKey",
            "encryptedPrivateKey",
            "walletType",
            "validUntil",
            "typedData",
            "transactionHash",
            "code",
            "message",
            "statusCode",
            "r",
            "s",
            "recovery",
            "type",
        ])
        .prop_map(str::to_string),
        ".{0,12}",
    ]
}

/// Any JSON document, a few levels deep.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every JSON pointer in `value`, the root included.
pub fn pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{at}/{i}"), out);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let escaped = k.replace('~', "~0").replace('/', "~1");
                    walk(item, format!("{at}/{escaped}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

/// `valid` with the node at a random pointer replaced by random JSON (or removed, when
/// it is an object member and `remove` is drawn).
pub fn mutated(valid: Value) -> impl Strategy<Value = Value> {
    let count = pointers(&valid).len();
    (0..count, any_json(), any::<bool>()).prop_map(move |(index, replacement, remove)| {
        let mut doc = valid.clone();
        let pointer = pointers(&doc)[index].clone();
        if pointer.is_empty() {
            return replacement;
        }
        let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", ""));
        match doc.pointer_mut(parent) {
            Some(Value::Object(map)) if remove => {
                map.remove(&last.replace("~1", "/").replace("~0", "~"));
            }
            _ => {
                if let Some(node) = doc.pointer_mut(&pointer) {
                    *node = replacement;
                }
            }
        }
        doc
    })
}
