//! Shared pieces of the chipi benchmarks (`bench-table`, `cargo bench -p chipi-bench`):
//! the fixed inputs, the three implementations of "sign one session outside execution"
//! that are compared (chipi, the starknet-crypto floor, and starknet.js 9 through Node,
//! run by `chipi-js-interop`), and a timing loop. chipi's column parses the user's
//! strings with the core's own parser (`JsCall::parse`), as the SDK and the paymaster do.
//!
//! What is measured, in every implementation: from the strings a user hands the SDK
//! (contract address, entrypoint name, calldata), build a SNIP-9 v2 OutsideExecution,
//! take its SNIP-12 (revision 1) message hash for the account, and produce the session
//! signature `[session_public_key, r, s, valid_until]`.

pub mod service;

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

pub use chipi_core::JsCall;
use chipi_core::{
    parse_felt_strict, session_signature, Call, Felt, OutsideExecution, CALL_TYPE_HASH,
    OUTSIDE_EXECUTION_DOMAIN_NAME, OUTSIDE_EXECUTION_TYPE_HASH, STARKNET_DOMAIN_TYPE_HASH,
    STARKNET_MESSAGE_PREFIX,
};
use serde_json::{json, Value};
use starknet_rust_crypto::{
    get_public_key, poseidon_hash_many, rfc6979_generate_k, sign, PoseidonHasher,
};

/// STRK token on Starknet.
pub const STRK: &str = "0x04718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d";
/// The account the session signs for.
pub const ACCOUNT: &str = "0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The session private key (fixed, so every run signs the same thing).
pub const SESSION_PRIVATE_KEY: &str =
    "0x05e2f9c7a1b3d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e";
/// The first transfer recipient; call `i` of a batch pays `RECIPIENT + i`.
pub const RECIPIENT: &str = "0x05c1b1e2a3f4d5c6b7a8998877665544332211ffeeddccbbaa99887766554433";
/// `'ANY_CALLER'`.
pub const CALLER: &str = "0x414e595f43414c4c4552";
/// The outside execution's nonce.
pub const NONCE: &str = "0x4c6a3d9e0b7f21a5";
/// `execute_after` (2026-01-01T00:00:00Z).
pub const EXECUTE_AFTER: u64 = 1_767_225_600;
/// `execute_before`: one hour later.
pub const EXECUTE_BEFORE: u64 = EXECUTE_AFTER + 3_600;
/// The session's expiry, the last element of its signature.
pub const VALID_UNTIL: u64 = EXECUTE_AFTER + 86_400;
/// The PIN (encryptKey) of the decryption benchmarks.
pub const PIN: &str = "482916";

/// A failure of a benchmark or interop step (never a missed speed target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchError(pub String);

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

/// The user's JS calls go through the core's one parser, as in the SDK.
impl From<chipi_core::WireError> for BenchError {
    fn from(error: chipi_core::WireError) -> Self {
        BenchError(error.to_string())
    }
}

impl From<chipi_js_interop::JsError> for BenchError {
    fn from(error: chipi_js_interop::JsError) -> Self {
        BenchError(error.0)
    }
}

fn err(message: impl Into<String>) -> BenchError {
    BenchError(message.into())
}

/// `n` STRK transfers of 100 (u256 `low = 100, high = 0`) to `RECIPIENT + i`.
pub fn transfer_calls(n: usize) -> Result<Vec<JsCall>, BenchError> {
    let recipient = parse_felt(RECIPIENT)?;
    Ok((0..n)
        .map(|i| JsCall {
            contract_address: STRK.to_string(),
            entrypoint: "transfer".to_string(),
            calldata: vec![
                format!("{:#x}", recipient + Felt::from(i)),
                "100".to_string(),
                "0".to_string(),
            ],
        })
        .collect())
}

/// A felt from `0x` hex or decimal text, strictly (the SDK's parser).
pub fn parse_felt(text: &str) -> Result<Felt, BenchError> {
    parse_felt_strict(text).ok_or_else(|| err(format!("not a felt: {text:?}")))
}

/// What the session signer holds and the per-request values, as text: the same strings
/// go to chipi and to starknet.js.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// Chain id, hex (`SN_SEPOLIA`).
    pub chain_id: String,
    /// Account address, hex.
    pub account: String,
    /// Session private key, hex.
    pub private_key: String,
    /// SNIP-9 caller, hex.
    pub caller: String,
    /// SNIP-9 nonce, hex.
    pub nonce: String,
    /// Valid strictly after.
    pub execute_after: u64,
    /// Valid strictly before.
    pub execute_before: u64,
    /// Session expiry.
    pub valid_until: u64,
}

impl Default for Fixture {
    fn default() -> Self {
        Self {
            chain_id: format!("{:#x}", chipi_core::chain_id::SEPOLIA),
            account: ACCOUNT.to_string(),
            private_key: SESSION_PRIVATE_KEY.to_string(),
            caller: CALLER.to_string(),
            nonce: NONCE.to_string(),
            execute_after: EXECUTE_AFTER,
            execute_before: EXECUTE_BEFORE,
            valid_until: VALID_UNTIL,
        }
    }
}

