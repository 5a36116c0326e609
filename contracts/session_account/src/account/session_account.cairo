//! The CHIPI session account preset.
//!
//! Signatures (PROTOCOL.md 3.2): the owner signs `[r, s]`, a session signs
//! `[session_key, r, s, valid_until]`; any other length is invalid. Direct
//! transactions are signed over the transaction hash (binding fees, nonce and chain),
//! outside executions over their SNIP-12 hash. Management entry points run only when
//! the account calls itself, that is inside something the owner signed.

#[starknet::contract(account)]
pub mod SessionAccount {
    use core::num::traits::Zero;
    use starknet::account::Call;
    use starknet::syscalls::call_contract_syscall;
    use starknet::{SyscallResultTrait, get_execution_info};
    use crate::components::outside_execution::OutsideExecutionComponent;
    use crate::components::owner::OwnerComponent;
    use crate::components::session_key::SessionKeyComponent;
    use crate::components::spending_policy::SpendingPolicyComponent;
    use crate::errors;
    use crate::interfaces::{
        IDeclarer, IDeployable, ISESSION_KEY_MANAGER_ID, ISRC5, ISRC5_ID, ISRC6, ISRC6_ID,
        ISRC9V2, ISRC9_V2_ID, OutsideExecution, VALIDATED,
    };
    use crate::snip12::outside_execution_hash;

    component!(path: OwnerComponent, storage: owner, event: OwnerEvent);
    component!(path: OutsideExecutionComponent, storage: src9, event: OutsideExecutionEvent);
    component!(path: SessionKeyComponent, storage: session, event: SessionKeyEvent);
    component!(path: SpendingPolicyComponent, storage: policy, event: SpendingPolicyEvent);

    #[abi(embed_v0)]
    impl PublicKeyImpl = OwnerComponent::PublicKeyImpl<ContractState>;
    impl OwnerInternal = OwnerComponent::InternalImpl<ContractState>;
    impl OutsideExecutionInternal = OutsideExecutionComponent::InternalImpl<ContractState>;

    #[abi(embed_v0)]
    impl SessionKeyManagerImpl =
        SessionKeyComponent::SessionKeyManagerImpl<ContractState>;
    #[abi(embed_v0)]
    impl SessionKeyInspectorImpl =
        SessionKeyComponent::SessionKeyInspectorImpl<ContractState>;
    #[abi(embed_v0)]
    impl SpendingPolicyImpl =
        SpendingPolicyComponent::SpendingPolicyImpl<ContractState>;
    impl SessionInternal = SessionKeyComponent::InternalImpl<ContractState>;
    impl PolicyInternal = SpendingPolicyComponent::InternalImpl<ContractState>;

    // Substorage v0 keeps each component's variable names as the slots' names, so the
    // layout is the one docs/storage.md lists (and, with no upgrade entry point, final).
    #[storage]
    struct Storage {
        #[substorage(v0)]
        owner: OwnerComponent::Storage,
        #[substorage(v0)]
        src9: OutsideExecutionComponent::Storage,
        #[substorage(v0)]
        session: SessionKeyComponent::Storage,
        #[substorage(v0)]
        policy: SpendingPolicyComponent::Storage,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        #[flat]
        OwnerEvent: OwnerComponent::Event,
        #[flat]
        OutsideExecutionEvent: OutsideExecutionComponent::Event,
        #[flat]
        SessionKeyEvent: SessionKeyComponent::Event,
        #[flat]
        SpendingPolicyEvent: SpendingPolicyComponent::Event,
    }

    #[constructor]
    fn constructor(ref self: ContractState, public_key: felt252) {
        self.owner.initializer(public_key);
    }

    impl SpendingPolicyHooksImpl of SpendingPolicyComponent::SpendingPolicyHooksTrait<ContractState> {
        fn on_policy_added(
            ref self: SpendingPolicyComponent::ComponentState<ContractState>, session_key: felt252,
        ) {
            let mut contract = self.get_contract_mut();
            contract.session.adjust_policy_count(session_key, true);
        }

        fn on_policy_removed(
            ref self: SpendingPolicyComponent::ComponentState<ContractState>, session_key: felt252,
        ) {
            let mut contract = self.get_contract_mut();
            contract.session.adjust_policy_count(session_key, false);
        }
    }

    #[abi(embed_v0)]
    impl SRC6Impl of ISRC6<ContractState> {
        fn __execute__(ref self: ContractState, calls: Array<Call>) -> Array<Span<felt252>> {
            let info = get_execution_info().unbox();
            assert(info.caller_address.is_zero(), errors::INVALID_CALLER);
            let signature = info.tx_info.unbox().signature;
            if signature.len() == 4 {
                // Validated (and one call consumed) in `__validate__`; the spending policy
                // is an execution-time rule.
                // `__validate__` sees block time rounded down to the hour, so expiry is
                // checked again here, where the time is exact.
                let now = info.block_info.unbox().block_timestamp;
                let valid_until: u64 = (*signature.at(3)).try_into().unwrap();
                assert(now <= valid_until, errors::SESSION_EXPIRED);
                let session_key = *signature.at(0);
                if self.session.has_policies(session_key) {
                    self.policy.enforce(session_key, calls.span(), now);
                }
            }
            execute_calls(calls.span())
        }

