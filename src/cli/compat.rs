//! prometheus-adapter's command line, accepted as written: no subcommand means `serve`, the
//! binary's own path as first argument is dropped, Go's flag syntax is rewritten for clap, and
//! every flag prometheus-adapter inherits (k8s.io/apiserver, custom-metrics-apiserver, klog)
//! is either implemented by augur or accepted with one warning that names it.
//!
//! This runs on the raw arguments before clap. augur's own flags are found by asking clap's
//! command tree, so the rewriting follows `augur serve`'s real flag set; the inherited flags
//! augur does not implement are listed in [`INHERITED`] with their Go type (their values are
//! checked as Go would check them) and why they have no effect.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use clap::{ArgAction, CommandFactory};

use super::Cli;
use super::gotypes::{GoType, parse_bool, parse_int};

/// Subcommand names: a first argument among these is not prometheus-adapter style.
const SUBCOMMANDS: [&str; 6] = ["serve", "check", "certs", "train", "backtest", "help"];

/// File names of the binary in the image (`/adapter`, `/augur`): a first positional argument
/// naming it is the Helm chart's `args: [/adapter, …]`.
const BINARY_NAMES: [&str; 2] = ["adapter", "augur"];

/// The command line after this pass, with what it found to report once logging is up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prepared {
    /// Arguments for clap: a subcommand, flags as `--name=value`.
    pub args: Vec<OsString>,
    /// One warning per flag that has no effect, or was given several times.
    pub warnings: Vec<String>,
    /// klog's `--v` / `-v`, the last one given.
    pub verbosity: Option<i32>,
}

/// A command line prometheus-adapter would refuse too: the flag and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompatError(String);

