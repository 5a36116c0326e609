//! The CHIPI session account: an SRC-6 account whose owner can delegate scoped,
//! short-lived session keys (PROTOCOL.md section 3).
//!
//! Layout: `interfaces` (ABI, SRC-5 ids, shared types), `errors` (every revert
//! message), `snip12` (OutsideExecution hashing), `components` (session-key manager
//! and spending policy, each usable on its own) and `account` (the preset that
//! assembles them with the owner key and SNIP-9 v2).

pub mod account;
pub mod components;
pub mod errors;
pub mod interfaces;
pub mod snip12;
