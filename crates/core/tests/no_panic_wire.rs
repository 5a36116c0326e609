//! Outside input never panics the core: arbitrary JSON as typed data and as user
//! signatures, arbitrary felt arrays as calls and signatures, arbitrary text as felts,
//! error codes and node errors. Each returns a value or a typed error, and each is
//! checked: what parses writes back to the same value, and what is refused is refused
//! for the reason it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_core::{
    decode_calls, parse_felt_strict, selectors, verify_signature, wallet_revert_in_text, Call,
    ErrorCode, Felt, OutsideExecution, TypedDataError, UserSignature, ANY_CALLER, REVERT_MESSAGES,
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
        match OutsideExecution::from_typed_data(&doc) {
            Ok((execution, chain)) => round_trip(&execution, chain)?,
            // The first check: anything else is not even asking to be an OutsideExecution.
            Err(error) => {
                if doc.get("primaryType").and_then(serde_json::Value::as_str) != Some("OutsideExecution") {
                    prop_assert_eq!(error, TypedDataError::Schema("primaryType".into()));
                }
            }
        }
    }

    #[test]
    fn mutated_typed_data_parses_or_is_refused(doc in mutated(valid_typed_data())) {
        match OutsideExecution::from_typed_data(&doc) {
            Ok((execution, chain)) => round_trip(&execution, chain)?,
            // The untouched document parses: a refusal means the mutation changed it.
            Err(_) => prop_assert_ne!(doc, valid_typed_data()),
        }
    }

    #[test]
    fn user_signatures_parse_or_are_refused(doc in any_json()) {
        match serde_json::from_value::<UserSignature>(doc.clone()) {
            // Written back, it reads the same.
            Ok(signature) => {
                prop_assert!(doc.is_object() || doc.as_array().is_some_and(|a| a.len() == 4));
                let written = serde_json::to_value(signature).unwrap();
                prop_assert_eq!(serde_json::from_value::<UserSignature>(written).unwrap(), signature);
            }
            // A value that is not a signature, never a syntax or I/O error.
            Err(error) => prop_assert_eq!(error.classify(), serde_json::error::Category::Data),
        }
    }

    #[test]
    fn felt_arrays_as_session_signatures(items in prop::collection::vec(tricky_string(), 0..7)) {
        let doc = serde_json::Value::from(items.clone());
        let parsed = serde_json::from_value::<UserSignature>(doc);
        let felts: Option<Vec<Felt>> = items.iter().map(|t| parse_felt_strict(t)).collect();
        match (parsed, felts) {
            // Exactly four felts make a session signature, those four.
            (Ok(signature), Some(felts)) if felts.len() == 4 => {
                prop_assert!(signature.is_session());
                prop_assert_eq!(signature.to_felts(), felts);
            }
            (Ok(signature), _) => {
                return Err(TestCaseError::fail(format!("{signature:?} parsed from {items:?}")));
            }
            (Err(error), felts) => {
                prop_assert!(felts.is_none_or(|f| f.len() != 4), "{:?}: {}", items, error);
                prop_assert_eq!(error.classify(), serde_json::error::Category::Data);
            }
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
        // Random felts are never a signature, except for the textbook forgery on a zero
        // hash: with z = 0 and s = ±r, R = ±Q, so r = x(Q) = the public key verifies. Small
        // felts find it (key 2, hash 0, r 2, s 2); no hash the protocol signs is ever zero.
        if verify_signature(&key, &hash, &r, &s) {
            prop_assert!(hash == Felt::ZERO && r == key, "{key:#x} {hash:#x} {r:#x} {s:#x}");
        }
    }

    #[test]
    fn text_as_felts_codes_and_node_errors(
        text in prop_oneof![
            4 => tricky_string(),
            1 => prop::sample::select(ErrorCode::ALL.to_vec()).prop_map(|c| c.to_string()),
        ],
        wallet in felt(),
    ) {
        let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
        match parse_felt_strict(&text) {
            // The text is that number: the same digits, leading zeros aside.
            Some(felt) => {
                let (ours, theirs) = match hex {
                    Some(digits) => (format!("{felt:x}"), digits.to_ascii_lowercase()),
                    None => (felt.to_string(), text.clone()),
                };
                prop_assert_eq!(ours.trim_start_matches('0'), theirs.trim_start_matches('0'));
            }
            // Refused: not digits, or maybe not below the prime (62 hex digits and 75
            // decimal ones always are).
            None => {
                let below_prime = match hex {
                    Some(d) => (1..=62).contains(&d.len()) && d.chars().all(|c| c.is_ascii_hexdigit()),
                    None => (1..=75).contains(&text.len()) && text.chars().all(|c| c.is_ascii_digit()),
                };
                prop_assert!(!below_prime, "{:?} refused", text);
            }
        }
        match text.parse::<ErrorCode>() {
            Ok(code) => prop_assert_eq!(code.to_string(), text.clone()),
            Err(_) => prop_assert!(ErrorCode::ALL.iter().all(|c| c.as_str() != text)),
        }
        // Whatever is found is a revert of the table, with its code.
        let framed = format!("contract address: {text} ('Session: revoked')");
        for found in [wallet_revert_in_text(&text, wallet), wallet_revert_in_text(&framed, wallet)]
            .into_iter()
            .flatten()
        {
            prop_assert!(REVERT_MESSAGES.contains(&found), "{:?}", found);
        }
        // The last frame decides, whatever the text before it says.
        let own = format!("{text}\ncontract address: {wallet:#x}, selector: 0x1):\n('Session: revoked')");
        prop_assert_eq!(
            wallet_revert_in_text(&own, wallet),
            Some(("Session: revoked", ErrorCode::SessionRevoked))
        );
        let other = format!("{text}\ncontract address: {:#x}):\n('Session: revoked')", wallet + Felt::ONE);
        prop_assert_eq!(wallet_revert_in_text(&other, wallet), None);
    }
}

/// The typed data of a parsed execution reads back to it.
fn round_trip(execution: &OutsideExecution, chain: Felt) -> Result<(), TestCaseError> {
    let again = OutsideExecution::from_typed_data(&execution.to_typed_data(chain));
    prop_assert_eq!(again, Ok((execution.clone(), chain)));
    Ok(())
}

/// The degenerate forgery the property above allows, pinned so the allowance stays
/// narrow: it needs a zero hash, and the same `r` fails for any other hash.
#[test]
fn zero_hash_forgery_is_the_only_allowance() {
    let key = Felt::TWO;
    assert!(verify_signature(&key, &Felt::ZERO, &key, &key));
    assert!(!verify_signature(&key, &Felt::ONE, &key, &key));
    assert!(!verify_signature(
        &key,
        &Felt::ZERO,
        &Felt::THREE,
        &Felt::THREE
    ));
}