/// Why an inherited flag changes nothing in augur.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Accepted without effect: one warning naming the flag and this reason.
    Ignored(&'static str),
    /// A bool whose value `.0` is what augur does anyway (silent); the other value warns.
    Unless(bool, &'static str),
    /// Already honoured by how augur works, whatever the value (see docs/config.md).
    Honoured,
}

/// An inherited flag augur accepts without implementing it.
#[derive(Debug, Clone, Copy)]
struct Inherited {
    name: &'static str,
    go: GoType,
    effect: Effect,
}

const AUDIT: &str = "augur writes no audit log";
const PPROF: &str = "augur serves no /debug/pprof profiling endpoints";
const APF: &str = "augur has no API priority and fairness (it only answers the aggregator)";
const CLIENT: &str = "augur lists and watches each resource type once instead of calling the Kubernetes API per request, so it needs no client rate limit";
const SNI: &str = "augur serves one certificate (--tls-cert-file, or the self-signed one in --cert-dir) for every server name";
const H2_STREAMS: &str = "augur keeps hyper's HTTP/2 stream limit (200 per connection)";
const SHUTDOWN: &str =
    "augur stops accepting connections at SIGTERM and lets in-flight requests finish (up to 30 s)";
const GATES: &str = "augur has no Kubernetes feature gates";
const FILES: &str = "augur writes its log to stderr only";
const STDERR: &str = "augur writes every log line to stderr";
const THRESHOLD: &str =
    "augur writes every log line to stderr; choose what is logged with --log-level";
const HEADERS: &str = "augur's log lines have their own format (--log-json for JSON lines)";
const VMODULE: &str = "augur has no per-file verbosity; use --log-level with a filter such as info,augur::series=debug";
const BACKTRACE: &str = "augur logs no Go stack traces";

/// Flags prometheus-adapter v0.11/v0.12 accept that augur does not implement (every other
/// flag of theirs is one of augur's own), plus `--feature-gates` and
/// `--shutdown-delay-duration`, common on other aggregated API servers. Names use `-`; klog's
/// `_` spellings (`--log_dir`) are read as the same flag.
const INHERITED: &[Inherited] = &[
    // custom-metrics-apiserver's AdapterBase.
    inherited("client-qps", GoType::Float32, Effect::Ignored(CLIENT)),
    inherited("client-burst", GoType::Int, Effect::Ignored(CLIENT)),
    // k8s.io/apiserver SecureServingOptions.
    inherited(
        "tls-sni-cert-key",
        GoType::NamedCertKey,
        Effect::Ignored(SNI),
    ),
    inherited(
        "http2-max-streams-per-connection",
        GoType::Int,
        Effect::Ignored(H2_STREAMS),
    ),
    inherited("permit-address-sharing", GoType::Bool, Effect::Honoured),
    // k8s.io/apiserver FeatureOptions.
    inherited("profiling", GoType::Bool, Effect::Unless(false, PPROF)),
    inherited(
        "contention-profiling",
        GoType::Bool,
        Effect::Unless(false, PPROF),
    ),
    inherited("debug-socket-path", GoType::String, Effect::Ignored(PPROF)),
    inherited(
        "enable-priority-and-fairness",
        GoType::Bool,
        Effect::Unless(false, APF),
    ),
    // Other aggregated API servers' flags, often copied into extraArguments.
    inherited(
        "feature-gates",
        GoType::MapStringBool,
        Effect::Ignored(GATES),
    ),
    inherited(
        "shutdown-delay-duration",
        GoType::Duration,
        Effect::Ignored(SHUTDOWN),
    ),
    // k8s.io/apiserver AuditOptions: policy, log backend, webhook backend.
    inherited("audit-policy-file", GoType::String, Effect::Ignored(AUDIT)),
    inherited("audit-log-path", GoType::String, Effect::Ignored(AUDIT)),
    inherited("audit-log-maxage", GoType::Int, Effect::Ignored(AUDIT)),
    inherited("audit-log-maxbackup", GoType::Int, Effect::Ignored(AUDIT)),
    inherited("audit-log-maxsize", GoType::Int, Effect::Ignored(AUDIT)),
    inherited("audit-log-format", GoType::String, Effect::Ignored(AUDIT)),
    inherited("audit-log-version", GoType::String, Effect::Ignored(AUDIT)),
    inherited("audit-log-compress", GoType::Bool, Effect::Ignored(AUDIT)),
    inherited("audit-log-mode", GoType::String, Effect::Ignored(AUDIT)),
    inherited(
        "audit-log-batch-buffer-size",
        GoType::Int,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-log-batch-max-size",
        GoType::Int,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-log-batch-max-wait",
        GoType::Duration,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-log-batch-throttle-enable",
        GoType::Bool,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-log-batch-throttle-qps",
        GoType::Float32,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-log-batch-throttle-burst",
        GoType::Int,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-log-truncate-enabled",
        GoType::Bool,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-log-truncate-max-batch-size",
        GoType::Int64,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-log-truncate-max-event-size",
        GoType::Int64,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-config-file",
        GoType::String,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-initial-backoff",
        GoType::Duration,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-batch-initial-backoff",
        GoType::Duration,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-version",
        GoType::String,
        Effect::Ignored(AUDIT),
    ),
    inherited("audit-webhook-mode", GoType::String, Effect::Ignored(AUDIT)),
    inherited(
        "audit-webhook-batch-buffer-size",
        GoType::Int,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-batch-max-size",
        GoType::Int,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-batch-max-wait",
        GoType::Duration,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-batch-throttle-enable",
        GoType::Bool,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-batch-throttle-qps",
        GoType::Float32,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-batch-throttle-burst",
        GoType::Int,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-truncate-enabled",
        GoType::Bool,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-truncate-max-batch-size",
        GoType::Int64,
        Effect::Ignored(AUDIT),
    ),
    inherited(
        "audit-webhook-truncate-max-event-size",
        GoType::Int64,
        Effect::Ignored(AUDIT),
    ),
    // k8s.io/component-base logs and klog (`--v` is read as augur's log level).
    inherited("log-flush-frequency", GoType::Duration, Effect::Honoured),
    inherited("vmodule", GoType::ModuleSpec, Effect::Ignored(VMODULE)),
    inherited("logtostderr", GoType::Bool, Effect::Unless(true, STDERR)),
    inherited(
        "alsologtostderr",
        GoType::Bool,
        Effect::Unless(true, STDERR),
    ),
    inherited(
        "stderrthreshold",
        GoType::Severity,
        Effect::Ignored(THRESHOLD),
    ),
    inherited("log-dir", GoType::String, Effect::Ignored(FILES)),
    inherited("log-file", GoType::String, Effect::Ignored(FILES)),
    inherited("log-file-max-size", GoType::Uint64, Effect::Ignored(FILES)),
    inherited("one-output", GoType::Bool, Effect::Unless(false, FILES)),
    inherited(
        "add-dir-header",
        GoType::Bool,
        Effect::Unless(false, HEADERS),
    ),
    inherited("skip-headers", GoType::Bool, Effect::Unless(false, HEADERS)),
    inherited(
        "skip-log-headers",
        GoType::Bool,
        Effect::Unless(false, HEADERS),
    ),
    inherited(
        "log-backtrace-at",
        GoType::TraceLocation,
        Effect::Ignored(BACKTRACE),
    ),
];

const fn inherited(name: &'static str, go: GoType, effect: Effect) -> Inherited {
    Inherited { name, go, effect }
}

/// How clap takes one of augur's own flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// A switch (`bool` field): `--flag`, no value.
    Switch,
    /// A bool that also takes `=true|false` (`num_args = 0..=1`).
    OptionalBool,
    /// One value; given twice, the last one counts (as in Go).
    One,
    /// A list: every occurrence adds.
    Many,
}

