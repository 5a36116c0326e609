//! Stark ECDSA signing and public keys, with the same outputs as starknet-crypto's
//! `ecdsa_sign` / `get_public_key` (tested against them) but about 4x faster.
//!
//! starknet-crypto multiplies the generator by double-and-add over 252 bits and inverts
//! `k` with a variable-time extended GCD. Here:
//! - `scalar·G` uses a fixed-base comb: `TABLE[j][d] = d·16^j·G` (63 windows of 4 bits,
//!   built once, ~63 KiB), so a multiplication is 63 point additions and no doubling.
//!   Each window reads every entry of its row and keeps the wanted one with a
//!   constant-time select, and adds even for a zero digit (the result is then discarded
//!   by a select), so which table entry is used does not show in memory access or in the
//!   number of additions.
//! - the scalar arithmetic mod the curve order (`k⁻¹`, `r·d + h`) runs in
//!   crypto-bigint's constant-time Montgomery residues.
//!
//! The curve arithmetic itself is lambdaworks' (through `starknet-types-core`), as in
//! starknet-crypto; like there, its point addition has data-dependent branches for
//! special cases (the identity, equal points).

use std::sync::OnceLock;

use crypto_bigint::modular::constant_mod::Residue;
use crypto_bigint::{impl_modulus, Encoding, U256};
use starknet_rust_crypto::rfc6979_generate_k;
use starknet_types_core::curve::{AffinePoint, ProjectivePoint};
use starknet_types_core::felt::Felt;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

impl_modulus!(
    CurveOrder,
    U256,
    "0800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f"
);
type Scalar = Residue<CurveOrder, { U256::LIMBS }>;

/// Signatures, hashes and `r` must be below 2^251.
const ELEMENT_UPPER_BOUND: Felt =
    Felt::from_hex_unchecked("0x800000000000000000000000000000000000000000000000000000000000000");

const WINDOWS: usize = 63;

/// A point of the table as raw Montgomery limbs of its affine coordinates.
#[derive(Clone, Copy, Default)]
struct Entry {
    x: [u64; 4],
    y: [u64; 4],
}

impl ConditionallySelectable for Entry {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        let mut out = Entry::default();
        for i in 0..4 {
            out.x[i] = u64::conditional_select(&a.x[i], &b.x[i], choice);
            out.y[i] = u64::conditional_select(&a.y[i], &b.y[i], choice);
        }
        out
    }
}

/// `TABLE[j][d] = d·16^j·G` for `d` in 1..16; `TABLE[j][0] = 16^j·G`, the stand-in
/// added (and discarded) for a zero digit.
fn table() -> &'static [[Entry; 16]; WINDOWS] {
    static TABLE: OnceLock<Box<[[Entry; 16]; WINDOWS]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let generator = AffinePoint::generator();
        let mut base = ProjectivePoint::from_affine_unchecked(generator.x(), generator.y());
        let mut table = Box::new([[Entry::default(); 16]; WINDOWS]);
        for row in table.iter_mut() {
            let mut multiple = base.clone();
            for slot in row.iter_mut().skip(1) {
                *slot = entry(&multiple);
                multiple += &base;
            }
            row[0] = row[1];
            for _ in 0..4 {
                base = base.double();
            }
        }
        table
    })
}

/// The affine coordinates of a point known not to be the identity (a nonzero multiple
/// of `G` below the group order).
fn entry(point: &ProjectivePoint) -> Entry {
    let z_inv = point.z().inverse().unwrap_or(Felt::ZERO);
    Entry {
        x: (point.x() * z_inv).to_raw(),
        y: (point.y() * z_inv).to_raw(),
    }
}

/// `scalar·G` in affine coordinates, for `scalar` in `[1, n)`.
fn mul_generator(scalar: &Felt) -> (Felt, Felt) {
    let bytes = scalar.to_bytes_be();
    let mut acc = ProjectivePoint::identity();
    for (j, row) in table().iter().enumerate() {
        let byte = bytes[31 - j / 2];
        let digit = if j % 2 == 0 { byte & 0x0f } else { byte >> 4 };
        let mut chosen = row[0];
        for (d, candidate) in row.iter().enumerate().skip(1) {
            chosen.conditional_assign(candidate, (d as u8).ct_eq(&digit));
        }
        let point = ProjectivePoint::from_affine_unchecked(
            Felt::from_raw(chosen.x),
            Felt::from_raw(chosen.y),
        );
        let sum = &acc + &point;
        let keep = digit.ct_eq(&0);
        acc = select_point(&sum, &acc, keep);
    }
    let affine = entry(&acc);
    (Felt::from_raw(affine.x), Felt::from_raw(affine.y))
}

