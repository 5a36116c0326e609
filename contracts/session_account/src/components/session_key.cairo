//! The session-key manager: registration, revocation and the validation of a session
//! signature in the order of PROTOCOL.md 3.3.
//!
//! Gas: a session is one storage slot (`SessionRecord`, packed), and the whitelist is
//! an O(1) map from `(session_key, selector)` to the registration generation that
//! wrote it, so replacing a whitelist invalidates every old entry without clearing
//! them. The ordered list kept beside it is read only by the inspector view.

use starknet::ContractAddress;
use starknet::account::Call;
use starknet::storage_access::StorePacking;
use crate::errors;

/// The most selectors a session may whitelist.
pub const MAX_ALLOWED_ENTRYPOINTS: u32 = 32;

/// A session as stored: one felt (see `SessionRecordPacking`).
#[derive(Copy, Drop, Serde, Debug, PartialEq)]
pub struct SessionRecord {
    pub valid_until: u64,
    pub max_calls: u32,
    pub calls_used: u32,
    pub allowed_len: u32,
    /// Bumped on every registration; a whitelist entry counts only for the current one.
    pub generation: u32,
    /// How many spending policies this key has (kept by the account through the policy
    /// component's hook), so that executions of a key without any skip the policy reads.
    pub policy_count: u32,
    pub revoked: bool,
}

const SHIFT_32: u128 = 0x100000000;
const SHIFT_64: u128 = 0x10000000000000000;
const SHIFT_96: u128 = 0x1000000000000000000000000;
const SHIFT_128: felt252 = 0x100000000000000000000000000000000;

/// low 128 bits: `valid_until | max_calls << 64 | calls_used << 96`;
/// high bits: `allowed_len | generation << 32 | policy_count << 64 | revoked << 96`.
pub impl SessionRecordPacking of StorePacking<SessionRecord, felt252> {
    fn pack(value: SessionRecord) -> felt252 {
        let low: u128 = value.valid_until.into()
            + value.max_calls.into() * SHIFT_64
            + value.calls_used.into() * SHIFT_96;
        let revoked: u128 = if value.revoked {
            SHIFT_96
        } else {
            0
        };
        let high: u128 = value.allowed_len.into()
            + value.generation.into() * SHIFT_32
            + value.policy_count.into() * SHIFT_64
            + revoked;
        low.into() + high.into() * SHIFT_128
    }

    fn unpack(value: felt252) -> SessionRecord {
        let v: u256 = value.into();
        let (rest, valid_until) = DivRem::div_rem(v.low, SHIFT_64.try_into().unwrap());
        let (calls_used, max_calls) = DivRem::div_rem(rest, SHIFT_32.try_into().unwrap());
        let (rest, allowed_len) = DivRem::div_rem(v.high, SHIFT_32.try_into().unwrap());
        let (rest, generation) = DivRem::div_rem(rest, SHIFT_32.try_into().unwrap());
        let (revoked, policy_count) = DivRem::div_rem(rest, SHIFT_32.try_into().unwrap());
        SessionRecord {
            valid_until: valid_until.try_into().unwrap(),
            max_calls: max_calls.try_into().unwrap(),
            calls_used: calls_used.try_into().unwrap(),
            allowed_len: allowed_len.try_into().unwrap(),
            generation: generation.try_into().unwrap(),
            policy_count: policy_count.try_into().unwrap(),
            revoked: revoked != 0,
        }
    }
}

/// Selectors a session may never call, on any contract, whitelisted or not
/// (PROTOCOL.md 3.3 step 5): every owner-only or protocol entry point.
pub fn is_blocked_selector(selector: felt252) -> bool {
    selector == selector!("add_or_update_session_key")
        || selector == selector!("revoke_session_key")
        || selector == selector!("set_spending_policy")
        || selector == selector!("remove_spending_policy")
        || selector == selector!("set_public_key")
        || selector == selector!("setPublicKey")
        || selector == selector!("upgrade")
        || selector == selector!("execute_from_outside_v2")
        || selector == selector!("__execute__")
        || selector == selector!("__validate__")
        || selector == selector!("__validate_declare__")
        || selector == selector!("__validate_deploy__")
}

#[starknet::component]
pub mod SessionKeyComponent {
    use core::ecdsa::check_ecdsa_signature;
    use starknet::storage::{Map, StorageMapReadAccess, StorageMapWriteAccess};
    use crate::components::owner::assert_only_self;
    use crate::interfaces::{ISessionKeyInspector, ISessionKeyManager, SessionData};
    use super::{
        Call, ContractAddress, MAX_ALLOWED_ENTRYPOINTS, SessionRecord, errors,
        is_blocked_selector,
    };

    #[storage]
    pub struct Storage {
        pub SessionKey_records: Map<felt252, SessionRecord>,
        /// `(session_key, selector)` -> generation of the registration that allowed it.
        pub SessionKey_allowed: Map<(felt252, felt252), u32>,
        /// `(session_key, index)` -> selector, for the inspector view only.
        pub SessionKey_allowed_list: Map<(felt252, u32), felt252>,
    }

