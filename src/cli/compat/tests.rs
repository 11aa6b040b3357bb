//! Unit tests of the prometheus-adapter command line: argv rewriting, every inherited flag
//! family, Go value syntax and the warnings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::cli::Command;
use clap::Parser;

fn prep(args: &[&str]) -> Prepared {
    let mut argv = vec![OsString::from("/usr/local/bin/augur")];
    argv.extend(args.iter().map(OsString::from));
    prepare(argv).unwrap()
}

fn prep_err(args: &[&str]) -> String {
    let mut argv = vec![OsString::from("augur")];
    argv.extend(args.iter().map(OsString::from));
    prepare(argv).unwrap_err().to_string()
}

fn strings(prepared: &Prepared) -> Vec<String> {
    prepared
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn serve(prepared: &Prepared) -> crate::app::ServeArgs {
    match Cli::try_parse_from(&prepared.args).unwrap().command {
        Command::Serve(args) => args,
        other => panic!("not serve: {other:?}"),
    }
}

#[test]
fn no_subcommand_means_serve() {
    let p = prep(&[
        "--config=/etc/adapter/config.yaml",
        "--prometheus-url=http://prometheus:9090/",
        "--secure-port=6443",
    ]);
    assert_eq!(
        strings(&p),
        [
            "/usr/local/bin/augur",
            "serve",
            "--config=/etc/adapter/config.yaml",
            "--prometheus-url=http://prometheus:9090/",
            "--secure-port=6443"
        ]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let args = serve(&p);
    assert_eq!(args.secure_port, 6443);
    assert_eq!(args.config, Path::new("/etc/adapter/config.yaml"));
}

#[test]
fn the_binary_path_first_is_dropped() {
    // The Helm chart: ENTRYPOINT /adapter, args [/adapter, --secure-port=6443, …].
    for first in ["/adapter", "/augur", "/usr/local/bin/augur"] {
        let p = prep(&[first, "--secure-port=6443", "--config=c.yaml"]);
        assert_eq!(
            strings(&p)[1..],
            ["serve", "--secure-port=6443", "--config=c.yaml"],
            "{first}"
        );
    }
    // Any other positional argument is refused, naming it.
    assert_eq!(
        prep_err(&["--config=c.yaml", "extra"]),
        "unexpected argument \"extra\" (after --config=c.yaml): augur serve takes flags only (--name=value), or a subcommand first (serve, check, certs, train, backtest)"
    );
    assert!(prep_err(&["/opt/other", "--config=c"]).contains("\"/opt/other\""));
}

#[test]
fn subcommands_and_help_pass_through() {
    assert_eq!(
        strings(&prep(&["check", "--config=c"]))[1..],
        ["check", "--config=c"]
    );
    assert_eq!(strings(&prep(&["certs"]))[1..], ["certs"]);
    assert_eq!(strings(&prep(&["--help"]))[1..], ["--help"]);
    assert_eq!(strings(&prep(&["-V"]))[1..], ["-V"]);
    assert_eq!(strings(&prep(&[]))[1..], [] as [&str; 0]);
    // Global flags before the subcommand are kept in place.
    assert_eq!(
        strings(&prep(&["--log-level", "debug", "check", "--config=c"]))[1..],
        ["--log-level", "debug", "check", "--config=c"]
    );
    // `augur serve` gets the same rewriting as the flags-only style.
    assert_eq!(
        strings(&prep(&["--log-json", "serve", "--config", "c", "--v=2"]))[1..],
        ["--log-json", "serve", "--config=c"]
    );
    // Global flags before flags-only style.
    assert_eq!(
        strings(&prep(&["--log-level", "debug", "--config", "c"]))[1..],
        ["serve", "--log-level=debug", "--config=c"]
    );
    // The top-level help still lists the subcommands.
    let help = Cli::try_parse_from(&prep(&["--help"]).args)
        .unwrap_err()
        .to_string();
    for sub in ["serve", "check", "certs", "train", "backtest"] {
        assert!(help.contains(&format!("  {sub} ")), "{sub}: {help}");
    }
    // --help after adapter-style flags is serve's help.
    let help = Cli::try_parse_from(&prep(&["--config=c", "--help"]).args).unwrap_err();
    assert!(help.to_string().contains("--prometheus-url"), "{help}");
}

#[test]
fn go_flag_syntax_becomes_clap_syntax() {
    let p = prep(&[
        "--config",
        "c.yaml",
        "--prometheus-header",
        "X-Scope-OrgID=a",
        "--prometheus-header=X-Other=b",
        "--requestheader-allowed-names=front-proxy-client,aggregator",
        "--requestheader-allowed-names",
        "extra",
        "--disable-http2=true",
        "--authentication-skip-lookup",
        "--authentication-tolerate-lookup-failure=F",
        "--log_json=1",
    ]);
    assert_eq!(
        strings(&p)[1..],
        [
            "serve",
            "--config=c.yaml",
            "--prometheus-header=X-Scope-OrgID=a",
            "--prometheus-header=X-Other=b",
            "--requestheader-allowed-names=front-proxy-client,aggregator",
            "--requestheader-allowed-names=extra",
            "--disable-http2",
            "--authentication-skip-lookup=true",
            "--authentication-tolerate-lookup-failure=false",
            "--log-json",
        ]
    );
    let args = serve(&p);
    assert!(args.disable_http2);
    assert!(args.auth.authentication_skip_lookup);
    assert!(!args.auth.authentication_tolerate_lookup_failure);
    assert_eq!(
        args.auth.requestheader_allowed_names,
        ["front-proxy-client", "aggregator", "extra"]
    );
    // A value that starts with '-' is still the value, as in pflag.
    assert_eq!(
        strings(&prep(&["--config", "-odd-name.yaml"]))[1..],
        ["serve", "--config=-odd-name.yaml"]
    );
    // `--disable-http2=false` is the default: nothing for clap.
    assert_eq!(
        strings(&prep(&["--disable-http2=false", "--config=c"]))[1..],
        ["serve", "--config=c"]
    );
    assert_eq!(
        prep_err(&["--disable-http2=yes"]),
        "invalid value \"yes\" for --disable-http2: \"yes\" is not a boolean (true, false, 1, 0, t, f)"
    );
    assert_eq!(prep_err(&["--config"]), "flag needs an argument: --config");
}

#[test]
fn repeated_single_flags_keep_the_last_and_say_so() {
    // The chart's defaults then extraArguments: pflag keeps the last.
    let p = prep(&[
        "--metrics-relist-interval=1m",
        "--config=c",
        "--metrics-relist-interval=30s",
    ]);
    assert_eq!(
        strings(&p)[1..],
        ["serve", "--config=c", "--metrics-relist-interval=30s"]
    );
    assert_eq!(
        p.warnings,
        [
            "--metrics-relist-interval is given 2 times; the last one counts (--metrics-relist-interval=30s), as in prometheus-adapter"
        ]
    );
}

#[test]
fn a_detached_boolean_value_is_refused() {
    assert_eq!(
        prep_err(&["--logtostderr", "false", "--config=c"]),
        "--logtostderr false: a boolean flag takes its value after '=' (--logtostderr=false); prometheus-adapter would read this as --logtostderr=true and ignore \"false\""
    );
    assert!(prep_err(&["--disable-http2", "true"]).starts_with("--disable-http2 true:"));
}

#[test]
fn klog_verbosity_in_every_spelling() {
    for (args, v) in [
        (&["--v=4"][..], 4),
        (&["--v", "6"][..], 6),
        (&["-v=2"][..], 2),
        (&["-v", "3"][..], 3),
        (&["-v5"][..], 5),
        (&["--v=1", "--v=8"][..], 8),
    ] {
        let p = prep(args);
        assert_eq!(p.verbosity, Some(v), "{args:?}");
        assert_eq!(strings(&p)[1..], ["serve"], "{args:?}");
    }
    assert_eq!(
        prep_err(&["--v=high"]),
        "invalid value \"high\" for --v (klog verbosity): \"high\" is not an integer"
    );
    assert!(
        prep_err(&["--v=0x4"]).contains("not an integer"),
        "klog reads base 10"
    );
    assert_eq!(klog_filter(0), "info");
    assert_eq!(klog_filter(2), "info");
    assert_eq!(klog_filter(4), "info,augur=debug");
    assert_eq!(klog_filter(5), "info,augur=trace");
    assert_eq!(klog_filter(6), "debug,augur=trace");
    assert_eq!(klog_filter(10), "trace");
    assert_eq!(klog_filter(-1), "info");
}

#[test]
fn log_level_wins_over_v_and_says_so() {
    let mut p = prep(&["--v=4"]);
    assert_eq!(log_filter(None, &mut p), "info,augur=debug");
    assert!(p.warnings.is_empty());
    assert_eq!(log_filter(Some("warn"), &mut p), "warn");
    assert_eq!(
        p.warnings,
        ["--v=4 has no effect: --log-level=warn (or AUGUR_LOG) is given and wins"]
    );
    assert_eq!(log_filter(None, &mut prep(&[])), "info");
}

#[test]
fn klog_flags_accepted_and_warned_once() {
    let p = prep(&[
        "--logtostderr=true",
        "--alsologtostderr",
        "--log_dir=/var/log",
        "--log-file=/tmp/a.log",
        "--log_file_max_size=1800",
        "--stderrthreshold=ERROR",
        "--vmodule=series*=4",
        "--one_output=true",
        "--skip_headers",
        "--skip-log-headers=false",
        "--add_dir_header=false",
        "--log-flush-frequency=5s",
        "--log_backtrace_at=main.go:12",
        "--log-dir=/var/log2",
    ]);
    assert_eq!(strings(&p)[1..], ["serve"]);
    assert_eq!(
        p.warnings,
        [
            "--log-dir=/var/log has no effect in augur (augur writes its log to stderr only); accepted for prometheus-adapter compatibility",
            "--log-file=/tmp/a.log has no effect in augur (augur writes its log to stderr only); accepted for prometheus-adapter compatibility",
            "--log-file-max-size=1800 has no effect in augur (augur writes its log to stderr only); accepted for prometheus-adapter compatibility",
            "--stderrthreshold=ERROR has no effect in augur (augur writes every log line to stderr; choose what is logged with --log-level); accepted for prometheus-adapter compatibility",
            "--vmodule=series*=4 has no effect in augur (augur has no per-file verbosity; use --log-level with a filter such as info,augur::series=debug); accepted for prometheus-adapter compatibility",
            "--one-output=true has no effect in augur (augur writes its log to stderr only); accepted for prometheus-adapter compatibility",
            "--skip-headers=true has no effect in augur (augur's log lines have their own format (--log-json for JSON lines)); accepted for prometheus-adapter compatibility",
            "--log-backtrace-at=main.go:12 has no effect in augur (augur logs no Go stack traces); accepted for prometheus-adapter compatibility",
        ]
    );
    let p = prep(&["--logtostderr=false"]);
    assert_eq!(
        p.warnings,
        [
            "--logtostderr=false has no effect in augur (augur writes every log line to stderr); accepted for prometheus-adapter compatibility"
        ]
    );
    assert_eq!(
        prep_err(&["--stderrthreshold=loud"]),
        "invalid value \"loud\" for --stderrthreshold: \"loud\" is not a severity (INFO, WARNING, ERROR, FATAL or a number)"
    );
    assert_eq!(
        prep_err(&["--log-flush-frequency=5"]),
        "invalid value \"5\" for --log-flush-frequency: \"5\" is not a Go duration (a number with a unit: ns, us, ms, s, m, h, e.g. 30s, 1m30s, 1.5h)"
    );
    assert!(prep_err(&["--log_file_max_size=-1"]).contains("not an unsigned integer"));
    assert!(prep_err(&["--vmodule=x"]).contains("filename=N"));
}

#[test]
fn audit_flags_accepted_and_warned() {
    // OpenShift's cluster-monitoring-operator passes these.
    let p = prep(&[
        "--audit-policy-file=/etc/audit/metadata-profile.yaml",
        "--audit-log-path=/var/log/adapter/audit.log",
        "--audit-log-maxsize=100",
        "--audit-log-maxbackup=5",
        "--audit-log-compress=true",
        "--audit-log-maxage",
        "7",
        "--audit-webhook-batch-max-wait=5s",
        "--audit-webhook-batch-throttle-qps=1.5",
        "--audit-log-truncate-max-event-size=102400",
    ]);
    assert_eq!(strings(&p)[1..], ["serve"]);
    assert_eq!(p.warnings.len(), 9);
    assert_eq!(
        p.warnings[0],
        "--audit-policy-file=/etc/audit/metadata-profile.yaml has no effect in augur (augur writes no audit log); accepted for prometheus-adapter compatibility"
    );
    assert!(p.warnings[5].starts_with("--audit-log-maxage=7 has no effect"));
    assert_eq!(
        prep_err(&["--audit-log-maxsize=big"]),
        "invalid value \"big\" for --audit-log-maxsize: \"big\" is not an integer"
    );
    assert!(prep_err(&["--audit-log-batch-max-wait=5"]).contains("not a Go duration"));
    assert!(prep_err(&["--audit-log-compress=maybe"]).contains("not a boolean"));
    assert!(prep_err(&["--audit-log-batch-throttle-qps=x"]).contains("not a number"));
}

#[test]
fn serving_and_feature_flags() {
    let p = prep(&[
        "--profiling=false",
        "--contention-profiling=false",
        "--enable-priority-and-fairness=false",
        "--permit-address-sharing",
        "--http2-max-streams-per-connection=1000",
        "--tls-sni-cert-key=a.crt,a.key:*.example.com",
        "--feature-gates=APIPriorityAndFairness=false",
        "--shutdown-delay-duration=10s",
        "--client-qps=20",
        "--client-burst=40",
        "--debug-socket-path=/tmp/d.sock",
    ]);
    assert_eq!(strings(&p)[1..], ["serve"]);
    let named: Vec<&str> = p
        .warnings
        .iter()
        .map(|w| w.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        named,
        [
            "--http2-max-streams-per-connection=1000",
            "--tls-sni-cert-key=a.crt,a.key:*.example.com",
            "--feature-gates=APIPriorityAndFairness=false",
            "--shutdown-delay-duration=10s",
            "--client-qps=20",
            "--client-burst=40",
            "--debug-socket-path=/tmp/d.sock",
        ]
    );
    // prometheus-adapter serves pprof by default; asking for it is warned.
    assert_eq!(
        prep(&["--profiling"]).warnings,
        [
            "--profiling=true has no effect in augur (augur serves no /debug/pprof profiling endpoints); accepted for prometheus-adapter compatibility"
        ]
    );
    assert_eq!(
        prep_err(&["--tls-sni-cert-key=only.crt"]),
        "invalid value \"only.crt\" for --tls-sni-cert-key: expected comma separated certificate and key file paths"
    );
    assert!(prep_err(&["--http2-max-streams-per-connection=many"]).contains("not an integer"));
    assert!(prep_err(&["--feature-gates=A=maybe"]).contains("invalid value of A"));
    assert!(prep_err(&["--client-qps=fast"]).contains("not a number"));
}

#[test]
fn own_flags_of_serve_are_known() {
    let own = own_flags(Some("serve"));
    for (name, takes) in [
        ("config", Takes::One),
        ("prometheus-url", Takes::One),
        ("prometheus-header", Takes::Many),
        ("requestheader-allowed-names", Takes::Many),
        ("disable-http2", Takes::Switch),
        ("authentication-skip-lookup", Takes::OptionalBool),
        ("log-level", Takes::One),
        ("log-json", Takes::Switch),
        ("help", Takes::Switch),
    ] {
        assert_eq!(own.get(name), Some(&takes), "{name}");
    }
    // No inherited flag shadows one of augur's own (client-qps/-burst excepted: augur
    // keeps them only to document them).
    for flag in INHERITED {
        assert!(
            !own.contains_key(flag.name) || ["client-qps", "client-burst"].contains(&flag.name),
            "{} is both inherited and augur's own",
            flag.name
        );
    }
}

#[test]
fn unknown_flags_reach_clap_which_names_them() {
    let p = prep(&["--config=c", "--no-such-flag=1"]);
    assert_eq!(
        strings(&p)[1..],
        ["serve", "--config=c", "--no-such-flag=1"]
    );
    let err = Cli::try_parse_from(&p.args).unwrap_err().to_string();
    assert!(
        err.contains("unexpected argument '--no-such-flag'"),
        "{err}"
    );
}

#[test]
fn zero_durations_and_counts_are_refused_where_they_break_things() {
    let parse = |args: &[&str]| {
        let mut all = vec!["augur"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
    };
    for flag in [
        "--prometheus-timeout=0s",
        "--metrics-relist-interval=0s",
        "--metrics-max-age=0s",
        "--config-check-interval=0",
        "--discovery-interval=0s",
        "--kube-api-timeout=0s",
        "--cache-sync-timeout=0ms",
        "--forecast-idle-eviction=0s",
        "--forecast-refit-interval=0h",
    ] {
        let err = parse(&["serve", "--config=c", flag])
            .unwrap_err()
            .to_string();
        let (name, value) = flag.split_once('=').unwrap();
        assert!(
            err.contains(&format!("invalid value '{value}' for '{name} <"))
                && err.contains(&format!(
                    "\"{value}\" is zero; this duration must be more than 0"
                )),
            "{flag}: {err}"
        );
    }
    for flag in [
        "--relist-concurrency=0",
        "--forecast-concurrency=0",
        "--secure-port=0",
    ] {
        let err = parse(&["serve", "--config=c", flag])
            .unwrap_err()
            .to_string();
        let (name, _) = flag.split_once('=').unwrap();
        assert!(
            err.contains(&format!("invalid value '0' for '{name} <"))
                && err.contains("0 is not in 1.."),
            "{flag}: {err}"
        );
    }
    for args in [
        &["check", "--config=c", "--metrics-max-age=0s"][..],
        &["check", "--config=c", "--prometheus-timeout=0s"][..],
        &["train", "--step=0s", "--query=up"][..],
    ] {
        let err = parse(args).unwrap_err().to_string();
        assert!(err.contains("is zero"), "{args:?}: {err}");
    }
    // Zero stays meaningful where it has a meaning: no cache (as in Kubernetes), no wait,
    // no forecast targets (every twin served live).
    let ok = parse(&[
        "serve",
        "--config=c",
        "--authentication-token-webhook-cache-ttl=0s",
        "--authorization-webhook-cache-authorized-ttl=0s",
        "--authorization-webhook-cache-unauthorized-ttl=0s",
        "--forecast-first-wait=0s",
        "--forecast-max-targets=0",
        "--forecast-max-series=0",
        "--prometheus-timeout=1.5s",
    ]);
    let Command::Serve(args) = ok.unwrap().command else {
        panic!("not serve")
    };
    assert_eq!(
        args.prometheus.prometheus_timeout,
        std::time::Duration::from_millis(1500)
    );
}
