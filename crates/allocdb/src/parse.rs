//! Parsing the CLI's typed values: u128 ids (decimal or hyphenated UUID) and durations
//! (`500ms`, `30s`, `10m`, `1h`).
//!
//! Errors are one sentence naming the offending text, printed as the one-line reason of exit
//! code 2. Parsing is done here rather than by the argument parser so the reason stays on one
//! line.

use std::time::Duration;

use allocdb_core::IdTextError;

/// Characters of the offending text shown in an error.
const SHOWN_CHARACTER_COUNT_MAX: usize = 48;

fn shown(text: &str) -> String {
    text.chars().take(SHOWN_CHARACTER_COUNT_MAX).collect()
}

/// Parses a u128 id written in decimal or as a hyphenated UUID (read as one big-endian u128).
///
/// # Errors
/// A one-sentence reason naming `what` and the offending text.
pub(crate) fn id(what: &str, text: &str) -> Result<u128, String> {
    let shown = shown(text);
    allocdb_core::parse_id_text(text).map_err(|error| match error {
        IdTextError::NotUuid => format!("invalid {what} {shown:?}: not a hyphenated UUID"),
        IdTextError::NotDecimal => {
            format!("invalid {what} {shown:?}: expected a decimal u128 or a hyphenated UUID")
        }
        IdTextError::OutOfRange => format!("invalid {what} {shown:?}: out of range for a u128"),
    })
}

/// Parses a duration: decimal digits followed by exactly one unit of `ms`, `s`, `m`, `h`.
///
/// # Errors
/// A one-sentence reason naming the offending text.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration {:?}: expected digits and a unit: ms, s, m or h (e.g. 500ms, 30s, 10m, 1h)",
            shown(text)
        )
    };
    let digit_count = text.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, unit) = text.split_at(digit_count);
    if digits.is_empty() {
        return Err(invalid());
    }
    let count: u64 = digits.parse().map_err(|_| invalid())?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(invalid()),
    };
    let total_ms =
        count.checked_mul(unit_ms).ok_or_else(|| format!("invalid duration {:?}: too long", shown(text)))?;
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{duration, id};

    #[test]
    fn durations_with_each_unit() {
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("10m").unwrap(), Duration::from_mins(10));
        assert_eq!(duration("1h").unwrap(), Duration::from_hours(1));
        assert_eq!(duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn durations_without_a_known_unit_are_refused() {
        for text in ["", "30", "s", "30 s", "-1s", "1.5s", "30sec", "1d", "30S", "+3s", "1h30m", "ms"] {
            let error = duration(text).unwrap_err();
            assert!(error.starts_with("invalid duration"), "{text:?}: {error}");
            assert!(!error.contains('\n'));
        }
        assert!(duration("99999999999999999999s").is_err());
        assert!(duration("18446744073709551615h").unwrap_err().contains("too long"));
    }

    #[test]
    fn ids_decimal_and_uuid() {
        assert_eq!(id("id", "42").unwrap(), 42);
        assert_eq!(id("id", &u128::MAX.to_string()).unwrap(), u128::MAX);
        assert_eq!(id("id", "00000000-0000-0000-0000-00000000002a").unwrap(), 42);
        assert_eq!(id("id", "FFFFFFFF-ffff-ffff-ffff-ffffffffffff").unwrap(), u128::MAX);
    }

    #[test]
    fn bad_ids_are_refused() {
        for text in [
            "",
            "x",
            "1.0",
            "-1",
            "0x10",
            "00000000-0000-0000-0000-00000000002",
            "340282366920938463463374607431768211456",
        ] {
            assert!(id("lease id", text).unwrap_err().starts_with("invalid lease id"), "{text:?}");
        }
    }
}
