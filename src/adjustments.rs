//! Settings: waitress's `Adjustments`, with the same names, defaults and
//! meaning.
//!
//! Two ways in:
//!
//! * typed: [`Adjustments`] has a public field per setting (it is
//!   `#[non_exhaustive]`, so start from [`Adjustments::default()`]) and a
//!   chainable method of the same name;
//! * by name: [`Adjustments::set`] takes a setting's name and a string value
//!   and converts it exactly as waitress does (`asbool`, `asoctal`, `aslist`,
//!   `slash_fixed_str`, `str_iftruthy`, `int`).
//!
//! ```
//! use maitred::Adjustments;
//!
//! let mut adj = Adjustments::default().threads(8).channel_timeout(30);
//! adj.set("listen", "127.0.0.1:0 [::1]:0").unwrap();
//! adj.set("expose_tracebacks", "yes").unwrap();
//! assert!(adj.expose_tracebacks);
//! assert!(adj.set("thread", "8").unwrap_err().to_string().contains("Unknown adjustment"));
//! ```
//!
//! [`Adjustments::validate`] applies waitress's validation rules (which
//! combinations of settings are allowed); [`Adjustments::resolve`] also
//! resolves the listen addresses. The command line (`--name=value`, as
//! waitress-serve takes it) is in [`runner`](crate::runner).
//!
//! Every setting, its default, command-line option, meaning and waitress
//! equivalent is in the README's settings table, generated from
//! [`SETTINGS`] (as `--help` is). Beyond waitress, three settings off or
//! neutral by default:
//!
//! * `reuse_port`: `SO_REUSEPORT` on TCP listeners, so several processes
//!   (one I/O thread each) can share a port;
//! * `shutdown_timeout`: how long a graceful stop waits for running
//!   requests;
//! * `systemd_socket_activation`: serve on the sockets systemd passes
//!   ([`Adjustments::take_systemd_sockets`]).
//!
//! and three limits on the elements of a request head, which waitress
//! bounds only as a whole (`max_request_header_size`):
//!
//! * `max_request_line_size` (8192 bytes): a longer request line gets 414
//!   when its target is what is long, else 400;
//! * `max_header_field_size` (8192 bytes): a longer field line gets 431;
//! * `max_header_fields` (100): one field line more gets 431.
//!
//! and three deadlines for a client that sends a request too slowly (408
//! and close; waitress has none, so a dribbling client holds its
//! connection for ever):
//!
//! * `request_head_timeout` (30 s): a head must be complete that long
//!   after its first byte;
//! * `request_body_timeout` (20 s) and `min_request_body_rate` (500
//!   bytes/s): a body must arrive within the grace plus a second per that
//!   many bytes (Apache's mod_reqtimeout rule).
//!
//! A `listen` entry's port may be a service name (`127.0.0.1:http`), as
//! waitress's `getaddrinfo` allows.
//!
//! Each setting is defined once, as one entry of the table in this module
//! (the `settings!` macro): its field and rustdoc, its default, its
//! chainable method, how [`Adjustments::set`] converts it, and its lines in
//! `--help` and in the README's table all come from that entry.
//!
//! This file holds that table, with [`Adjustments`]' constructors and
//! accessors; the rules a set of settings is checked against
//! ([`Adjustments::validate`]) are in `checks`, resolving the listening
//! endpoints ([`ListenSpec`], [`Adjustments::resolve`]) is in `listen`, and
//! waitress's converters are in `cast`.
//!
//! Thread: any (settings are made before the server starts, then only
//! read).

use std::collections::BTreeSet;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

mod cast;
mod checks;
mod listen;

pub use listen::ListenSpec;

/// The value type of a setting: how its string form is converted (each
/// kind is one of waitress's cast functions, in [`cast`]) and how the
/// command line takes it (a `Bool` is a flag, `--[no-]name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `asbool`: `t`, `true`, `y`, `yes`, `on`, `1` (any case, surrounding
    /// whitespace ignored) are true; anything else is false.
    Bool,
    /// `int`: a decimal integer.
    Int,
    /// `str`.
    Str,
    /// `str_iftruthy`: an empty string means "not set".
    OptStr,
    /// `aslist`: split on newlines and whitespace.
    List,
    /// `asoctal`: an octal number (`777` or `0o777`).
    Octal,
    /// `slash_fixed_str`: a URL path prefix, normalised to one leading
    /// slash and no trailing slash.
    SlashPath,
    /// Pre-bound listening descriptors.
    Sockets,
}

