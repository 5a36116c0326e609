//! `cargo bench -p chipi-bench`: signing a session OutsideExecution (chipi against the
//! starknet-crypto floor) and decrypting a session key in each format. The comparison
//! with starknet.js is `cargo run --release -p chipi-bench --bin bench-table`.
use std::hint::black_box;
use std::time::Duration;

use chipi_bench::{chipi_sign, floor_sign, transfer_calls, Fixture, FloorEcdsa, FloorInput, PIN};
use chipi_core::{decrypt_private_key, encrypt_private_key, Argon2Settings, KeyFormat, SecretKey};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

/// Setup that cannot fail on the fixed inputs (the workspace denies `expect`).
fn must<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error:?}"),
    }
}

fn oe_sign(c: &mut Criterion) {
    let fixture = Fixture::default();
    for (name, n) in [("oe_sign/1_call", 1), ("oe_sign/10_calls", 10)] {
        let calls = must(transfer_calls(n), "fixed calls");
        let floor_input = must(FloorInput::new(&fixture, &calls), "fixed input");
        assert_eq!(
            must(chipi_sign(&fixture, &calls), "chipi signs"),
            must(
                floor_sign(&floor_input, FloorEcdsa::StarknetCrypto),
                "floor signs"
            ),
            "chipi and the floor must agree"
        );
        let mut group = c.benchmark_group(name);
        group.bench_function("ours", |b| {
            b.iter(|| chipi_sign(black_box(&fixture), black_box(&calls)))
        });
        group.bench_function("floor", |b| {
            b.iter(|| floor_sign(black_box(&floor_input), FloorEcdsa::StarknetCrypto))
        });
        group.bench_function("floor_with_chipi_ecdsa", |b| {
            b.iter(|| floor_sign(black_box(&floor_input), FloorEcdsa::ChipiCore))
        });
        group.finish();
    }
}

fn decrypt(c: &mut Criterion) {
    let key = must(
        SecretKey::from_hex(chipi_bench::SESSION_PRIVATE_KEY),
        "fixed key",
    );
    let public_key = key.public_key();

    let compatible = must(
        encrypt_private_key(&key, PIN, KeyFormat::Compatible),
        "encrypts",
    );
    let mut group = c.benchmark_group("decrypt");
    group.bench_function("compatible", |b| {
        b.iter(|| decrypt_private_key(black_box(&compatible), PIN, public_key))
    });
    group.finish();

    // Argon2id 64 MiB, t=3, p=1: about 120 ms each, so few flat samples.
    let strong = must(
        encrypt_private_key(&key, PIN, KeyFormat::Strong(Argon2Settings::default())),
        "encrypts",
    );
    let mut group = c.benchmark_group("decrypt");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("strong", |b| {
        b.iter(|| decrypt_private_key(black_box(&strong), PIN, public_key))
    });
    group.finish();
}

criterion_group!(benches, oe_sign, decrypt);
criterion_main!(benches);
