//! PINs: from an environment variable (scripts) or typed without echo; never a flag.

use chipi_core::ErrorCode;
use zeroize::Zeroizing;

use crate::commands::CliError;

/// The owner's PIN variable.
pub const OWNER_PIN_ENV: &str = "CHIPI_OWNER_PIN";
/// The session's PIN variable.
pub const SESSION_PIN_ENV: &str = "CHIPI_SESSION_PIN";

/// The PIN in `variable`, or asked on the terminal (twice when `confirm`).
pub fn read(variable: &str, prompt: &str, confirm: bool) -> Result<Zeroizing<String>, CliError> {
    if let Ok(pin) = std::env::var(variable) {
        return Ok(Zeroizing::new(pin));
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|_| {
                CliError::code(
                    ErrorCode::InvalidInput,
                    format!("no PIN: set {variable} or run in a terminal"),
                )
            })
    };
    let pin = ask(&format!("{prompt}: "))?;
    if confirm && *ask(&format!("{prompt} again: "))? != *pin {
        return Err(CliError::code(ErrorCode::InvalidInput, "the PINs differ"));
    }
    Ok(pin)
}
