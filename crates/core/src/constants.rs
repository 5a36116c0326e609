use starknet_rust_core::types::Felt;

/// STRK, the fee token: the same address on Mainnet, Sepolia and the devnet.
pub const STRK_ADDRESS: Felt =
    Felt::from_hex_unchecked("0x04718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d");

/// SNIP-9 `caller` that lets anybody submit an outside execution (`'ANY_CALLER'`).
pub const ANY_CALLER: Felt = Felt::from_hex_unchecked("0x414e595f43414c4c4552");
/// What a valid `__validate__` / `is_valid_signature` returns (`'VALID'`).
pub const VALIDATED: Felt = Felt::from_hex_unchecked("0x56414c4944");
/// `'StarkNet Message'`, the SNIP-12 message prefix.
pub const STARKNET_MESSAGE_PREFIX: Felt =
    Felt::from_hex_unchecked("0x537461726b4e6574204d657373616765");
/// `'Account.execute_from_outside'`, the SNIP-9 v2 domain name.
pub const OUTSIDE_EXECUTION_DOMAIN_NAME: Felt =
    Felt::from_hex_unchecked("0x4163636f756e742e657865637574655f66726f6d5f6f757473696465");

/// Type hash of `StarknetDomain(name:shortstring,version:shortstring,chainId:shortstring,revision:shortstring)`.
pub const STARKNET_DOMAIN_TYPE_HASH: Felt =
    Felt::from_hex_unchecked("0x1ff2f602e42168014d405a94f75e8a93d640751d71d16311266e140d8b0a210");
/// Type hash of the SNIP-9 v2 `OutsideExecution` (timestamps as `u128`).
pub const OUTSIDE_EXECUTION_TYPE_HASH: Felt =
    Felt::from_hex_unchecked("0x312b56c05a7965066ddbda31c016d8d05afc305071c0ca3cdc2192c3c2f1f0f");
/// Type hash of `Call(To:ContractAddress,Selector:selector,Calldata:felt*)`.
pub const CALL_TYPE_HASH: Felt =
    Felt::from_hex_unchecked("0x3635c7f2a7ba93844c0d064e18e487f35ab90f7c39d00f186a781fc3f0c2ca9");

/// SRC-5 id of SRC-5.
pub const ISRC5_ID: Felt =
    Felt::from_hex_unchecked("0x3f918d17e5ee77373b56385708f855659a07f75997f365cf87748628532a055");
/// SRC-5 id of SRC-6 accounts.
pub const ISRC6_ID: Felt =
    Felt::from_hex_unchecked("0x2ceccef7f994940b3962a6c67e0ba4fcd37df7d131417c604f91e03caecc1cd");
/// SRC-5 id of SNIP-9 v2 outside execution.
pub const ISRC9_V2_ID: Felt =
    Felt::from_hex_unchecked("0x1d1144bb2138366ff28d8e9ab57456b1d332ac42196230c3a602003c89872");
/// SRC-5 id of the session-key manager (XOR of the selectors of its three functions).
pub const ISESSION_KEY_MANAGER_ID: Felt =
    Felt::from_hex_unchecked("0x37ab4f01106526662a612eaa2926df2aa314c4144b964f183805880bbcfa55d");

/// Chain ids as felts.
pub mod chain_id {
    use super::Felt;
    /// `SN_MAIN`.
    pub const MAINNET: Felt = Felt::from_hex_unchecked("0x534e5f4d41494e");
    /// `SN_SEPOLIA` (also the devnet's default).
    pub const SEPOLIA: Felt = Felt::from_hex_unchecked("0x534e5f5345504f4c4941");
}

