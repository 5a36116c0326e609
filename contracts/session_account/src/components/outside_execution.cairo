//! SNIP-9 v2 bookkeeping in one place: who may submit an outside execution, its time
//! window, and its nonce (PROTOCOL.md 3.4). The signature check is the account's.

#[starknet::component]
pub mod OutsideExecutionComponent {
    use starknet::ContractAddress;
    use starknet::storage::{Map, StorageMapReadAccess, StorageMapWriteAccess};
    use crate::errors;
    use crate::interfaces::{ANY_CALLER, OutsideExecution};

    #[storage]
    pub struct Storage {
        /// Nonces already used.
        pub SRC9_nonces: Map<felt252, bool>,
    }

    #[event]
    #[derive(Drop, PartialEq, starknet::Event)]
    pub enum Event {}

    #[generate_trait]
    pub impl InternalImpl<
        TContractState, +HasComponent<TContractState>, +Drop<TContractState>,
    > of InternalTrait<TContractState> {
        /// Checks that `caller` may submit `outside_execution` at `now` and marks its nonce
        /// used, before anything else runs; panics with the SNIP-9 message otherwise.
        fn use_outside_execution(
            ref self: ComponentState<TContractState>,
            outside_execution: @OutsideExecution,
            caller: ContractAddress,
            now: u64,
        ) {
            let allowed: felt252 = (*outside_execution.caller).into();
            if allowed != ANY_CALLER {
                assert(caller == *outside_execution.caller, errors::SRC9_INVALID_CALLER);
            }
            assert(*outside_execution.execute_after < now, errors::SRC9_TOO_EARLY);
            assert(now < *outside_execution.execute_before, errors::SRC9_TOO_LATE);
            let nonce = *outside_execution.nonce;
            assert(!self.SRC9_nonces.read(nonce), errors::SRC9_DUPLICATED_NONCE);
            self.SRC9_nonces.write(nonce, true);
        }

        /// Whether `nonce` is still unused.
        fn is_nonce_available(self: @ComponentState<TContractState>, nonce: felt252) -> bool {
            !self.SRC9_nonces.read(nonce)
        }
    }
}
