//! Where the time of a session signature goes, primitive by primitive, with
//! `starknet-rust-crypto` and with chipi-core's ECDSA (`crates/core/src/ecdsa.rs`):
//! `cargo run --release -p chipi-bench --example sign_breakdown`.
use std::hint::black_box;
use std::time::Duration;

use chipi_bench::{
    chipi_message_hash, chipi_sign, measure, parse_felt, transfer_calls, BenchError, Fixture,
    SESSION_PRIVATE_KEY,
};
use chipi_core::{public_key_of, session_signature, sign_hash};
use starknet_rust_crypto::{
    get_public_key, poseidon_hash_many, poseidon_permute_comp, rfc6979_generate_k, sign, Felt,
};

fn main() -> Result<(), BenchError> {
    let time = Duration::from_millis(700);
    let private_key = parse_felt(SESSION_PRIVATE_KEY)?;
    let hash = parse_felt("0x39becd0919fe7bf21aa60d1025b958999fb5df82cf8e7b90c3416ae25b64131")?;
    let k = rfc6979_generate_k(&hash, &private_key, None);
    let reference = sign(&private_key, &hash, &k).map_err(|e| BenchError(e.to_string()))?;
    let ours = sign_hash(&private_key, hash).map_err(|e| BenchError(e.to_string()))?;
    if ours != (reference.r, reference.s) {
        return Err(BenchError(
            "chipi-core and starknet-rust-crypto disagree".into(),
        ));
    }

    let us = |ns: f64| ns / 1e3;
    let three = [Felt::ONE, Felt::TWO, Felt::THREE];
    let mut state = three;
    println!("starknet-rust-crypto 0.19:");
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
    println!("chipi-core (same outputs, checked):");
    println!(
        "  public_key_of               {:7.1} µs",
        us(measure(time, || public_key_of(black_box(&private_key))))
    );
    println!(
        "  sign_hash (k included)      {:7.1} µs",
        us(measure(time, || sign_hash(black_box(&private_key), hash)))
    );
    println!(
        "  session_signature           {:7.1} µs (public key + signature, one shared inversion)",
        us(measure(time, || session_signature(
            black_box(&private_key),
            hash,
            1
        )))
    );
    let fixture = Fixture::default();
    for (name, n) in [("1 call", 1), ("10 calls", 10)] {
        let calls = transfer_calls(n)?;
        println!(
            "  {name:<9} hashing {:7.1} µs, hashing + session signature {:7.1} µs",
            us(measure(time, || chipi_message_hash(&fixture, &calls))),
            us(measure(time, || chipi_sign(&fixture, &calls)))
        );
    }
    Ok(())
}
