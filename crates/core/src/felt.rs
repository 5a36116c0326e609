//! Strict felt parsing for input from outside: no sign, no whitespace, no silent
//! reduction modulo the field prime (which `Felt::from_hex` / `from_dec_str` do).

use starknet_rust_core::types::Felt;

/// A felt from `0x` hex or decimal digits, only if the number is below the field prime.
///
/// ```
/// use chipi_core::parse_felt_strict;
/// assert_eq!(parse_felt_strict("0x10"), Some(16u64.into()));
/// assert_eq!(parse_felt_strict("0X1F"), Some(31u64.into()));
/// assert_eq!(parse_felt_strict("16"), Some(16u64.into()));
/// // p itself would silently become 0 with Felt::from_hex.
/// let p = "0x800000000000011000000000000000000000000000000000000000000000001";
/// assert_eq!(parse_felt_strict(p), None);
/// assert_eq!(parse_felt_strict("-1"), None);
/// ```
pub fn parse_felt_strict(text: &str) -> Option<Felt> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    if digits.is_empty() || digits.len() > 80 || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let felt = if radix == 16 {
        // `Felt::from_hex` takes only a lower-case `0x`.
        Felt::from_hex(&format!("0x{digits}"))
    } else {
        Felt::from_dec_str(digits)
    }
    .ok()?;
    // The same number written back: anything at or above the prime was reduced.
    let canonical = if radix == 16 {
        format!("{felt:x}")
    } else {
        felt.to_string()
    };
    let trimmed = digits.trim_start_matches('0');
    (canonical.trim_start_matches('0') == trimmed.to_ascii_lowercase()).then_some(felt)
}
