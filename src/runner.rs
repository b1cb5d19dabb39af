//! The command line: `waitress-serve`'s options for a Rust program.
//!
//! Every setting in [`SETTINGS`] is an option, named with dashes:
//!
//! * `--name=VALUE` or `--name VALUE` for a setting with a value (the value
//!   is converted as [`Adjustments::set`] does, so exactly as waitress
//!   converts it);
//! * `--name` / `--no-name` for a boolean setting (`--no-` of a setting that
//!   is not boolean is an error);
//! * `--listen` may be given several times: the entries accumulate;
//! * `--help` shows the help text, generated from [`SETTINGS`] so that
//!   every setting's default in it is the one the server really has;
//! * `--` ends the options; as with waitress's `getopt`, the options end
//!   at the first argument that is not one, too.
//!
//! Option names may be shortened to any unique prefix, as waitress-serve
//! (Python's `getopt`) allows: `--thr=8` is `--threads=8`. A name that is
//! exactly an option wins over longer ones (`--ipv4`); a prefix of several
//! is an error naming them (`--log` could be `--log-untrusted-proxy-headers`
//! or `--log-socket-errors`). Scripts should spell options out: a prefix
//! that is unique today may stop being so when a setting is added.
//!
//! A program adds its own options with [`Cli::option`] and runs with
//! [`Cli::run`], which prints `Error: <message>` and the usage for a bad
//! command line and returns the process's exit code:
//!
//! ```no_run
//! use maitred::runner::{Cli, CliOption};
//! use maitred::{Request, Response};
//!
//! fn main() {
//!     let cli = Cli::new("greeter")
//!         .option(CliOption::value("greeting", "TEXT", "Hello", "What to say."));
//!     let code = cli.run(
//!         std::env::args_os().skip(1),
//!         &mut std::io::stdout(),
//!         &mut std::io::stderr(),
//!         |args| {
//!             let greeting = args.option("greeting").unwrap_or("Hello").to_string();
//!             maitred::serve(
//!                 move |_req: &mut Request| Response::text(greeting.clone()),
//!                 args.adjustments,
//!             )
//!         },
//!     );
//!     std::process::exit(code);
//! }
//! ```
//!
//! [`run_cli`] is the same for a program with no options of its own.
//!
//! Thread: start-up, on the thread that calls it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::io::Write;

use crate::adjustments::{Adjustments, SettingInfo, ValueKind, SETTINGS};
use crate::App;

/// An option of the program itself, beside the settings (such as the
/// `serve` example's `--app=NAME`).
#[derive(Clone, Debug)]
pub struct CliOption {
    name: String,
    metavar: Option<String>,
    default: String,
    help: String,
}

impl CliOption {
    /// An option with a value: `--name=METAVAR`, `default` when not given.
    /// `name` uses dashes (`"root-dir"`).
    pub fn value(name: &str, metavar: &str, default: &str, help: &str) -> CliOption {
        CliOption {
            name: name.to_string(),
            metavar: Some(metavar.to_string()),
            default: default.to_string(),
            help: help.to_string(),
        }
    }

    /// A flag: `--name` / `--no-name`, off when not given.
    pub fn flag(name: &str, help: &str) -> CliOption {
        CliOption {
            name: name.to_string(),
            metavar: None,
            default: "false".to_string(),
            help: help.to_string(),
        }
    }
}

