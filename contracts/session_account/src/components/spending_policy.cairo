//! Per-session, per-token spending limits (PROTOCOL.md 3.5).
//!
//! Gas: a policy lives in two packed slots when its limits are below 2^122 (every
//! real token amount): `PolicyLimits` (written only by the owner) and `PolicyWindow`
//! (window length, window start and amount spent, the one slot a spend rewrites).
//! Larger limits set a `wide` flag and keep exact u256 values in extra slots, so the
//! semantics are the full u256 ones either way. Changing a policy keeps its window (PROTOCOL.md 3.5);
//! a spend carried over that does not fit the compact slot makes the new policy wide.

use core::num::traits::{OverflowingAdd, Zero};
use starknet::ContractAddress;
use starknet::account::Call;
use starknet::storage_access::StorePacking;
use crate::errors;

const SHIFT_64: u128 = 0x10000000000000000;
const SHIFT_128: felt252 = 0x100000000000000000000000000000000;
/// Limits at or above this bound are stored wide.
const COMPACT_BOUND: u128 = 0x4000000000000000000000000000000; // 2^122
const WIDE_FLAG: u128 = 0x4000000000000000000000000000000; // bit 122 of the high word

/// Owner-set limits. In compact form both fit the packed slot; `wide` means the exact
/// values live in the `wide_limits` map instead.
#[derive(Copy, Drop, Serde, Debug, PartialEq)]
pub struct PolicyLimits {
    pub max_per_call: u128,
    pub max_per_window: u128,
    pub wide: bool,
}

/// low 128 bits: `max_per_call`; high bits: `max_per_window | wide << 122`.
pub impl PolicyLimitsPacking of StorePacking<PolicyLimits, felt252> {
    fn pack(value: PolicyLimits) -> felt252 {
        let flag = if value.wide {
            WIDE_FLAG
        } else {
            0
        };
        value.max_per_call.into() + (value.max_per_window + flag).into() * SHIFT_128
    }

    fn unpack(value: felt252) -> PolicyLimits {
        let v: u256 = value.into();
        let wide = v.high >= WIDE_FLAG;
        let max_per_window = if wide {
            v.high - WIDE_FLAG
        } else {
            v.high
        };
        PolicyLimits { max_per_call: v.low, max_per_window, wide }
    }
}

/// The spend window. A policy exists exactly when `window_seconds != 0`.
#[derive(Copy, Drop, Serde, Debug, PartialEq)]
pub struct PolicyWindow {
    pub window_seconds: u64,
    pub window_start: u64,
    /// Spent in the current window, in compact form (0 when the policy is wide).
    pub spent: u128,
}

/// low 128 bits: `window_seconds | window_start << 64`; high bits: `spent`.
pub impl PolicyWindowPacking of StorePacking<PolicyWindow, felt252> {
    fn pack(value: PolicyWindow) -> felt252 {
        let low: u128 = value.window_seconds.into() + value.window_start.into() * SHIFT_64;
        low.into() + value.spent.into() * SHIFT_128
    }

    fn unpack(value: felt252) -> PolicyWindow {
        let v: u256 = value.into();
        let (window_start, window_seconds) = DivRem::div_rem(v.low, SHIFT_64.try_into().unwrap());
        PolicyWindow {
            window_seconds: window_seconds.try_into().unwrap(),
            window_start: window_start.try_into().unwrap(),
            spent: v.high,
        }
    }
}

/// Whether a selector moves or exposes the account's tokens.
pub fn is_tracked_selector(selector: felt252) -> bool {
    selector == selector!("transfer")
        || selector == selector!("approve")
        || selector == selector!("increase_allowance")
        || selector == selector!("increaseAllowance")
}

/// The u256 amount at calldata `[1]` (low) and `[2]` (high); reverts when it is not one.
pub fn tracked_amount(calldata: Span<felt252>) -> u256 {
    assert(calldata.len() >= 3, errors::POLICY_BAD_AMOUNT);
    let low: Option<u128> = (*calldata.at(1)).try_into();
    let high: Option<u128> = (*calldata.at(2)).try_into();
    match (low, high) {
        (Some(low), Some(high)) => u256 { low, high },
        _ => core::panic_with_felt252(errors::POLICY_BAD_AMOUNT),
    }
}

