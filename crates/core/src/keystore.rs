//! Encrypted private keys (PROTOCOL.md section 2), in two formats that decryption tells
//! apart by itself:
//!
//! - **Compatible**: what Chipi's JS SDK writes and reads (crypto-es
//!   `AES.encrypt(text, passphrase)`): `base64("Salted__" || salt[8] || AES-256-CBC(PKCS7(text)))`,
//!   key and IV from OpenSSL `EVP_BytesToKey` (MD5, one round). Its KDF costs one MD5:
//!   a 4-to-6 digit PIN falls to a brute force in seconds. Use it only where a JS client
//!   must read the key.
//! - **Strong** (recommended): Argon2id then XChaCha20-Poly1305, as
//!   `chipi1$argon2id$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<nonce>$<ciphertext>` (base64url,
//!   no padding). The header is authenticated, so parameters cannot be swapped.
//!   [`Argon2Settings::default`] (64 MiB, 3 passes, 1 lane) costs about 120 ms per
//!   decryption on this project's 2-core machines (`cargo run -p chipi-core --example
//!   kdf_timing`; the compatible format: under 1 ms): slow enough that every PIN guess
//!   costs that much and 64 MiB of memory, fast enough for one unlock per session.
//!
//! The header is read before anything else, and its parameters are bounded by the
//! **reader**: [`KdfLimits`] (by default 256 MiB, 4x the default's memory × passes, 4
//! lanes) is checked while the header is parsed, so a file that asks for more (say
//! `m=1048576,t=64`) fails before any memory is allocated or the KDF runs. A caller that
//! expects bigger files raises the limits ([`decrypt_private_key_with_limits`]).
//!
//! Every decryption failure is the same [`KeystoreError::DecryptionFailed`]: no padding
//! or MAC oracle, no key material in messages, and parameters over the limits fail the
//! same way. Decrypted keys live in [`SecretKey`], whose bytes are zeroized on drop and
//! never printed.

use std::fmt;

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use md5::{Digest, Md5};
use rand::RngCore;
use starknet_rust_core::types::Felt;
use zeroize::{Zeroize, Zeroizing};

use crate::signature::public_key_of;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

const SALTED: &[u8; 8] = b"Salted__";
/// The Stark curve order n, big-endian.
const CURVE_ORDER_BYTES: [u8; 32] = [
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xb7, 0x81, 0x12, 0x6d, 0xca, 0xe7, 0xb2, 0x32, 0x1e, 0x66, 0xa2, 0x41, 0xad, 0xc6, 0x4d, 0x2f,
];
const STRONG_PREFIX: &str = "chipi1$argon2id$";

/// A keystore failure. Says nothing about the key or why exactly decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeystoreError {
    /// Wrong encryptKey, damaged or foreign ciphertext, or a key that does not give
    /// back the expected public key.
    #[error("could not decrypt the private key: wrong encryptKey or damaged data")]
    DecryptionFailed,
    /// The private key is not `0x` + hex of a scalar in `[1, n)`.
    #[error("invalid private key")]
    InvalidPrivateKey,
    /// Argon2 parameters out of range.
    #[error("invalid key-derivation parameters")]
    InvalidParameters,
}

/// Argon2id cost of the strong format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    /// 64 MiB, 3 passes, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl Argon2Settings {
    // Hard bounds, for writing and reading alike; reading is further bounded by
    // `KdfLimits`.
    const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    const MAX_ITERATIONS: u32 = 64;
    const MAX_PARALLELISM: u32 = 16;

    fn validate(self) -> Result<argon2::Params, KeystoreError> {
        if self.memory_kib > Self::MAX_MEMORY_KIB
            || self.iterations == 0
            || self.iterations > Self::MAX_ITERATIONS
            || self.parallelism == 0
            || self.parallelism > Self::MAX_PARALLELISM
        {
            return Err(KeystoreError::InvalidParameters);
        }
        argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|_| KeystoreError::InvalidParameters)
    }

    /// Memory × passes, in KiB·passes: what one derivation costs, in time and memory
    /// traffic.
    fn cost(self) -> u64 {
        u64::from(self.memory_kib) * u64::from(self.iterations)
    }
}