/// A message hash and the session signature `[public_key, r, s, valid_until]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// SNIP-12 message hash.
    pub hash: Felt,
    /// `[public_key, r, s, valid_until]`.
    pub signature: Vec<Felt>,
}

/// chipi's hashing half: parse the user's strings, build the [`OutsideExecution`] and
/// take [`OutsideExecution::message_hash`].
pub fn chipi_message_hash(fixture: &Fixture, calls: &[JsCall]) -> Result<Felt, BenchError> {
    let calls = chipi_core::parse_calls(calls)?;
    let execution = OutsideExecution {
        caller: parse_felt(&fixture.caller)?,
        nonce: parse_felt(&fixture.nonce)?,
        execute_after: fixture.execute_after,
        execute_before: fixture.execute_before,
        calls,
    };
    Ok(execution.message_hash(
        parse_felt(&fixture.chain_id)?,
        parse_felt(&fixture.account)?,
    ))
}

/// chipi: [`chipi_message_hash`], then [`session_signature`] (which derives the session
/// public key too).
pub fn chipi_sign(fixture: &Fixture, calls: &[JsCall]) -> Result<Signed, BenchError> {
    let hash = chipi_message_hash(fixture, calls)?;
    let signature = session_signature(
        &parse_felt(&fixture.private_key)?,
        hash,
        fixture.valid_until,
    )
    .map_err(|e| err(e.to_string()))?;
    Ok(Signed { hash, signature })
}

/// The floor's input: everything already a felt, selectors already hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorInput {
    chain_id: Felt,
    account: Felt,
    private_key: Felt,
    caller: Felt,
    nonce: Felt,
    execute_after: Felt,
    execute_before: Felt,
    valid_until: Felt,
    valid_until_seconds: u64,
    calls: Vec<Call>,
}

impl FloorInput {
    /// Parses the fixture and calls once, outside the timed region.
    pub fn new(fixture: &Fixture, calls: &[JsCall]) -> Result<Self, BenchError> {
        let calls = chipi_core::parse_calls(calls)?;
        Ok(Self {
            chain_id: parse_felt(&fixture.chain_id)?,
            account: parse_felt(&fixture.account)?,
            private_key: parse_felt(&fixture.private_key)?,
            caller: parse_felt(&fixture.caller)?,
            nonce: parse_felt(&fixture.nonce)?,
            execute_after: Felt::from(fixture.execute_after),
            execute_before: Felt::from(fixture.execute_before),
            valid_until: Felt::from(fixture.valid_until),
            valid_until_seconds: fixture.valid_until,
            calls,
        })
    }
}

/// Which ECDSA the floor signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorEcdsa {
    /// `starknet-rust-crypto`'s `rfc6979_generate_k` + `sign` + `get_public_key`: the
    /// floor the issue defines.
    StarknetCrypto,
    /// chipi-core's `session_signature` (the public key and the signature, computed
    /// together by its constant-time signer): the same ECDSA as chipi, so chipi's ratio
    /// to it is the cost of everything else (parsing, selector hashing, the
    /// `OutsideExecution`, the `Vec`s).
    ChipiCore,
}

/// The floor: the same Poseidon hashes (type hashes precomputed, no allocation), one
/// RFC 6979 ECDSA signature and the session public key (the signature must carry it).
pub fn floor_sign(input: &FloorInput, ecdsa: FloorEcdsa) -> Result<Signed, BenchError> {
    let domain = poseidon_hash_many(&[
        STARKNET_DOMAIN_TYPE_HASH,
        OUTSIDE_EXECUTION_DOMAIN_NAME,
        Felt::TWO,
        input.chain_id,
        Felt::ONE,
    ]);
    let mut calls = PoseidonHasher::new();
    for call in &input.calls {
        calls.update(poseidon_hash_many(&[
            CALL_TYPE_HASH,
            call.to,
            call.selector,
            poseidon_hash_many(&call.calldata),
        ]));
    }
    let message = poseidon_hash_many(&[
        OUTSIDE_EXECUTION_TYPE_HASH,
        input.caller,
        input.nonce,
        input.execute_after,
        input.execute_before,
        calls.finalize(),
    ]);
    let hash = poseidon_hash_many(&[STARKNET_MESSAGE_PREFIX, domain, input.account, message]);
    let signature = match ecdsa {
        FloorEcdsa::StarknetCrypto => {
            let k = rfc6979_generate_k(&hash, &input.private_key, None);
            let signature = sign(&input.private_key, &hash, &k).map_err(|e| err(e.to_string()))?;
            let public_key = get_public_key(&input.private_key);
            vec![public_key, signature.r, signature.s, input.valid_until]
        }
        FloorEcdsa::ChipiCore => {
            session_signature(&input.private_key, hash, input.valid_until_seconds)
                .map_err(|e| err(e.to_string()))?
        }
    };
    Ok(Signed { hash, signature })
}

