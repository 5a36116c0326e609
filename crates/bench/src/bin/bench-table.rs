//! One command, one table: chipi vs starknet.js 9 vs the starknet-crypto floor for
//! signing a session outside execution (1 and 10 calls), and the cost of decrypting a
//! session key in each format.
//!
//! `cargo run --release -p chipi-bench --bin bench-table [-- --time-ms 6000]`
//!
//! The Rust functions are sampled round-robin (chipi, floor, floor with chipi's ECDSA,
//! both cases, both decryptions), half before and half after the Node run, so that a
//! slower spell of the machine weighs on every column alike; `--time-ms` is the Rust
//! sampling time, and the Node script samples as long.
//!
//! Exits non-zero only when something could not run or the three implementations disagree
//! on a message hash or signature; a missed speed target prints MISS.
use std::process::ExitCode;
use std::time::Duration;

use chipi_bench::{
    chipi_sign, floor_sign, js_bench_input, parse_felt, timed, transfer_calls, BenchError, Fixture,
    FloorEcdsa, FloorInput, JsCall, Sampler, Signed, PIN,
};
use chipi_core::{
    decrypt_private_key, decrypt_text, encrypt_private_key, verify_signature, Argon2Settings, Felt,
    KeyFormat, SecretKey,
};
use chipi_js_interop::{node_version, run_node};
use serde_json::Value;

/// chipi must be at least this many times faster than starknet.js.
const MIN_SPEEDUP_VS_JS: f64 = 30.0;
/// chipi may take at most this multiple of the floor.
const MAX_RATIO_VS_FLOOR: f64 = 1.2;
/// One strong-format decryption should cost between these (ms).
const STRONG_DECRYPT_MS: (f64, f64) = (100.0, 300.0);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-table: {error}");
            ExitCode::FAILURE
        }
    }
}

fn sampling_time() -> Result<Duration, BenchError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(Duration::from_millis(6000)),
        [flag, value] if flag == "--time-ms" => value
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| BenchError(format!("--time-ms: not a number: {value}"))),
        _ => Err(BenchError(
            "usage: bench-table [--time-ms MILLISECONDS]".into(),
        )),
    }
}

struct Case {
    name: &'static str,
    calls: Vec<JsCall>,
    floor_input: FloorInput,
    chipi: Signed,
}

impl Case {
    /// Signs once each way; chipi and the floor must agree exactly.
    fn new(name: &'static str, fixture: &Fixture, n: usize) -> Result<Self, BenchError> {
        let calls = transfer_calls(n)?;
        let floor_input = FloorInput::new(fixture, &calls)?;
        let chipi = chipi_sign(fixture, &calls)?;
        let floor = floor_sign(&floor_input, FloorEcdsa::StarknetCrypto)?;
        if chipi != floor {
            return Err(BenchError(format!(
                "{name}: chipi and the floor disagree: chipi {:#x} {:?}, floor {:#x} {:?}",
                chipi.hash, chipi.signature, floor.hash, floor.signature
            )));
        }
        Ok(Self {
            name,
            calls,
            floor_input,
            chipi,
        })
    }
}

fn js_str<'a>(js: &'a Value, field: &str) -> Result<&'a str, BenchError> {
    js.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| BenchError(format!("starknet.js output has no `{field}`: {js}")))
}

fn js_f64(js: &Value, field: &str) -> Result<f64, BenchError> {
    js.get(field)
        .and_then(Value::as_f64)
        .ok_or_else(|| BenchError(format!("starknet.js output has no `{field}`: {js}")))
}

/// The JS hash and signature must be chipi's, bit for bit.
fn check_js(case: &Case, js: &Value, hash_field: &str, sig_field: &str) -> Result<(), BenchError> {
    let hash = parse_felt(js_str(js, hash_field)?)?;
    if hash != case.chipi.hash {
        return Err(BenchError(format!(
            "MESSAGE HASH MISMATCH ({}): chipi {:#x}, starknet.js {hash:#x}",
            case.name, case.chipi.hash
        )));
    }
    let signature = js
        .get(sig_field)
        .and_then(Value::as_array)
        .ok_or_else(|| BenchError(format!("starknet.js output has no `{sig_field}`")))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(parse_felt)
                .unwrap_or_else(|| Err(BenchError("bad felt".into())))
        })
        .collect::<Result<Vec<Felt>, _>>()?;
    if signature != case.chipi.signature {
        return Err(BenchError(format!(
            "SIGNATURE MISMATCH ({}): chipi {:?}, starknet.js {signature:?}",
            case.name, case.chipi.signature
        )));
    }
    let s = &case.chipi.signature;
    if !verify_signature(&s[0], &case.chipi.hash, &s[1], &s[2]) {
        return Err(BenchError(format!(
            "{}: the signature does not verify",
            case.name
        )));
    }
    Ok(())
}

