//! `Snip9Account`: a wallet of another class than the session account, built as
//! OpenZeppelin's account preset with the SRC9 component is: one owner key signing
//! `[r, s]`, SRC-5 answering ISRC5, ISRC6 and ISRC9_V2 (and nothing of sessions), SNIP-9
//! v2 outside executions whose signature goes through `is_valid_signature`, and OZ's
//! revert messages. Tests use it as "any SNIP-9 v2 account" a paymaster may sponsor.
//!
//! The owner key, the SNIP-9 nonce bookkeeping and the SNIP-12 hash are the session
//! account's own components (same storage names, events and messages as OZ's), so this
//! class adds no second copy of them.

#[starknet::contract(account)]
pub mod Snip9Account {
    use core::num::traits::Zero;
    use session_account::components::outside_execution::OutsideExecutionComponent;
    use session_account::components::owner::OwnerComponent;
    use session_account::interfaces::{
        IDeclarer, IDeployable, ISRC5, ISRC5_ID, ISRC6, ISRC6_ID, ISRC9V2, ISRC9_V2_ID,
        OutsideExecution, VALIDATED,
    };
    use session_account::snip12::outside_execution_hash;
    use starknet::account::Call;
    use starknet::syscalls::call_contract_syscall;
    use starknet::{SyscallResultTrait, get_execution_info};

    component!(path: OwnerComponent, storage: owner, event: OwnerEvent);
    component!(path: OutsideExecutionComponent, storage: src9, event: OutsideExecutionEvent);

    #[abi(embed_v0)]
    impl PublicKeyImpl = OwnerComponent::PublicKeyImpl<ContractState>;
    impl OwnerInternal = OwnerComponent::InternalImpl<ContractState>;
    impl OutsideExecutionInternal = OutsideExecutionComponent::InternalImpl<ContractState>;

    const INVALID_CALLER: felt252 = 'Account: invalid caller';
    const INVALID_TX_VERSION: felt252 = 'Account: invalid tx version';
    const SRC9_INVALID_SIGNATURE: felt252 = 'SRC9: invalid signature';
    /// Invoke v1 and later; a query (fee estimate, simulation) adds 2^128 to the version.
    const MIN_TRANSACTION_VERSION: u256 = 1;
    const QUERY_OFFSET: u256 = 0x100000000000000000000000000000000;

    #[storage]
    struct Storage {
        #[substorage(v0)]
        owner: OwnerComponent::Storage,
        #[substorage(v0)]
        src9: OutsideExecutionComponent::Storage,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        #[flat]
        OwnerEvent: OwnerComponent::Event,
        #[flat]
        OutsideExecutionEvent: OutsideExecutionComponent::Event,
    }

    #[constructor]
    fn constructor(ref self: ContractState, public_key: felt252) {
        self.owner.initializer(public_key);
    }

    #[abi(embed_v0)]
    impl SRC6Impl of ISRC6<ContractState> {
        fn __execute__(ref self: ContractState, calls: Array<Call>) -> Array<Span<felt252>> {
            let info = get_execution_info().unbox();
            assert(info.caller_address.is_zero(), INVALID_CALLER);
            let version: u256 = info.tx_info.unbox().version.into();
            let valid_version = if version >= QUERY_OFFSET {
                QUERY_OFFSET + MIN_TRANSACTION_VERSION <= version
            } else {
                MIN_TRANSACTION_VERSION <= version
            };
            assert(valid_version, INVALID_TX_VERSION);
            execute_calls(calls.span())
        }

        fn __validate__(ref self: ContractState, calls: Array<Call>) -> felt252 {
            self.owner.validate_owner_transaction()
        }

        fn is_valid_signature(
            self: @ContractState, hash: felt252, signature: Array<felt252>,
        ) -> felt252 {
            if self.owner.is_valid_owner_signature(hash, signature.span()) {
                VALIDATED
            } else {
                0
            }
        }
    }

    #[abi(embed_v0)]
    impl SRC9V2Impl of ISRC9V2<ContractState> {
        /// OZ's order: caller, window and nonce (marked used), then the owner's signature
        /// over the SNIP-12 hash as `is_valid_signature` judges it, then the calls.
        fn execute_from_outside_v2(
            ref self: ContractState, outside_execution: OutsideExecution, signature: Span<felt252>,
        ) -> Array<Span<felt252>> {
            let info = get_execution_info().unbox();
            let now = info.block_info.unbox().block_timestamp;
            self.src9.use_outside_execution(@outside_execution, info.caller_address, now);
            let chain_id = info.tx_info.unbox().chain_id;
            let hash = outside_execution_hash(@outside_execution, chain_id, info.contract_address);
            let valid = self.is_valid_signature(hash, signature.into());
            assert(valid == VALIDATED, SRC9_INVALID_SIGNATURE);
            execute_calls(outside_execution.calls)
        }

        fn is_valid_outside_execution_nonce(self: @ContractState, nonce: felt252) -> bool {
            self.src9.is_nonce_available(nonce)
        }
    }

    #[abi(embed_v0)]
    impl SRC5Impl of ISRC5<ContractState> {
        fn supports_interface(self: @ContractState, interface_id: felt252) -> bool {
            interface_id == ISRC5_ID || interface_id == ISRC6_ID || interface_id == ISRC9_V2_ID
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