/// How much key derivation a strong-format ciphertext may ask of the decrypting
/// machine. The parameters come from the ciphertext, so without a bound on the reader's
/// side whoever supplies the file chooses how much memory and time decryption takes.
///
/// Checked while the header is parsed, before any memory is allocated or the KDF runs; a
/// file over the limits fails with the same [`KeystoreError::DecryptionFailed`] as any
/// other bad input. The hard bounds of the format (1 GiB, 64 passes, 16 lanes) apply
/// whatever the limits say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfLimits {
    /// Most memory, in KiB.
    pub max_memory_kib: u32,
    /// Most memory × passes, in KiB·passes.
    pub max_cost: u64,
    /// Most lanes.
    pub max_parallelism: u32,
}

impl Default for KdfLimits {
    /// 4x [`Argon2Settings::default`]: 256 MiB, 786 432 KiB·passes (64 MiB × 12 passes or
    /// 256 MiB × 3), and 4 lanes.
    fn default() -> Self {
        let default = Argon2Settings::default();
        Self {
            max_memory_kib: 4 * default.memory_kib,
            max_cost: 4 * default.cost(),
            max_parallelism: 4,
        }
    }
}

impl KdfLimits {
    /// Whether a file with these parameters may run the KDF here.
    pub fn admits(&self, settings: Argon2Settings) -> bool {
        settings.memory_kib <= self.max_memory_kib
            && settings.cost() <= self.max_cost
            && settings.parallelism <= self.max_parallelism
    }
}

/// Which format [`encrypt_private_key`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// crypto-es compatible (readable by Chipi's JS SDK; weak against PIN guessing).
    Compatible,
    /// Argon2id + XChaCha20-Poly1305.
    Strong(Argon2Settings),
}

/// A private key in zeroizing memory. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl SecretKey {
    /// Parses `0x` + hex of a scalar in `[1, n)`.
    pub fn from_hex(text: &str) -> Result<Self, KeystoreError> {
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .ok_or(KeystoreError::InvalidPrivateKey)?;
        if digits.is_empty() || digits.len() > 64 {
            return Err(KeystoreError::InvalidPrivateKey);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        let offset = 64 - digits.len();
        for (i, digit) in digits.bytes().enumerate() {
            let value = (digit as char)
                .to_digit(16)
                .ok_or(KeystoreError::InvalidPrivateKey)? as u8;
            let position = offset + i;
            bytes[position / 2] |= if position % 2 == 0 { value << 4 } else { value };
        }
        Self::from_bytes(bytes).ok_or(KeystoreError::InvalidPrivateKey)
    }

    /// Accepts exactly the big-endian values in `[1, n)`; never reduces.
    fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Option<Self> {
        let in_range = bytes[..] < CURVE_ORDER_BYTES[..] && bytes.iter().any(|b| *b != 0);
        in_range.then_some(Self(bytes))
    }

    /// A uniformly random scalar in `[1, n)` from the OS CSPRNG.
    pub fn random() -> Self {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
            // 252 random bits, rejected unless below n: uniform on [1, n).
            bytes[0] &= 0x0f;
            if let Some(key) = Self::from_bytes(bytes) {
                return key;
            }
        }
    }

    /// The key as a felt (a copy: keep it short-lived).
    pub fn to_felt(&self) -> Felt {
        Felt::from_bytes_be(&self.0)
    }

    /// `0x` + 64 lower-case hex digits, in zeroizing memory.
    pub fn to_hex(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(66));
        text.push_str("0x");
        for byte in self.0.iter() {
            text.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            text.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
        }
        text
    }

    /// The Stark public key.
    pub fn public_key(&self) -> Felt {
        // A SecretKey only holds valid scalars.
        public_key_of(&self.to_felt()).unwrap_or(Felt::ZERO)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Encrypts `private_key` (written `0x` + 64 hex digits) with `encrypt_key`.
pub fn encrypt_private_key(
    private_key: &SecretKey,
    encrypt_key: &str,
    format: KeyFormat,
) -> Result<String, KeystoreError> {
    let text = private_key.to_hex();
    match format {
        KeyFormat::Compatible => Ok(encrypt_compatible(text.as_bytes(), encrypt_key)),
        KeyFormat::Strong(settings) => encrypt_strong(text.as_bytes(), encrypt_key, settings),
    }
}

/// Decrypts either format and checks that the key gives back `expected_public_key`.
/// Strong-format files are bounded by [`KdfLimits::default`].
pub fn decrypt_private_key(
    encrypted: &str,
    encrypt_key: &str,
    expected_public_key: Felt,
) -> Result<SecretKey, KeystoreError> {
    decrypt_private_key_with_limits(
        encrypted,
        encrypt_key,
        expected_public_key,
        KdfLimits::default(),
    )
}

/// [`decrypt_private_key`], with strong-format files bounded by `limits`.
pub fn decrypt_private_key_with_limits(
    encrypted: &str,
    encrypt_key: &str,
    expected_public_key: Felt,
    limits: KdfLimits,
) -> Result<SecretKey, KeystoreError> {
    let text = decrypt_text_with_limits(encrypted, encrypt_key, limits)?;
    let text = std::str::from_utf8(&text).map_err(|_| KeystoreError::DecryptionFailed)?;
    let key = SecretKey::from_hex(text).map_err(|_| KeystoreError::DecryptionFailed)?;
    if key.public_key() != expected_public_key {
        return Err(KeystoreError::DecryptionFailed);
    }
    Ok(key)
}

/// Decrypts either format to the plaintext bytes (no check of what they are).
/// Strong-format files are bounded by [`KdfLimits::default`].
pub fn decrypt_text(
    encrypted: &str,
    encrypt_key: &str,
) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    decrypt_text_with_limits(encrypted, encrypt_key, KdfLimits::default())
}

