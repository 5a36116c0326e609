//! The session-account contract (and the contracts only tests deploy) as compiled by
//! `tools/cairo-build` and committed under `contracts/artifacts/`, embedded so that
//! nothing downstream needs a Cairo compiler.
//!
//! ```
//! let artifacts = chipi_contracts::session_account();
//! let class = artifacts.flattened_class().unwrap();
//! assert_eq!(class.class_hash(), artifacts.class_hash);
//! ```
#![deny(missing_docs)]

use std::sync::{Arc, OnceLock};

use starknet_rust_core::types::contract::{CompiledClass, SierraClass};
use starknet_rust_core::types::{Felt, FlattenedSierraClass};

/// Sierra JSON of the session account, as the Cairo compiler wrote it.
pub const SESSION_ACCOUNT_SIERRA: &str =
    include_str!("../../../contracts/artifacts/session_account.sierra.json");
/// CASM JSON of the session account (cairo-lang 2.16.0).
pub const SESSION_ACCOUNT_CASM: &str =
    include_str!("../../../contracts/artifacts/session_account.casm.json");
/// The build manifest: class hashes and the compiler that made them.
pub const MANIFEST: &str = include_str!("../../../contracts/artifacts/manifest.json");

const TEST_CONTRACTS_SIERRA: &str =
    include_str!("../../../contracts/artifacts/test_contracts.sierra.json");
const TEST_CONTRACTS_CASM: &str =
    include_str!("../../../contracts/artifacts/test_contracts.casm.json");
const TEST_CONTRACTS_MANIFEST: &str =
    include_str!("../../../contracts/artifacts/test_contracts.manifest.json");

/// A failure to read the embedded artifacts (only possible if they were edited by hand).
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// An artifact is not the JSON it should be.
    #[error("invalid contract artifact: {0}")]
    Json(#[from] serde_json::Error),
    /// The manifest lacks a field or holds a malformed hash.
    #[error("invalid manifest field `{0}`")]
    Manifest(&'static str),
    /// The Sierra class could not be flattened or hashed.
    #[error("invalid Sierra class: {0}")]
    Sierra(String),
}

/// A compiled contract: its class hashes, read from its manifest, and its classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractArtifacts {
    /// The Sierra class hash (what `deploy` and the account address use).
    pub class_hash: Felt,
    /// The compiled (CASM) class hash, Blake2s (V2), as declares need it.
    pub compiled_class_hash: Felt,
    /// The compiler that produced the CASM.
    pub compiler: String,
    sierra: &'static str,
    casm: &'static str,
}

impl ContractArtifacts {
    /// The Sierra class flattened for a declare transaction.
    pub fn flattened_class(&self) -> Result<Arc<FlattenedSierraClass>, ArtifactError> {
        let class: SierraClass = serde_json::from_str(self.sierra)?;
        let flat = class
            .flatten()
            .map_err(|err| ArtifactError::Sierra(err.to_string()))?;
        Ok(Arc::new(flat))
    }

    /// The CASM class.
    pub fn compiled_class(&self) -> Result<CompiledClass, ArtifactError> {
        Ok(serde_json::from_str(self.casm)?)
    }
}

fn parse_manifest(
    manifest: &str,
    sierra: &'static str,
    casm: &'static str,
) -> Result<ContractArtifacts, ArtifactError> {
    let manifest: serde_json::Value = serde_json::from_str(manifest)?;
    let felt = |field: &'static str| {
        manifest[field]
            .as_str()
            .and_then(|hex| Felt::from_hex(hex).ok())
            .ok_or(ArtifactError::Manifest(field))
    };
    Ok(ContractArtifacts {
        class_hash: felt("class_hash")?,
        compiled_class_hash: felt("compiled_class_hash")?,
        compiler: manifest["compiler"]
            .as_str()
            .ok_or(ArtifactError::Manifest("compiler"))?
            .to_string(),
        sierra,
        casm,
    })
}

/// The session account's artifacts (parsed once).
///
/// # Panics
/// Never for the committed artifacts: the tests of this crate parse them. A hand-edited,
/// broken manifest makes this panic at first use, which is a build defect, not input.
#[allow(clippy::expect_used)]
pub fn session_account() -> &'static ContractArtifacts {
    static ARTIFACTS: OnceLock<ContractArtifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        parse_manifest(MANIFEST, SESSION_ACCOUNT_SIERRA, SESSION_ACCOUNT_CASM)
            .expect("committed manifest is valid")
    })
}

