//! Encrypted keys: the JS SDK's vectors, and every kind of bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chipi_core::{
    decrypt_private_key, decrypt_text, encrypt_private_key, Argon2Settings, Felt, KeyFormat,
    KeystoreError, SecretKey,
};
use proptest::prelude::*;
use serde_json::Value;

const FAST: Argon2Settings = Argon2Settings {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../../vectors/interop.json")).unwrap()
}

fn felt(value: &Value) -> Felt {
    Felt::from_hex(value.as_str().unwrap()).unwrap()
}

#[test]
fn every_js_sdk_ciphertext_decrypts() {
    let vectors = vectors();
    let keys = vectors["keys"].as_array().unwrap();
    for case in vectors["encryption"].as_array().unwrap() {
        let plaintext = case["plaintext"].as_str().unwrap();
        let pin = case["encrypt_key"].as_str().unwrap();
        let encrypted = case["encrypted"].as_str().unwrap();
        assert_eq!(
            &decrypt_text(encrypted, pin).unwrap()[..],
            plaintext.as_bytes(),
            "{pin}"
        );
        let public = keys
            .iter()
            .find(|k| k["private_key"] == case["plaintext"])
            .map(|k| felt(&k["public_key"]))
            .unwrap();
        let key = decrypt_private_key(encrypted, pin, public).unwrap();
        assert_eq!(key.to_felt(), felt(&case["plaintext"]));
        // Re-encrypting gives another string (random salt) that decrypts the same way.
        let again = encrypt_private_key(&key, pin, KeyFormat::Compatible).unwrap();
        assert_ne!(again, encrypted);
        assert!(again.starts_with("U2FsdGVkX1"));
        assert_eq!(
            decrypt_private_key(&again, pin, public).unwrap().to_felt(),
            key.to_felt()
        );
    }
}

#[test]
fn bad_inputs_all_fail_the_same_way() {
    let vectors = vectors();
    let case = &vectors["encryption"][0];
    let good = case["encrypted"].as_str().unwrap();
    let pin = case["encrypt_key"].as_str().unwrap();
    let public = felt(&vectors["keys"][0]["public_key"]);
    let other_public = felt(&vectors["keys"][1]["public_key"]);
    let strong = encrypt_private_key(
        &SecretKey::from_hex(case["plaintext"].as_str().unwrap()).unwrap(),
        pin,
        KeyFormat::Strong(FAST),
    )
    .unwrap();

    let mut flipped = base64_decode(good);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut flipped_strong = strong.clone().into_bytes();
    let at = flipped_strong.len() - 3;
    flipped_strong[at] = if flipped_strong[at] == b'A' {
        b'B'
    } else {
        b'A'
    };

    let cases: Vec<(String, &str, Felt)> = vec![
        (good.into(), "wrong pin", public),
        (good[..good.len() - 8].into(), pin, public),
        ("not base64 at all!".into(), pin, public),
        (base64_encode(&flipped), pin, public),
        (String::new(), pin, public),
        (good.into(), pin, other_public),
        (strong.replace("chipi1$", "chipi2$"), pin, public),
        (String::from_utf8(flipped_strong).unwrap(), pin, public),
        (strong[..strong.len() - 4].into(), pin, public),
        (strong.clone(), "0000", public),
        ("chipi1$argon2id$m=64,t=1,p=1$$$".into(), pin, public),
    ];
    for (encrypted, pin, public) in cases {
        assert_eq!(
            decrypt_private_key(&encrypted, pin, public).unwrap_err(),
            KeystoreError::DecryptionFailed,
            "{encrypted:?}"
        );
    }
    // Valid ciphertexts of texts that are not a key: they decrypt, and the key check
    // fails the same way as everything else.
    for text in [
        &b"hello, world"[..],
        b"",
        b"0x",
        b"0x0",
        b" 0x1",
        b"1234",
        format!("0x{}", "f".repeat(64)).as_bytes(),
        format!("0x{}", "1".repeat(65)).as_bytes(),
        &[0x30, 0x78, 0xff, 0xfe],
    ] {
        let encrypted = encrypt_compatible_text(text, pin);
        assert_eq!(&decrypt_text(&encrypted, pin).unwrap()[..], text);
        assert_eq!(
            decrypt_private_key(&encrypted, pin, public).unwrap_err(),
            KeystoreError::DecryptionFailed,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}

/// Any text in the compatible format, as crypto-es `AES.encrypt(text, passphrase)` writes
/// it: "Salted__", salt, AES-256-CBC with key and IV from OpenSSL `EVP_BytesToKey`
/// (MD5, one round).
fn encrypt_compatible_text(text: &[u8], passphrase: &str) -> String {
    use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    use md5::{Digest, Md5};
    let salt = *b"8bytes!!";
    let mut key_iv = Vec::new();
    let mut previous = Vec::new();
    while key_iv.len() < 48 {
        previous = Md5::new()
            .chain_update(&previous)
            .chain_update(passphrase)
            .chain_update(salt)
            .finalize()
            .to_vec();
        key_iv.extend_from_slice(&previous);
    }
    let cipher = cbc::Encryptor::<aes::Aes256>::new(key_iv[..32].into(), key_iv[32..48].into());
    let mut data = b"Salted__".to_vec();
    data.extend_from_slice(&salt);
    data.extend_from_slice(&cipher.encrypt_padded_vec_mut::<Pkcs7>(text));
    base64_encode(&data)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

proptest! {
    #[test]
    fn random_input_never_panics_and_never_decrypts(bytes in proptest::collection::vec(any::<u8>(), 0..200), salted in any::<bool>()) {
        let mut data = if salted { b"Salted__".to_vec() } else { vec![] };
        data.extend_from_slice(&bytes);
        let encoded = base64_encode(&data);
        let strong = format!("chipi1$argon2id$m=64,t=1,p=1${}", String::from_utf8_lossy(&bytes));
        for file in [encoded, strong, String::from_utf8_lossy(&bytes).into_owned()] {
            prop_assert_eq!(
                decrypt_private_key(&file, "1234", Felt::ONE).unwrap_err(),
                KeystoreError::DecryptionFailed
            );
        }
    }
}
