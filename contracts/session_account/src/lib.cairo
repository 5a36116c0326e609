//! The CHIPI session account: an SRC-6 account whose owner can delegate scoped,
//! short-lived session keys (PROTOCOL.md section 3).
//!
//! Layout: `interfaces` (ABI, SRC-5 ids, shared types), `errors` (every revert
//! message), `snip12` (OutsideExecution hashing), `components` (the owner key, SNIP-9
//! v2 bookkeeping, the session-key manager and the spending policy) and `account` (the
//! preset that assembles them). Storage layout: `docs/storage.md`.

pub mod account;
pub mod components;
pub mod errors;
pub mod interfaces;
pub mod snip12;
