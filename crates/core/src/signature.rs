//! Owner and session signatures (PROTOCOL.md 3.2).

use starknet_rust_core::crypto::ecdsa_verify;
use starknet_rust_core::types::Felt;
use starknet_rust_crypto::poseidon_hash_many;

use crate::constants::STARKNET_MESSAGE_PREFIX;
use crate::ecdsa;

/// A signing failure. Carries no key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The private key is zero or not below the curve order.
    #[error("invalid private key")]
    InvalidPrivateKey,
    /// The hash to sign is not below 2^251.
    #[error("message hash out of range")]
    HashOutOfRange,
}

/// Stark curve order: private keys live in `[1, ORDER)`.
const CURVE_ORDER: Felt =
    Felt::from_hex_unchecked("0x800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f");

fn check_private_key(private_key: &Felt) -> Result<(), SignatureError> {
    if *private_key == Felt::ZERO || *private_key >= CURVE_ORDER {
        return Err(SignatureError::InvalidPrivateKey);
    }
    Ok(())
}

/// The Stark public key (x coordinate) of `private_key`.
pub fn public_key_of(private_key: &Felt) -> Result<Felt, SignatureError> {
    check_private_key(private_key)?;
    Ok(ecdsa::public_key(private_key))
}

/// ECDSA `(r, s)` of `hash` with RFC 6979 nonces (the signature starknet-crypto's
/// `ecdsa_sign` gives, computed faster: see the `ecdsa` module).
pub fn sign_hash(private_key: &Felt, hash: Felt) -> Result<(Felt, Felt), SignatureError> {
    let (r, s, _) = sign_hash_recoverable(private_key, hash)?;
    Ok((r, s))
}

/// ECDSA `(r, s, v)` of `hash`: `v` is the recovery bit that the paymaster API's
/// `userSignature.recovery` carries.
pub fn sign_hash_recoverable(
    private_key: &Felt,
    hash: Felt,
) -> Result<(Felt, Felt, Felt), SignatureError> {
    check_private_key(private_key)?;
    ecdsa::sign(private_key, &hash).ok_or(SignatureError::HashOutOfRange)
}

/// The owner's signature: `[r, s]`.
pub fn owner_signature(private_key: &Felt, hash: Felt) -> Result<Vec<Felt>, SignatureError> {
    let (r, s) = sign_hash(private_key, hash)?;
    Ok(vec![r, s])
}

/// A session's signature: `[session_public_key, r, s, valid_until]`.
pub fn session_signature(
    private_key: &Felt,
    hash: Felt,
    valid_until: u64,
) -> Result<Vec<Felt>, SignatureError> {
    check_private_key(private_key)?;
    // The public key and the signature together share one field inversion.
    let (public_key, (r, s, _)) =
        ecdsa::sign_with_public_key(private_key, &hash).ok_or(SignatureError::HashOutOfRange)?;
    Ok(vec![public_key, r, s, Felt::from(valid_until)])
}

/// Whether `(r, s)` is a valid signature of `hash` by `public_key` (false on any bad input).
pub fn verify_signature(public_key: &Felt, hash: &Felt, r: &Felt, s: &Felt) -> bool {
    let signature = starknet_rust_core::crypto::Signature { r: *r, s: *s };
    ecdsa_verify(public_key, hash, &signature).unwrap_or(false)
}

/// What a new owner key signs in `set_public_key`:
/// `poseidon('StarkNet Message', 'accept_ownership', account, current_public_key)`.
pub fn accept_ownership_hash(account: Felt, current_public_key: Felt) -> Felt {
    // 'accept_ownership'
    const ACCEPT_OWNERSHIP: Felt = Felt::from_hex_unchecked("0x6163636570745f6f776e657273686970");
    poseidon_hash_many(&[
        STARKNET_MESSAGE_PREFIX,
        ACCEPT_OWNERSHIP,
        account,
        current_public_key,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_signature_verifies_and_carries_key_and_expiry() {
        let key = Felt::from(123_456u32);
        let hash = Felt::from(99u8);
        let sig = session_signature(&key, hash, 77).unwrap();
        assert_eq!(sig[0], public_key_of(&key).unwrap());
        assert_eq!(sig[3], Felt::from(77u8));
        assert!(verify_signature(&sig[0], &hash, &sig[1], &sig[2]));
        assert!(!verify_signature(
            &sig[0],
            &(hash + Felt::ONE),
            &sig[1],
            &sig[2]
        ));
    }

    #[test]
    fn invalid_private_keys_are_refused() {
        assert_eq!(
            sign_hash(&Felt::ZERO, Felt::ONE),
            Err(SignatureError::InvalidPrivateKey)
        );
        assert_eq!(
            sign_hash(&CURVE_ORDER, Felt::ONE),
            Err(SignatureError::InvalidPrivateKey)
        );
        assert_eq!(
            sign_hash(&Felt::MAX, Felt::ONE),
            Err(SignatureError::InvalidPrivateKey)
        );
    }

    #[test]
    fn accept_ownership_prefix_is_the_short_string() {
        use starknet_rust_core::utils::cairo_short_string_to_felt;
        let expected = poseidon_hash_many(&[
            STARKNET_MESSAGE_PREFIX,
            cairo_short_string_to_felt("accept_ownership").unwrap(),
            Felt::ONE,
            Felt::TWO,
        ]);
        assert_eq!(accept_ownership_hash(Felt::ONE, Felt::TWO), expected);
    }
}
