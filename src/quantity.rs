//! Kubernetes `resource.Quantity` strings for metric values, in the canonical form the Go
//! library prints (`16m`, `2`, `1500k`, `2M`; BinarySI `Ki`/`Mi` for memory).

/// Formats `value` as `NewMilliQuantity(int64(value*1000), DecimalSI).String()`.
///
/// Go truncates toward zero when converting to int64; NaN becomes 0 and infinities saturate
/// (Go's behaviour there is undefined, a saturated value is the useful one).
pub fn decimal_milli(value: f64) -> String {
    decimal_from_milli(to_milli(value))
}

/// `value * 1000` truncated toward zero, NaN → 0, saturating.
pub fn to_milli(value: f64) -> i64 {
    // `as` truncates toward zero, maps NaN to 0 and saturates at the i64 bounds.
    (value * 1000.0) as i64
}

/// Canonical DecimalSI string of a milli-scaled integer (`int64Amount.AsCanonicalBytes`).
pub fn decimal_from_milli(milli: i64) -> String {
    if milli == 0 {
        return "0".to_owned();
    }
    // Work in i128 so that scaling back up never overflows.
    let mut amount = i128::from(milli);
    let mut exponent: i32 = -3;
    while amount % 10 == 0 {
        amount /= 10;
        exponent += 1;
    }
    match exponent.rem_euclid(3) {
        1 => {
            amount *= 10;
            exponent -= 1;
        }
        2 => {
            amount *= 100;
            exponent -= 2;
        }
        _ => {}
    }
    let suffix = match exponent {
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => return format!("{amount}e{exponent}"),
    };
    format!("{amount}{suffix}")
}

/// Canonical BinarySI string of a byte count given in milli-units, as metrics-server prints
/// memory (`NewMilliQuantity(v*1000, BinarySI)`): values below 1024 in magnitude or with a
/// fraction use the decimal form; whole values use the largest power-of-1024 suffix that
/// divides them (`Ki`, `Mi`, …), or none.
pub fn binary_from_milli(milli: i64) -> String {
    if milli % 1000 != 0 {
        return decimal_from_milli(milli);
    }
    let mut amount = milli / 1000;
    if amount.abs() < 1024 {
        return decimal_from_milli(milli);
    }
    let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut i = 0;
    while i + 1 < suffixes.len() && amount % 1024 == 0 {
        amount /= 1024;
        i += 1;
    }
    format!("{amount}{}", suffixes[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_milli_matches_go_canonical_strings() {
        let cases = [
            (0.016, "16m"),
            (0.0, "0"),
            (2.0, "2"),
            (1.5, "1500m"),
            (1500.0, "1500"),
            (1_500_000.0, "1500k"),
            (2_000_000.0, "2M"),
            (50.0, "50"),
            (7.0, "7"),
            (0.1, "100m"),
            (3.3333, "3333m"),
            (-2.5, "-2500m"),
            (f64::NAN, "0"),
            (1e-4, "0"),
            (12_000.0, "12k"),
            (1e9, "1G"),
        ];
        for (value, want) in cases {
            assert_eq!(decimal_milli(value), want, "value {value}");
        }
    }

    #[test]
    fn binary_memory_matches_metrics_server() {
        assert_eq!(binary_from_milli(1024 * 1000), "1Ki");
        assert_eq!(binary_from_milli(50 * 1024 * 1024 * 1000), "50Mi");
        assert_eq!(binary_from_milli(1000 * 1000), "1k");
        assert_eq!(binary_from_milli(1500), "1500m");
        assert_eq!(binary_from_milli(0), "0");
        assert_eq!(binary_from_milli(2000 * 1000), "2000");
        assert_eq!(binary_from_milli(3 * 1024 * 1000 + 1000), "3073");
    }
}