impl ValueKind {
    /// What a value of this kind looks like in `--help`, for a setting
    /// whose table entry names no `metavar`.
    pub const fn metavar(self) -> &'static str {
        match self {
            ValueKind::Int => "INT",
            ValueKind::Octal => "PERMS",
            ValueKind::Sockets => "FDS",
            ValueKind::List => "LIST",
            ValueKind::Bool | ValueKind::Str | ValueKind::OptStr | ValueKind::SlashPath => "STR",
        }
    }
}

/// One setting: what its entry in the table of this module says of it, for
/// `--help`, the README's settings table and the command line.
#[derive(Clone, Copy, Debug)]
pub struct SettingInfo {
    /// The setting's name (`snake_case`; the command line uses dashes).
    pub name: &'static str,
    /// How its string form is converted.
    pub kind: ValueKind,
    /// The default, in the string form [`Adjustments::set`] takes (and
    /// `--help` shows). For a setting that is not set by default but then
    /// means a value (such as `port`), that value.
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
    /// What its value looks like in `--help` (`--name=METAVAR`).
    pub metavar: &'static str,
    /// What `--help` adds to `help` about the option (empty for nothing).
    pub cli_note: &'static str,
    /// Given several times on the command line, its values accumulate
    /// (joined with spaces) instead of the last one winning.
    pub accumulates: bool,
    /// waitress's equivalent, as the README's table says it; `None` for a
    /// setting of this server's own.
    pub waitress: Option<&'static str>,
}

/// The first of its token trees: the value of an optional key of a table
/// entry when the entry has it, else the default written after it.
macro_rules! first {
    ($first:tt $($rest:tt)*) => {
        $first
    };
}

/// A table entry's `waitress:` key: `same` (waitress has the setting under
/// the same name), `new` (it does not), or a note for the README's table.
macro_rules! waitress_note {
    (same) => {
        Some("same name")
    };
    (new) => {
        None
    };
    ($note:literal) => {
        Some($note)
    };
}

/// The cast function of a value kind (an entry's `cast:` key overrides it).
macro_rules! cast_of {
    (Bool) => {
        cast::asbool
    };
    (Int) => {
        cast::int
    };
    (Str) => {
        cast::string
    };
    (OptStr) => {
        cast::str_iftruthy
    };
    (List) => {
        cast::aslist
    };
    (Octal) => {
        cast::asoctal
    };
    (SlashPath) => {
        cast::slash_fixed_str
    };
    (Sockets) => {
        cast::fds
    };
}

/// A field's value in `Adjustments::default()`: the table's default
/// converted as `set` converts it, or, for a setting that is not set by
/// default (`if unset`), the type's empty value.
macro_rules! default_value {
    ($cast:tt $name:ident $default:tt) => {
        $cast(stringify!($name), $default).expect(concat!(
            "the settings table's default of ",
            stringify!($name),
            " converts"
        ))
    };
    ($cast:tt $name:ident $default:tt unset) => {
        Default::default()
    };
}

/// The sentence of a field's rustdoc that gives its default.
macro_rules! default_doc {
    ($kind:ident "") => {
        "Not set by default."
    };
    ($kind:ident $default:tt unset) => {
        concat!("Not set by default, which means `", $default, "`.")
    };
    (Octal $default:tt) => {
        concat!("Default: `0o", $default, "`.")
    };
    ($kind:ident $default:tt) => {
        concat!("Default: `", $default, "`.")
    };
}