/// The JSON that `js/oe_sign.mjs` reads: the same strings chipi gets.
pub fn js_bench_input(
    fixture: &Fixture,
    one: &[JsCall],
    ten: &[JsCall],
    encrypted_compatible: &str,
    time: Duration,
) -> Result<Value, BenchError> {
    let public_key = chipi_core::public_key_of(&parse_felt(&fixture.private_key)?)
        .map_err(|e| err(e.to_string()))?;
    Ok(json!({
        "chain_id": fixture.chain_id,
        "account": fixture.account,
        "private_key": fixture.private_key,
        "public_key": format!("{public_key:#x}"),
        "caller": fixture.caller,
        "nonce": fixture.nonce,
        "execute_after": fixture.execute_after,
        "execute_before": fixture.execute_before,
        "valid_until": fixture.valid_until,
        "cases": { "one": one, "ten": ten },
        "decrypt": { "encrypted": encrypted_compatible, "pin": PIN },
        "time_ms": time.as_millis() as u64,
    }))
}

/// The median of `samples` (0 for none).
pub fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Calls of `f` per batch of about 20 ms, after 200 ms of warm-up.
fn calibrate(f: &mut dyn FnMut()) -> u32 {
    let warm_up = Instant::now();
    let mut runs = 0u32;
    while runs == 0 || warm_up.elapsed() < Duration::from_millis(200) {
        f();
        runs += 1;
    }
    let per_run = warm_up.elapsed().as_secs_f64() / f64::from(runs);
    ((0.02 / per_run).round() as u32).max(1)
}

/// Times several functions in turn (round-robin batches of about 20 ms each), so that
/// whatever else slows the machine down slows them all alike; each one's time is the
/// median of its batches. The same procedure as `js/oe_sign.mjs`.
pub struct Sampler<'a> {
    functions: Vec<(Box<dyn FnMut() + 'a>, u32)>,
    samples: Vec<Vec<f64>>,
}

impl<'a> Sampler<'a> {
    /// Warms up and calibrates each function.
    pub fn new(functions: Vec<Box<dyn FnMut() + 'a>>) -> Self {
        let samples = vec![Vec::new(); functions.len()];
        let functions = functions
            .into_iter()
            .map(|mut f| {
                let batch = calibrate(&mut f);
                (f, batch)
            })
            .collect();
        Self { functions, samples }
    }

    /// Runs rounds (each function one batch) for `time`, and at least 3 rounds.
    pub fn run(&mut self, time: Duration) {
        let start = Instant::now();
        let mut rounds = 0;
        while rounds < 3 || start.elapsed() < time {
            for ((f, batch), samples) in self.functions.iter_mut().zip(&mut self.samples) {
                let t = Instant::now();
                for _ in 0..*batch {
                    f();
                }
                samples.push(t.elapsed().as_nanos() as f64 / f64::from(*batch));
            }
            rounds += 1;
        }
    }

    /// Nanoseconds per call of each function: the median of its batches.
    pub fn medians(&self) -> Vec<f64> {
        self.samples.iter().map(|s| median(s)).collect()
    }
}

/// Boxes a function for [`Sampler`], keeping its result alive through `black_box`.
pub fn timed<'a, T>(mut f: impl FnMut() -> T + 'a) -> Box<dyn FnMut() + 'a> {
    Box::new(move || {
        black_box(f());
    })
}

/// Nanoseconds per call of one function, sampled for `time` (see [`Sampler`]).
pub fn measure<T>(time: Duration, f: impl FnMut() -> T) -> f64 {
    let mut sampler = Sampler::new(vec![timed(f)]);
    sampler.run(time);
    sampler.medians()[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chipi_and_the_floor_sign_the_same_and_the_signature_verifies() {
        let fixture = Fixture::default();
        for n in [1, 10] {
            let calls = transfer_calls(n).unwrap();
            let chipi = chipi_sign(&fixture, &calls).unwrap();
            let input = FloorInput::new(&fixture, &calls).unwrap();
            assert_eq!(
                chipi,
                floor_sign(&input, FloorEcdsa::StarknetCrypto).unwrap()
            );
            assert_eq!(chipi, floor_sign(&input, FloorEcdsa::ChipiCore).unwrap());
            let s = &chipi.signature;
            assert!(chipi_core::verify_signature(
                &s[0],
                &chipi.hash,
                &s[1],
                &s[2]
            ));
            assert_eq!(s[3], Felt::from(VALID_UNTIL));
        }
    }

    #[test]
    fn the_sampler_times_each_function() {
        let mut sampler = Sampler::new(vec![
            timed(|| std::thread::sleep(Duration::from_millis(2))),
            timed(|| 1 + 1),
        ]);
        sampler.run(Duration::ZERO);
        let medians = sampler.medians();
        assert!(medians[0] >= 2e6, "{medians:?}");
        assert!(medians[1] < 1e6, "{medians:?}");
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}
