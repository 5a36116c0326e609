//! Times one decryption of each key format: `cargo run -p chipi-core --example kdf_timing`.
use std::time::Instant;

use chipi_core::{decrypt_private_key, encrypt_private_key, Argon2Settings, KeyFormat, SecretKey};

fn main() -> Result<(), chipi_core::KeystoreError> {
    let key = SecretKey::random();
    for (name, format) in [
        (
            "compatible (EVP_BytesToKey MD5 + AES-256-CBC)",
            KeyFormat::Compatible,
        ),
        (
            "strong (Argon2id 64 MiB t=3 + XChaCha20-Poly1305)",
            KeyFormat::Strong(Argon2Settings::default()),
        ),
    ] {
        let encrypted = encrypt_private_key(&key, "123456", format)?;
        let runs = 5;
        let start = Instant::now();
        for _ in 0..runs {
            decrypt_private_key(&encrypted, "123456", key.public_key())?;
        }
        println!(
            "{name}: {:.3} ms per decryption",
            start.elapsed().as_secs_f64() * 1000.0 / runs as f64
        );
    }
    Ok(())
}