/// A command line that did not parse. Its message says what is wrong and
/// names the option (and, for a bad value, the setting and the value).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgsError {
    /// No option has this name or starts with it (`--bogus`, `-x`).
    NotRecognized(String),
    /// `--no-NAME` where NAME is an option that takes a value.
    NotBoolean(String),
    /// A prefix of several options.
    Ambiguous {
        /// The option as given.
        option: String,
        /// The options it could be.
        candidates: Vec<String>,
    },
    /// An option that needs a value was last, with none.
    RequiresArgument(String),
    /// `--flag=value` for a flag.
    MustNotHaveArgument(String),
    /// A value the setting does not accept.
    BadValue {
        /// The option.
        option: String,
        /// What is wrong with the value.
        message: String,
    },
    /// The settings contradict each other (`--listen` with `--port`, ...):
    /// waitress's validation message.
    Settings(String),
    /// An argument that is not an option, for a program that takes none.
    UnexpectedArgument(String),
    /// An argument that is not valid UTF-8.
    NotUnicode(OsString),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::NotRecognized(o) => write!(f, "option {o} not recognized"),
            ArgsError::NotBoolean(o) => {
                let name = o.trim_start_matches("--no-");
                write!(
                    f,
                    "option {o} not recognized: --{name} takes a value, it is not a flag"
                )
            }
            ArgsError::Ambiguous { option, candidates } => write!(
                f,
                "option {option} not a unique prefix: it could be {}",
                candidates.join(", ")
            ),
            ArgsError::RequiresArgument(o) => write!(f, "option {o} requires argument"),
            ArgsError::MustNotHaveArgument(o) => {
                write!(f, "option {o} must not have an argument")
            }
            ArgsError::BadValue { option, message } => write!(f, "option {option}: {message}"),
            ArgsError::Settings(m) => f.write_str(m),
            ArgsError::UnexpectedArgument(a) => write!(
                f,
                "unexpected argument {a:?}: this program takes only options (--name=value)"
            ),
            ArgsError::NotUnicode(a) => write!(f, "argument {a:?} is not valid UTF-8"),
        }
    }
}

impl std::error::Error for ArgsError {}

/// A parsed command line.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ParsedArgs {
    /// The settings, with every option applied (and checked against each
    /// other with [`Adjustments::validate`]). Left at the defaults when
    /// `help` is true.
    pub adjustments: Adjustments,
    /// `--help` was given: show the help and do nothing else.
    pub help: bool,
    /// Arguments after the options (only when the program accepts them:
    /// [`Cli::positional`]).
    pub positional: Vec<String>,
    /// The program's own options (dashed name → value; `"true"`/`"false"`
    /// for flags), defaults included.
    options: BTreeMap<String, String>,
}

impl ParsedArgs {
    /// The value of one of the program's own options (its default when not
    /// given); `None` for a name the program did not declare.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    /// Whether one of the program's own flags is on.
    pub fn flag(&self, name: &str) -> bool {
        self.option(name) == Some("true")
    }
}

/// What an option name stands for.
#[derive(Clone, Copy, Debug)]
enum Target {
    Help,
    /// A setting, and for a boolean one the value the option gives it.
    Setting(&'static SettingInfo, Option<bool>),
    /// One of the program's options (index), and for a flag its value.
    Program(usize, Option<bool>),
}

impl PartialEq for Target {
    fn eq(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Help, Target::Help) => true,
            (Target::Setting(a, x), Target::Setting(b, y)) => a.name == b.name && x == y,
            (Target::Program(a, x), Target::Program(b, y)) => a == b && x == y,
            _ => false,
        }
    }
}

impl Target {
    fn takes_value(self) -> bool {
        match self {
            Target::Help => false,
            Target::Setting(_, b) | Target::Program(_, b) => b.is_none(),
        }
    }
}

/// A command line: the settings' options, the program's own, and the help
/// text.
#[derive(Clone, Debug)]
pub struct Cli {
    program: String,
    about: Option<String>,
    options: Vec<CliOption>,
    positional: Option<String>,
}

impl Cli {
    /// A command line for `program` (the name shown in the usage line).
    pub fn new(program: &str) -> Cli {
        Cli {
            program: program.to_string(),
            about: None,
            options: Vec::new(),
            positional: None,
        }
    }

    /// A paragraph shown under the usage line.
    pub fn about(mut self, text: &str) -> Cli {
        self.about = Some(text.to_string());
        self
    }

    /// Adds one of the program's own options.
    ///
    /// # Panics
    ///
    /// When its name is already taken: `help`, a setting's (with dashes),
    /// or an option added before (a mistake in the program, not in its
    /// command line).
    pub fn option(mut self, option: CliOption) -> Cli {
        let taken = option.name == "help"
            || SETTINGS
                .iter()
                .any(|s| s.name.replace('_', "-") == option.name)
            || self.options.iter().any(|o| o.name == option.name);
        assert!(
            !taken,
            "Cli::option: --{} is already an option",
            option.name
        );
        self.options.push(option);
        self
    }

    /// Accepts arguments after the options, shown as `metavar` in the
    /// usage line (without this, such an argument is an error).
    pub fn positional(mut self, metavar: &str) -> Cli {
        self.positional = Some(metavar.to_string());
        self
    }