/// Rewrites `argv` (program name first) for clap. See the module documentation.
pub fn prepare(argv: Vec<OsString>) -> Result<Prepared, CompatError> {
    let mut args = argv.into_iter();
    let Some(program) = args.next() else {
        return Ok(Prepared::default());
    };
    let rest: Vec<OsString> = args.collect();
    let globals = own_flags(None);
    // Global flags may come first (`augur --log-level=debug serve …`).
    let mut first = 0;
    while let Some(token) = rest.get(first).and_then(|t| t.to_str()) {
        let name = token
            .strip_prefix("--")
            .map(|t| t.split('=').next().unwrap_or(t));
        match name.and_then(|n| globals.get(n)) {
            Some(Takes::One) if !token.contains('=') => first += 2,
            Some(_) => first += 1,
            None => break,
        }
    }
    let mut out = vec![program.clone()];
    let head = rest.get(first).and_then(|t| t.to_str()).map(str::to_owned);
    match head.as_deref() {
        None => {
            out.extend(rest);
            return Ok(Prepared {
                args: out,
                ..Prepared::default()
            });
        }
        Some("serve") => {
            out.extend(rest[..=first].iter().cloned());
            let serve = serve_args(&rest[first + 1..])?;
            out.extend(serve.args);
            return Ok(Prepared { args: out, ..serve });
        }
        Some(word) if SUBCOMMANDS.contains(&word) || is_help_or_version(word) => {
            out.extend(rest);
            return Ok(Prepared {
                args: out,
                ..Prepared::default()
            });
        }
        Some(_) => {}
    }
    // prometheus-adapter style: flags only, maybe after the binary's own path.
    let mut flags: Vec<OsString> = rest[..first].to_vec();
    let mut tail = &rest[first..];
    if let Some(path) = tail.first().and_then(|t| t.to_str())
        && !path.starts_with('-')
        && is_own_path(path, &program)
    {
        tail = &tail[1..];
        if tail.first().and_then(|t| t.to_str()) == Some("serve") {
            tail = &tail[1..];
        }
    }
    flags.extend(tail.iter().cloned());
    let serve = serve_args(&flags)?;
    out.push(OsString::from("serve"));
    out.extend(serve.args);
    Ok(Prepared { args: out, ..serve })
}

fn is_help_or_version(word: &str) -> bool {
    matches!(word, "-h" | "--help" | "-V" | "--version")
}

/// Whether a positional argument names the running binary: the same text as `argv[0]`, the
/// same file, or a file called `adapter` or `augur`.
fn is_own_path(arg: &str, program: &OsString) -> bool {
    if Some(arg) == program.to_str() {
        return true;
    }
    let path = Path::new(arg);
    if path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| BINARY_NAMES.contains(&n))
    {
        return true;
    }
    match (
        path.canonicalize(),
        std::env::current_exe().and_then(|p| p.canonicalize()),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// augur's own long flags of `serve` (with `Some("serve")`) or the top level (`None`).
fn own_flags(subcommand: Option<&str>) -> BTreeMap<String, Takes> {
    let mut command = Cli::command();
    command.build();
    let command = match subcommand {
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => return BTreeMap::new(),
        },
        None => command,
    };
    let mut flags = BTreeMap::new();
    for arg in command.get_arguments() {
        let takes = match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count => Takes::Switch,
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version => {
                Takes::Switch
            }
            ArgAction::Append => Takes::Many,
            _ if arg.get_num_args().is_some_and(|n| n.min_values() == 0) => Takes::OptionalBool,
            _ => Takes::One,
        };
        for name in arg.get_long_and_visible_aliases().unwrap_or_default() {
            flags.insert(name.to_owned(), takes);
        }
    }
    flags
}