/// Generates, from one entry per setting: [`SETTINGS`], the [`Adjustments`]
/// struct (a public field per setting, documented with the entry's help,
/// its `///` lines and its default), `Default`, a chainable method per
/// setting and [`Adjustments::set`].
///
/// An entry is `name: FieldType { key: value, ... }` with these keys, in
/// this order (the optional ones may be left out):
///
/// * `kind:` the [`ValueKind`], which picks the cast function (`cast_of!`);
/// * `cast:` (optional) another cast function, from [`cast`];
/// * `default:` the default in `set`'s string form, which `Default`
///   converts with the cast; `"..." if unset` for a setting whose field is
///   empty by default (`None`, no entries) and which then means `"..."`;
/// * `metavar:` (optional) for `--help`, else the kind's;
/// * `waitress:` `same`, `new` or a note (see `waitress_note!`);
/// * `deprecated:` (optional) a warning `set` logs;
/// * `help:` one or two sentences for `--help`, the README and rustdoc;
/// * `cli_note:` (optional) what `--help` adds about the option;
/// * `accumulates: true` (optional) for an option whose values add up;
/// * `setter: |v: Type| expr` (optional): the chainable method's argument
///   and how it becomes the field; else it takes the field's type.
///
/// `///` lines (and other attributes) before an entry go on its field and
/// method. After a change, `MAITRED_BLESS=1 cargo test --lib readme`
/// rewrites the README's table.
macro_rules! settings {
    ($(
        $(#[$attr:meta])*
        $name:ident: $ty:ty {
            kind: $kind:ident,
            $(cast: $cast:path,)?
            default: $default:tt $(if $unset:ident)?,
            $(metavar: $metavar:literal,)?
            waitress: $waitress:tt,
            $(deprecated: $deprecated:literal,)?
            help: $help:literal,
            $(cli_note: $cli_note:literal,)?
            $(accumulates: $accumulates:literal,)?
            $(setter: |$v:ident: $vty:ty| $conv:expr,)?
        }
    )*) => {
        /// Every setting, in waitress's order, followed by this server's own
        /// additions. `--help` and the README's table are generated from it,
        /// and [`Adjustments::default`] converts its defaults, so the
        /// defaults they show are the real ones.
        pub const SETTINGS: &[SettingInfo] = &[$(
            SettingInfo {
                name: stringify!($name),
                kind: ValueKind::$kind,
                default: $default,
                help: $help,
                metavar: first!($($metavar)? (ValueKind::$kind.metavar())),
                cli_note: first!($($cli_note)? ""),
                accumulates: first!($($accumulates)? false),
                waitress: waitress_note!($waitress),
            },
        )*];

        /// The server's settings: a public field and a chainable method per
        /// setting (see [`SETTINGS`] and the README's table for all of them
        /// at a glance), and [`set`](Adjustments::set) by name. See the
        /// module docs for the two ways to set them.
        #[derive(Clone, Debug)]
        #[non_exhaustive]
        pub struct Adjustments {
            $(
                #[doc = $help]
                #[doc = ""]
                $(#[$attr])*
                #[doc = ""]
                #[doc = default_doc!($kind $default $($unset)?)]
                pub $name: $ty,
            )*
            /// Whether `sockets` holds the descriptors systemd passed.
            activated: bool,
            /// Which settings were given explicitly (by name or builder
            /// method), for the rules about settings that exclude each other.
            explicit: BTreeSet<&'static str>,
        }

        impl Default for Adjustments {
            fn default() -> Self {
                Adjustments {
                    $( $name: default_value!(
                        (first!($($cast)? (cast_of!($kind)))) $name $default $($unset)?
                    ), )*
                    activated: false,
                    explicit: BTreeSet::new(),
                }
            }
        }

        impl Adjustments {
            $(
                #[doc = concat!("Sets `", stringify!($name), "`.")]
                #[doc = ""]
                #[doc = $help]
                #[doc = ""]
                $(#[$attr])*
                #[doc = ""]
                #[doc = default_doc!($kind $default $($unset)?)]
                pub fn $name(mut self, value: first!($($vty)? $ty)) -> Adjustments {
                    self.$name = first!($({
                        let $v: $vty = value;
                        $conv
                    })? value);
                    self.explicit.insert(stringify!($name));
                    self
                }
            )*

            /// Sets a setting from its string form, converted as waitress
            /// does. Unknown names are an error (`Unknown adjustment 'x'`),
            /// as are values that do not convert (the message names the
            /// setting and the value).
            pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
                let name = match name {
                    $(stringify!($name) => {
                        $(crate::log_warning!($deprecated);)?
                        self.$name = first!($($cast)? (cast_of!($kind)))(stringify!($name), value)?;
                        stringify!($name)
                    })*
                    _ => return Err(Error::config(format!("Unknown adjustment '{name}'"))),
                };
                self.explicit.insert(name);
                Ok(())
            }
        }
    };
}

settings! {
    host: Option<String> {
        kind: Str, default: "0.0.0.0" if unset, metavar: "ADDR", waitress: same,
        help: "Hostname or IP address on which to listen. Setting host or port replaces listen.",
        cli_note: "Not with --listen.",
        setter: |v: &str| Some(v.to_string()),
    }
    port: Option<u16> {
        kind: Int, default: "8080" if unset, metavar: "PORT", waitress: same,
        help: "TCP port on which to listen.",
        cli_note: "Not with --listen.",
        setter: |v: u16| Some(v),
    }
    ipv4: bool {
        kind: Bool, default: "true", waitress: same,
        help: "Allow IPv4 addresses when resolving listen entries.",
    }
    ipv6: bool {
        kind: Bool, default: "true", waitress: same,
        help: "Allow IPv6 addresses when resolving listen entries.",
    }
    /// The method takes one entry per string (`host:port`, `[v6]:port`,
    /// `*:port`).
    #[allow(rustdoc::broken_intra_doc_links)] // the help's '[::1]:8080'
    listen: Vec<String> {
        kind: List, default: "0.0.0.0:8080" if unset, metavar: "HOST:PORT", waitress: same,
        help: "Space-separated list of host:port entries to listen on ('*:8080' for all interfaces, '[::1]:8080' for IPv6).",
        cli_note: "May be given several times; the entries accumulate. Not with --host, --port, --unix-socket or --sockets.",
        accumulates: true,
        setter: |v: &[&str]| v.iter().map(|x| x.to_string()).collect(),
    }
    threads: usize {
        kind: Int, default: "4", waitress: same,
        help: "Number of threads used to run the application.",
    }
    /// I/O threads, each with its own dispatcher loop (poller, trigger,
    /// timers) over its share of the connections; the worker pool, the
    /// statistics and the settings are shared. 1 is waitress's model; 0 is
    /// one per available core, at most [`Adjustments::MAX_IO_THREADS`].
    /// The first loop runs on the thread that calls `run` (or `serve`) and
    /// accepts every connection, handing each to the loop with the fewest
    /// (see the README's "Several I/O threads").
    io_threads: usize {
        kind: Int, default: "1", waitress: new,
        help: "I/O threads, each running its own loop over its share of the connections (0: one per core, at most 64); the workers are shared (not in waitress).",
    }
    trusted_proxy: Option<String> {
        kind: OptStr, default: "", metavar: "ADDR",
        waitress: "same name; lists and CIDR ranges are new",
        help: "Address of the reverse proxy whose proxy headers are trusted ('*' for any; also a comma-separated list of addresses and CIDR ranges).",
        setter: |v: &str| Some(v.to_string()),
    }
    trusted_proxy_count: Option<usize> {
        kind: Int, default: "1" if unset, waitress: same,
        help: "How many trusted proxies are in front of the server: how many hops of X-Forwarded-For/-Host and Forwarded to believe.",
        setter: |v: usize| Some(v),
    }
    /// Lower-cased.
    trusted_proxy_headers: BTreeSet<String> {
        kind: List, cast: cast::asset_lowercase, default: "", metavar: "NAMES", waitress: same,
        help: "Which proxy headers to trust: x-forwarded-for, x-forwarded-host, x-forwarded-proto, x-forwarded-port, x-forwarded-by, or forwarded.",
        setter: |v: &[&str]| v.iter().map(|x| x.to_ascii_lowercase()).collect(),
    }
    log_untrusted_proxy_headers: bool {
        kind: Bool, default: "false", waitress: same,
        help: "Log the proxy headers that were removed because they were not trusted.",
    }
    clear_untrusted_proxy_headers: bool {
        kind: Bool, default: "true", waitress: same,
        help: "Remove proxy headers that are not trusted before the application sees the request.",
    }
    url_scheme: String {
        kind: Str, default: "http", waitress: same,
        help: "Default URL scheme given to the application.",
        setter: |v: &str| v.to_string(),
    }
    /// Normalised as waitress's `slash_fixed_str` does: one leading slash,
    /// no trailing one.
    url_prefix: String {
        kind: SlashPath, default: "", metavar: "PATH", waitress: same,
        help: "Mount point of the application: SCRIPT_NAME, taken off the front of PATH_INFO.",
        setter: |v: &str| slash_fixed_str(v),
    }
    /// `None` sends no `Server` header. waitress's default is `waitress`:
    /// set it to that to send the old text.
    ident: Option<String> {
        kind: OptStr, default: "maitred", waitress: "same name (default `waitress` there)",
        help: "Server identity sent in the Server header and error pages; empty to send no Server header.",
        setter: |v: &str| (!v.is_empty()).then(|| v.to_string()),
    }
    backlog: i32 {
        kind: Int, default: "1024", waitress: same,
        help: "Length of the listen queue of each listening socket.",
    }
    recv_bytes: usize {
        kind: Int, default: "8192", waitress: same,
        help: "Bytes read from a socket at a time.",
    }
    send_bytes: usize {
        kind: Int, default: "1", waitress: same,
        deprecated: "send_bytes will be removed in a future release",
        help: "Deprecated (as in waitress): output is sent once at least this many bytes are buffered.",
    }
    outbuf_overflow: u64 {
        kind: Int, default: "1048576", waitress: same,
        help: "A response buffer larger than this many bytes moves to a temporary file.",
    }
    outbuf_high_watermark: u64 {
        kind: Int, default: "16777216", waitress: same,
        help: "The application's writes wait while more than this many response bytes are buffered for a connection (unless they may spill: outbuf_spill_limit).",
    }
    /// A generated body (reader, chunks, writer) that runs ahead of a slow
    /// client goes on into the connection's temporary file instead of
    /// holding its worker at `outbuf_high_watermark`, while the
    /// connection's buffered output stays under this and the server's
    /// spilled bytes under `outbuf_spill_total`: the worker finishes and
    /// is free, and the I/O thread sends the rest (`sendfile`).
    outbuf_spill_limit: u64 {
        kind: Int, default: "268435456", waitress: new,
        help: "Most response bytes one connection may buffer (in its temporary file) before the application's writes wait at outbuf_high_watermark; up to it, a generated body runs ahead of a slow client and its worker is free; 0: never (not in waitress).",
    }
    /// The disk a burst of slow downloads may take; see
    /// `outbuf_spill_limit`.
    outbuf_spill_total: u64 {
        kind: Int, default: "1073741824", waitress: new,
        help: "Most response bytes beyond outbuf_high_watermark all connections together may buffer (in temporary files); past it, writes wait at the watermark as in waitress (not in waitress).",
    }
    inbuf_overflow: u64 {
        kind: Int, default: "524288", waitress: same,
        help: "A request body larger than this many bytes moves to a temporary file.",
    }
    /// At the limit the server keeps accepting: it makes room by closing,
    /// oldest first, connections idle between requests, then connections
    /// still receiving a head or yet to send one (never one whose request
    /// is queued or running
    /// or whose response is being sent), and answers `503` with
    /// `Retry-After: 1` when there is nothing to close. The descriptor
    /// limit is raised at start to hold this many connections (plus a
    /// reserve); where the hard limit is lower, the server holds what it
    /// can and says so.
    connection_limit: usize {
        kind: Int, default: "10000", waitress: "same name (default 100 there; it stops accepting at the limit)",
        help: "Most client connections open at once; past it, idle and slow-head connections are closed to make room, else new ones get 503.",
    }
    cleanup_interval: u64 {
        kind: Int, default: "30", waitress: same,
        help: "Seconds between sweeps for idle connections; at most 315360000 (ten years).",
    }
    channel_timeout: u64 {
        kind: Int, default: "120", waitress: same,
        help: "Seconds a connection may stay idle (no request running, nothing received or sent) before it is closed; at most 315360000 (ten years).",
    }
    /// Answered by the I/O thread without touching the pool or the
    /// application; counted in [`Stats::requests_shed`](crate::Stats::requests_shed).
    max_queue_depth: usize {
        kind: Int, default: "0", waitress: new,
        help: "When this many connections' requests already wait for a worker, a newly received request is answered 503 with Retry-After: 1 at once; 0 is no limit (not in waitress).",
    }
    /// The log has its own writer thread and a bounded queue: a slow disk
    /// never delays a request (lines are dropped and counted instead).
    /// `log` (with the `log` feature) sends lines to the `log` facade, target
    /// `maitred::access`. [`ServerHandle::reopen_logs`](crate::ServerHandle::reopen_logs)
    /// (and SIGHUP under [`serve`](crate::serve)) reopens the file.
    access_log: String {
        kind: Str, default: "", metavar: "FILE", waitress: new,
        help: "Write an access log line for every response: '-' for standard error, or a file (appended to, created 0640); empty is off (not in waitress).",
    }
    /// Directives: `%h` client, `%l` `%u` `-`, `%t` time received, `%r`
    /// request line, `%>s` (or `%s`) status, `%b` body bytes, `%D`
    /// microseconds and `%T` seconds from the request received to the
    /// response written, `%{NAME}i` a request header, `%{NAME}o` a response
    /// header, `%%`.
    access_log_format: String {
        kind: Str, default: "combined", metavar: "FORMAT", waitress: new,
        help: "The access log's lines: common, combined, json (one object a line), or an Apache-style template of %h %l %u %t %r %>s %b %D %T %{NAME}i %{NAME}o (not in waitress).",
    }
    /// Threads cannot be interrupted: the warning says which request holds
    /// one, so that the application can bound its own work.
    slow_request_warning: u64 {
        kind: Int, default: "0", waitress: new,
        help: "Log one warning for each request still in the application after this many seconds (method, path, client, thread, time so far); 0 is off, at most 315360000 (not in waitress).",
    }
    max_queue_wait: u64 {
        kind: Int, default: "0", waitress: new,
        help: "A request that waited this many seconds for a worker is answered 503 with Retry-After: 1 instead of running the application; 0 is off, at most 315360000 (not in waitress).",
    }
    /// Dribbling bytes does not extend it. `408 Request Timeout` is sent
    /// with `Connection: close`, and the connection closes.
    request_head_timeout: u64 {
        kind: Int, default: "30", waitress: new,
        help: "Seconds a request head may take from its first byte (on a kept connection, from the previous response) until it is complete; then 408 and close; 0 is off, at most 315360000 (not in waitress).",
    }
    /// With [`min_request_body_rate`](Self::min_request_body_rate), the
    /// rule of Apache's mod_reqtimeout (`body=20,MinRate=500`).
    request_body_timeout: u64 {
        kind: Int, default: "20", waitress: new,
        help: "Seconds of grace a request body has from the end of its head, extended by a second for every min_request_body_rate bytes received; past it, 408 and close; 0 is off, at most 315360000 (not in waitress).",
    }
    min_request_body_rate: u64 {
        kind: Int, default: "500", waitress: new,
        help: "The least request-body rate, in bytes per second: each this many bytes received extend request_body_timeout by a second; 0 turns the body deadline off (not in waitress).",
    }
    log_socket_errors: bool {
        kind: Bool, default: "true", waitress: same,
        help: "Log socket errors: failed accepts, reads and sends (a client that went away is not an error).",
    }
    max_request_header_size: u64 {
        kind: Int, default: "262144", waitress: same,
        help: "Largest request head (request line, header fields, blank line) in bytes; larger gets 431.",
    }
    max_request_body_size: u64 {
        kind: Int, default: "1073741824", waitress: same,
        help: "Largest request body in bytes (chunked: bytes on the wire); larger gets 413.",
    }
    expose_tracebacks: bool {
        kind: Bool, default: "false", waitress: same,
        help: "Put the panic message and location of a failing application in the 500 response body.",
    }
    unix_socket: Option<PathBuf> {
        kind: OptStr, default: "", metavar: "PATH", waitress: same,
        help: "Path of a unix-domain socket to listen on (instead of TCP).",
        setter: |v: &str| Some(PathBuf::from(v)),
    }
    unix_socket_perms: u32 {
        kind: Octal, default: "600", waitress: same,
        help: "Octal permissions of the unix-domain socket file.",
    }
    /// The server takes them over and closes them when it stops.
    sockets: Vec<RawFd> {
        kind: Sockets, default: "", waitress: "same name (socket objects there, descriptor numbers here)",
        help: "Already-bound listening sockets (file descriptors) to serve on.",
        cli_note: "Space-separated descriptor numbers; the server takes them over.",
        setter: |v: &[RawFd]| v.to_vec(),
    }
    asyncore_loop_timeout: u64 {
        kind: Int, default: "1", waitress: same,
        help: "Seconds the I/O loop waits for events at most before running its periodic work; at most 315360000 (ten years).",
    }
    asyncore_use_poll: bool {
        kind: Bool, default: "false", waitress: same,
        help: "Use poll(2) instead of the platform's default (epoll on Linux, kqueue on macOS/BSD).",
    }
    channel_request_lookahead: usize {
        kind: Int, default: "0", waitress: same,
        help: "How many further requests may be read and queued on a connection while one is running.",
    }
    server_name: String {
        kind: Str, default: "waitress.invalid", waitress: same,
        help: "Value of SERVER_NAME given to the application.",
        setter: |v: &str| v.to_string(),
    }
    reuse_port: bool {
        kind: Bool, default: "false", waitress: new,
        help: "Set SO_REUSEPORT on TCP listeners so several processes can share a port (not in waitress).",
    }
    /// The default is the time waitress gives its threads.
    shutdown_timeout: u64 {
        kind: Int, default: "5", waitress: new,
        help: "Seconds a graceful stop waits for running requests before it gives up on them; at most 315360000, ten years (not in waitress).",
    }
    /// See [`ServerHandle::handover`](crate::ServerHandle::handover).
    handover_timeout: u64 {
        kind: Int, default: "30", waitress: new,
        help: "Seconds a handover (SIGUSR2) waits for the new process to say it is serving; then it is stopped and this process serves on; at most 315360000 (not in waitress).",
    }
    /// See [`Adjustments::take_systemd_sockets`].
    systemd_socket_activation: bool {
        kind: Bool, default: "false", waitress: new,
        help: "Serve on the listening sockets systemd passes (LISTEN_FDS, LISTEN_PID) instead of binding any (not in waitress).",
    }
    max_request_line_size: u64 {
        kind: Int, default: "8192", waitress: new,
        help: "Largest request line in bytes (CRLF not counted); longer gets 414 when the request-target is what is long, else 400 (not in waitress).",
    }
    max_header_field_size: u64 {
        kind: Int, default: "8192", waitress: new,
        help: "Largest header field line (name, colon and value) in bytes; longer gets 431 (not in waitress).",
    }
    max_header_fields: usize {
        kind: Int, default: "100", waitress: new,
        help: "Most header field lines a request may have; one more gets 431 (not in waitress).",
    }
    /// The PROXY protocol (HAProxy's `send-proxy`/`send-proxy-v2`, AWS NLB,
    /// Envoy): a connection from a peer `trusted_proxy` matches must begin
    /// with a v1 or v2 header, whose source address becomes the client's
    /// (`Request::remote_addr`, the access log's `%h`, where the proxy
    /// headers' rules start). A connection from any other peer is served
    /// as always: a PROXY header from it is a malformed request (400).
    proxy_protocol: bool {
        kind: Bool, default: "false", waitress: new,
        help: "Connections from trusted_proxy peers must begin with a PROXY protocol v1 or v2 header (an L4 load balancer's), whose source address becomes the client address; a bad or missing header closes the connection (not in waitress).",
    }
    /// See [`Response::upgrade`](crate::Response::upgrade): each upgraded
    /// connection has a thread of its own and is not counted in
    /// `connection_limit`.
    upgraded_connection_limit: usize {
        kind: Int, default: "1000", waitress: new,
        help: "Most connections that switched protocols (101 Switching Protocols) open at once; past it, an upgrade is answered 503 with Retry-After: 1, and 0 refuses every upgrade (not in waitress).",
    }
    /// Read by the `websocket` feature's `WebSocket`s (through the
    /// upgraded stream they run on); without the feature it has no effect.
    /// A frame header that announces a message past it fails the
    /// connection at once, before the payload is read.
    websocket_max_message_size: u64 {
        kind: Int, default: "16777216", waitress: new,
        help: "Largest WebSocket message (fragments together) in bytes, with the websocket feature; a larger one closes the connection with code 1009 (not in waitress).",
    }
}

/// waitress's `asbool`.
pub fn asbool(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "t" | "true" | "y" | "yes" | "on" | "1"
    )
}

/// waitress's `aslist`: split on newlines, then on whitespace.
pub fn aslist(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// waitress's `asoctal`: `int(s, 8)` (so `"777"` and `"0o777"` both work).
pub fn asoctal(s: &str) -> Option<u32> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let t = t
        .strip_prefix("0o")
        .or_else(|| t.strip_prefix("0O"))
        .unwrap_or(t);
    let t = t.replace('_', "");
    if neg || t.is_empty() {
        return None;
    }
    u32::from_str_radix(&t, 8).ok()
}

/// waitress's `slash_fixed_str`: one leading slash, no trailing slash,
/// empty stays empty (and, as in waitress, `/` stays `/`).
pub fn slash_fixed_str(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return String::new();
    }
    let inner = s.trim_start_matches('/').trim_end_matches('/');
    if inner.is_empty() {
        // waitress: "/" + "".rstrip("/") == "/"
        return "/".into();
    }
    format!("/{inner}")
}