#[starknet::component]
pub mod SpendingPolicyComponent {
    use starknet::storage::{Map, StorageMapReadAccess, StorageMapWriteAccess};
    use crate::components::owner::assert_only_self;
    use crate::interfaces::{ISpendingPolicy, SpendingPolicy};
    use super::{
        COMPACT_BOUND, Call, ContractAddress, OverflowingAdd, PolicyLimits, PolicyWindow, Zero,
        errors, is_tracked_selector, tracked_amount,
    };

    /// Told when a key gains its first policy on a token or loses one, so the account
    /// can skip policy reads for keys without any. An account that does not need that
    /// implements it as a no-op and always calls `enforce`.
    pub trait SpendingPolicyHooksTrait<TContractState> {
        fn on_policy_added(ref self: ComponentState<TContractState>, session_key: felt252);
        fn on_policy_removed(ref self: ComponentState<TContractState>, session_key: felt252);
    }

    #[storage]
    pub struct Storage {
        pub SpendingPolicy_limits: Map<(felt252, ContractAddress), PolicyLimits>,
        pub SpendingPolicy_window: Map<(felt252, ContractAddress), PolicyWindow>,
        /// Exact limits and spend of wide policies: `(max_per_call, max_per_window, spent)`.
        pub SpendingPolicy_wide: Map<(felt252, ContractAddress), (u256, u256, u256)>,
    }

    #[event]
    #[derive(Drop, PartialEq, starknet::Event)]
    pub enum Event {
        SpendingPolicySet: SpendingPolicySet,
        SpendingPolicyRemoved: SpendingPolicyRemoved,
    }

    #[derive(Drop, PartialEq, starknet::Event)]
    pub struct SpendingPolicySet {
        #[key]
        pub session_key: felt252,
        #[key]
        pub token: ContractAddress,
        pub max_per_call: u256,
        pub max_per_window: u256,
        pub window_seconds: u64,
    }

    #[derive(Drop, PartialEq, starknet::Event)]
    pub struct SpendingPolicyRemoved {
        #[key]
        pub session_key: felt252,
        #[key]
        pub token: ContractAddress,
    }

    #[embeddable_as(SpendingPolicyImpl)]
    impl SpendingPolicyExternal<
        TContractState,
        +HasComponent<TContractState>,
       
        impl Hooks: SpendingPolicyHooksTrait<TContractState>,
        +Drop<TContractState>,
    > of ISpendingPolicy<ComponentState<TContractState>> {
        fn set_spending_policy(
            ref self: ComponentState<TContractState>,
            session_key: felt252,
            token: ContractAddress,
            max_per_call: u256,
            max_per_window: u256,
            window_seconds: u64,
        ) {
            assert_only_self();
            assert(token.is_non_zero(), errors::POLICY_ZERO_TOKEN);
            assert(window_seconds != 0, errors::POLICY_ZERO_WINDOW);
            assert(max_per_call <= max_per_window, errors::POLICY_CALL_ABOVE_WINDOW);
            let key = (session_key, token);
            let window = self.SpendingPolicy_window.read(key);
            let existed = window.window_seconds != 0;
            // Changing a policy keeps its window (start and amount spent): otherwise
            // tightening 100/day to 50/day after 100 were spent would free 50 at once.
            // A new policy starts empty; its first spend opens the window.
            let (window_start, spent): (u64, u256) = if existed {
                let limits = self.SpendingPolicy_limits.read(key);
                let spent = if limits.wide {
                    let (_, _, spent) = self.SpendingPolicy_wide.read(key);
                    spent
                } else {
                    window.spent.into()
                };
                (window.window_start, spent)
            } else {
                (0, 0)
            };
            // Compact needs the limits and the carried spend below 2^122 (see `record_spend`).
            let compact = max_per_window.high == 0
                && max_per_window.low < COMPACT_BOUND
                && spent.high == 0
                && spent.low < COMPACT_BOUND;
            if compact {
                self
                    .SpendingPolicy_limits
                    .write(
                        key,
                        PolicyLimits {
                            max_per_call: max_per_call.low,
                            max_per_window: max_per_window.low,
                            wide: false,
                        },
                    );
                self
                    .SpendingPolicy_window
                    .write(key, PolicyWindow { window_seconds, window_start, spent: spent.low });
            } else {
                self
                    .SpendingPolicy_limits
                    .write(key, PolicyLimits { max_per_call: 0, max_per_window: 0, wide: true });
                self.SpendingPolicy_wide.write(key, (max_per_call, max_per_window, spent));
                self
                    .SpendingPolicy_window
                    .write(key, PolicyWindow { window_seconds, window_start, spent: 0 });
            }
            if !existed {
                Hooks::on_policy_added(ref self, session_key);
            }
            self.emit(SpendingPolicySet { session_key, token, max_per_call, max_per_window, window_seconds });
        }

        fn get_spending_policy(
            self: @ComponentState<TContractState>, session_key: felt252, token: ContractAddress,
        ) -> SpendingPolicy {
            let key = (session_key, token);
            let window = self.SpendingPolicy_window.read(key);
            let limits = self.SpendingPolicy_limits.read(key);
            let (max_per_call, max_per_window, spent_in_window) = if limits.wide {
                self.SpendingPolicy_wide.read(key)
            } else {
                (limits.max_per_call.into(), limits.max_per_window.into(), window.spent.into())
            };
            SpendingPolicy {
                max_per_call,
                max_per_window,
                window_seconds: window.window_seconds,
                spent_in_window,
                window_start: window.window_start,
            }
        }

        fn remove_spending_policy(
            ref self: ComponentState<TContractState>, session_key: felt252, token: ContractAddress,
        ) {
            assert_only_self();
            let key = (session_key, token);
            let window = self.SpendingPolicy_window.read(key);
            assert(window.window_seconds != 0, errors::POLICY_NOT_FOUND);
            let limits = self.SpendingPolicy_limits.read(key);
            if limits.wide {
                self.SpendingPolicy_wide.write(key, (0, 0, 0));
            }
            self
                .SpendingPolicy_limits
                .write(key, PolicyLimits { max_per_call: 0, max_per_window: 0, wide: false });
            self
                .SpendingPolicy_window
                .write(key, PolicyWindow { window_seconds: 0, window_start: 0, spent: 0 });
            Hooks::on_policy_removed(ref self, session_key);
            self.emit(SpendingPolicyRemoved { session_key, token });
        }
    }