/// `a`, or `b` when `choice` is set, in constant time over the coordinates.
fn select_point(a: &ProjectivePoint, b: &ProjectivePoint, choice: Choice) -> ProjectivePoint {
    let pick = |a: Felt, b: Felt| {
        let (a, b) = (a.to_raw(), b.to_raw());
        let mut out = [0u64; 4];
        for i in 0..4 {
            out[i] = u64::conditional_select(&a[i], &b[i], choice);
        }
        Felt::from_raw(out)
    };
    ProjectivePoint::new_unchecked(pick(a.x(), b.x()), pick(a.y(), b.y()), pick(a.z(), b.z()))
}

/// The public key (x coordinate of `private_key·G`); `private_key` in `[1, n)`.
pub(crate) fn public_key(private_key: &Felt) -> Felt {
    mul_generator(private_key).0
}

fn scalar(felt: &Felt) -> Scalar {
    Scalar::new(&U256::from_be_bytes(felt.to_bytes_be()))
}

/// RFC 6979 ECDSA `(r, s, v)` of `hash` (below 2^251), exactly as starknet-crypto's
/// `ecdsa_sign`, including its retry with a bumped seed when `k` gives an unusable `r`
/// or `s`. `private_key` in `[1, n)`. `None` when `hash` is out of range.
pub(crate) fn sign(private_key: &Felt, hash: &Felt) -> Option<(Felt, Felt, Felt)> {
    if *hash >= ELEMENT_UPPER_BOUND {
        return None;
    }
    let mut seed: Option<Felt> = None;
    loop {
        let k = rfc6979_generate_k(hash, private_key, seed.as_ref());
        if let Some(signature) = sign_with_k(private_key, hash, &k) {
            return Some(signature);
        }
        seed = Some(seed.map_or(Felt::ONE, |s| s + Felt::ONE));
    }
}

fn sign_with_k(private_key: &Felt, hash: &Felt, k: &Felt) -> Option<(Felt, Felt, Felt)> {
    if *k == Felt::ZERO {
        return None;
    }
    let (r, y) = mul_generator(k);
    if r == Felt::ZERO || r >= ELEMENT_UPPER_BOUND {
        return None;
    }
    let (k_inv, invertible) = scalar(k).invert();
    if !bool::from(invertible) {
        return None;
    }
    let s = (scalar(&r) * scalar(private_key) + scalar(hash)) * k_inv;
    let s = Felt::from_bytes_be(&s.retrieve().to_be_bytes());
    if s == Felt::ZERO || s >= ELEMENT_UPPER_BOUND {
        return None;
    }
    let v = Felt::from(y.to_bytes_be()[31] & 1);
    Some((r, s, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::modular::constant_mod::ResidueParams;
    use proptest::prelude::*;
    use starknet_rust_core::crypto::ecdsa_sign;
    use starknet_rust_crypto::get_public_key;

    const ORDER: Felt = Felt::from_hex_unchecked(
        "0x800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f",
    );

    fn reference(private_key: &Felt, hash: &Felt) -> (Felt, Felt, Felt) {
        let signature = ecdsa_sign(private_key, hash).unwrap();
        (signature.r, signature.s, signature.v)
    }

    #[test]
    fn the_modulus_is_the_curve_order() {
        assert_eq!(
            Felt::from_bytes_be(&CurveOrder::MODULUS.to_be_bytes()),
            ORDER
        );
    }

    #[test]
    fn edge_keys_and_hashes_match_starknet_crypto() {
        let keys = [Felt::ONE, Felt::TWO, ORDER - Felt::ONE, ORDER - Felt::TWO];
        let hashes = [Felt::ZERO, Felt::ONE, ELEMENT_UPPER_BOUND - Felt::ONE];
        for key in keys {
            assert_eq!(public_key(&key), get_public_key(&key));
            for hash in hashes {
                assert_eq!(sign(&key, &hash), Some(reference(&key, &hash)));
            }
        }
        assert_eq!(sign(&Felt::ONE, &ELEMENT_UPPER_BOUND), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn random_keys_and_hashes_match_starknet_crypto(
            key in any::<[u8; 32]>(),
            hash in any::<[u8; 32]>(),
        ) {
            // A key in [1, n) and a hash below 2^251, from random bytes.
            let mut key = key;
            key[0] &= 0x07;
            let key = Felt::from_bytes_be(&key);
            prop_assume!(key != Felt::ZERO && key < ORDER);
            let mut hash = hash;
            hash[0] &= 0x07;
            let hash = Felt::from_bytes_be(&hash);
            prop_assert_eq!(public_key(&key), get_public_key(&key));
            prop_assert_eq!(sign(&key, &hash), Some(reference(&key, &hash)));
        }
    }
}