/// One flag occurrence as read from the command line.
struct Occurrence {
    /// The name without dashes, `_` read as `-`.
    name: String,
    /// As written, for messages (`--log_dir`).
    written: String,
    /// The value after `=`, if any.
    inline: Option<String>,
}

/// Rewrites the flags of `serve` (everything after the subcommand).
fn serve_args(tokens: &[OsString]) -> Result<Prepared, CompatError> {
    let own = own_flags(Some("serve"));
    let mut out: Vec<(String, OsString)> = Vec::new();
    let mut warnings = Vec::new();
    let mut warned: Vec<String> = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut verbosity = None;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        i += 1;
        let Some(text) = token.to_str() else {
            out.push((String::new(), token.clone()));
            continue;
        };
        if text == "--" {
            out.extend(tokens[i - 1..].iter().map(|t| (String::new(), t.clone())));
            break;
        }
        let Some(occurrence) = read_flag(text) else {
            if !text.starts_with('-') {
                return Err(CompatError(positional_message(text, out.last())));
            }
            // A short flag clap knows (-h) or an unknown one clap will name.
            out.push((String::new(), token.clone()));
            continue;
        };
        let Occurrence {
            name,
            written,
            inline,
        } = occurrence;
        // The value of a flag that takes one: after `=`, else the next argument whatever it
        // looks like (pflag reads `--config -x` as the value "-x").
        let value = |i: &mut usize| -> Result<String, CompatError> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            let next = tokens
                .get(*i)
                .ok_or_else(|| CompatError(format!("flag needs an argument: {written}")))?;
            *i += 1;
            next.to_str()
                .map(str::to_owned)
                .ok_or_else(|| CompatError(format!("the value of {written} is not valid UTF-8")))
        };
        if name == "v" {
            let level = value(&mut i)?;
            let parsed = parse_int(&level, 10, 32).map_err(|e| {
                CompatError(format!(
                    "invalid value {level:?} for {written} (klog verbosity): {e}"
                ))
            })?;
            verbosity = Some(i32::try_from(parsed).unwrap_or(0));
            continue;
        }
        if let Some(flag) = INHERITED.iter().find(|f| f.name == name) {
            let given = if flag.go.is_bool() {
                inline.clone().unwrap_or_else(|| "true".to_owned())
            } else {
                value(&mut i)?
            };
            flag.go
                .check(&given)
                .map_err(|e| CompatError(format!("invalid value {given:?} for {written}: {e}")))?;
            if let Some(reason) = no_effect(flag, &given)
                && !warned.contains(&name)
            {
                warned.push(name.clone());
                warnings.push(format!(
                    "--{name}={given} has no effect in augur ({reason}); accepted for prometheus-adapter compatibility"
                ));
            }
            if flag.go.is_bool() {
                check_detached_bool(tokens.get(i), &written)?;
            }
            continue;
        }
        let Some(takes) = own.get(&name).copied() else {
            // Not a flag of augur nor of prometheus-adapter: clap names it.
            out.push((String::new(), token.clone()));
            continue;
        };
        let flag = format!("--{name}");
        match takes {
            Takes::Switch => {
                let on = match &inline {
                    Some(v) => parse_bool(v).map_err(|e| {
                        CompatError(format!("invalid value {v:?} for {written}: {e}"))
                    })?,
                    None => true,
                };
                check_detached_bool(tokens.get(i), &written)?;
                *counts.entry(name.clone()).or_default() += 1;
                out.retain(|(n, _)| n != &name);
                if on {
                    out.push((name, OsString::from(flag)));
                }
            }
            Takes::OptionalBool => {
                let given = match &inline {
                    Some(v) => parse_bool(v).map_err(|e| {
                        CompatError(format!("invalid value {v:?} for {written}: {e}"))
                    })?,
                    None => true,
                };
                check_detached_bool(tokens.get(i), &written)?;
                *counts.entry(name.clone()).or_default() += 1;
                out.retain(|(n, _)| n != &name);
                out.push((name, OsString::from(format!("{flag}={given}"))));
            }
            Takes::One => {
                let v = value(&mut i)?;
                *counts.entry(name.clone()).or_default() += 1;
                out.retain(|(n, _)| n != &name);
                out.push((name, OsString::from(format!("{flag}={v}"))));
            }
            Takes::Many => {
                let v = value(&mut i)?;
                out.push((name, OsString::from(format!("{flag}={v}"))));
            }
        }
    }
    for (name, count) in counts.into_iter().filter(|(_, n)| *n > 1) {
        let last = out.iter().find(|(n, _)| *n == name).map_or_else(
            || format!("--{name}=false"),
            |(_, t)| t.to_string_lossy().into_owned(),
        );
        warnings.push(format!(
            "--{name} is given {count} times; the last one counts ({last}), as in prometheus-adapter"
        ));
    }
    Ok(Prepared {
        args: out.into_iter().map(|(_, t)| t).collect(),
        warnings,
        verbosity,
    })
}