    #[generate_trait]
    pub impl InternalImpl<
        TContractState, +HasComponent<TContractState>, +Drop<TContractState>,
    > of InternalTrait<TContractState> {
        /// Checks and records every tracked spend of `calls` made under `session_key`;
        /// reverts the whole execution on a breach.
        fn enforce(
            ref self: ComponentState<TContractState>, session_key: felt252, calls: Span<Call>, now: u64,
        ) {
            for call in calls {
                if is_tracked_selector(*call.selector) {
                    self.record_spend(session_key, *call.to, *call.calldata, now);
                }
            }
        }

        fn record_spend(
            ref self: ComponentState<TContractState>,
            session_key: felt252,
            token: ContractAddress,
            calldata: Span<felt252>,
            now: u64,
        ) {
            let key = (session_key, token);
            let window = self.SpendingPolicy_window.read(key);
            if window.window_seconds == 0 {
                return; // no policy: unrestricted
            }
            let amount = tracked_amount(calldata);
            let limits = self.SpendingPolicy_limits.read(key);
            let expired: u128 = window.window_start.into() + window.window_seconds.into();
            let restart = now.into() >= expired;
            let window_start = if restart {
                now
            } else {
                window.window_start
            };
            if limits.wide {
                let (max_per_call, max_per_window, spent) = self.SpendingPolicy_wide.read(key);
                assert(amount <= max_per_call, errors::POLICY_PER_CALL_EXCEEDED);
                let spent = if restart {
                    Zero::zero()
                } else {
                    spent
                };
                let (total, overflow) = spent.overflowing_add(amount);
                assert(!overflow && total <= max_per_window, errors::POLICY_WINDOW_EXCEEDED);
                self.SpendingPolicy_wide.write(key, (max_per_call, max_per_window, total));
                self
                    .SpendingPolicy_window
                    .write(key, PolicyWindow { window_start, ..window });
            } else {
                // Compact: every limit is below 2^122, so an amount with a high word, or
                // a sum past the limit, cannot pass and cannot overflow.
                assert(
                    amount.high == 0 && amount.low <= limits.max_per_call,
                    errors::POLICY_PER_CALL_EXCEEDED,
                );
                let spent = if restart {
                    0
                } else {
                    window.spent
                };
                let total = spent + amount.low;
                assert(total <= limits.max_per_window, errors::POLICY_WINDOW_EXCEEDED);
                self
                    .SpendingPolicy_window
                    .write(key, PolicyWindow { window_seconds: window.window_seconds, window_start, spent: total });
            }
        }
    }
}