/// [`decrypt_text`], with strong-format files bounded by `limits`.
pub fn decrypt_text_with_limits(
    encrypted: &str,
    encrypt_key: &str,
    limits: KdfLimits,
) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    let encrypted = encrypted.trim();
    if let Some(rest) = encrypted.strip_prefix(STRONG_PREFIX) {
        decrypt_strong(rest, encrypt_key, &limits)
    } else {
        decrypt_compatible(encrypted, encrypt_key)
    }
}

/// OpenSSL `EVP_BytesToKey` with MD5, one round: 32 key bytes then 16 IV bytes.
fn evp_bytes_to_key(passphrase: &[u8], salt: &[u8]) -> Zeroizing<[u8; 48]> {
    let mut out = Zeroizing::new([0u8; 48]);
    let mut previous: Option<[u8; 16]> = None;
    for chunk in out.chunks_mut(16) {
        let mut md5 = Md5::new();
        if let Some(previous) = previous {
            md5.update(previous);
        }
        md5.update(passphrase);
        md5.update(salt);
        let digest: [u8; 16] = md5.finalize().into();
        chunk.copy_from_slice(&digest);
        previous = Some(digest);
    }
    if let Some(mut previous) = previous {
        previous.zeroize();
    }
    out
}

fn encrypt_compatible(plaintext: &[u8], passphrase: &str) -> String {
    let mut salt = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let key_iv = evp_bytes_to_key(passphrase.as_bytes(), &salt);
    let cipher = Aes256CbcEnc::new(key_iv[..32].into(), key_iv[32..].into());
    let ciphertext = cipher.encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut out = Vec::with_capacity(16 + ciphertext.len());
    out.extend_from_slice(SALTED);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&ciphertext);
    STANDARD.encode(out)
}

fn decrypt_compatible(
    encrypted: &str,
    passphrase: &str,
) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    let data = STANDARD
        .decode(encrypted)
        .map_err(|_| KeystoreError::DecryptionFailed)?;
    if data.len() < 32 || &data[..8] != SALTED || (data.len() - 16) % 16 != 0 {
        return Err(KeystoreError::DecryptionFailed);
    }
    let key_iv = evp_bytes_to_key(passphrase.as_bytes(), &data[8..16]);
    let cipher = Aes256CbcDec::new(key_iv[..32].into(), key_iv[32..].into());
    cipher
        .decrypt_padded_vec_mut::<Pkcs7>(&data[16..])
        .map(Zeroizing::new)
        .map_err(|_| KeystoreError::DecryptionFailed)
}

