//! Decryption off the async runtime: the strong key format runs Argon2id (~120 ms of
//! CPU and 64 MiB), which must not stall the runtime's worker threads.

use chipi_core::{decrypt_private_key_with_limits, ErrorCode, Felt, KdfLimits, SecretKey};
use zeroize::Zeroizing;

use crate::SessionError;

/// Decrypts `encrypted` with `encrypt_key` on tokio's blocking pool and checks that it is
/// the private key of `public_key`. A strong-format file asking for more than `limits`
/// fails before its KDF runs.
pub(crate) async fn decrypt_key(
    encrypted: &str,
    encrypt_key: &str,
    public_key: Felt,
    limits: KdfLimits,
) -> Result<SecretKey, SessionError> {
    let encrypted = encrypted.to_owned();
    let encrypt_key = Zeroizing::new(encrypt_key.to_owned());
    tokio::task::spawn_blocking(move || {
        decrypt_private_key_with_limits(&encrypted, &encrypt_key, public_key, limits)
    })
    .await
    .map_err(|_| {
        SessionError::new(
            ErrorCode::SessionDecryptionFailed,
            "the decryption task did not complete",
        )
    })?
    .map_err(|e| {
        SessionError::new(ErrorCode::SessionDecryptionFailed, e.to_string()).with_source(e)
    })
}