    #[event]
    #[derive(Drop, PartialEq, starknet::Event)]
    pub enum Event {
        SessionKeyAdded: SessionKeyAdded,
        SessionKeyUpdated: SessionKeyUpdated,
        SessionKeyRevoked: SessionKeyRevoked,
    }

    #[derive(Drop, PartialEq, starknet::Event)]
    pub struct SessionKeyAdded {
        #[key]
        pub session_key: felt252,
        pub valid_until: u64,
        pub max_calls: u32,
        pub allowed_entrypoints: Span<felt252>,
    }

    #[derive(Drop, PartialEq, starknet::Event)]
    pub struct SessionKeyUpdated {
        #[key]
        pub session_key: felt252,
        pub valid_until: u64,
        pub max_calls: u32,
        pub allowed_entrypoints: Span<felt252>,
    }

    #[derive(Drop, PartialEq, starknet::Event)]
    pub struct SessionKeyRevoked {
        #[key]
        pub session_key: felt252,
    }

    #[embeddable_as(SessionKeyManagerImpl)]
    impl SessionKeyManager<
        TContractState, +HasComponent<TContractState>, +Drop<TContractState>,
    > of ISessionKeyManager<ComponentState<TContractState>> {
        fn add_or_update_session_key(
            ref self: ComponentState<TContractState>,
            session_key: felt252,
            valid_until: u64,
            max_calls: u32,
            allowed_entrypoints: Array<felt252>,
        ) {
            assert_only_self();
            assert(session_key != 0, errors::SESSION_ZERO_KEY);
            assert(valid_until > starknet::get_block_timestamp(), errors::SESSION_VALID_UNTIL_PAST);
            assert(max_calls != 0, errors::SESSION_ZERO_MAX_CALLS);
            let allowed_len = allowed_entrypoints.len();
            assert(allowed_len <= MAX_ALLOWED_ENTRYPOINTS, errors::SESSION_TOO_MANY_ENTRYPOINTS);

            let previous = self.SessionKey_records.read(session_key);
            let generation = previous.generation + 1;
            let mut index: u32 = 0;
            for selector in allowed_entrypoints.span() {
                self.SessionKey_allowed.write((session_key, *selector), generation);
                self.SessionKey_allowed_list.write((session_key, index), *selector);
                index += 1;
            }
            self
                .SessionKey_records
                .write(
                    session_key,
                    SessionRecord {
                        valid_until,
                        max_calls,
                        calls_used: 0,
                        allowed_len,
                        generation,
                        policy_count: previous.policy_count,
                        revoked: false,
                    },
                );
            let allowed_entrypoints = allowed_entrypoints.span();
            if previous.valid_until == 0 {
                self.emit(SessionKeyAdded { session_key, valid_until, max_calls, allowed_entrypoints });
            } else {
                self
                    .emit(
                        SessionKeyUpdated { session_key, valid_until, max_calls, allowed_entrypoints },
                    );
            }
        }

        fn revoke_session_key(ref self: ComponentState<TContractState>, session_key: felt252) {
            assert_only_self();
            let record = self.SessionKey_records.read(session_key);
            if record.valid_until == 0 {
                if record.revoked {
                    core::panic_with_felt252(errors::SESSION_REVOKED);
                }
                core::panic_with_felt252(errors::SESSION_NOT_REGISTERED);
            }
            // The generation survives, so a later registration starts a fresh whitelist.
            self
                .SessionKey_records
                .write(
                    session_key,
                    SessionRecord {
                        valid_until: 0,
                        max_calls: 0,
                        calls_used: 0,
                        allowed_len: 0,
                        generation: record.generation,
                        policy_count: record.policy_count,
                        revoked: true,
                    },
                );
            self.emit(SessionKeyRevoked { session_key });
        }

        fn get_session_data(
            self: @ComponentState<TContractState>, session_key: felt252,
        ) -> SessionData {
            let record = self.SessionKey_records.read(session_key);
            SessionData {
                valid_until: record.valid_until,
                max_calls: record.max_calls,
                calls_used: record.calls_used,
                allowed_entrypoints_len: record.allowed_len,
            }
        }
    }

    #[embeddable_as(SessionKeyInspectorImpl)]
    impl SessionKeyInspector<
        TContractState, +HasComponent<TContractState>, +Drop<TContractState>,
    > of ISessionKeyInspector<ComponentState<TContractState>> {
        fn get_session_allowed_entrypoints(
            self: @ComponentState<TContractState>, session_key: felt252,
        ) -> Array<felt252> {
            let record = self.SessionKey_records.read(session_key);
            let mut selectors = array![];
            for index in 0..record.allowed_len {
                selectors.append(self.SessionKey_allowed_list.read((session_key, index)));
            }
            selectors
        }

        fn is_session_revoked(self: @ComponentState<TContractState>, session_key: felt252) -> bool {
            self.SessionKey_records.read(session_key).revoked
        }
    }