fn show(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The 1-minute load average: other work on the machine skews every column.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn run() -> Result<(), BenchError> {
    let time = sampling_time()?;
    let load_before = load_average();
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful numbers");
    }
    let node = node_version()?;
    let fixture = Fixture::default();

    // Keys for the decryption rows.
    let key = SecretKey::from_hex(&fixture.private_key).map_err(|e| BenchError(e.to_string()))?;
    let public_key = key.public_key();
    let strong_settings = Argon2Settings::default();
    let compatible = encrypt_private_key(&key, PIN, KeyFormat::Compatible)
        .map_err(|e| BenchError(e.to_string()))?;
    let strong = encrypt_private_key(&key, PIN, KeyFormat::Strong(strong_settings))
        .map_err(|e| BenchError(e.to_string()))?;
    for encrypted in [&compatible, &strong] {
        let back = decrypt_private_key(encrypted, PIN, public_key)
            .map_err(|e| BenchError(e.to_string()))?;
        if back.to_felt() != key.to_felt() {
            return Err(BenchError("decryption did not give back the key".into()));
        }
    }

    let one = Case::new("1 call", &fixture, 1)?;
    let ten = Case::new("10 calls", &fixture, 10)?;

    eprintln!("warming up the Rust side ...");
    let mut sampler = Sampler::new(vec![
        timed(|| chipi_sign(&fixture, &one.calls)),
        timed(|| floor_sign(&one.floor_input, FloorEcdsa::StarknetCrypto)),
        timed(|| floor_sign(&one.floor_input, FloorEcdsa::ChipiCore)),
        timed(|| chipi_sign(&fixture, &ten.calls)),
        timed(|| floor_sign(&ten.floor_input, FloorEcdsa::StarknetCrypto)),
        timed(|| floor_sign(&ten.floor_input, FloorEcdsa::ChipiCore)),
        timed(|| decrypt_private_key(&compatible, PIN, public_key)),
        timed(|| decrypt_private_key(&strong, PIN, public_key)),
        timed(|| decrypt_text(&compatible, PIN)),
    ]);
    eprintln!("sampling the Rust side ({} ms) ...", time.as_millis() / 2);
    sampler.run(time / 2);

    eprintln!(
        "timing starknet.js (node js/oe_sign.mjs, {} ms) ...",
        time.as_millis()
    );
    let input = js_bench_input(&fixture, &one.calls, &ten.calls, &compatible, time)?;
    let js = run_node("oe_sign.mjs", &[], &input)?;
    check_js(&one, &js, "hash_one", "sig_one")?;
    check_js(&ten, &js, "hash_ten", "sig_ten")?;
    let js_ns = [js_f64(&js, "one_call_ns")?, js_f64(&js, "ten_calls_ns")?];
    let js_decrypt_ns = js_f64(&js, "decrypt_compatible_ns")?;
    let starknet_version = js_str(&js, "starknet_version")?;

    eprintln!(
        "sampling the Rust side again ({} ms) ...",
        time.as_millis() / 2
    );
    sampler.run(time / 2);
    let rust_ns = sampler.medians();
    let [one_chipi, one_floor, one_floor_same_ecdsa, ten_chipi, ten_floor, ten_floor_same_ecdsa, compatible_ns, strong_ns, compatible_text_ns] =
        rust_ns[..]
    else {
        return Err(BenchError("sampler lost a function".into()));
    };

    println!("### Signing one session OutsideExecution (SNIP-12 hash + session signature)");
    println!();
    println!(
        "{} ({} threads, load average {load_before} before, {} after); Node.js {node}, starknet.js {starknet_version}; {}.",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        if cfg!(debug_assertions) {
            "DEBUG build (numbers meaningless)"
        } else {
            "release build"
        }
    );
    println!();
    println!(
        "| case | starknet.js 9 | floor | chipi | chipi vs JS (x faster) | chipi vs floor (ratio) | floor with chipi's ECDSA | chipi vs that (ratio) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (case, js_ns, chipi_ns, floor_ns, floor_same_ecdsa_ns) in [
        (&one, js_ns[0], one_chipi, one_floor, one_floor_same_ecdsa),
        (&ten, js_ns[1], ten_chipi, ten_floor, ten_floor_same_ecdsa),
    ] {
        let speedup = js_ns / chipi_ns;
        let ratio = chipi_ns / floor_ns;
        println!(
            "| {} | {} | {} | {} | {speedup:.1}x {} (≥{MIN_SPEEDUP_VS_JS}x) | {ratio:.2} {} (≤{MAX_RATIO_VS_FLOOR}) | {} | {:.2} |",
            case.name,
            show(js_ns),
            show(floor_ns),
            show(chipi_ns),
            verdict(speedup >= MIN_SPEEDUP_VS_JS),
            verdict(ratio <= MAX_RATIO_VS_FLOOR),
            show(floor_same_ecdsa_ns),
            chipi_ns / floor_same_ecdsa_ns,
        );
    }
    println!();
    println!(
        "Same message hash and signature from all three: {:#x} (1 call), {:#x} (10 calls).",
        one.chipi.hash, ten.chipi.hash
    );
    println!();
    println!("### Decrypting a session key (one decryption, including the public-key check)");
    println!();
    println!("| format | KDF + cipher | chipi | @chipi-stack/backend 14.4.0 (JS) | target |");
    println!("|---|---|---:|---:|---|");
    println!(
        "| compatible | EVP_BytesToKey (1 MD5 round) + AES-256-CBC | {} | {} | none: one MD5 per PIN guess, a 6-digit PIN falls in seconds |",
        show(compatible_ns),
        show(js_decrypt_ns),
    );
    println!(
        "| compatible, without the public-key check (`decrypt_text`) | the same | {} | | |",
        show(compatible_text_ns),
    );
    let strong_ms = strong_ns / 1e6;
    println!(
        "| strong | Argon2id m={} KiB ({} MiB), t={}, p={} + XChaCha20-Poly1305 | {} | n/a | {}-{} ms: {} |",
        strong_settings.memory_kib,
        strong_settings.memory_kib / 1024,
        strong_settings.iterations,
        strong_settings.parallelism,
        show(strong_ns),
        STRONG_DECRYPT_MS.0,
        STRONG_DECRYPT_MS.1,
        verdict((STRONG_DECRYPT_MS.0..=STRONG_DECRYPT_MS.1).contains(&strong_ms)),
    );
    Ok(())
}
