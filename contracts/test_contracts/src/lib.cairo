//! Contracts that only tests deploy.

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