/// `m=<KiB>,t=<passes>,p=<lanes>`.
fn parameters(settings: Argon2Settings) -> String {
    format!(
        "m={},t={},p={}",
        settings.memory_kib, settings.iterations, settings.parallelism
    )
}

fn header(settings: Argon2Settings) -> String {
    format!("{STRONG_PREFIX}{}", parameters(settings))
}

/// The KDF parameters of a strong-format header's `m=..,t=..,p=..` field, only if they
/// are written canonically (as [`header`] writes them, so the authenticated header is
/// the same string), valid for Argon2, and within `limits`. Runs before anything is
/// allocated or derived: this is where a greedy file stops.
fn parse_parameters(text: &str, limits: &KdfLimits) -> Option<argon2::Params> {
    let settings = parse_settings(text)?;
    if parameters(settings) != text || !limits.admits(settings) {
        return None;
    }
    settings.validate().ok()
}

thread_local! {
    /// Argon2id derivations run on this thread (see [`kdf_runs`]).
    static KDF_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times the strong format's KDF (Argon2id) has run on the calling thread, in
/// encryption and decryption alike; the compatible format's one MD5 is not counted. For
/// tests: a file that must fail before the KDF leaves this unchanged, whatever the
/// machine's speed. Not part of the API.
#[doc(hidden)]
pub fn kdf_runs() -> u64 {
    KDF_RUNS.with(|runs| runs.get())
}

fn derive_key(
    passphrase: &str,
    salt: &[u8],
    settings: Argon2Settings,
) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    derive_key_with(passphrase, salt, settings.validate()?)
}

fn derive_key_with(
    passphrase: &str,
    salt: &[u8],
    params: argon2::Params,
) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    KDF_RUNS.with(|runs| runs.set(runs.get() + 1));
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut key[..])
        .map_err(|_| KeystoreError::InvalidParameters)?;
    Ok(key)
}

fn encrypt_strong(
    plaintext: &[u8],
    passphrase: &str,
    settings: Argon2Settings,
) -> Result<String, KeystoreError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let key = derive_key(passphrase, &salt, settings)?;
    let header = header(settings);
    let cipher = XChaCha20Poly1305::new(key[..].into());
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: header.as_bytes(),
            },
        )
        .map_err(|_| KeystoreError::InvalidParameters)?;
    Ok(format!(
        "{header}${}${}${}",
        URL_SAFE_NO_PAD.encode(salt),
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(ciphertext)
    ))
}

fn parse_settings(text: &str) -> Option<Argon2Settings> {
    let mut fields = text.split(',');
    let mut next = |name: &str| -> Option<u32> {
        fields
            .next()?
            .strip_prefix(name)?
            .strip_prefix('=')?
            .parse()
            .ok()
    };
    let settings = Argon2Settings {
        memory_kib: next("m")?,
        iterations: next("t")?,
        parallelism: next("p")?,
    };
    fields.next().is_none().then_some(settings)
}

