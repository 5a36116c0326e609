//! The one thing the components need from the account that embeds them.

/// Asserts that the current call is authorized by the account's owner.
///
/// The session account implements it as "the caller is the account itself": a
/// management call then runs only inside a transaction or an outside execution that
/// the owner signed, and never inside a session (sessions cannot call the account).
pub trait OwnerCheck<TContractState> {
    fn assert_only_owner(self: @TContractState);
}
