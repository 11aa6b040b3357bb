//! Values as Go's flag packages read them (pflag, klog, k8s.io/component-base): booleans,
//! integers, durations, lists, certificate pairs, so a flag prometheus-adapter accepts is
//! accepted here and one it rejects is rejected, with the reason.

use std::net::IpAddr;

/// The type a prometheus-adapter flag has in Go, which decides the values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoType {
    /// `BoolVar`: `--flag` alone means true; a value only after `=`.
    Bool,
    /// `IntVar` (64-bit `int`).
    Int,
    /// `Int32Var`, and klog's `-v` level (base 10).
    Int32,
    /// `Int64Var`.
    Int64,
    /// `Uint64Var` (klog's `log_file_max_size`).
    Uint64,
    /// `Float32Var`.
    Float32,
    /// `DurationVar`: `time.ParseDuration`.
    Duration,
    /// `StringVar`: anything.
    String,
    /// `StringSliceVar`: comma-separated, repeatable.
    StringSlice,
    /// `IPVar`.
    Ip,
    /// `--tls-sni-cert-key`: `cert,key` or `cert,key:name1,name2`.
    NamedCertKey,
    /// `--feature-gates`: `Name=bool,…`.
    MapStringBool,
    /// klog's `stderrthreshold`: `INFO`, `WARNING`, `ERROR`, `FATAL` or a number.
    Severity,
    /// klog's `vmodule`: `pattern=N,…`.
    ModuleSpec,
    /// klog's `log_backtrace_at`: `file.go:N`.
    TraceLocation,
}

impl GoType {
    /// Whether `--flag` alone is complete (a bool) rather than taking the next argument.
    pub fn is_bool(self) -> bool {
        self == GoType::Bool
    }

    /// Checks `value` as Go would parse it; the error says why it is not one.
    pub fn check(self, value: &str) -> Result<(), String> {
        match self {
            GoType::Bool => parse_bool(value).map(drop),
            GoType::Int | GoType::Int64 => parse_int(value, 0, 64).map(drop),
            GoType::Int32 => parse_int(value, 0, 32).map(drop),
            GoType::Uint64 => parse_uint(value),
            GoType::Float32 => parse_float(value),
            GoType::Duration => crate::units::parse_go_duration(value).map(drop),
            GoType::String | GoType::StringSlice => Ok(()),
            GoType::Ip => value
                .trim()
                .parse::<IpAddr>()
                .map(drop)
                .map_err(|_| format!("failed to parse IP: {value:?}")),
            GoType::NamedCertKey => check_named_cert_key(value),
            GoType::MapStringBool => check_map_string_bool(value),
            GoType::Severity => check_severity(value),
            GoType::ModuleSpec => check_module_spec(value),
            GoType::TraceLocation => check_trace_location(value),
        }
    }
}

/// `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "{value:?} is not a boolean (true, false, 1, 0, t, f)"
        )),
    }
}

/// `strconv.ParseInt(value, base, bits)`; base 0 reads `0x`, `0o`, `0b` and leading-`0` octal
/// prefixes and `_` between digits, base 10 plain decimal digits.
pub fn parse_int(value: &str, base: u32, bits: u32) -> Result<i64, String> {
    let err = || format!("{value:?} is not an integer");
    let (negative, unsigned) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let magnitude = parse_digits(unsigned, base).ok_or_else(err)?;
    let limit: u128 = 1 << (bits - 1);
    if (negative && magnitude > limit) || (!negative && magnitude >= limit) {
        return Err(format!(
            "{value:?} is out of range for a {bits}-bit integer"
        ));
    }
    let magnitude = i128::try_from(magnitude).map_err(|_| err())?;
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| err())
}

fn parse_uint(value: &str) -> Result<(), String> {
    match parse_digits(value, 0) {
        Some(n) if n <= u128::from(u64::MAX) => Ok(()),
        Some(_) => Err(format!(
            "{value:?} is out of range for a 64-bit unsigned integer"
        )),
        None => Err(format!("{value:?} is not an unsigned integer")),
    }
}

/// Digits of `text` in `base` (0: from the prefix, underscores allowed between digits).
fn parse_digits(text: &str, base: u32) -> Option<u128> {
    let lower = text.to_ascii_lowercase();
    let (radix, digits, underscores) = if base != 0 {
        (base, lower.as_str(), false)
    } else if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest, true)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest, true)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), true)
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let mut total: u128 = 0;
    let mut previous_underscore = false;
    for c in digits.chars() {
        if c == '_' && underscores {
            if previous_underscore {
                return None;
            }
            previous_underscore = true;
            continue;
        }
        previous_underscore = false;
        let digit = c.to_digit(radix)?;
        total = total
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(digit))?;
    }
    Some(total)
}

fn parse_float(value: &str) -> Result<(), String> {
    let parsed: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if parsed.is_finite() && parsed.abs() > f64::from(f32::MAX) {
        return Err(format!("{value:?} is out of range for a 32-bit float"));
    }
    Ok(())
}