    /// Every option name and what it stands for.
    fn names(&self) -> Vec<(String, Target)> {
        let mut v = vec![("help".to_string(), Target::Help)];
        for s in SETTINGS {
            let dashed = s.name.replace('_', "-");
            if s.kind == ValueKind::Bool {
                v.push((format!("no-{dashed}"), Target::Setting(s, Some(false))));
                v.push((dashed, Target::Setting(s, Some(true))));
            } else {
                v.push((dashed, Target::Setting(s, None)));
            }
        }
        for (i, o) in self.options.iter().enumerate() {
            if o.metavar.is_some() {
                v.push((o.name.clone(), Target::Program(i, None)));
            } else {
                v.push((format!("no-{}", o.name), Target::Program(i, Some(false))));
                v.push((o.name.clone(), Target::Program(i, Some(true))));
            }
        }
        v
    }

    /// Finds the option `name` (without the dashes) stands for: an exact
    /// name, else the one option it is a prefix of.
    fn lookup(&self, names: &[(String, Target)], name: &str) -> Result<Target, ArgsError> {
        let shown = format!("--{name}");
        if let Some((_, t)) = names.iter().find(|(n, _)| n == name) {
            return Ok(*t);
        }
        let matches: Vec<&(String, Target)> = if name.is_empty() {
            Vec::new()
        } else {
            names.iter().filter(|(n, _)| n.starts_with(name)).collect()
        };
        match matches.as_slice() {
            [(_, t)] => Ok(*t),
            [] => {
                // `--no-NAME` of an option that takes a value.
                if let Some(rest) = name.strip_prefix("no-") {
                    if let Ok(t) = self.lookup(names, rest) {
                        if t.takes_value() {
                            return Err(ArgsError::NotBoolean(shown));
                        }
                    }
                }
                Err(ArgsError::NotRecognized(shown))
            }
            many => Err(ArgsError::Ambiguous {
                option: shown,
                candidates: many.iter().map(|(n, _)| format!("--{n}")).collect(),
            }),
        }
    }

