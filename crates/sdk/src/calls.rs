//! From the JS SDK's calls (`{contractAddress, entrypoint, calldata}`) to Starknet calls.

use chipi_core::{ErrorCode, Felt};
use starknet_rust_core::utils::get_selector_from_name;

use crate::read::parse_felt;
use crate::{Call, SessionError};

/// A selector from an entry-point name (`transfer`) or a hex selector (`0x83af…`).
pub fn resolve_selector(entrypoint: &str) -> Result<Felt, SessionError> {
    if entrypoint.starts_with("0x") || entrypoint.starts_with("0X") {
        return parse_felt(entrypoint, "hex selector");
    }
    let valid_name = !entrypoint.is_empty()
        && entrypoint
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !entrypoint.as_bytes()[0].is_ascii_digit();
    if !valid_name {
        return Err(SessionError::new(
            ErrorCode::InvalidInput,
            format!("{entrypoint:?} is neither an entry-point name nor a hex selector"),
        ));
    }
    get_selector_from_name(entrypoint).map_err(|_| {
        SessionError::new(
            ErrorCode::InvalidInput,
            format!("bad entry point {entrypoint:?}"),
        )
    })
}

/// Converts calls, checking every address, selector and calldata item.
pub fn to_starknet_calls(
    calls: &[Call],
) -> Result<Vec<starknet_rust_core::types::Call>, SessionError> {
    if calls.is_empty() {
        return Err(SessionError::new(
            ErrorCode::InvalidInput,
            "calls must not be empty",
        ));
    }
    calls
        .iter()
        .map(|call| {
            Ok(starknet_rust_core::types::Call {
                to: parse_felt(&call.contract_address, "contractAddress")?,
                selector: resolve_selector(&call.entrypoint)?,
                calldata: call
                    .calldata
                    .iter()
                    .map(|item| parse_felt(item, "calldata item"))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chipi_core::selectors;

    #[test]
    fn names_and_hex_selectors_resolve_the_same() {
        assert_eq!(resolve_selector("transfer").unwrap(), selectors::TRANSFER);
        assert_eq!(
            resolve_selector("0x83afd3f4caedc6eebf44246fe54e38c95e3179a5ec9ea81740eca5b482d12e")
                .unwrap(),
            selectors::TRANSFER
        );
        for bad in ["", "0xzz", "trans fer", "1abc", "ñ", "transfer()"] {
            assert_eq!(
                resolve_selector(bad).unwrap_err().code(),
                ErrorCode::InvalidInput,
                "{bad}"
            );
        }
    }

    #[test]
    fn calls_convert_with_hex_and_decimal_calldata() {
        let call = Call {
            contract_address: "0x1234".into(),
            entrypoint: "transfer".into(),
            calldata: vec!["0xabc".into(), "100".into(), "0x0".into()],
        };
        let converted = to_starknet_calls(std::slice::from_ref(&call)).unwrap();
        assert_eq!(converted[0].to, Felt::from(0x1234u16));
        assert_eq!(
            converted[0].calldata,
            vec![Felt::from(0xabcu16), Felt::from(100u8), Felt::ZERO]
        );
        let bad = Call {
            calldata: vec!["-1".into()],
            ..call.clone()
        };
        assert_eq!(
            to_starknet_calls(&[bad]).unwrap_err().code(),
            ErrorCode::InvalidInput
        );
        assert_eq!(
            to_starknet_calls(&[]).unwrap_err().code(),
            ErrorCode::InvalidInput
        );
    }
}
