//! Unit tests of the command line (with waitress's TestCLI and Test_run
//! re-expressed), the help text and the README's settings table.

use super::*;

fn parse(args: &[&str]) -> Result<ParsedArgs, ArgsError> {
    Adjustments::parse_args(args.iter().copied())
}

fn err(args: &[&str]) -> String {
    parse(args).unwrap_err().to_string()
}

// --- waitress's TestCLI, re-expressed ---

#[test]
fn no_arguments_give_the_defaults() {
    let p = parse(&[]).unwrap();
    assert!(!p.help);
    assert!(p.positional.is_empty());
    assert_eq!(
        format!("{:?}", p.adjustments),
        format!("{:?}", Adjustments::default())
    );
}

#[test]
fn help() {
    assert!(parse(&["--help"]).unwrap().help);
    // --help wins over bad values, which are not even converted...
    assert!(parse(&["--threads=x", "--help"]).unwrap().help);
    // ...but not over an option that does not exist (getopt's order).
    assert_eq!(err(&["--help", "--bogus"]), "option --bogus not recognized");
}

#[test]
fn positive_and_negative_booleans() {
    let p = parse(&["--expose-tracebacks"]).unwrap();
    assert!(p.adjustments.expose_tracebacks);
    let p = parse(&["--expose-tracebacks", "--no-expose-tracebacks"]).unwrap();
    assert!(!p.adjustments.expose_tracebacks);
    let p = parse(&["--no-ipv6", "--no-log-socket-errors", "--asyncore-use-poll"]).unwrap();
    assert!(!p.adjustments.ipv6);
    assert!(!p.adjustments.log_socket_errors);
    assert!(p.adjustments.asyncore_use_poll);
    assert_eq!(
        err(&["--ipv4=yes"]),
        "option --ipv4 must not have an argument"
    );
}

#[test]
fn values_are_converted_as_waitress_does() {
    let p = parse(&[
        "--host=localhost",
        "--port=80",
        "--unix-socket-perms=777",
        "--url-prefix=///foo/",
        "--ident=",
        "--threads",
        "5",
    ])
    .unwrap();
    let a = &p.adjustments;
    assert_eq!(a.host.as_deref(), Some("localhost"));
    assert_eq!(a.port, Some(80));
    assert_eq!(a.unix_socket_perms, 0o777);
    assert_eq!(a.url_prefix, "/foo");
    assert_eq!(a.ident, None);
    assert_eq!(a.threads, 5);
    // The value may start with a dash when it is the next argument.
    let p = parse(&["--url-scheme", "-x"]).unwrap();
    assert_eq!(p.adjustments.url_scheme, "-x");
    // The default ident is this server's; --ident=waitress restores
    // waitress's.
    assert_eq!(
        parse(&[]).unwrap().adjustments.ident.as_deref(),
        Some("maitred")
    );
    let p = parse(&["--ident=waitress"]).unwrap();
    assert_eq!(p.adjustments.ident.as_deref(), Some("waitress"));
    // The last one wins.
    let p = parse(&["--threads=2", "--threads=3"]).unwrap();
    assert_eq!(p.adjustments.threads, 3);
}

#[test]
fn listen_accumulates() {
    let p = parse(&["--listen=test:80"]).unwrap();
    assert_eq!(p.adjustments.listen, ["test:80"]);
    let p = parse(&["--listen=test:80", "--listen", "test:8080 [::1]:1"]).unwrap();
    assert_eq!(p.adjustments.listen, ["test:80", "test:8080", "[::1]:1"]);
}

#[test]
fn no_prefix_on_a_setting_with_a_value_is_an_error() {
    assert_eq!(
        err(&["--no-host"]),
        "option --no-host not recognized: --host takes a value, it is not a flag"
    );
    assert!(err(&["--no-threads"]).starts_with("option --no-threads not recognized"));
    assert_eq!(err(&["--no-bogus"]), "option --no-bogus not recognized");
}