/// klog's `--v` as a tracing filter: 0–3 `info`; 4 adds augur's debug lines; 5 augur's trace
/// lines; 6–7 every library's debug lines too (as client-go logs its requests from 6); 8 and
/// more everything. Documented in docs/config.md.
pub fn klog_filter(verbosity: i32) -> &'static str {
    match verbosity {
        ..=3 => "info",
        4 => "info,augur=debug",
        5 => "info,augur=trace",
        6 | 7 => "debug,augur=trace",
        _ => "trace",
    }
}

/// The log filter to install: `--log-level` (or `AUGUR_LOG`) when given, else klog's `--v`,
/// else `info`. When both are given `--log-level` wins and a warning says so.
pub fn log_filter(log_level: Option<&str>, prepared: &mut Prepared) -> String {
    match (log_level, prepared.verbosity) {
        (Some(level), Some(v)) => {
            prepared.warnings.push(format!(
                "--v={v} has no effect: --log-level={level} (or AUGUR_LOG) is given and wins"
            ));
            level.to_owned()
        }
        (Some(level), None) => level.to_owned(),
        (None, Some(v)) => klog_filter(v).to_owned(),
        (None, None) => "info".to_owned(),
    }
}

/// `--name[=value]` or klog's `-v[=]N`, names normalised (`_` → `-`); `None` for anything else.
fn read_flag(text: &str) -> Option<Occurrence> {
    if let Some(long) = text.strip_prefix("--") {
        if long.is_empty() || long.starts_with('-') || long.starts_with('=') {
            return None;
        }
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (long, None),
        };
        return Some(Occurrence {
            name: name.replace('_', "-"),
            written: format!("--{name}"),
            inline,
        });
    }
    // pflag gives klog's one-letter `v` the shorthand `-v`: `-v=4`, `-v4`, `-v 4`.
    let short = text.strip_prefix("-v")?;
    let inline = match short.strip_prefix('=') {
        Some(v) => Some(v.to_owned()),
        None if short.is_empty() => None,
        None => Some(short.to_owned()),
    };
    Some(Occurrence {
        name: "v".to_owned(),
        written: "-v".to_owned(),
        inline,
    })
}

/// The reason an inherited flag with this value changes nothing, or `None` when augur already
/// does what it asks.
fn no_effect(flag: &Inherited, value: &str) -> Option<&'static str> {
    match flag.effect {
        Effect::Ignored(reason) => Some(reason),
        Effect::Unless(expected, reason) => {
            (parse_bool(value).ok() != Some(expected)).then_some(reason)
        }
        Effect::Honoured => None,
    }
}

/// A Go bool flag never takes the next argument: `--flag false` sets it to true and leaves
/// `false` as an ignored positional in prometheus-adapter. Refuse that instead of guessing.
fn check_detached_bool(next: Option<&OsString>, written: &str) -> Result<(), CompatError> {
    match next.and_then(|t| t.to_str()) {
        Some(word) if parse_bool(word).is_ok() => Err(CompatError(format!(
            "{written} {word}: a boolean flag takes its value after '=' ({written}={word}); prometheus-adapter would read this as {written}=true and ignore {word:?}"
        ))),
        _ => Ok(()),
    }
}

fn positional_message(text: &str, previous: Option<&(String, OsString)>) -> String {
    let after = previous
        .map(|(_, t)| format!(" (after {})", t.to_string_lossy()))
        .unwrap_or_default();
    format!(
        "unexpected argument {text:?}{after}: augur serve takes flags only (--name=value), or a subcommand first (serve, check, certs, train, backtest)"
    )
}

#[cfg(test)]
mod tests;
