//! Where the time of a session signature goes, and a prototype of a faster signer that
//! gives the same signatures:
//! `cargo run --release -p chipi-bench --example sign_breakdown`.
//!
//! `starknet-rust-crypto` computes `k·G` and the public key with a generic double-and-add
//! (about 120 µs each here) and inverts `k` modulo the curve order with num-bigint's
//! extended GCD (about 55-90 µs, and not constant-time). The prototype uses a fixed-base
//! comb table for `G` (63 windows of 4 bits, 945 affine points, built once in a few ms)
//! and crypto-bigint's constant-time `inv_odd_mod`; it checks that its public key and
//! `(r, s)` equal starknet-rust-crypto's before timing.
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chipi_bench::{
    chipi_message_hash, chipi_sign, measure, parse_felt, timed, transfer_calls, BenchError,
    Fixture, Sampler, SESSION_PRIVATE_KEY,
};
use crypto_bigint::{Encoding, U256};
use starknet_rust_crypto::{
    get_public_key, poseidon_hash_many, poseidon_permute_comp, rfc6979_generate_k, sign, Felt,
};
use starknet_types_core::curve::{AffinePoint, ProjectivePoint};
use starknet_types_core::felt::NonZeroFelt;

const EC_ORDER: Felt =
    Felt::from_hex_unchecked("0x800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f");
const WINDOWS: usize = 63;

fn fail(what: &str) -> BenchError {
    BenchError(what.to_string())
}

/// `table[j][d - 1] = d · 16^j · G`, affine.
fn comb_table() -> Result<&'static Vec<Vec<AffinePoint>>, BenchError> {
    static TABLE: OnceLock<Result<Vec<Vec<AffinePoint>>, BenchError>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let g = AffinePoint::generator();
            let mut base =
                ProjectivePoint::from_affine(g.x(), g.y()).map_err(|_| fail("generator"))?;
            let mut table = Vec::with_capacity(WINDOWS);
            for _ in 0..WINDOWS {
                let mut row = Vec::with_capacity(15);
                let mut multiple = base.clone();
                for _ in 1..16 {
                    row.push(multiple.to_affine().map_err(|_| fail("table point"))?);
                    multiple += &base;
                }
                table.push(row);
                for _ in 0..4 {
                    base = base.double();
                }
            }
            Ok(table)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// `scalar · G` with 63 mixed additions and no doubling.
fn mul_generator(scalar: &Felt) -> Result<AffinePoint, BenchError> {
    let table = comb_table()?;
    let bytes = scalar.to_bytes_be();
    let mut acc = ProjectivePoint::identity();
    for (j, row) in table.iter().enumerate() {
        let byte = bytes[31 - j / 2];
        let digit = usize::from(if j % 2 == 0 { byte & 0x0f } else { byte >> 4 });
        if digit != 0 {
            acc += &row[digit - 1];
        }
    }
    acc.to_affine()
        .map_err(|_| fail("k·G is the point at infinity"))
}

fn fast_public_key(private_key: &Felt) -> Result<Felt, BenchError> {
    Ok(mul_generator(private_key)?.x())
}

/// RFC 6979 ECDSA as starknet-rust-crypto's `sign` (first `k`; the fixed inputs never
/// need the retry), with the comb and a constant-time inverse of `k` mod n.
fn fast_sign(private_key: &Felt, hash: &Felt) -> Result<(Felt, Felt), BenchError> {
    let order = U256::from_be_bytes(EC_ORDER.to_bytes_be());
    let order_nz = NonZeroFelt::from_felt_unchecked(EC_ORDER);
    let k = rfc6979_generate_k(hash, private_key, None);
    let r = mul_generator(&k)?.x();
    let (k_inv, invertible) = U256::from_be_bytes(k.to_bytes_be()).inv_odd_mod(&order);
    if !bool::from(invertible) {
        return Err(fail("k not invertible"));
    }
    let rd = U256::from_be_bytes(r.mul_mod(private_key, &order_nz).to_bytes_be());
    let sum = rd.add_mod(&U256::from_be_bytes(hash.to_bytes_be()), &order);
    let s = Felt::from_bytes_be(&sum.to_be_bytes())
        .mul_mod(&Felt::from_bytes_be(&k_inv.to_be_bytes()), &order_nz);
    Ok((r, s))
}

