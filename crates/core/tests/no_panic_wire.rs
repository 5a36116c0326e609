//! Outside input never panics the core: arbitrary JSON as typed data and as user
//! signatures, arbitrary felt arrays as calls and signatures, arbitrary text as felts,
//! error codes and node errors. Each returns a value or a typed error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_core::{
    decode_calls, parse_felt_strict, selectors, verify_signature, wallet_revert_in_text, Call,
    ErrorCode, Felt, OutsideExecution, UserSignature, ANY_CALLER,
};
use proptest::prelude::*;

#[path = "support/arbitrary_json.rs"]
mod arbitrary_json;
use arbitrary_json::{any_json, mutated, tricky_string};

fn valid_typed_data() -> serde_json::Value {
    OutsideExecution {
        caller: ANY_CALLER,
        nonce: Felt::from(7u8),
        execute_after: 100,
        execute_before: 200,
        calls: vec![Call {
            to: Felt::from(0x1234u32),
            selector: selectors::TRANSFER,
            calldata: vec![Felt::ONE, Felt::TWO, Felt::ZERO],
        }],
    }
    .to_typed_data(chipi_core::chain_id::SEPOLIA)
}

/// Felts that are often small (lengths, counts) and sometimes anything.
fn felt() -> impl Strategy<Value = Felt> {
    prop_oneof![
        (0u64..8).prop_map(Felt::from),
        any::<u64>().prop_map(Felt::from),
        any::<[u8; 32]>().prop_map(|bytes| Felt::from_bytes_be(&bytes)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn typed_data_parsing_never_panics(doc in any_json()) {
        let _ = OutsideExecution::from_typed_data(&doc);
    }

    #[test]
    fn mutated_typed_data_parses_or_is_refused(doc in mutated(valid_typed_data())) {
        if let Ok((execution, chain)) = OutsideExecution::from_typed_data(&doc) {
            // Whatever parses hashes and renders without panicking.
            let _ = execution.message_hash(chain, Felt::ONE);
            let _ = execution.to_typed_data(chain);
        }
    }

    #[test]
    fn user_signatures_parse_or_are_refused(doc in any_json()) {
        let _ = serde_json::from_value::<UserSignature>(doc);
    }

    #[test]
    fn felt_arrays_as_session_signatures(items in prop::collection::vec(tricky_string(), 0..7)) {
        let doc = serde_json::Value::from(items.clone());
        let parsed = serde_json::from_value::<UserSignature>(doc);
        if let Ok(signature) = parsed {
            prop_assert_eq!(items.len(), 4);
            prop_assert_eq!(signature.to_felts().len(), 4);
        }
    }

    #[test]
    fn felt_arrays_as_calls(felts in prop::collection::vec(felt(), 0..24)) {
        if let Some(calls) = decode_calls(&felts) {
            prop_assert_eq!(chipi_core::encode_calls(&calls), felts);
        }
    }

    #[test]
    fn arbitrary_felts_as_ecdsa_signatures(
        key in felt(), hash in felt(), r in felt(), s in felt()
    ) {
        let _ = verify_signature(&key, &hash, &r, &s);
    }

    #[test]
    fn text_as_felts_codes_and_node_errors(text in tricky_string(), wallet in felt()) {
        let _ = parse_felt_strict(&text);
        let _ = text.parse::<ErrorCode>();
        let _ = wallet_revert_in_text(&text, wallet);
        let framed = format!("contract address: {text} ('Session: revoked')");
        let _ = wallet_revert_in_text(&framed, wallet);
    }
}
