//! Property tests of key-file decryption: arbitrary strings as key files (both formats,
//! and the strong prefix followed by random header fields) and arbitrary PINs never
//! panic, and every failure is the one `KeystoreError::DecryptionFailed` (no other
//! variant, so nothing tells a padding, header or key check apart); and a header that
//! asks for more than the default `KdfLimits` fails without running Argon2, as the KDF's
//! run counter (`chipi_core::kdf_runs`, per thread) shows.
//!
//! Argon2 never runs with the default parameters here: the real strong files use 64 KiB
//! and one pass, and the generated headers are either that small or over the limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chipi_core::{
    decrypt_private_key, decrypt_text, encrypt_private_key, kdf_runs, Argon2Settings, Felt,
    KeyFormat, KeystoreError, SecretKey,
};
use proptest::prelude::*;

const FAST: Argon2Settings = Argon2Settings {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

const STRONG_PREFIX: &str = "chipi1$argon2id$";

/// The default reader limits (`KdfLimits::default()`): 256 MiB, 4x the default's
/// memory × passes, 4 lanes.
const MAX_MEMORY_KIB: u64 = 4 * 64 * 1024;
const MAX_COST: u64 = 4 * 64 * 1024 * 3;
const MAX_PARALLELISM: u64 = 4;

/// Whether a header with these numbers is over the default limits.
fn over_limits(m: u64, t: u64, p: u64) -> bool {
    m > MAX_MEMORY_KIB || m.saturating_mul(t) > MAX_COST || p > MAX_PARALLELISM
}

/// `f`'s result, and how many times it ran the KDF (on this thread).
fn counting_kdf<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = kdf_runs();
    let out = f();
    (out, kdf_runs() - before)
}

/// Whether the file's KDF parameters, as written, are canonical numbers within the
/// default limits: the only files that may run the KDF at all. (The reader also refuses
/// some of these, e.g. `t=0`, before the KDF; this is an upper bound.)
fn may_run_the_kdf(file: &str) -> bool {
    let Some(rest) = file.trim().strip_prefix(STRONG_PREFIX) else {
        return false;
    };
    let field = rest.split('$').next().unwrap_or_default();
    let mut numbers = field
        .split(',')
        .zip(["m=", "t=", "p="])
        .map(|(part, name)| {
            let digits = part.strip_prefix(name)?;
            let value: u64 = digits.parse().ok()?;
            (value.to_string() == digits).then_some(value)
        });
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Some(m)), Some(Some(t)), Some(Some(p))) => {
            field.split(',').count() == 3 && !over_limits(m, t, p)
        }
        _ => false,
    }
}

/// The result of a decryption that must fail unless the input is (by chance) a valid
/// ciphertext: `Ok`, or exactly `DecryptionFailed`.
fn ok_or_decryption_failed<T>(result: &Result<T, KeystoreError>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) | Err(KeystoreError::DecryptionFailed) => Ok(()),
        Err(other) => Err(TestCaseError::fail(format!(
            "{other:?}: every decryption failure must be DecryptionFailed"
        ))),
    }
}

struct Files {
    key: SecretKey,
    pin: &'static str,
    compatible: String,
    strong: String,
}

fn files() -> Files {
    let key = SecretKey::random();
    let pin = "482916";
    Files {
        compatible: encrypt_private_key(&key, pin, KeyFormat::Compatible).unwrap(),
        strong: encrypt_private_key(&key, pin, KeyFormat::Strong(FAST)).unwrap(),
        key,
        pin,
    }
}

/// Argon2 parameters `(m, t, p)` for a header: either tiny (Argon2 may run, in well under
/// a millisecond) or over the default limits, in particular in the band between those
/// limits and the format's hard bounds (up to 1 GiB, 64 passes, 16 lanes), which only
/// the reader's limits refuse; never big and admitted.
fn kdf_numbers() -> impl Strategy<Value = (u64, u64, u64)> {
    let memory_and_passes = prop_oneof![
        4 => (0u64..=256, 0u64..=3),
        1 => (0u64..=16, 4u64..=64),
        // Over the memory limit.
        3 => (262_145u64..=1_048_576, 0u64..=64),
        // Over the memory × passes limit.
        3 => (prop::sample::select(vec![65_536u64, 131_072, 262_144]), 13u64..=64),
        // Anything: almost always over, or not a u32.
        1 => (any::<u32>().prop_map(u64::from), any::<u32>().prop_map(u64::from)),
        1 => (any::<u64>(), any::<u64>()),
    ];
    let lanes = prop_oneof![4 => 0u64..=4, 2 => 5u64..=16, 1 => any::<u64>()];
    (memory_and_passes, lanes).prop_map(|((m, t), p)| (m, t, p))
}