    /// Parses the arguments (without the program name): first which option
    /// each one is (getopt's errors), then, unless `--help` was given, the
    /// values, then the settings against each other.
    pub fn parse<I, S>(&self, args: I) -> Result<ParsedArgs, ArgsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut strings = Vec::new();
        for a in args {
            let a: OsString = a.into();
            strings.push(a.into_string().map_err(ArgsError::NotUnicode)?);
        }
        let names = self.names();
        let mut given: Vec<(Target, String, Option<String>)> = Vec::new();
        let mut positional = Vec::new();
        let mut it = strings.into_iter();
        while let Some(arg) = it.next() {
            if arg == "--" {
                positional.extend(it.by_ref());
                break;
            }
            if let Some(body) = arg.strip_prefix("--") {
                let (name, value) = match body.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (body, None),
                };
                let target = self.lookup(&names, name)?;
                let shown = format!("--{}", canonical(&names, target));
                let value = if target.takes_value() {
                    match value {
                        Some(v) => Some(v),
                        None => Some(
                            it.next()
                                .ok_or_else(|| ArgsError::RequiresArgument(shown.clone()))?,
                        ),
                    }
                } else {
                    if value.is_some() {
                        return Err(ArgsError::MustNotHaveArgument(shown));
                    }
                    None
                };
                given.push((target, shown, value));
            } else if arg.len() > 1 && arg.starts_with('-') {
                // waitress-serve has no short options.
                let first: String = arg.chars().take(2).collect();
                return Err(ArgsError::NotRecognized(first));
            } else {
                // getopt stops at the first argument that is not an option.
                positional.push(arg);
                positional.extend(it.by_ref());
                break;
            }
        }

        let mut parsed = ParsedArgs {
            adjustments: Adjustments::default(),
            help: given.iter().any(|(t, _, _)| *t == Target::Help),
            positional,
            options: self
                .options
                .iter()
                .map(|o| (o.name.clone(), o.default.clone()))
                .collect(),
        };
        if parsed.help {
            return Ok(parsed);
        }
        if self.positional.is_none() {
            if let Some(a) = parsed.positional.first() {
                return Err(ArgsError::UnexpectedArgument(a.clone()));
            }
        }
        // The values of an accumulating option (--listen), in order, each
        // with the option as first given.
        let mut accumulated: Vec<(&'static SettingInfo, String, Vec<String>)> = Vec::new();
        for (target, shown, value) in given {
            let bad = |e: crate::Error| ArgsError::BadValue {
                option: shown.clone(),
                message: e.to_string(),
            };
            match (target, value) {
                (Target::Setting(s, None), Some(v)) if s.accumulates => {
                    match accumulated.iter_mut().find(|(a, _, _)| a.name == s.name) {
                        Some((_, _, values)) => values.push(v),
                        None => accumulated.push((s, shown, vec![v])),
                    }
                }
                (Target::Setting(s, None), Some(v)) => {
                    parsed.adjustments.set(s.name, &v).map_err(bad)?
                }
                (Target::Setting(s, Some(b)), _) => parsed
                    .adjustments
                    .set(s.name, if b { "true" } else { "false" })
                    .map_err(bad)?,
                (Target::Program(i, flag), value) => {
                    let v = match flag {
                        Some(b) => b.to_string(),
                        None => value.unwrap_or_default(),
                    };
                    if let Some(o) = self.options.get(i) {
                        parsed.options.insert(o.name.clone(), v);
                    }
                }
                _ => {}
            }
        }
        for (s, option, values) in accumulated {
            parsed
                .adjustments
                .set(s.name, &values.join(" "))
                .map_err(|e| ArgsError::BadValue {
                    option,
                    message: e.to_string(),
                })?;
        }
        parsed
            .adjustments
            .validate()
            .map_err(|e| ArgsError::Settings(e.to_string()))?;
        Ok(parsed)
    }

    /// The usage line.
    pub fn usage(&self) -> String {
        match &self.positional {
            Some(p) => format!("Usage:\n\n    {} [OPTS] {p}\n", self.program),
            None => format!("Usage:\n\n    {} [OPTS]\n", self.program),
        }
    }

    /// The help text: the usage, the program's options, then one entry per
    /// setting with its default.
    pub fn help(&self) -> String {
        let mut out = self.usage();
        if let Some(about) = &self.about {
            out.push('\n');
            wrap_into(&mut out, about, 4);
        }
        out.push_str("\nStandard options:\n\n    --help\n        Show this information.\n\n");
        for o in &self.options {
            let (head, default) = match &o.metavar {
                Some(m) => (
                    format!("--{}={m}", o.name),
                    if o.default.is_empty() {
                        "Not set by default.".to_string()
                    } else {
                        format!("Default is '{}'.", o.default)
                    },
                ),
                None => (format!("--[no-]{}", o.name), "Off by default.".to_string()),
            };
            let _ = writeln!(out, "    {head}");
            wrap_into(&mut out, &format!("{} {default}", o.help), 8);
            out.push('\n');
        }
        out.push_str("Settings (waitress's, plus this server's own):\n\n");
        for s in SETTINGS {
            let _ = writeln!(out, "    {}", option_head(s));
            wrap_into(
                &mut out,
                &format!("{} {}", entry_help(s), default_text(s)),
                8,
            );
            out.push('\n');
        }
        wrap_into(
            &mut out,
            "An option may be shortened to a unique prefix (--thr=8 is --threads=8), and its value may follow as the next argument (--threads 8).",
            0,
        );
        out
    }

    /// Parses `args` (without the program name) and runs `main` with them.
    /// Returns the exit code: 0 after `--help` (printed to `out`) or when
    /// `main` succeeds; 1 for a bad command line (`Error: <message>`, a
    /// blank line and the help go to `err`) or when `main` fails
    /// (`Error: <message>` to `err`).
    pub fn run<I, S, F, E>(&self, args: I, out: &mut dyn Write, err: &mut dyn Write, main: F) -> i32
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
        F: FnOnce(ParsedArgs) -> Result<(), E>,
        E: fmt::Display,
    {
        match self.parse(args) {
            Err(e) => {
                let _ = write!(err, "Error: {e}\n\n{}", self.help());
                let _ = err.flush();
                1
            }
            Ok(p) if p.help => {
                let _ = write!(out, "{}", self.help());
                let _ = out.flush();
                0
            }
            Ok(p) => match main(p) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(err, "Error: {e}");
                    let _ = err.flush();
                    1
                }
            },
        }
    }
}