fn decrypt_strong(
    rest: &str,
    passphrase: &str,
    limits: &KdfLimits,
) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    let fail = || KeystoreError::DecryptionFailed;
    let mut parts = rest.split('$');
    let parameters = parts.next().ok_or_else(fail)?;
    // First: a file over the limits costs nothing more than this parse.
    let params = parse_parameters(parameters, limits).ok_or_else(fail)?;
    let salt = URL_SAFE_NO_PAD
        .decode(parts.next().ok_or_else(fail)?)
        .map_err(|_| fail())?;
    let nonce = URL_SAFE_NO_PAD
        .decode(parts.next().ok_or_else(fail)?)
        .map_err(|_| fail())?;
    let ciphertext = URL_SAFE_NO_PAD
        .decode(parts.next().ok_or_else(fail)?)
        .map_err(|_| fail())?;
    if parts.next().is_some() || salt.len() != 16 || nonce.len() != 24 || ciphertext.len() < 16 {
        return Err(fail());
    }
    let key = derive_key_with(passphrase, &salt, params).map_err(|_| fail())?;
    let cipher = XChaCha20Poly1305::new(key[..].into());
    // The header as written (canonical, checked above), so a changed parameter fails
    // authentication.
    let header = format!("{STRONG_PREFIX}{parameters}");
    cipher
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad: header.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| fail())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Settings = Argon2Settings {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn both_formats_round_trip_and_are_told_apart() {
        let key = SecretKey::random();
        for format in [KeyFormat::Compatible, KeyFormat::Strong(FAST)] {
            let encrypted = encrypt_private_key(&key, "1234", format).unwrap();
            let back = decrypt_private_key(&encrypted, "1234", key.public_key()).unwrap();
            assert_eq!(back.to_felt(), key.to_felt());
            assert_eq!(
                decrypt_private_key(&encrypted, "1235", key.public_key()).unwrap_err(),
                KeystoreError::DecryptionFailed
            );
        }
    }

    #[test]
    fn secret_keys_never_print() {
        let key = SecretKey::random();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.to_hex()[2..10]));
        assert_eq!(key.to_hex().len(), 66);
    }

    #[test]
    fn changed_parameters_fail_authentication() {
        let key = SecretKey::random();
        let encrypted = encrypt_private_key(&key, "pin", KeyFormat::Strong(FAST)).unwrap();
        let tampered = encrypted.replace("t=1", "t=2");
        assert_ne!(tampered, encrypted);
        assert_eq!(
            decrypt_private_key(&tampered, "pin", key.public_key()).unwrap_err(),
            KeystoreError::DecryptionFailed
        );
        let greedy = encrypted.replace("m=64", "m=99999999");
        assert_eq!(
            decrypt_private_key(&greedy, "pin", key.public_key()).unwrap_err(),
            KeystoreError::DecryptionFailed
        );
    }

    #[test]
    fn parameter_parsing_bounds_what_a_file_may_ask() {
        let limits = KdfLimits::default();
        assert_eq!(
            limits,
            KdfLimits {
                max_memory_kib: 256 * 1024,
                max_cost: 4 * 64 * 1024 * 3,
                max_parallelism: 4,
            }
        );
        for admitted in [
            "m=65536,t=3,p=1",
            "m=262144,t=3,p=1",
            "m=65536,t=12,p=1",
            "m=8,t=1,p=1",
            "m=64,t=1,p=4",
        ] {
            assert!(parse_parameters(admitted, &limits).is_some(), "{admitted}");
        }
        for refused in [
            // Over the limits.
            "m=1048576,t=64,p=1",
            "m=262145,t=3,p=1",
            "m=262144,t=4,p=1",
            "m=65536,t=13,p=1",
            "m=8,t=4294967295,p=1",
            "m=64,t=1,p=5",
            // Not valid for Argon2 or over the format's hard bounds.
            "m=0,t=1,p=1",
            "m=64,t=0,p=1",
            "m=64,t=1,p=0",
            "m=8,t=1,p=2",
            // Not canonical, not numbers, not the three fields.
            "m=064,t=1,p=1",
            "m=+64,t=1,p=1",
            "m=64,t=1,p=1,",
            "m=64,t=1",
            "t=1,m=64,p=1",
            "m=4294967296,t=1,p=1",
            "m=-1,t=1,p=1",
            "",
        ] {
            assert!(parse_parameters(refused, &limits).is_none(), "{refused}");
        }
        // Raised limits admit more, never past the hard bounds.
        let open = KdfLimits {
            max_memory_kib: u32::MAX,
            max_cost: u64::MAX,
            max_parallelism: u32::MAX,
        };
        assert!(parse_parameters("m=1048576,t=64,p=16", &open).is_some());
        assert!(parse_parameters("m=1048577,t=1,p=1", &open).is_none());
        assert!(parse_parameters("m=1024,t=65,p=1", &open).is_none());
        assert!(parse_parameters("m=1024,t=1,p=17", &open).is_none());
    }

    #[test]
    fn a_greedy_header_fails_before_the_kdf() {
        let key = SecretKey::random();
        let encrypted = encrypt_private_key(&key, "pin", KeyFormat::Strong(FAST)).unwrap();
        let greedy = encrypted.replace("m=64,t=1,", "m=1048576,t=64,");
        assert_ne!(greedy, encrypted);
        let before = kdf_runs();
        for _ in 0..3 {
            assert_eq!(
                decrypt_private_key(&greedy, "pin", key.public_key()).unwrap_err(),
                KeystoreError::DecryptionFailed
            );
            assert_eq!(
                decrypt_text(&greedy, "pin").unwrap_err(),
                KeystoreError::DecryptionFailed
            );
        }
        assert_eq!(kdf_runs(), before, "the KDF ran for a greedy header");
        // The file as written runs the KDF once and decrypts.
        decrypt_private_key(&encrypted, "pin", key.public_key()).unwrap();
        assert_eq!(kdf_runs(), before + 1);
    }

    #[test]
    fn raised_limits_admit_more_lanes_and_lowered_limits_refuse() {
        let key = SecretKey::random();
        let wide = Argon2Settings {
            memory_kib: 128,
            iterations: 1,
            parallelism: 8,
        };
        let encrypted = encrypt_private_key(&key, "pin", KeyFormat::Strong(wide)).unwrap();
        let before = kdf_runs();
        assert_eq!(
            decrypt_private_key(&encrypted, "pin", key.public_key()).unwrap_err(),
            KeystoreError::DecryptionFailed
        );
        assert_eq!(kdf_runs(), before);
        let limits = KdfLimits {
            max_parallelism: 8,
            ..KdfLimits::default()
        };
        let back =
            decrypt_private_key_with_limits(&encrypted, "pin", key.public_key(), limits).unwrap();
        assert_eq!(back.to_felt(), key.to_felt());
        // A reader may also ask for less than the default.
        let stingy = KdfLimits {
            max_cost: 64,
            ..KdfLimits::default()
        };
        let fast = encrypt_private_key(&key, "pin", KeyFormat::Strong(FAST)).unwrap();
        assert!(decrypt_text_with_limits(&fast, "pin", stingy).is_ok());
        assert_eq!(
            decrypt_text_with_limits(&encrypted, "pin", stingy).unwrap_err(),
            KeystoreError::DecryptionFailed
        );
    }

    #[test]
    fn raised_limits_admit_a_file_over_the_default_cost() {
        // 64 MiB × 13 passes: 851 968 KiB·passes, over the default 786 432.
        let strong = Argon2Settings {
            iterations: 13,
            ..Argon2Settings::default()
        };
        assert!(!KdfLimits::default().admits(strong));
        let key = SecretKey::random();
        let encrypted = encrypt_private_key(&key, "pin", KeyFormat::Strong(strong)).unwrap();
        let before = kdf_runs();
        assert_eq!(
            decrypt_private_key(&encrypted, "pin", key.public_key()).unwrap_err(),
            KeystoreError::DecryptionFailed
        );
        assert_eq!(kdf_runs(), before);
        let back = decrypt_private_key_with_limits(
            &encrypted,
            "pin",
            key.public_key(),
            KdfLimits {
                max_cost: 13 * 64 * 1024,
                ..KdfLimits::default()
            },
        )
        .unwrap();
        assert_eq!(back.to_felt(), key.to_felt());
        assert_eq!(kdf_runs(), before + 1);
    }

    #[test]
    fn private_key_text_is_checked() {
        assert!(SecretKey::from_hex("0x1").is_ok());
        for bad in [
            "",
            "0x",
            "1234",
            "0xzz",
            "0x0",
            &format!("0x{}", "f".repeat(64)),
            &format!("0x{}", "1".repeat(65)),
        ] {
            assert_eq!(
                SecretKey::from_hex(bad).unwrap_err(),
                KeystoreError::InvalidPrivateKey,
                "{bad}"
            );
        }
    }
}