impl Adjustments {
    /// The largest value a setting in seconds may have (`channel_timeout`,
    /// `cleanup_interval`, `shutdown_timeout` and the others whose help
    /// says "seconds"): 315,360,000 seconds, ten years of 365 days.
    ///
    /// Such a setting is added to an [`Instant`](std::time::Instant) and
    /// multiplied into milliseconds, and neither may overflow: ten years is
    /// far longer than any timeout means (a setting that should never fire
    /// can still be made as good as never), and small enough for every
    /// platform's `Instant` (even one counting nanoseconds since boot in
    /// 64 bits holds 584 years) and for milliseconds in a `u64`.
    /// [`validate`](Adjustments::validate) refuses a larger value, naming the
    /// setting.
    pub const MAX_SECONDS: u64 = 10 * 365 * 24 * 60 * 60;

    /// The most I/O threads (`io_threads`): beyond a few dozen loops, the
    /// one that accepts, and the shared worker pool, are the limit.
    pub const MAX_IO_THREADS: usize = 64;

    /// The I/O threads this server runs: `io_threads`, or for 0 one per
    /// available core (1 where that cannot be told), at most
    /// [`MAX_IO_THREADS`](Self::MAX_IO_THREADS).
    pub fn io_thread_count(&self) -> usize {
        match self.io_threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(Self::MAX_IO_THREADS),
            n => n.min(Self::MAX_IO_THREADS),
        }
    }

    /// The table entry of a setting.
    #[cfg(test)]
    pub(crate) fn info(name: &str) -> Option<&'static SettingInfo> {
        SETTINGS.iter().find(|s| s.name == name)
    }

    /// Builds settings from `(name, value)` pairs, as `Adjustments(**kw)`.
    pub fn from_pairs<'a, I>(pairs: I) -> Result<Adjustments, Error>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut adj = Adjustments::default();
        for (k, v) in pairs {
            adj.set(k, v)?;
        }
        Ok(adj)
    }

    fn given(&self, name: &str) -> bool {
        self.explicit.contains(name)
            || match name {
                "host" => self.host.is_some(),
                "port" => self.port.is_some(),
                "listen" => !self.listen.is_empty(),
                "sockets" => !self.sockets.is_empty(),
                "unix_socket" => self.unix_socket.is_some(),
                _ => false,
            }
    }

    /// Takes the listening sockets systemd passed to this process
    /// (`LISTEN_PID` must be this process; `LISTEN_FDS` says how many, from
    /// descriptor 3 on) as `sockets`, and removes `LISTEN_PID`, `LISTEN_FDS`
    /// and `LISTEN_FDNAMES` from the environment. Sets
    /// `systemd_socket_activation`. [`create_server`](crate::create_server)
    /// calls it when `systemd_socket_activation` is set; calling it again
    /// does nothing.
    ///
    /// Errors: `listen`, `host`, `port`, `unix_socket` or `sockets` is set
    /// too, or the variables are missing, malformed, or meant for another
    /// process (the message names the variable and its value). Removing
    /// environment variables is not synchronised with other threads reading
    /// the environment: call this before starting such threads.
    pub fn take_systemd_sockets(&mut self) -> Result<(), Error> {
        if self.activated {
            return Ok(());
        }
        self.systemd_socket_activation = true;
        self.validate()?;
        self.sockets = crate::activation::take_from_env()?;
        self.activated = true;
        Ok(())
    }

    /// Forgets which settings were given (for comparing settings in tests).
    #[cfg(test)]
    pub(crate) fn clear_explicit(&mut self) {
        self.explicit.clear();
    }

    /// The trusted proxy hop count in effect (1 when not set).
    pub fn effective_trusted_proxy_count(&self) -> usize {
        self.trusted_proxy_count.unwrap_or(1)
    }

    /// The loop's wait limit.
    pub(crate) fn loop_timeout(&self) -> Duration {
        Duration::from_secs(self.asyncore_loop_timeout)
    }
}

#[cfg(test)]
mod tests;
