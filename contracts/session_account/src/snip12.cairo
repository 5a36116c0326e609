//! SNIP-12 revision 1 hash of a SNIP-9 v2 OutsideExecution (PROTOCOL.md section 4).

use core::poseidon::poseidon_hash_span;
use starknet::ContractAddress;
use crate::interfaces::OutsideExecution;

/// `StarknetDomain(name:shortstring,version:shortstring,chainId:shortstring,revision:shortstring)`
pub const STARKNET_DOMAIN_TYPE_HASH: felt252 =
    0x1ff2f602e42168014d405a94f75e8a93d640751d71d16311266e140d8b0a210;
/// `OutsideExecution(Caller:ContractAddress,Nonce:felt,Execute After:u128,Execute Before:u128,Calls:Call*)Call(...)`
pub const OUTSIDE_EXECUTION_TYPE_HASH: felt252 =
    0x312b56c05a7965066ddbda31c016d8d05afc305071c0ca3cdc2192c3c2f1f0f;
/// `Call(To:ContractAddress,Selector:selector,Calldata:felt*)`
pub const CALL_TYPE_HASH: felt252 =
    0x3635c7f2a7ba93844c0d064e18e487f35ab90f7c39d00f186a781fc3f0c2ca9;

const DOMAIN_NAME: felt252 = 'Account.execute_from_outside';
const DOMAIN_VERSION: felt252 = 2;
const DOMAIN_REVISION: felt252 = 1;

/// The message hash an owner or a session signs to authorize `outside_execution`.
pub fn outside_execution_hash(
    outside_execution: @OutsideExecution, chain_id: felt252, account: ContractAddress,
) -> felt252 {
    let domain = poseidon_hash_span(
        [STARKNET_DOMAIN_TYPE_HASH, DOMAIN_NAME, DOMAIN_VERSION, chain_id, DOMAIN_REVISION].span(),
    );
    let mut call_hashes: Array<felt252> = array![];
    for call in *outside_execution.calls {
        call_hashes
            .append(
                poseidon_hash_span(
                    [
                        CALL_TYPE_HASH, (*call.to).into(), *call.selector,
                        poseidon_hash_span(*call.calldata),
                    ]
                        .span(),
                ),
            );
    }
    let struct_hash = poseidon_hash_span(
        [
            OUTSIDE_EXECUTION_TYPE_HASH, (*outside_execution.caller).into(),
            *outside_execution.nonce, (*outside_execution.execute_after).into(),
            (*outside_execution.execute_before).into(), poseidon_hash_span(call_hashes.span()),
        ]
            .span(),
    );
    poseidon_hash_span(['StarkNet Message', domain, account.into(), struct_hash].span())
}
