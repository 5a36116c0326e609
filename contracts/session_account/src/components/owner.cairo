//! The owner key: its storage and events, rotation (`set_public_key`), the owner's
//! signature check, and `assert_only_self`, as OpenZeppelin's account component has them.
//! Storage and event names are the account's original ones, so no slot moved.

use crate::errors;

/// Asserts that the caller is the account itself. Owner-only entry points use it: such
/// a call then runs only inside a transaction or an outside execution the owner signed,
/// never inside a session (a session may not call its own account).
pub fn assert_only_self() {
    let info = starknet::get_execution_info().unbox();
    assert(info.caller_address == info.contract_address, errors::UNAUTHORIZED);
}

#[starknet::component]
pub mod OwnerComponent {
    use core::ecdsa::check_ecdsa_signature;
    use core::poseidon::poseidon_hash_span;
    use starknet::storage::{StoragePointerReadAccess, StoragePointerWriteAccess};
    use crate::errors;
    use crate::interfaces::{IPublicKey, VALIDATED};
    use super::assert_only_self;

    #[storage]
    pub struct Storage {
        pub Account_public_key: felt252,
    }

    #[event]
    #[derive(Drop, PartialEq, starknet::Event)]
    pub enum Event {
        OwnerAdded: OwnerAdded,
        OwnerRemoved: OwnerRemoved,
    }

    #[derive(Drop, PartialEq, starknet::Event)]
    pub struct OwnerAdded {
        #[key]
        pub new_owner_guid: felt252,
    }

    #[derive(Drop, PartialEq, starknet::Event)]
    pub struct OwnerRemoved {
        #[key]
        pub removed_owner_guid: felt252,
    }

    #[embeddable_as(PublicKeyImpl)]
    impl PublicKey<
        TContractState, +HasComponent<TContractState>, +Drop<TContractState>,
    > of IPublicKey<ComponentState<TContractState>> {
        fn get_public_key(self: @ComponentState<TContractState>) -> felt252 {
            self.Account_public_key.read()
        }

        fn set_public_key(
            ref self: ComponentState<TContractState>,
            new_public_key: felt252,
            signature: Span<felt252>,
        ) {
            assert_only_self();
            assert(new_public_key != 0, errors::ZERO_PUBLIC_KEY);
            let current = self.Account_public_key.read();
            let account: felt252 = starknet::get_contract_address().into();
            // Proof that the new key's holder exists, so a typo cannot lock the wallet.
            let message = poseidon_hash_span(
                ['StarkNet Message', 'accept_ownership', account, current].span(),
            );
            assert(
                signature.len() == 2
                    && check_ecdsa_signature(
                        message, new_public_key, *signature.at(0), *signature.at(1),
                    ),
                errors::INVALID_NEW_KEY_SIGNATURE,
            );
            self.Account_public_key.write(new_public_key);
            self.emit(OwnerRemoved { removed_owner_guid: current });
            self.emit(OwnerAdded { new_owner_guid: new_public_key });
        }
    }

    #[generate_trait]
    pub impl InternalImpl<
        TContractState, +HasComponent<TContractState>, +Drop<TContractState>,
    > of InternalTrait<TContractState> {
        /// Sets the first owner key.
        fn initializer(ref self: ComponentState<TContractState>, public_key: felt252) {
            assert(public_key != 0, errors::ZERO_PUBLIC_KEY);
            self.Account_public_key.write(public_key);
            self.emit(OwnerAdded { new_owner_guid: public_key });
        }

        /// Whether `signature` is the owner's `[r, s]` over `hash`.
        fn is_valid_owner_signature(
            self: @ComponentState<TContractState>, hash: felt252, signature: Span<felt252>,
        ) -> bool {
            signature.len() == 2
                && check_ecdsa_signature(
                    hash, self.Account_public_key.read(), *signature.at(0), *signature.at(1),
                )
        }

        /// Declares and deploy-account transactions: signed by the owner only.
        fn validate_owner_transaction(self: @ComponentState<TContractState>) -> felt252 {
            let tx_info = starknet::get_tx_info().unbox();
            assert(
                self.is_valid_owner_signature(tx_info.transaction_hash, tx_info.signature),
                errors::INVALID_SIGNATURE,
            );
            VALIDATED
        }
    }
}
