//! Every revert message of the contract, in one place. Clients map them to the error
//! codes of PROTOCOL.md section 5 through one table (tested against this file), so a
//! message here is part of the public interface: change none without a new version.

// Account (owner path, protocol entry points).
pub const INVALID_CALLER: felt252 = 'Account: invalid caller';
pub const UNAUTHORIZED: felt252 = 'Account: unauthorized';
pub const INVALID_SIGNATURE: felt252 = 'Account: invalid signature';
pub const INVALID_SIGNATURE_LENGTH: felt252 = 'Account: invalid sig length';
pub const ZERO_PUBLIC_KEY: felt252 = 'Account: zero public key';
pub const INVALID_NEW_KEY_SIGNATURE: felt252 = 'Account: invalid new key sig';

// SNIP-9 v2 outside execution.
pub const SRC9_INVALID_CALLER: felt252 = 'SRC9: invalid caller';
pub const SRC9_TOO_EARLY: felt252 = 'SRC9: now <= execute_after';
pub const SRC9_TOO_LATE: felt252 = 'SRC9: now >= execute_before';
pub const SRC9_DUPLICATED_NONCE: felt252 = 'SRC9: duplicated nonce';

// Session validation, in the order of PROTOCOL.md 3.3.
pub const SESSION_BAD_VALID_UNTIL: felt252 = 'Session: bad valid_until';
pub const SESSION_EXPIRED: felt252 = 'Session: expired';
pub const SESSION_NOT_REGISTERED: felt252 = 'Session: not registered';
pub const SESSION_REVOKED: felt252 = 'Session: revoked';
pub const SESSION_VALID_UNTIL_MISMATCH: felt252 = 'Session: valid_until mismatch';
pub const SESSION_MAX_CALLS_EXCEEDED: felt252 = 'Session: max calls exceeded';
pub const SESSION_ENTRYPOINT_BLOCKED: felt252 = 'Session: entrypoint blocked';
pub const SESSION_SELF_CALL: felt252 = 'Session: self call';
pub const SESSION_ENTRYPOINT_NOT_ALLOWED: felt252 = 'Session: entrypoint not allowed';
pub const SESSION_INVALID_SIGNATURE: felt252 = 'Session: invalid signature';
pub const SESSION_TIP_NOT_ALLOWED: felt252 = 'Session: tip not allowed';

// Session management input checks.
pub const SESSION_ZERO_KEY: felt252 = 'Session: zero key';
pub const SESSION_VALID_UNTIL_PAST: felt252 = 'Session: valid_until in past';
pub const SESSION_ZERO_MAX_CALLS: felt252 = 'Session: zero max_calls';
pub const SESSION_TOO_MANY_ENTRYPOINTS: felt252 = 'Session: too many entrypoints';

// Spending policy (PROTOCOL.md 3.5).
pub const POLICY_ZERO_TOKEN: felt252 = 'Policy: zero token';
pub const POLICY_ZERO_WINDOW: felt252 = 'Policy: zero window';
pub const POLICY_CALL_ABOVE_WINDOW: felt252 = 'Policy: per-call above window';
pub const POLICY_NOT_FOUND: felt252 = 'Policy: not found';
pub const POLICY_BAD_AMOUNT: felt252 = 'Policy: bad amount calldata';
pub const POLICY_PER_CALL_EXCEEDED: felt252 = 'Policy: per-call limit exceeded';
pub const POLICY_WINDOW_EXCEEDED: felt252 = 'Policy: window limit exceeded';