fn main() -> Result<(), BenchError> {
    let time = Duration::from_millis(700);
    let private_key = parse_felt(SESSION_PRIVATE_KEY)?;
    let hash = parse_felt("0x39becd0919fe7bf21aa60d1025b958999fb5df82cf8e7b90c3416ae25b64131")?;
    let k = rfc6979_generate_k(&hash, &private_key, None);
    let reference = sign(&private_key, &hash, &k).map_err(|e| BenchError(e.to_string()))?;

    let start = Instant::now();
    comb_table()?;
    let table_ms = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(fast_public_key(&private_key)?, get_public_key(&private_key));
    assert_eq!(fast_sign(&private_key, &hash)?, (reference.r, reference.s));

    let us = |ns: f64| ns / 1e3;
    let three = [Felt::ONE, Felt::TWO, Felt::THREE];
    let mut state = three;
    println!("starknet-rust-crypto 0.19 (what chipi-core and the floor use):");
    println!(
        "  Poseidon permutation        {:7.1} µs",
        us(measure(time, || {
            poseidon_permute_comp(&mut state);
            state[0]
        }))
    );
    println!(
        "  poseidon_hash_many(3 felts) {:7.1} µs",
        us(measure(time, || poseidon_hash_many(black_box(&three))))
    );
    println!(
        "  get_public_key              {:7.1} µs",
        us(measure(time, || get_public_key(black_box(&private_key))))
    );
    println!(
        "  rfc6979_generate_k          {:7.1} µs",
        us(measure(time, || {
            rfc6979_generate_k(black_box(&hash), &private_key, None)
        }))
    );
    println!(
        "  sign (given k)              {:7.1} µs",
        us(measure(time, || sign(black_box(&private_key), &hash, &k)))
    );
    let order = NonZeroFelt::from_felt_unchecked(EC_ORDER);
    println!(
        "    of which k^-1 mod n       {:7.1} µs (num-bigint extended GCD)",
        us(measure(time, || black_box(k).mod_inverse(&order)))
    );
    println!("prototype (same outputs, checked):");
    println!("  comb table, once            {table_ms:7.1} ms");
    println!(
        "  public key (comb)           {:7.1} µs",
        us(measure(time, || fast_public_key(black_box(&private_key))))
    );
    println!(
        "  k + sign (comb, ct inverse) {:7.1} µs",
        us(measure(time, || fast_sign(black_box(&private_key), &hash)))
    );

    // End to end, as bench-table's "chipi" column: today's chipi_sign, against the same
    // hashing followed by the prototype signer (public key derived each time, or cached).
    let fixture = Fixture::default();
    let one = transfer_calls(1)?;
    let ten = transfer_calls(10)?;
    let prototype = |calls: &[chipi_bench::JsCall], cached: Option<Felt>| {
        let hash = chipi_message_hash(&fixture, calls)?;
        let private_key = parse_felt(&fixture.private_key)?;
        let public_key = match cached {
            Some(key) => key,
            None => fast_public_key(&private_key)?,
        };
        let (r, s) = fast_sign(&private_key, &hash)?;
        Ok::<_, BenchError>(vec![public_key, r, s, Felt::from(fixture.valid_until)])
    };
    for calls in [&one, &ten] {
        assert_eq!(
            prototype(calls, None)?,
            chipi_sign(&fixture, calls)?.signature
        );
    }
    let cached = get_public_key(&private_key);
    let mut sampler = Sampler::new(vec![
        timed(|| chipi_sign(&fixture, &one)),
        timed(|| prototype(&one, None)),
        timed(|| prototype(&one, Some(cached))),
        timed(|| chipi_message_hash(&fixture, &one)),
        timed(|| chipi_sign(&fixture, &ten)),
        timed(|| prototype(&ten, None)),
        timed(|| prototype(&ten, Some(cached))),
        timed(|| chipi_message_hash(&fixture, &ten)),
    ]);
    sampler.run(Duration::from_secs(4));
    let m = sampler.medians();
    println!("end to end (strings -> OutsideExecution -> hash -> session signature):");
    println!(
        "  {:<9} {:>12} {:>12} {:>22} {:>14}",
        "case", "chipi today", "prototype", "prototype, cached key", "hashing alone"
    );
    for (name, row) in [("1 call", &m[0..4]), ("10 calls", &m[4..8])] {
        println!(
            "  {name:<9} {:>9.1} µs {:>9.1} µs {:>19.1} µs {:>11.1} µs",
            us(row[0]),
            us(row[1]),
            us(row[2]),
            us(row[3])
        );
    }
    Ok(())
}