/// `RevertWith`, a contract only tests deploy: `revert_with(message)` reverts with
/// `message`, so a test can make a third party imitate the wallet's revert messages.
///
/// # Panics
/// As [`session_account`].
#[allow(clippy::expect_used)]
pub fn revert_with() -> &'static ContractArtifacts {
    static ARTIFACTS: OnceLock<ContractArtifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        parse_manifest(
            TEST_CONTRACTS_MANIFEST,
            TEST_CONTRACTS_SIERRA,
            TEST_CONTRACTS_CASM,
        )
        .expect("committed manifest is valid")
    })
}

/// A test contract's artifacts, embedded by file stem and parsed once.
macro_rules! test_contract {
    ($(#[$doc:meta])* $name:ident, $stem:literal) => {
        $(#[$doc])*
        ///
        /// # Panics
        /// As [`session_account`].
        #[allow(clippy::expect_used)]
        pub fn $name() -> &'static ContractArtifacts {
            static ARTIFACTS: OnceLock<ContractArtifacts> = OnceLock::new();
            ARTIFACTS.get_or_init(|| {
                parse_manifest(
                    include_str!(concat!("../../../contracts/artifacts/", $stem, ".manifest.json")),
                    include_str!(concat!("../../../contracts/artifacts/", $stem, ".sierra.json")),
                    include_str!(concat!("../../../contracts/artifacts/", $stem, ".casm.json")),
                )
                .expect("committed manifest is valid")
            })
        }
    };
}

test_contract!(
    /// `GasBurner`, a contract only tests deploy: `burn(rounds)` writes `rounds` storage
    /// slots, a call as heavy as a test likes that passes simulation.
    gas_burner,
    "gas_burner"
);

test_contract!(
    /// `RevertsOnChain`, a contract only tests deploy: `poke()` succeeds in a fee estimate
    /// or simulation (a query transaction) and reverts on chain.
    reverts_on_chain,
    "reverts_on_chain"
);

test_contract!(
    /// `Src5Impostor`, a contract only tests deploy: it answers SRC-5 for every interface
    /// and accepts any `execute_from_outside_v2`, without being a wallet.
    src5_impostor,
    "src5_impostor"
);

test_contract!(
    /// `Snip9Account`, a wallet only tests deploy: a single-owner account as
    /// OpenZeppelin's preset with the SRC9 component (SNIP-9 v2, `[r, s]` signatures, no
    /// sessions), of another class than the session account, constructor `[public key]`.
    snip9_account,
    "snip9_account"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> [&'static ContractArtifacts; 6] {
        [
            session_account(),
            revert_with(),
            gas_burner(),
            reverts_on_chain(),
            src5_impostor(),
            snip9_account(),
        ]
    }

    #[test]
    fn manifest_class_hash_is_the_sierra_class_hash() {
        for artifacts in all() {
            let flat = artifacts.flattened_class().unwrap();
            assert_eq!(flat.class_hash(), artifacts.class_hash);
        }
    }

    /// docs/storage.md: the layout is permanent because nothing in the class can change
    /// it. No entry point is `upgrade` (or any ABI function mentions one), and the program
    /// uses neither `replace_class_syscall` nor `library_call_syscall` (which would run
    /// another class's code, `replace_class` included, in the wallet's context).
    #[test]
    fn session_account_has_no_upgrade_path() {
        let sierra: serde_json::Value = serde_json::from_str(SESSION_ACCOUNT_SIERRA).unwrap();
        let libfuncs: Vec<&str> = sierra["sierra_program_debug_info"]["libfunc_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry[1].as_str().unwrap())
            .collect();
        // The debug names are there (a stripped artifact would pass vacuously).
        assert!(libfuncs.contains(&"storage_write_syscall"), "{libfuncs:?}");
        for forbidden in ["replace_class", "library_call"] {
            assert!(
                !libfuncs.iter().any(|name| name.contains(forbidden)),
                "the session account uses {forbidden}"
            );
        }
        let upgrade = starknet_rust_core::utils::get_selector_from_name("upgrade").unwrap();
        let mut entry_points = 0;
        for kind in ["EXTERNAL", "L1_HANDLER", "CONSTRUCTOR"] {
            for entry in sierra["entry_points_by_type"][kind].as_array().unwrap() {
                entry_points += 1;
                let selector = Felt::from_hex(entry["selector"].as_str().unwrap()).unwrap();
                assert_ne!(selector, upgrade, "an `upgrade` entry point ({kind})");
            }
        }
        assert!(entry_points > 10, "{entry_points}");
        let abi = sierra["abi"].to_string();
        assert!(abi.contains("add_or_update_session_key"));
        assert!(!abi.contains("upgrade"), "the ABI mentions an upgrade");
    }

    #[test]
    fn manifest_compiled_class_hash_is_the_casm_v2_hash() {
        for artifacts in all() {
            let casm = artifacts.compiled_class().unwrap();
            let hash = casm.class_hash().unwrap();
            assert_eq!(hash, artifacts.compiled_class_hash);
        }
    }
}