        fn __validate__(ref self: ContractState, calls: Array<Call>) -> felt252 {
            let info = get_execution_info().unbox();
            assert(info.caller_address.is_zero(), errors::INVALID_CALLER);
            let tx_info = info.tx_info.unbox();
            let signature = tx_info.signature;
            let len = signature.len();
            if len == 2 {
                assert(
                    self.owner.is_valid_owner_signature(tx_info.transaction_hash, signature),
                    errors::INVALID_SIGNATURE,
                );
                return VALIDATED;
            }
            if len == 4 {
                // The wallet pays a direct session transaction's fee: a tip is the one fee
                // term the signer sets freely, so a session may not add one (gas used and
                // the block's gas price are not the signer's to inflate).
                assert(tx_info.tip == 0, errors::SESSION_TIP_NOT_ALLOWED);
                let now = info.block_info.unbox().block_timestamp;
                let record = self
                    .session
                    .validate_session(
                        tx_info.transaction_hash, signature, calls.span(), info.contract_address, now,
                    );
                self.session.consume(*signature.at(0), record);
                return VALIDATED;
            }
            0
        }

        fn is_valid_signature(
            self: @ContractState, hash: felt252, signature: Array<felt252>,
        ) -> felt252 {
            let signature = signature.span();
            let valid = match signature.len() {
                0 | 1 => false,
                2 => self.owner.is_valid_owner_signature(hash, signature),
                3 => false,
                4 => {
                    let now = starknet::get_block_timestamp();
                    self.session.is_valid_session_signature(hash, signature, now)
                },
                _ => false,
            };
            if valid {
                VALIDATED
            } else {
                0
            }
        }
    }

    #[abi(embed_v0)]
    impl SRC9V2Impl of ISRC9V2<ContractState> {
        fn execute_from_outside_v2(
            ref self: ContractState, outside_execution: OutsideExecution, signature: Span<felt252>,
        ) -> Array<Span<felt252>> {
            let info = get_execution_info().unbox();
            let account = info.contract_address;
            let now = info.block_info.unbox().block_timestamp;
            self.src9.use_outside_execution(@outside_execution, info.caller_address, now);

            let chain_id = info.tx_info.unbox().chain_id;
            let hash = outside_execution_hash(@outside_execution, chain_id, account);
            let calls = outside_execution.calls;
            let len = signature.len();
            if len == 2 {
                assert(
                    self.owner.is_valid_owner_signature(hash, signature), errors::INVALID_SIGNATURE,
                );
            } else if len == 4 {
                let session_key = *signature.at(0);
                let record = self.session.validate_session(hash, signature, calls, account, now);
                self.session.consume(session_key, record);
                if record.policy_count != 0 {
                    self.policy.enforce(session_key, calls, now);
                }
            } else {
                core::panic_with_felt252(errors::INVALID_SIGNATURE_LENGTH);
            }
            execute_calls(calls)
        }

        fn is_valid_outside_execution_nonce(self: @ContractState, nonce: felt252) -> bool {
            self.src9.is_nonce_available(nonce)
        }
    }

    #[abi(embed_v0)]
    impl SRC5Impl of ISRC5<ContractState> {
        fn supports_interface(self: @ContractState, interface_id: felt252) -> bool {
            interface_id == ISRC5_ID
                || interface_id == ISRC6_ID
                || interface_id == ISRC9_V2_ID
                || interface_id == ISESSION_KEY_MANAGER_ID
        }
    }

    #[abi(embed_v0)]
    impl DeclarerImpl of IDeclarer<ContractState> {
        fn __validate_declare__(self: @ContractState, class_hash: felt252) -> felt252 {
            self.owner.validate_owner_transaction()
        }
    }

    #[abi(embed_v0)]
    impl DeployableImpl of IDeployable<ContractState> {
        fn __validate_deploy__(
            self: @ContractState,
            class_hash: felt252,
            contract_address_salt: felt252,
            public_key: felt252,
        ) -> felt252 {
            self.owner.validate_owner_transaction()
        }
    }

    /// Runs every call; the first failure reverts them all (the syscall error panics).
    fn execute_calls(calls: Span<Call>) -> Array<Span<felt252>> {
        let mut results = array![];
        for call in calls {
            results
                .append(
                    call_contract_syscall(*call.to, *call.selector, *call.calldata).unwrap_syscall(),
                );
        }
        results
    }
}