fn check_named_cert_key(value: &str) -> Result<(), String> {
    let key_cert = match value.split_once(':') {
        Some((key_cert, names)) => {
            if names.trim().is_empty() {
                return Err("empty names list is not allowed".into());
            }
            key_cert
        }
        None => value,
    };
    if key_cert.split(',').count() != 2 {
        return Err("expected comma separated certificate and key file paths".into());
    }
    Ok(())
}

fn check_map_string_bool(value: &str) -> Result<(), String> {
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, flag)) = pair.split_once('=') else {
            return Err(format!("missing bool value for {pair}"));
        };
        parse_bool(flag.trim()).map_err(|e| format!("invalid value of {}: {e}", key.trim()))?;
    }
    Ok(())
}

fn check_severity(value: &str) -> Result<(), String> {
    if ["INFO", "WARNING", "ERROR", "FATAL"].contains(&value.to_ascii_uppercase().as_str()) {
        return Ok(());
    }
    parse_int(value, 10, 32).map(drop).map_err(|_| {
        format!("{value:?} is not a severity (INFO, WARNING, ERROR, FATAL or a number)")
    })
}

fn check_module_spec(value: &str) -> Result<(), String> {
    for pattern in value.split(',').filter(|p| !p.is_empty()) {
        let parts: Vec<&str> = pattern.split('=').collect();
        if parts.len() != 2 || parts[0].is_empty() {
            return Err("syntax error: expect comma-separated list of filename=N".into());
        }
        parse_int(parts[1], 10, 32)?;
    }
    Ok(())
}

fn check_trace_location(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let syntax = || "syntax error: expect file.go:234".to_owned();
    let fields: Vec<&str> = value.split(':').collect();
    if fields.len() != 2 || !fields[0].contains('.') {
        return Err(syntax());
    }
    let line: i64 = fields[1].parse().map_err(|_| syntax())?;
    if line <= 0 {
        return Err("negative or zero value for level".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_strconv_parse_bool() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        for bad in ["", "yes", "on", "tRuE", "2"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_with_go_prefixes_and_ranges() {
        assert_eq!(parse_int("42", 0, 64), Ok(42));
        assert_eq!(parse_int("-7", 0, 64), Ok(-7));
        assert_eq!(parse_int("0x1f", 0, 64), Ok(31));
        assert_eq!(parse_int("0o17", 0, 64), Ok(15));
        assert_eq!(parse_int("017", 0, 64), Ok(15));
        assert_eq!(parse_int("0b101", 0, 64), Ok(5));
        assert_eq!(parse_int("1_000", 0, 64), Ok(1000));
        assert_eq!(parse_int("2147483647", 0, 32), Ok(2_147_483_647));
        assert_eq!(parse_int("-2147483648", 0, 32), Ok(-2_147_483_648));
        assert!(
            parse_int("2147483648", 0, 32)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(parse_int("0x10", 10, 32).is_err(), "klog -v is base 10");
        for bad in ["", "-", "1.5", "ten", "1__0", "_1", "08"] {
            assert!(parse_int(bad, 0, 64).is_err(), "{bad}");
        }
        assert!(GoType::Uint64.check("1800").is_ok());
        assert!(GoType::Uint64.check("-1").is_err());
        assert!(GoType::Float32.check("5.5").is_ok());
        assert!(GoType::Float32.check("1e39").is_err());
        assert!(GoType::Float32.check("fast").is_err());
    }

    #[test]
    fn structured_values_as_klog_and_cliflag() {
        assert!(GoType::NamedCertKey.check("a.crt,a.key").is_ok());
        assert!(
            GoType::NamedCertKey
                .check("a.crt,a.key:*.foo.com,foo.com")
                .is_ok()
        );
        assert!(GoType::NamedCertKey.check("a.crt").is_err());
        assert!(GoType::NamedCertKey.check("a.crt,a.key:").is_err());
        assert!(
            GoType::MapStringBool
                .check("APIListChunking=true,Foo=false")
                .is_ok()
        );
        assert!(GoType::MapStringBool.check("Foo").is_err());
        assert!(GoType::MapStringBool.check("Foo=maybe").is_err());
        assert!(GoType::Severity.check("warning").is_ok());
        assert!(GoType::Severity.check("2").is_ok());
        assert!(GoType::Severity.check("loud").is_err());
        assert!(GoType::ModuleSpec.check("gopher*=3,file=1").is_ok());
        assert!(GoType::ModuleSpec.check("gopher*").is_err());
        assert!(GoType::ModuleSpec.check("a=x").is_err());
        assert!(GoType::TraceLocation.check("").is_ok());
        assert!(GoType::TraceLocation.check("main.go:12").is_ok());
        assert!(GoType::TraceLocation.check("main:12").is_err());
        assert!(GoType::TraceLocation.check("main.go:0").is_err());
        assert!(GoType::Ip.check("10.0.0.1").is_ok());
        assert!(GoType::Ip.check("::1").is_ok());
        assert!(GoType::Ip.check("localhost").is_err());
    }
}