    #[generate_trait]
    pub impl InternalImpl<
        TContractState, +HasComponent<TContractState>, +Drop<TContractState>,
    > of InternalTrait<TContractState> {
        /// Steps 1 to 4 of PROTOCOL.md 3.3, without panicking: the error message on failure.
        fn session_state(
            self: @ComponentState<TContractState>,
            session_key: felt252,
            signed_valid_until: felt252,
            now: u64,
        ) -> Result<SessionRecord, felt252> {
            let Some(valid_until) = signed_valid_until.try_into() else {
                return Err(errors::SESSION_BAD_VALID_UNTIL);
            };
            let valid_until: u64 = valid_until;
            if now > valid_until {
                return Err(errors::SESSION_EXPIRED);
            }
            let record = self.SessionKey_records.read(session_key);
            if record.valid_until == 0 {
                return Err(
                    if record.revoked {
                        errors::SESSION_REVOKED
                    } else {
                        errors::SESSION_NOT_REGISTERED
                    },
                );
            }
            // The signed hash does not cover `valid_until`: it must be the stored one.
            if record.valid_until != valid_until {
                return Err(errors::SESSION_VALID_UNTIL_MISMATCH);
            }
            if record.calls_used >= record.max_calls {
                return Err(errors::SESSION_MAX_CALLS_EXCEEDED);
            }
            Ok(record)
        }

        /// Steps 1 to 7 of PROTOCOL.md 3.3 for `signature = [key, r, s, valid_until]`
        /// over `hash`; panics with the step's message. Returns the record for `consume`.
        fn validate_session(
            self: @ComponentState<TContractState>,
            hash: felt252,
            signature: Span<felt252>,
            calls: Span<Call>,
            account: ContractAddress,
            now: u64,
        ) -> SessionRecord {
            let session_key = *signature.at(0);
            let record = match self.session_state(session_key, *signature.at(3), now) {
                Ok(record) => record,
                Err(message) => core::panic_with_felt252(message),
            };
            let check_whitelist = record.allowed_len != 0;
            for call in calls {
                let selector = *call.selector;
                assert(!is_blocked_selector(selector), errors::SESSION_ENTRYPOINT_BLOCKED);
                assert(*call.to != account, errors::SESSION_SELF_CALL);
                if check_whitelist {
                    assert(
                        self.SessionKey_allowed.read((session_key, selector)) == record.generation,
                        errors::SESSION_ENTRYPOINT_NOT_ALLOWED,
                    );
                }
            }
            assert(
                check_ecdsa_signature(hash, session_key, *signature.at(1), *signature.at(2)),
                errors::SESSION_INVALID_SIGNATURE,
            );
            record
        }

        /// Step 8: one call of the budget, once per transaction or outside execution.
        fn consume(
            ref self: ComponentState<TContractState>, session_key: felt252, record: SessionRecord,
        ) {
            self
                .SessionKey_records
                .write(session_key, SessionRecord { calls_used: record.calls_used + 1, ..record });
        }

        /// Keeps `policy_count` in step with the spending-policy component.
        fn adjust_policy_count(
            ref self: ComponentState<TContractState>, session_key: felt252, added: bool,
        ) {
            let record = self.SessionKey_records.read(session_key);
            let policy_count = if added {
                record.policy_count + 1
            } else {
                record.policy_count - 1
            };
            self.SessionKey_records.write(session_key, SessionRecord { policy_count, ..record });
        }

        /// Whether any spending policy is set for this key.
        fn has_policies(self: @ComponentState<TContractState>, session_key: felt252) -> bool {
            self.SessionKey_records.read(session_key).policy_count != 0
        }

        /// `is_valid_signature` for a session: steps 1-4, the opt-in, then 7; never writes.
        ///
        /// A signature over an arbitrary hash escapes the whitelist, blocklist, policy and
        /// budget (an ERC-20 `Permit`, an off-chain order), so a session answers for it
        /// only when its whitelist names `is_valid_signature` itself (PROTOCOL.md 3.3).
        /// An empty whitelist does not grant it.
        fn is_valid_session_signature(
            self: @ComponentState<TContractState>, hash: felt252, signature: Span<felt252>, now: u64,
        ) -> bool {
            let session_key = *signature.at(0);
            let Ok(record) = self.session_state(session_key, *signature.at(3), now) else {
                return false;
            };
            // Entries of an older registration carry an older generation; the map's
            // default (0) never equals a registered record's generation (>= 1).
            let opted_in = self
                .SessionKey_allowed
                .read((session_key, selector!("is_valid_signature"))) == record.generation;
            opted_in && check_ecdsa_signature(hash, session_key, *signature.at(1), *signature.at(2))
        }
    }
}
