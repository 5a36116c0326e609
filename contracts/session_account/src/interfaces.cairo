//! The account's ABI, the shared types and the SRC-5 interface ids.

use starknet::ContractAddress;
use starknet::account::Call;

/// SRC-5 id of SRC-5 itself.
pub const ISRC5_ID: felt252 = 0x3f918d17e5ee77373b56385708f855659a07f75997f365cf87748628532a055;
/// SRC-5 id of an SRC-6 account.
pub const ISRC6_ID: felt252 = 0x2ceccef7f994940b3962a6c67e0ba4fcd37df7d131417c604f91e03caecc1cd;
/// SRC-5 id of SNIP-9 v2 (`execute_from_outside_v2`).
pub const ISRC9_V2_ID: felt252 = 0x1d1144bb2138366ff28d8e9ab57456b1d332ac42196230c3a602003c89872;
/// SRC-5 id of the session-key manager: the XOR of the sn_keccak of
/// `add_or_update_session_key`, `revoke_session_key` and `get_session_data`.
pub const ISESSION_KEY_MANAGER_ID: felt252 =
    0x37ab4f01106526662a612eaa2926df2aa314c4144b964f183805880bbcfa55d;

/// What `__validate__`-like entry points return on success.
pub const VALIDATED: felt252 = 'VALID';
/// SNIP-9 `caller` value that lets anybody submit an outside execution.
pub const ANY_CALLER: felt252 = 'ANY_CALLER';

/// A session as the SNIP ABI exposes it; all zero when absent or revoked.
#[derive(Copy, Drop, Serde, Debug, PartialEq)]
pub struct SessionData {
    pub valid_until: u64,
    pub max_calls: u32,
    pub calls_used: u32,
    pub allowed_entrypoints_len: u32,
}

/// A spending limit of one session on one token; all zero when there is none.
#[derive(Copy, Drop, Serde, Debug, PartialEq)]
pub struct SpendingPolicy {
    pub max_per_call: u256,
    pub max_per_window: u256,
    pub window_seconds: u64,
    pub spent_in_window: u256,
    pub window_start: u64,
}

/// SNIP-9 v2 outside execution.
#[derive(Copy, Drop, Serde, Debug)]
pub struct OutsideExecution {
    pub caller: ContractAddress,
    pub nonce: felt252,
    pub execute_after: u64,
    pub execute_before: u64,
    pub calls: Span<Call>,
}

#[starknet::interface]
pub trait ISRC5<TState> {
    fn supports_interface(self: @TState, interface_id: felt252) -> bool;
}

#[starknet::interface]
pub trait ISRC6<TState> {
    fn __execute__(ref self: TState, calls: Array<Call>) -> Array<Span<felt252>>;
    fn __validate__(ref self: TState, calls: Array<Call>) -> felt252;
    fn is_valid_signature(self: @TState, hash: felt252, signature: Array<felt252>) -> felt252;
}

#[starknet::interface]
pub trait IDeclarer<TState> {
    fn __validate_declare__(self: @TState, class_hash: felt252) -> felt252;
}

#[starknet::interface]
pub trait IDeployable<TState> {
    fn __validate_deploy__(
        self: @TState, class_hash: felt252, contract_address_salt: felt252, public_key: felt252,
    ) -> felt252;
}

#[starknet::interface]
pub trait IPublicKey<TState> {
    fn get_public_key(self: @TState) -> felt252;
    /// Rotates the owner key. `signature` is the new key's `[r, s]` over
    /// `poseidon('StarkNet Message', 'accept_ownership', account, current_public_key)`.
    fn set_public_key(ref self: TState, new_public_key: felt252, signature: Span<felt252>);
}

#[starknet::interface]
pub trait ISRC9V2<TState> {
    fn execute_from_outside_v2(
        ref self: TState, outside_execution: OutsideExecution, signature: Span<felt252>,
    ) -> Array<Span<felt252>>;
    fn is_valid_outside_execution_nonce(self: @TState, nonce: felt252) -> bool;
}

/// The session-key manager (its SRC-5 id is `ISESSION_KEY_MANAGER_ID`).
#[starknet::interface]
pub trait ISessionKeyManager<TState> {
    fn add_or_update_session_key(
        ref self: TState,
        session_key: felt252,
        valid_until: u64,
        max_calls: u32,
        allowed_entrypoints: Array<felt252>,
    );
    fn revoke_session_key(ref self: TState, session_key: felt252);
    fn get_session_data(self: @TState, session_key: felt252) -> SessionData;
}

/// Views beyond the reference ABI, so clients can tell the whole state of a session.
#[starknet::interface]
pub trait ISessionKeyInspector<TState> {
    /// The whitelisted selectors of a live session (empty when it allows everything,
    /// or when it is absent or revoked).
    fn get_session_allowed_entrypoints(self: @TState, session_key: felt252) -> Array<felt252>;
    /// Whether the owner revoked this key (cleared when the key is registered again).
    fn is_session_revoked(self: @TState, session_key: felt252) -> bool;
}

#[starknet::interface]
pub trait ISpendingPolicy<TState> {
    fn set_spending_policy(
        ref self: TState,
        session_key: felt252,
        token: ContractAddress,
        max_per_call: u256,
        max_per_window: u256,
        window_seconds: u64,
    );
    fn get_spending_policy(
        self: @TState, session_key: felt252, token: ContractAddress,
    ) -> SpendingPolicy;
    fn remove_spending_policy(ref self: TState, session_key: felt252, token: ContractAddress);
}