#[test]
fn unknown_options_and_missing_values() {
    assert_eq!(err(&["--bad-opt"]), "option --bad-opt not recognized");
    assert_eq!(err(&["-h"]), "option -h not recognized");
    assert_eq!(err(&["--call"]), "option --call not recognized");
    assert_eq!(err(&["--threads"]), "option --threads requires argument");
    assert_eq!(err(&["--=1"]), "option -- not recognized");
}

#[test]
fn unique_prefixes_are_accepted_and_ambiguous_ones_named() {
    let p = parse(&["--thr=8", "--channel-req=2", "--asyncore-use"]).unwrap();
    assert_eq!(p.adjustments.threads, 8);
    assert_eq!(p.adjustments.channel_request_lookahead, 2);
    assert!(p.adjustments.asyncore_use_poll);
    // An exact name wins over longer ones.
    let p = parse(&["--port=1", "--host=h"]).unwrap();
    assert_eq!(p.adjustments.port, Some(1));
    assert_eq!(
        err(&["--log"]),
        "option --log not a unique prefix: it could be --log-untrusted-proxy-headers, --log-socket-errors"
    );
    assert_eq!(
        err(&["--no-ipv=1"]),
        "option --no-ipv not a unique prefix: it could be --no-ipv4, --no-ipv6"
    );
    assert_eq!(
        err(&["--un"]),
        "option --un not a unique prefix: it could be --unix-socket, --unix-socket-perms"
    );
}

#[test]
fn bad_values_name_the_option_the_setting_and_the_value() {
    assert_eq!(
        err(&["--threads=four"]),
        "option --threads: invalid value for threads: \"four\" is not an integer"
    );
    let e = err(&["--port=70000"]);
    assert!(
        e.starts_with("option --port: ") && e.contains("70000"),
        "{e}"
    );
    let e = err(&["--unix-socket-perms=9"]);
    assert!(
        e.contains("unix_socket_perms") && e.contains("\"9\""),
        "{e}"
    );
    let e = err(&["--threads=0"]);
    assert!(e.contains("threads") && e.contains('0'), "{e}");
}

#[test]
fn contradicting_settings_are_waitress_messages() {
    assert_eq!(
        err(&["--listen=127.0.0.1:1", "--port=2"]),
        "host or port may not be set if listen is set."
    );
    assert_eq!(
        err(&["--unix-socket=/tmp/x", "--listen=127.0.0.1:1"]),
        "unix_socket may not be set if listen is set"
    );
    assert_eq!(
        err(&["--systemd-socket-activation", "--port=1"]),
        "systemd_socket_activation may not be set if listen, host, port, unix_socket or sockets is set."
    );
}

#[test]
fn positional_arguments() {
    assert_eq!(
        err(&["app:x"]),
        "unexpected argument \"app:x\": this program takes only options (--name=value)"
    );
    // As getopt: options end at the first argument that is not one.
    let cli = Cli::new("x").positional("FILE");
    let p = cli.parse(["--threads=2", "a", "--threads=3"]).unwrap();
    assert_eq!(p.adjustments.threads, 2);
    assert_eq!(p.positional, ["a", "--threads=3"]);
    let p = cli.parse(["--", "--threads=3"]).unwrap();
    assert_eq!(p.positional, ["--threads=3"]);
}

#[test]
fn program_options() {
    let cli = Cli::new("demo")
        .option(CliOption::value("app", "NAME", "hello", "Which app."))
        .option(CliOption::flag("verbose", "Say more."));
    let p = cli.parse(Vec::<String>::new()).unwrap();
    assert_eq!(p.option("app"), Some("hello"));
    assert!(!p.flag("verbose"));
    assert_eq!(p.option("nope"), None);
    let p = cli
        .parse(["--app", "echo", "--verbose", "--threads=2"])
        .unwrap();
    assert_eq!(p.option("app"), Some("echo"));
    assert!(p.flag("verbose"));
    assert_eq!(p.adjustments.threads, 2);
    assert!(!cli
        .parse(["--verbose", "--no-verbose"])
        .unwrap()
        .flag("verbose"));
    assert_eq!(
        cli.parse(["--no-app"]).unwrap_err().to_string(),
        "option --no-app not recognized: --app takes a value, it is not a flag"
    );
    let help = cli.help();
    assert!(
        help.contains("    --app=NAME\n        Which app. Default is 'hello'.\n"),
        "{help}"
    );
    assert!(
        help.contains("    --[no-]verbose\n        Say more. Off by default.\n"),
        "{help}"
    );
}

