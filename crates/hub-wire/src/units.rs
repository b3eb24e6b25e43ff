//! Human-readable sizes and rates for command-line flags (`50M`, `1G`, `512K`, `1.5M`), shared
//! by `hubfs` and `hub-emulator`.
//!
//! Suffixes are binary (K = 1024, M = 1024², G = 1024³, T = 1024⁴), case-insensitive, with an
//! optional trailing `B`, `iB` or `/s` (`64KiB`, `50MB/s`). Rates use the same grammar, in bytes
//! per second. A plain number is bytes. The number is digits with at most one decimal point (no
//! sign, exponent, `inf` or `nan`); a size beyond 2⁶⁴-1 bytes is an error, never saturated.

/// Parses a size such as `50M` into bytes.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let s = s.strip_suffix("/s").unwrap_or(s);
    let lower = s.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, mult) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1u64 << 10),
        Some('m') => (&body[..body.len() - 1], 1u64 << 20),
        Some('g') => (&body[..body.len() - 1], 1u64 << 30),
        Some('t') => (&body[..body.len() - 1], 1u64 << 40),
        _ => (body, 1),
    };
    let num = num.trim();
    let bad = || format!("invalid size {input:?} (expected e.g. 512K, 50M, 1G or a byte count)");
    let too_big = || format!("size {input:?} is too large (at most 16E, 2^64-1 bytes)");
    let well_formed = !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && num.bytes().filter(|&b| b == b'.').count() <= 1
        && num.bytes().any(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(bad());
    }
    if !num.contains('.') {
        // Digits only: an error from u64 parsing can only be an overflow.
        let n: u64 = num.parse().map_err(|_| too_big())?;
        return n.checked_mul(mult).ok_or_else(too_big);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let bytes = (f * mult as f64).round();
    // 2^64 is the first value a u64 cannot hold (and exactly representable as f64).
    if !bytes.is_finite() || bytes >= 18_446_744_073_709_551_616.0 {
        return Err(too_big());
    }
    Ok(bytes as u64)
}

/// Parses a rate in bytes per second (`50M` = 50 MiB/s).
pub fn parse_rate(input: &str) -> Result<u64, String> {
    let r = parse_size(input)?;
    if r == 0 {
        return Err(format!("rate {input:?} must be positive"));
    }
    Ok(r)
}

/// Formats bytes for people: `1.5 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_suffixes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("512K").unwrap(), 512 * 1024);
        assert_eq!(parse_size("50M").unwrap(), 50 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("50MB/s").unwrap(), 50 << 20);
        assert_eq!(parse_size("1.5m").unwrap(), 3 << 19);
        assert!(parse_size("abc").is_err());
        assert!(parse_size("-1M").is_err());
        assert_eq!(parse_size("0.5K").unwrap(), 512);
        assert_eq!(parse_size("18446744073709551615").unwrap(), u64::MAX);
        for bad in ["", "K", ".", "1.2.3", "1e3", "inf", "nan", "+1", "1 0"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        // Beyond u64: an error, never a saturated or wrapped value.
        for huge in [
            "18446744073709551616",
            "99999999999999999999999",
            "16777216T",
            "1e30",
        ] {
            assert!(parse_size(huge).is_err(), "{huge:?}");
        }
        assert!(parse_size("20000000T").unwrap_err().contains("too large"));
        assert!(parse_size("16777216.0T").unwrap_err().contains("too large"));
        assert!(parse_rate("0").is_err());
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(10), "10 B");
    }
}