/// Entry-point selectors (`sn_keccak` of the name) the protocol names.
pub mod selectors {
    use super::Felt;
    /// `transfer`
    pub const TRANSFER: Felt = Felt::from_hex_unchecked(
        "0x83afd3f4caedc6eebf44246fe54e38c95e3179a5ec9ea81740eca5b482d12e",
    );
    /// `approve`
    pub const APPROVE: Felt = Felt::from_hex_unchecked(
        "0x219209e083275171774dab1df80982e9df2096516f06319c5c6d71ae0a8480c",
    );
    /// `increase_allowance`
    pub const INCREASE_ALLOWANCE: Felt = Felt::from_hex_unchecked(
        "0x1d13ab0a76d7407b1d5faccd4b3d8a9efe42f3d3c21766431d4fafb30f45bd4",
    );
    /// `increaseAllowance`
    pub const INCREASE_ALLOWANCE_CAMEL: Felt = Felt::from_hex_unchecked(
        "0x16cc063b8338363cf388ce7fe1df408bf10f16cd51635d392e21d852fafb683",
    );
    /// `add_or_update_session_key`
    pub const ADD_OR_UPDATE_SESSION_KEY: Felt = Felt::from_hex_unchecked(
        "0x27d4f8b711f8a318b18cac75c0b7c9941844dbbece6f62ca10111055acb64c1",
    );
    /// `revoke_session_key`
    pub const REVOKE_SESSION_KEY: Felt = Felt::from_hex_unchecked(
        "0x32d4c11046940bbba0d48557b365ca002c6adc3f58d28671c8b7542ab7d60e9",
    );
    /// `get_session_data`
    pub const GET_SESSION_DATA: Felt = Felt::from_hex_unchecked(
        "0x22ab76a647098ec53b3907885af4dcbe973ac395dd2baba3e0a3cc74a79a175",
    );
    /// `execute_from_outside_v2`
    pub const EXECUTE_FROM_OUTSIDE_V2: Felt = Felt::from_hex_unchecked(
        "0x34cc13b274446654ca3233ed2c1620d4c5d1d32fd20b47146a3371064bdc57d",
    );
    /// `__execute__`
    pub const EXECUTE: Felt = Felt::from_hex_unchecked(
        "0x15d40a3d6ca2ac30f4031e42be28da9b056fef9bb7357ac5e85627ee876e5ad",
    );
    /// `set_spending_policy`
    pub const SET_SPENDING_POLICY: Felt = Felt::from_hex_unchecked(
        "0x27b6399a529753e66438fe0341234566c390277e9c20b0f556016eb33bb698",
    );
    /// `remove_spending_policy`
    pub const REMOVE_SPENDING_POLICY: Felt = Felt::from_hex_unchecked(
        "0x28dac008d849601a4f136c3a869aa4dcb43907ea63ab552ecddfd2281144040",
    );
    /// `upgrade`
    pub const UPGRADE: Felt = Felt::from_hex_unchecked(
        "0xf2f7c15cbe06c8d94597cd91fd7f3369eae842359235712def5584f8d270cd",
    );
    /// `set_public_key`
    pub const SET_PUBLIC_KEY: Felt = Felt::from_hex_unchecked(
        "0x2e3e21ff5952b2531241e37999d9c4c8b3034cccc89a202a6bf019bdf5294f9",
    );
    /// `setPublicKey`
    pub const SET_PUBLIC_KEY_CAMEL: Felt = Felt::from_hex_unchecked(
        "0xbc0eb87884ab91e330445c3584a50d7ddf4b568f02fbeb456a6242cce3f5d9",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use starknet_rust_core::utils::{cairo_short_string_to_felt, get_selector_from_name};

    #[test]
    fn short_strings_match_their_text() {
        assert_eq!(
            cairo_short_string_to_felt("ANY_CALLER").unwrap(),
            ANY_CALLER
        );
        assert_eq!(cairo_short_string_to_felt("VALID").unwrap(), VALIDATED);
        assert_eq!(
            cairo_short_string_to_felt("StarkNet Message").unwrap(),
            STARKNET_MESSAGE_PREFIX
        );
        assert_eq!(
            cairo_short_string_to_felt("Account.execute_from_outside").unwrap(),
            OUTSIDE_EXECUTION_DOMAIN_NAME
        );
        assert_eq!(
            cairo_short_string_to_felt("SN_SEPOLIA").unwrap(),
            chain_id::SEPOLIA
        );
        assert_eq!(
            cairo_short_string_to_felt("SN_MAIN").unwrap(),
            chain_id::MAINNET
        );
    }

    #[test]
    fn session_manager_id_is_the_xor_of_its_selectors() {
        let xor = selectors::ADD_OR_UPDATE_SESSION_KEY.to_biguint()
            ^ selectors::REVOKE_SESSION_KEY.to_biguint()
            ^ selectors::GET_SESSION_DATA.to_biguint();
        assert_eq!(Felt::from(xor), ISESSION_KEY_MANAGER_ID);
    }

    #[test]
    fn selector_constants_are_sn_keccak_of_their_names() {
        let table = [
            ("transfer", selectors::TRANSFER),
            ("approve", selectors::APPROVE),
            ("increase_allowance", selectors::INCREASE_ALLOWANCE),
            ("increaseAllowance", selectors::INCREASE_ALLOWANCE_CAMEL),
            (
                "add_or_update_session_key",
                selectors::ADD_OR_UPDATE_SESSION_KEY,
            ),
            ("revoke_session_key", selectors::REVOKE_SESSION_KEY),
            ("get_session_data", selectors::GET_SESSION_DATA),
            (
                "execute_from_outside_v2",
                selectors::EXECUTE_FROM_OUTSIDE_V2,
            ),
            ("__execute__", selectors::EXECUTE),
            ("set_spending_policy", selectors::SET_SPENDING_POLICY),
            ("remove_spending_policy", selectors::REMOVE_SPENDING_POLICY),
            ("upgrade", selectors::UPGRADE),
            ("set_public_key", selectors::SET_PUBLIC_KEY),
            ("setPublicKey", selectors::SET_PUBLIC_KEY_CAMEL),
        ];
        for (name, selector) in table {
            assert_eq!(get_selector_from_name(name).unwrap(), selector, "{name}");
        }
    }
}

/// Entry points a session may never call, on any contract (PROTOCOL.md 3.3 step 5); the
/// same list as the contract's `is_blocked_selector` (a test compares them).
pub const BLOCKED_ENTRYPOINTS: [&str; 12] = [
    "add_or_update_session_key",
    "revoke_session_key",
    "set_spending_policy",
    "remove_spending_policy",
    "set_public_key",
    "setPublicKey",
    "upgrade",
    "execute_from_outside_v2",
    "__execute__",
    "__validate__",
    "__validate_declare__",
    "__validate_deploy__",
];

/// Whether a session may never call `selector`.
pub fn is_blocked_selector(selector: Felt) -> bool {
    BLOCKED_ENTRYPOINTS
        .iter()
        .any(|name| starknet_rust_core::utils::get_selector_from_name(name).ok() == Some(selector))
}

#[cfg(test)]
mod blocklist_tests {
    use super::*;

    #[test]
    fn the_blocklist_is_the_contracts() {
        let cairo =
            include_str!("../../../contracts/session_account/src/components/session_key.cairo");
        let start = cairo.find("pub fn is_blocked_selector").unwrap();
        let body = &cairo[start..start + cairo[start..].find("\n}").unwrap()];
        let names: Vec<&str> = body
            .split("selector!(\"")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .collect();
        assert_eq!(names, BLOCKED_ENTRYPOINTS);
        assert!(is_blocked_selector(selectors::UPGRADE));
        assert!(!is_blocked_selector(selectors::TRANSFER));
    }
}
