//! Logging: the global tracing subscriber, human-readable or one JSON object per line.

use std::io;

use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log level / filter directive does not parse.
    #[error("invalid log filter {directive:?}: {source}")]
    Filter {
        /// The directive as given.
        directive: String,
        /// The parse error.
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Install the global tracing subscriber. `level` is an EnvFilter directive (`info`,
/// `augur=debug,hyper=warn`), overridden by `RUST_LOG` when that is set; `json` selects
/// one JSON object per line instead of the human format.
///
/// Returns `Ok(false)` when a global subscriber was already installed (calling twice is
/// harmless), `Ok(true)` when this call installed it.
pub fn init_logging(level: &str, json: bool) -> Result<bool> {
    install(level, json, std::env::var("RUST_LOG").ok().as_deref())
}

/// Log levels `--log-level` accepts, alone or after `target=` in a filter.
pub const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a `--log-level`: a level from [`LOG_LEVELS`], or comma-separated directives
/// `level` / `target=level` (`info,augur=debug,hyper=warn`). A bare word that is no level
/// (`loud`) is refused: tracing would read it as a target and log nothing else.
pub fn parse_log_level(text: &str) -> std::result::Result<String, String> {
    let allowed = || {
        format!(
            "expected one of {} or a filter such as info,augur=debug",
            LOG_LEVELS.join(", ")
        )
    };
    let is_level = |word: &str| LOG_LEVELS.contains(&word.trim().to_ascii_lowercase().as_str());
    if text.trim().is_empty() {
        return Err(format!("empty log level: {}", allowed()));
    }
    for directive in text.split(',') {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level,
            _ => directive,
        };
        if !is_level(level) {
            return Err(format!(
                "{:?} in {text:?} is not a log level: {}",
                level.trim(),
                allowed()
            ));
        }
    }
    EnvFilter::try_new(text).map_err(|e| format!("invalid log filter {text:?}: {e}"))?;
    Ok(text.to_owned())
}

/// [`init_logging`] with `RUST_LOG`'s value given.
fn install(level: &str, json: bool, rust_log: Option<&str>) -> Result<bool> {
    let filter = filter(level, rust_log)?;
    // Colours only on a terminal: log files and kubectl logs get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    Ok(dispatch(filter, json, ansi, io::stderr).try_init().is_ok())
}

/// The filter: `rust_log` (the `RUST_LOG` variable) when set and not blank, else `level`.
fn filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter> {
    let directive = rust_log
        .filter(|env| !env.trim().is_empty())
        .unwrap_or(level);
    EnvFilter::try_new(directive).map_err(|source| Error::Filter {
        directive: directive.to_owned(),
        source,
    })
}

/// The subscriber [`init_logging`] installs, writing to `writer`. JSON lines hold
/// `timestamp` (RFC 3339), `level`, the event's fields (the text under `message`), `target`
/// and, inside spans, `spans` (root first).
fn dispatch<W>(filter: EnvFilter, json: bool, ansi: bool, writer: W) -> Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        Dispatch::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .finish(),
        )
    } else {
        Dispatch::new(builder.with_ansi(ansi).finish())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    #[test]
    fn log_levels_come_from_a_fixed_list() {
        for good in [
            "info",
            "DEBUG",
            "off",
            "info,augur=debug,hyper=warn",
            "augur::series=trace",
        ] {
            assert_eq!(parse_log_level(good).as_deref(), Ok(good), "{good}");
        }
        assert_eq!(
            parse_log_level("loud").unwrap_err(),
            "\"loud\" in \"loud\" is not a log level: expected one of off, error, warn, info, debug, trace or a filter such as info,augur=debug"
        );
        assert!(
            parse_log_level("info,augur=chatty")
                .unwrap_err()
                .starts_with("\"chatty\"")
        );
        assert!(
            parse_log_level("")
                .unwrap_err()
                .starts_with("empty log level")
        );
        assert!(parse_log_level("=debug").is_err());
    }

    /// A writer appending to a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn logged(json: bool, log: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let dispatch = dispatch(filter("info", None).unwrap(), json, false, move || {
            writer.clone()
        });
        tracing::dispatcher::with_default(&dispatch, log);
        buffer.text()
    }

    #[test]
    fn json_lines_carry_timestamp_level_message_fields_and_target() {
        let text = logged(true, || {
            tracing::info!(
                series = 1234_u64,
                rule = "rules[0]",
                ok = true,
                "relist done"
            );
            tracing::debug!("below the level");
            let span = tracing::info_span!("refresh", targets = 2);
            let _entered = span.enter();
            tracing::warn!(error = %"connection refused", "query failed");
        });
        let lines: Vec<serde_json::Map<String, Value>> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");

        let first = &lines[0];
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "message",
                "series",
                "rule",
                "ok",
                "target"
            ],
            "{text}"
        );
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "relist done");
        assert_eq!(first["series"], 1234);
        assert_eq!(first["rule"], "rules[0]");
        assert_eq!(first["ok"], true);
        assert_eq!(first["target"], module_path!());
        // RFC 3339 in UTC, e.g. 2026-11-02T10:04:05.123456Z.
        let timestamp = first["timestamp"].as_str().unwrap();
        assert!(
            timestamp.len() >= 20
                && timestamp.as_bytes()[4] == b'-'
                && timestamp.as_bytes()[10] == b'T'
                && timestamp.ends_with('Z'),
            "{timestamp}"
        );

        let second = &lines[1];
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["message"], "query failed");
        assert_eq!(second["error"], "connection refused");
        assert_eq!(
            second["spans"],
            serde_json::json!([{"name": "refresh", "targets": 2}])
        );
    }

    #[test]
    fn human_format_is_one_plain_line_per_event() {
        let text = logged(false, || tracing::info!(series = 3_u64, "relist done"));
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(" INFO "), "{text}");
        assert!(text.trim_end().ends_with("relist done series=3"), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour codes: {text:?}");
    }

    #[test]
    fn rust_log_overrides_the_level_unless_blank() {
        assert_eq!(filter("info", None).unwrap().to_string(), "info");
        assert_eq!(
            filter("info", Some("augur=debug")).unwrap().to_string(),
            "augur=debug"
        );
        assert_eq!(filter("warn", Some("  ")).unwrap().to_string(), "warn");
        let err = filter("not a [valid directive", None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid log filter \"not a [valid directive\": "),
            "{err}"
        );
        let err = filter("info", Some("augur=[")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid log filter \"augur=[\": "),
            "{err}"
        );
    }

    #[test]
    fn installing_twice_does_not_panic() {
        let first = install("info", true, None).unwrap();
        let second = install("debug", false, None).unwrap();
        assert!(!(first && second));
        assert!(install("info", false, Some("augur=[")).is_err());
    }
}
