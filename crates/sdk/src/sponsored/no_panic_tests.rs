//! Outside input never panics the SDK: arbitrary paymaster answers (status and body),
//! typed data, JS-shaped calls and stored wallet and session files.

use proptest::prelude::*;
use serde_json::Value;

use super::{read_answer, transaction_hash_of, typed_data_of, verify_outside_execution};
use crate::{parse_calls, Call, SessionKeyData, WalletData};
use chipi_core::{selectors, Call as StarknetCall, Felt, OutsideExecution, ANY_CALLER};

#[path = "../../../core/tests/support/arbitrary_json.rs"]
mod arbitrary_json;
use arbitrary_json::{any_json, mutated, tricky_string};

const NOW: u64 = 1_800_000_000;

fn calls() -> Vec<StarknetCall> {
    vec![StarknetCall {
        to: Felt::from(0x1234u32),
        selector: selectors::TRANSFER,
        calldata: vec![Felt::ONE, Felt::from(100u8), Felt::ZERO],
    }]
}

fn valid_typed_data() -> Value {
    OutsideExecution {
        caller: ANY_CALLER,
        nonce: Felt::from(7u8),
        execute_after: NOW - 60,
        execute_before: NOW + 600,
        calls: calls(),
    }
    .to_typed_data(chipi_core::chain_id::SEPOLIA)
}

fn js_call() -> impl Strategy<Value = Call> {
    (
        tricky_string(),
        tricky_string(),
        prop::collection::vec(tricky_string(), 0..5),
    )
        .prop_map(|(contract_address, entrypoint, calldata)| Call {
            contract_address,
            entrypoint,
            calldata,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn paymaster_answers_are_values_or_typed_errors(
        status in prop_oneof![Just(200u16), Just(400u16), Just(401u16), 0u16..1000],
        body in any_json(),
        raw in ".{0,64}",
        as_text in any::<bool>(),
    ) {
        let text = if as_text { raw } else { body.to_string() };
        if let Ok(answer) = read_answer("v1/path", status, &text, &["token", "pk_dev_x"]) {
            let _ = transaction_hash_of(&answer);
            if let Ok(typed_data) = typed_data_of(answer) {
                let _ = verify_outside_execution(
                    &typed_data, &calls(), chipi_core::chain_id::SEPOLIA, NOW, 3600,
                );
            }
        }
    }

    #[test]
    fn paymaster_typed_data_is_verified_or_refused(doc in mutated(valid_typed_data())) {
        let verified = verify_outside_execution(
            &doc, &calls(), chipi_core::chain_id::SEPOLIA, NOW, 3600,
        );
        if let Ok(execution) = verified {
            // Whatever passes is exactly the request.
            prop_assert_eq!(execution.calls, calls());
        }
    }

    #[test]
    fn js_calls_convert_or_are_refused(calls in prop::collection::vec(js_call(), 0..4)) {
        let _ = parse_calls(&calls);
    }

    #[test]
    fn js_calls_from_json_convert_or_are_refused(doc in any_json()) {
        if let Ok(calls) = serde_json::from_value::<Vec<Call>>(doc) {
            let _ = parse_calls(&calls);
        }
    }

    #[test]
    fn wallet_and_session_files_load_or_are_refused(doc in any_json(), text in ".{0,80}") {
        let _ = serde_json::from_value::<WalletData>(doc.clone());
        let _ = serde_json::from_value::<SessionKeyData>(doc);
        let _ = serde_json::from_str::<WalletData>(&text);
        let _ = serde_json::from_str::<SessionKeyData>(&text);
    }
}