/// A number as a header may write it: plainly, or with noise that makes it not
/// canonical (`None`).
fn written(value: u64, style: u8) -> (Option<u64>, String) {
    match style {
        0 => (None, format!("0{value}")),
        1 => (None, format!("+{value}")),
        2 => (None, format!(" {value}")),
        3 => (None, format!("{value:#x}")),
        _ => (Some(value), value.to_string()),
    }
}

/// Base64url text, sometimes of the right length for the field.
fn field(right_length: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), right_length)
            .prop_map(|bytes| URL_SAFE_NO_PAD.encode(bytes)),
        1 => proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|bytes| URL_SAFE_NO_PAD.encode(bytes)),
        1 => ".{0,40}",
    ]
}

#[test]
fn a_greedy_header_fails_at_once() {
    let files = files();
    let public = files.key.public_key();
    assert!(files.strong.contains("$m=64,t=1,p=1$"));
    for greedy in [
        "m=1048576,t=64,p=1",
        "m=1048576,t=1,p=1",
        "m=65536,t=64,p=1",
        "m=262144,t=4,p=1",
        "m=64,t=1,p=16",
        // Over the lane limit only, and cheap: valid for Argon2 (8 KiB per lane).
        "m=64,t=1,p=5",
        "m=128,t=1,p=16",
    ] {
        let tampered = files.strong.replace("m=64,t=1,p=1", greedy);
        let (result, runs) = counting_kdf(|| decrypt_private_key(&tampered, files.pin, public));
        assert_eq!(result.unwrap_err(), KeystoreError::DecryptionFailed);
        assert_eq!(runs, 0, "{greedy}: the KDF ran");
        let (result, runs) = counting_kdf(|| decrypt_text(&tampered, files.pin));
        assert_eq!(result.unwrap_err(), KeystoreError::DecryptionFailed);
        assert_eq!(runs, 0, "{greedy}: the KDF ran");
    }
    // The untouched file runs the KDF once and decrypts.
    let (result, runs) = counting_kdf(|| decrypt_private_key(&files.strong, files.pin, public));
    assert_eq!(result.unwrap().to_felt(), files.key.to_felt());
    assert_eq!(runs, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Any string as a key file and any string as a PIN.
    #[test]
    fn arbitrary_files_and_pins_give_typed_results(file in any::<String>(), pin in any::<String>()) {
        ok_or_decryption_failed(&decrypt_text(&file, &pin))?;
        // Nothing decrypts to the key of public key 1.
        let key = decrypt_private_key(&file, &pin, Felt::ONE);
        prop_assert_eq!(key.unwrap_err(), KeystoreError::DecryptionFailed);
    }

    /// The strong prefix, then random header fields, salt, nonce and ciphertext.
    #[test]
    fn random_strong_headers_fail_and_never_run_a_big_kdf(
        (m, t, p) in kdf_numbers(),
        styles in (0u8..12, 0u8..12, 0u8..12),
        shape in 0u8..6,
        junk in ".{0,24}",
        salt in field(16),
        nonce in field(24),
        ciphertext in field(82),
        pin in any::<String>(),
    ) {
        let (m_value, m_text) = written(m, styles.0);
        let (t_value, t_text) = written(t, styles.1);
        let (p_value, p_text) = written(p, styles.2);
        let header = match shape {
            0 => junk.clone(),
            1 => format!("m={m_text},t={t_text}"),
            2 => format!("m={m_text},t={t_text},p={p_text},{junk}"),
            3 => format!("t={t_text},m={m_text},p={p_text}"),
            _ => format!("m={m_text},t={t_text},p={p_text}"),
        };
        let file = format!("{STRONG_PREFIX}{header}${salt}${nonce}${ciphertext}");
        let (text, text_runs) = counting_kdf(|| decrypt_text(&file, &pin));
        prop_assert_eq!(text.unwrap_err(), KeystoreError::DecryptionFailed);
        let (key, key_runs) = counting_kdf(|| decrypt_private_key(&file, &pin, Felt::ONE));
        prop_assert_eq!(key.unwrap_err(), KeystoreError::DecryptionFailed);
        let greedy = match (m_value, t_value, p_value) {
            (Some(m), Some(t), Some(p)) => over_limits(m, t, p),
            // Not canonical: refused before the KDF whatever the numbers.
            _ => true,
        };
        if greedy || shape < 4 {
            prop_assert_eq!((text_runs, key_runs), (0, 0), "{:?}: the KDF ran", file);
        } else {
            // Small and admitted: at most one derivation per decryption.
            prop_assert!(text_runs <= 1 && key_runs <= 1, "{:?}", file);
        }
    }

    /// Real files (both formats) with arbitrary PINs: only the right PIN decrypts.
    #[test]
    fn arbitrary_pins_on_real_files(pin in any::<String>(), format in 0u8..2) {
        thread_local! { static FILES: Files = files(); }
        FILES.with(|files| {
            let file = if format == 0 { &files.compatible } else { &files.strong };
            let public = files.key.public_key();
            let (result, runs) = counting_kdf(|| decrypt_private_key(file, &pin, public));
            // A well-formed strong file runs the KDF once, right PIN or not.
            prop_assert_eq!(runs, u64::from(format == 1));
            if pin == files.pin {
                prop_assert_eq!(result.unwrap().to_felt(), files.key.to_felt());
            } else {
                prop_assert_eq!(result.unwrap_err(), KeystoreError::DecryptionFailed);
            }
            Ok(())
        })?;
    }

    /// Real files with one character changed, cut, or extended, and arbitrary PINs.
    #[test]
    fn damaged_real_files_give_typed_results(
        at in any::<prop::sample::Index>(),
        with in any::<char>(),
        how in 0u8..3,
        format in 0u8..2,
        pin in prop_oneof![Just("482916".to_string()), any::<String>()],
    ) {
        thread_local! { static FILES: Files = files(); }
        FILES.with(|files| {
            let original = if format == 0 { &files.compatible } else { &files.strong };
            let mut chars: Vec<char> = original.chars().collect();
            let i = at.index(chars.len());
            match how {
                0 => chars[i] = with,
                1 => chars.truncate(i),
                _ => chars.insert(i, with),
            }
            let file: String = chars.into_iter().collect();
            let (text, runs) = counting_kdf(|| decrypt_text(&file, &pin));
            ok_or_decryption_failed(&text)?;
            // A damaged header over the limits never runs the KDF; any other file at
            // most once.
            let most = u64::from(may_run_the_kdf(&file));
            prop_assert!(runs <= most, "{:?}: the KDF ran {} times", file, runs);
            let public = files.key.public_key();
            match decrypt_private_key(&file, &pin, public) {
                // Only a change that leaves the bytes the same (e.g. surrounding
                // whitespace) can still give the key.
                Ok(key) => prop_assert_eq!(key.to_felt(), files.key.to_felt()),
                Err(error) => prop_assert_eq!(error, KeystoreError::DecryptionFailed),
            }
            Ok(())
        })?;
    }

    /// "Salted__" and random bytes, base64: the compatible path's structure checks.
    #[test]
    fn random_compatible_files_give_typed_results(
        bytes in proptest::collection::vec(any::<u8>(), 0..160),
        salted in any::<bool>(),
        pin in any::<String>(),
    ) {
        let mut data = if salted { b"Salted__".to_vec() } else { vec![] };
        data.extend_from_slice(&bytes);
        let file = STANDARD.encode(&data);
        // "Salted__", an 8-byte salt, then whole AES blocks, at least one.
        let well_formed = salted && bytes.len() >= 24 && (bytes.len() - 8) % 16 == 0;
        match decrypt_text(&file, &pin) {
            // Only a well-formed file can decrypt (its padding by chance correct): to
            // its last block's plaintext minus 1 to 16 bytes of padding.
            Ok(text) => {
                prop_assert!(well_formed, "{:?}", file);
                let ciphertext = bytes.len() - 8;
                prop_assert!(text.len() < ciphertext && text.len() + 16 >= ciphertext);
            }
            Err(error) => prop_assert_eq!(error, KeystoreError::DecryptionFailed),
        }
        prop_assert_eq!(
            decrypt_private_key(&file, &pin, Felt::ONE).unwrap_err(),
            KeystoreError::DecryptionFailed
        );
    }
}
