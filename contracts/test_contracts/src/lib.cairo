//! Contracts that only tests deploy.

pub mod snip9_account;

/// A third party that reverts with the message it is given, so that tests can show a
/// revert string imitating the wallet's own (`'Session: revoked'`) is not taken for the
/// wallet's.
#[starknet::interface]
pub trait IRevertWith<TContractState> {
    fn revert_with(ref self: TContractState, message: felt252);
}

#[starknet::contract]
pub mod RevertWith {
    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl RevertWithImpl of super::IRevertWith<ContractState> {
        fn revert_with(ref self: ContractState, message: felt252) {
            core::panic_with_felt252(message);
        }
    }
}

/// A heavy call that passes simulation: `burn(rounds)` writes `rounds` storage slots, so a
/// test can make each sponsored transaction cost what it likes.
#[starknet::interface]
pub trait IGasBurner<TContractState> {
    fn burn(ref self: TContractState, rounds: u32);
}

#[starknet::contract]
pub mod GasBurner {
    use starknet::storage::{Map, StorageMapReadAccess, StorageMapWriteAccess};

    #[storage]
    struct Storage {
        slots: Map<u32, felt252>,
    }

    #[abi(embed_v0)]
    impl GasBurnerImpl of super::IGasBurner<ContractState> {
        fn burn(ref self: ContractState, rounds: u32) {
            let mut i: u32 = 0;
            while i != rounds {
                let before = self.slots.read(i);
                self.slots.write(i, before + 1);
                i += 1;
            }
        }
    }
}

/// A call that succeeds in a fee estimate or a simulation (a query transaction, whose
/// version carries bit 128) and reverts on chain: what passes a paymaster's simulation
/// and still costs it a reverted transaction.
#[starknet::interface]
pub trait IRevertsOnChain<TContractState> {
    fn poke(ref self: TContractState);
}

#[starknet::contract]
pub mod RevertsOnChain {
    use starknet::storage::{StoragePointerReadAccess, StoragePointerWriteAccess};

    #[storage]
    struct Storage {
        pokes: felt252,
    }

    #[abi(embed_v0)]
    impl RevertsOnChainImpl of super::IRevertsOnChain<ContractState> {
        fn poke(ref self: ContractState) {
            let version: u256 = starknet::get_tx_info().unbox().version.into();
            if version < 0x100000000000000000000000000000000 {
                core::panic_with_felt252('reverts outside simulation');
            }
            self.pokes.write(self.pokes.read() + 1);
        }
    }
}

/// Not a wallet: a contract that answers SRC-5 for every interface (SNIP-9 v2 included)
/// and "executes from outside" anything, for free. A paymaster that trusts SRC-5 alone
/// would pay for whatever it is asked to relay to it.
#[starknet::contract]
pub mod Src5Impostor {
    use starknet::account::Call;
    use starknet::storage::{StoragePointerReadAccess, StoragePointerWriteAccess};
    use starknet::ContractAddress;

    #[derive(Copy, Drop, Serde)]
    pub struct OutsideExecution {
        pub caller: ContractAddress,
        pub nonce: felt252,
        pub execute_after: u64,
        pub execute_before: u64,
        pub calls: Span<Call>,
    }

    #[storage]
    struct Storage {
        executions: felt252,
    }

    #[external(v0)]
    fn supports_interface(self: @ContractState, interface_id: felt252) -> bool {
        true
    }

    #[external(v0)]
    fn execute_from_outside_v2(
        ref self: ContractState, outside_execution: OutsideExecution, signature: Span<felt252>,
    ) -> Array<Span<felt252>> {
        self.executions.write(self.executions.read() + 1);
        array![]
    }
}