#[test]
#[should_panic(expected = "Cli::option: --threads is already an option")]
fn a_program_option_may_not_shadow_a_setting() {
    let _ = Cli::new("x").option(CliOption::value("threads", "N", "1", "Mine."));
}

#[test]
fn not_unicode_is_an_error() {
    use std::os::unix::ffi::OsStringExt;
    let bad = OsString::from_vec(vec![b'-', b'-', 0xff]);
    assert!(matches!(
        Adjustments::parse_args([bad]),
        Err(ArgsError::NotUnicode(_))
    ));
}

// --- waitress's Test_run, re-expressed ---

fn run(args: &[&str]) -> (i32, String, String, bool) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut called = false;
    let code = Cli::new("waitress-serve").run(args.iter().copied(), &mut out, &mut err, |_| {
        called = true;
        Err::<(), _>("the server could not start")
    });
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
        called,
    )
}

#[test]
fn run_bad_option() {
    let (code, out, err, called) = run(&["--bad-opt"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.starts_with(
            "Error: option --bad-opt not recognized\n\nUsage:\n\n    waitress-serve [OPTS]\n"
        ),
        "{err}"
    );
    assert!(!called);
}

#[test]
fn run_help() {
    let (code, out, err, called) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Usage:\n\n    waitress-serve [OPTS]\n"),
        "{out}"
    );
    assert!(err.is_empty());
    assert!(!called);
}

