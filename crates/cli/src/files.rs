//! The files the commands read and write: the JS SDK's JSON shapes (`WalletData`,
//! `SessionKeyData`), so a file written by Chipi's JS SDK works here and ours works there.

use std::path::Path;

use chipi_core::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::commands::CliError;

/// Reads `path` as `T`; a clear `INVALID_INPUT` when it is missing or malformed (the
/// message names the file and the field, never its content).
pub fn read<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::code(
            ErrorCode::InvalidInput,
            format!("cannot read the {what} file {}: {e}", path.display()),
        )
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.inner().to_string();
        // A missing field is named; any other message may quote the file's content.
        let why = match inner.strip_prefix("missing field ") {
            Some(rest) => format!(
                "field {} is missing",
                rest.split(" at ").next().unwrap_or(rest)
            ),
            None if field == "." => "it is not a JSON object of that shape".to_string(),
            None => format!("`{field}` is malformed"),
        };
        CliError::code(
            ErrorCode::InvalidInput,
            format!(
                "{} is not a {what} file (the JS SDK's JSON shape): {why}",
                path.display()
            ),
        )
    })
}

/// Writes `value` to `path` as pretty JSON, readable by the owner only; refuses to
/// overwrite a file (a key file lost is a wallet lost).
pub fn write_new<T: Serialize>(path: &Path, value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::code(ErrorCode::InvalidInput, e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        CliError::code(
            ErrorCode::InvalidInput,
            format!("cannot create {}: {e}", path.display()),
        )
    })?;
    std::io::Write::write_all(&mut file, format!("{text}\n").as_bytes()).map_err(|e| {
        CliError::code(
            ErrorCode::InvalidInput,
            format!("cannot write {}: {e}", path.display()),
        )
    })
}
