//! `verify_outside_execution` (docs/sdk.md, "Transports"): the refusals the hostile
//! paymaster of `tests/sponsored.rs` does not try, and each time bound at its edge
//! (accepted on one side, refused one second past it). No node needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_core::{chain_id, selectors, Call, Felt, OutsideExecution, ANY_CALLER};
use chipi_sdk::{
    verify_outside_execution, ErrorCode, DEFAULT_MAX_EXECUTION_WINDOW_SECONDS,
    MAX_CLOCK_SKEW_SECONDS,
};
use serde_json::{json, Value};

const NOW: u64 = 1_800_000_000;
const MAX_WINDOW: u64 = DEFAULT_MAX_EXECUTION_WINDOW_SECONDS;

fn transfer(to: u32, amount: u32) -> Call {
    Call {
        to: Felt::from(0x1234u32),
        selector: selectors::TRANSFER,
        calldata: vec![Felt::from(to), Felt::from(amount), Felt::ZERO],
    }
}

fn calls() -> Vec<Call> {
    vec![transfer(0x77, 100), transfer(0x88, 200)]
}

fn execution(execute_after: u64, execute_before: u64) -> OutsideExecution {
    OutsideExecution {
        caller: ANY_CALLER,
        nonce: Felt::from(7u8),
        execute_after,
        execute_before,
        calls: calls(),
    }
}

fn verify(typed_data: &Value) -> Result<OutsideExecution, ErrorCode> {
    verify_outside_execution(typed_data, &calls(), chain_id::SEPOLIA, NOW, MAX_WINDOW)
        .map_err(|e| e.code())
}

fn verify_window(execute_after: u64, execute_before: u64) -> Result<OutsideExecution, ErrorCode> {
    verify(&execution(execute_after, execute_before).to_typed_data(chain_id::SEPOLIA))
}

const REFUSED: Result<OutsideExecution, ErrorCode> = Err(ErrorCode::TypedDataMismatch);

#[test]
fn the_window_may_open_at_most_five_minutes_ahead() {
    assert_eq!(MAX_CLOCK_SKEW_SECONDS, 300);
    let before = NOW + 600;
    assert!(verify_window(NOW + 300, before).is_ok());
    assert_eq!(verify_window(NOW + 301, before), REFUSED);
}

#[test]
fn the_window_may_stay_open_at_most_max_execution_window() {
    assert!(verify_window(NOW - 60, NOW + MAX_WINDOW).is_ok());
    assert_eq!(verify_window(NOW - 60, NOW + MAX_WINDOW + 1), REFUSED);
    // The bound is the caller's `max_window`, not a constant.
    let typed_data = execution(NOW - 60, NOW + 601).to_typed_data(chain_id::SEPOLIA);
    assert!(verify_outside_execution(&typed_data, &calls(), chain_id::SEPOLIA, NOW, 601).is_ok());
    assert_eq!(
        verify_outside_execution(&typed_data, &calls(), chain_id::SEPOLIA, NOW, 600)
            .unwrap_err()
            .code(),
        ErrorCode::TypedDataMismatch
    );
}

#[test]
fn an_empty_or_closed_window_is_refused() {
    // Empty: execute_after == execute_before (and inverted), otherwise within every bound.
    assert_eq!(verify_window(NOW + 100, NOW + 100), REFUSED);
    assert_eq!(verify_window(NOW + 101, NOW + 100), REFUSED);
    assert!(verify_window(NOW + 99, NOW + 100).is_ok());
    // Closed: execute_before at or before now.
    assert_eq!(verify_window(NOW - 60, NOW), REFUSED);
    assert!(verify_window(NOW - 60, NOW + 1).is_ok());
}

#[test]
fn another_domain_version_or_revision_is_refused() {
    let good = execution(NOW - 60, NOW + 600).to_typed_data(chain_id::SEPOLIA);
    assert!(verify(&good).is_ok());
    for (field, value) in [
        ("version", json!("1")),
        ("version", json!("3")),
        ("revision", json!("0")),
        ("revision", json!("2")),
    ] {
        let mut typed_data = good.clone();
        typed_data["domain"][field] = value.clone();
        assert_eq!(verify(&typed_data), REFUSED, "domain.{field} = {value}");
    }
    // The type definitions must be exactly SNIP-12 revision 1's: no `revision` field in
    // the domain type (revision 0's shape) is refused too.
    let mut typed_data = good;
    typed_data["types"]["StarknetDomain"]
        .as_array_mut()
        .unwrap()
        .retain(|field| field["name"] != "revision");
    assert_eq!(verify(&typed_data), REFUSED);
}

#[test]
fn calls_in_another_order_or_number_are_refused() {
    let good = execution(NOW - 60, NOW + 600).to_typed_data(chain_id::SEPOLIA);
    assert!(verify(&good).is_ok());
    let mut swapped = good.clone();
    swapped["message"]["Calls"]
        .as_array_mut()
        .unwrap()
        .swap(0, 1);
    assert_eq!(verify(&swapped), REFUSED);
    let mut fewer = good.clone();
    fewer["message"]["Calls"].as_array_mut().unwrap().pop();
    assert_eq!(verify(&fewer), REFUSED);
    // One more calldata felt (a longer call, the same prefix).
    let mut longer = good;
    longer["message"]["Calls"][1]["Calldata"]
        .as_array_mut()
        .unwrap()
        .push(json!("0x0"));
    assert_eq!(verify(&longer), REFUSED);
}

#[test]
fn a_named_caller_is_accepted_and_what_passes_is_the_request() {
    let mut named = execution(NOW - 60, NOW + 600);
    named.caller = Felt::from(0xabcu32);
    let verified = verify(&named.to_typed_data(chain_id::SEPOLIA)).unwrap();
    assert_eq!(verified, named);
}