#[test]
fn run_failure_of_main() {
    let (code, out, err, called) = run(&["--threads=2"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(err, "Error: the server could not start\n");
    assert!(called);
}

#[test]
fn run_cli_program_name_and_errors() {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_cli(
        [
            "/usr/local/bin/myserver",
            "--listen=127.0.0.1:0",
            "--port=1",
        ],
        &mut out,
        &mut err,
        |_r: &mut crate::Request| crate::Response::text("x"),
    );
    assert_eq!(code, 1);
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.starts_with("Error: host or port may not be set if listen is set.\n\nUsage:\n\n    myserver [OPTS]\n"),
        "{err}"
    );
}

// --- the help text ---

#[test]
fn help_shows_every_setting_with_its_real_default() {
    let help = Cli::new("x").help();
    let lines: Vec<&str> = help.lines().collect();
    for s in SETTINGS {
        let head = format!("    {}", option_head(s));
        let at = lines
            .iter()
            .position(|l| *l == head)
            .unwrap_or_else(|| panic!("{} missing from the help:\n{help}", s.name));
        // The entry: the indented lines after the head.
        let entry: Vec<&str> = lines[at + 1..]
            .iter()
            .take_while(|l| l.starts_with("        "))
            .map(|l| l.trim())
            .collect();
        let entry = entry.join(" ");
        // Apply the default the help shows, through the command line,
        // and compare with the real default.
        let args: Vec<String> = if let Some(rest) = entry.strip_suffix("On by default.") {
            assert!(!rest.is_empty());
            vec![format!("--{}", s.name.replace('_', "-"))]
        } else if entry.ends_with("Off by default.") {
            vec![format!("--no-{}", s.name.replace('_', "-"))]
        } else if entry.ends_with("Not set by default.") {
            assert_eq!(s.default, "", "{}", s.name);
            continue;
        } else {
            let (_, shown) = entry
                .rsplit_once("Default is ")
                .unwrap_or_else(|| panic!("no default for {}: {entry}", s.name));
            let shown = shown.trim_end_matches('.');
            let shown = shown.trim_matches('\'');
            vec![format!("--{}={shown}", s.name.replace('_', "-"))]
        };
        let mut args = args;
        if s.name == "trusted_proxy_count" {
            // It has no meaning without a trusted proxy.
            args.push("--trusted-proxy=127.0.0.1".into());
        }
        let parsed = Adjustments::parse_args(&args).unwrap();
        assert!(
            same_setting(&parsed.adjustments, &Adjustments::default(), s.name),
            "{}: the help's default ({args:?}) is not the real one",
            s.name
        );
    }
}

/// Whether two settings agree on `name` (host, port, listen and
/// trusted_proxy_count are "not set" by default, meaning the value the
/// table shows).
fn same_setting(a: &Adjustments, d: &Adjustments, name: &str) -> bool {
    let mut a = a.clone();
    a.clear_explicit();
    let marker_ok = match name {
        "host" => a.host.take().as_deref() == Some("0.0.0.0"),
        "port" => a.port.take() == Some(8080),
        "listen" => std::mem::take(&mut a.listen) == ["0.0.0.0:8080"],
        "trusted_proxy_count" => {
            a.trusted_proxy.take();
            a.trusted_proxy_count.take() == Some(1)
        }
        _ => true,
    };
    marker_ok && format!("{a:?}") == format!("{d:?}")
}

#[test]
fn the_readme_table_is_the_generated_one() {
    let readme = include_str!("../../README.md");
    let table = settings_markdown();
    assert_eq!(table.lines().count(), SETTINGS.len() + 2);
    if readme.contains(&table) {
        return;
    }
    if std::env::var_os("MAITRED_BLESS").is_some() {
        // After a change to the settings table: rewrite the README's table
        // between its markers.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let text = std::fs::read_to_string(path).unwrap();
        let begin = text
            .find("<!-- settings table:")
            .and_then(|i| text[i..].find('\n').map(|j| i + j + 1))
            .expect("README.md has no '<!-- settings table:' line");
        let end = text
            .find("<!-- end of settings table -->")
            .expect("README.md has no '<!-- end of settings table -->' line");
        std::fs::write(path, format!("{}{table}{}", &text[..begin], &text[end..])).unwrap();
        return;
    }
    panic!(
        "README.md's settings table is out of date: `MAITRED_BLESS=1 cargo test --lib readme` rewrites it; it should be:\n{table}"
    );
}

/// The settings waitress 3.0.2 has (its `Adjustments._params`): what the
/// table's `waitress:` marks are checked against.
const WAITRESS_3_0_2: [&str; 34] = [
    "host",
    "port",
    "ipv4",
    "ipv6",
    "listen",
    "threads",
    "trusted_proxy",
    "trusted_proxy_count",
    "trusted_proxy_headers",
    "log_untrusted_proxy_headers",
    "clear_untrusted_proxy_headers",
    "url_scheme",
    "url_prefix",
    "ident",
    "backlog",
    "recv_bytes",
    "send_bytes",
    "outbuf_overflow",
    "outbuf_high_watermark",
    "inbuf_overflow",
    "connection_limit",
    "cleanup_interval",
    "channel_timeout",
    "log_socket_errors",
    "max_request_header_size",
    "max_request_body_size",
    "expose_tracebacks",
    "unix_socket",
    "unix_socket_perms",
    "sockets",
    "asyncore_loop_timeout",
    "asyncore_use_poll",
    "channel_request_lookahead",
    "server_name",
];

#[test]
fn waitress_settings_are_all_there() {
    for name in WAITRESS_3_0_2 {
        let s = Adjustments::info(name).unwrap_or_else(|| panic!("{name} is missing"));
        assert!(s.waitress.is_some(), "{name} is waitress's");
    }
    // The others are this server's own, marked so in the table and in
    // their help.
    for s in SETTINGS {
        let own = !WAITRESS_3_0_2.contains(&s.name);
        assert_eq!(s.waitress.is_none(), own, "{}", s.name);
        assert_eq!(s.help.ends_with("(not in waitress)."), own, "{}", s.name);
    }
}