impl Adjustments {
    /// Parses waitress-serve style options (without the program name) into
    /// settings: [`Cli::parse`] for a program with no options of its own.
    ///
    /// ```
    /// use maitred::Adjustments;
    ///
    /// let args = Adjustments::parse_args(["--listen=127.0.0.1:8080", "--listen", "[::1]:8080", "--no-ipv4", "--thr=8"]).unwrap();
    /// assert_eq!(args.adjustments.listen, ["127.0.0.1:8080", "[::1]:8080"]);
    /// assert!(!args.adjustments.ipv4);
    /// assert_eq!(args.adjustments.threads, 8);
    /// let err = Adjustments::parse_args(["--no-threads"]).unwrap_err();
    /// assert!(err.to_string().starts_with("option --no-threads not recognized"));
    /// ```
    pub fn parse_args<I, S>(args: I) -> Result<ParsedArgs, ArgsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cli::new("maitred").parse(args)
    }
}

/// waitress-serve for a Rust application: parses `argv` (program name
/// first, as [`std::env::args_os`] gives it), then serves `app` with the
/// settings until SIGINT or SIGTERM ([`serve`](crate::serve)). Returns the
/// exit code, as [`Cli::run`] does: 0 after `--help` or a clean stop, 1 for
/// a bad command line or a server that could not start.
///
/// ```no_run
/// use maitred::{Request, Response};
///
/// fn main() {
///     let app = |_req: &mut Request| Response::text("Hello, World!");
///     let code = maitred::runner::run_cli(
///         std::env::args_os(),
///         &mut std::io::stdout(),
///         &mut std::io::stderr(),
///         app,
///     );
///     std::process::exit(code);
/// }
/// ```
pub fn run_cli<I, S, A>(argv: I, out: &mut dyn Write, err: &mut dyn Write, app: A) -> i32
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
    A: App,
{
    let mut argv = argv.into_iter().map(Into::into);
    let program = argv
        .next()
        .map(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "maitred".to_string());
    Cli::new(&program).run(argv, out, err, |args| crate::serve(app, args.adjustments))
}

/// The canonical name of a target: the option's own name (for a flag, the
/// positive or `no-` form it stands for).
fn canonical(names: &[(String, Target)], target: Target) -> &str {
    names
        .iter()
        .find(|(_, t)| *t == target)
        .map(|(n, _)| n.as_str())
        .unwrap_or("")
}

/// How a setting is written on the command line: `--name=METAVAR` or
/// `--[no-]name`.
fn option_head(s: &SettingInfo) -> String {
    let dashed = s.name.replace('_', "-");
    if s.kind == ValueKind::Bool {
        format!("--[no-]{dashed}")
    } else {
        format!("--{dashed}={}", s.metavar)
    }
}

/// A setting's help, with what the command line adds to it.
fn entry_help(s: &SettingInfo) -> String {
    if s.cli_note.is_empty() {
        s.help.to_string()
    } else {
        format!("{} {}", s.help, s.cli_note)
    }
}

/// A setting's default as the help shows it.
fn default_text(s: &SettingInfo) -> String {
    match s.kind {
        ValueKind::Bool if crate::adjustments::asbool(s.default) => "On by default.".into(),
        ValueKind::Bool => "Off by default.".into(),
        _ if s.default.is_empty() => "Not set by default.".into(),
        ValueKind::Int => format!("Default is {}.", s.default),
        _ => format!("Default is '{}'.", s.default),
    }
}

/// Appends `text` wrapped at 79 columns, each line indented by `indent`.
fn wrap_into(out: &mut String, text: &str, indent: usize) {
    let pad = " ".repeat(indent);
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > 79 {
            let _ = writeln!(out, "{pad}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{pad}{line}");
    }
}

/// The settings as a Markdown table (setting, default, command-line option,
/// meaning, waitress's equivalent): the README's table is this text, and a
/// test keeps it so.
#[cfg(test)]
pub(crate) fn settings_markdown() -> String {
    let mut out = String::from(
        "| Setting | Default | Command line | Meaning | waitress |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let default = match s.kind {
            ValueKind::Bool if crate::adjustments::asbool(s.default) => "on".to_string(),
            ValueKind::Bool => "off".to_string(),
            _ if s.default.is_empty() => "not set".to_string(),
            _ => format!("`{}`", s.default),
        };
        let waitress = s.waitress.unwrap_or("— (new)");
        let _ = writeln!(
            out,
            "| `{}` | {default} | `{}` | {} | {waitress} |",
            s.name,
            option_head(s),
            s.help.replace('|', "\\|")
        );
    }
    out
}

#[cfg(test)]
mod tests;
