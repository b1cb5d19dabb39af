//! The server's log lines.
//!
//! Like waitress's `waitress` and `waitress.queue` loggers, with Python's
//! `logging.basicConfig` format by default: `LEVEL:target:message` on
//! standard error (`INFO:maitred:Serving on http://127.0.0.1:8080`). With the
//! `log` cargo feature they go to the [`log`](https://docs.rs/log) facade
//! instead, with targets `maitred` and `maitred::queue`.
//!
//! Nothing is logged per request unless something went wrong.
//!
//! Whatever a line quotes from a request (a path, a header value, an
//! address a proxy header gave) or from an application (a panic message) is
//! escaped: `\` and every byte outside printable ASCII become `\xNN`, as in
//! the access log, so each line is one line of printable ASCII that no
//! client can forge.
//!
//! An embedding program (or a test) can take the lines itself with
//! [`set_sink`]: while a sink is installed, every line at or above the
//! [`set_level`] threshold goes to it instead of standard error or the `log`
//! facade.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use maitred::logging::{self, Level};
//!
//! let lines = Arc::new(Mutex::new(Vec::new()));
//! let l = Arc::clone(&lines);
//! logging::set_sink(move |level: Level, target: &str, message: &str| {
//!     l.lock().unwrap().push(format!("{}:{target}:{message}", level.name()));
//! });
//! // ... run a server ...
//! logging::clear_sink();
//! ```
//!
//! Thread: any.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Details useful when debugging the server itself.
    Debug = 1,
    /// Normal operation (`Serving on ...`).
    Info = 2,
    /// Something the operator should look at (queue depth, socket errors).
    Warning = 3,
    /// A failure (an application panic).
    Error = 4,
}

impl Level {
    /// The name used in the default format: `DEBUG`, `INFO`, `WARNING`,
    /// `ERROR` (Python's level names).
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

static MIN_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// A function that receives log lines: level, target (`maitred` or
/// `maitred.queue`) and message.
type SinkFn = dyn Fn(Level, &str, &str) + Send + Sync;

/// The installed sink, if any.
static SINK: RwLock<Option<Arc<SinkFn>>> = RwLock::new(None);
/// Whether a sink is installed (checked without taking the lock).
static HAS_SINK: AtomicBool = AtomicBool::new(false);

/// Sends every log line (at or above the [`set_level`] threshold) to `sink`
/// instead of standard error or the `log` facade, until [`clear_sink`].
/// Replaces any sink installed before. The sink is called on the thread
/// that logs (the I/O thread or a worker), so it should be quick and must
/// not log through this module itself.
pub fn set_sink<F>(sink: F)
where
    F: Fn(Level, &str, &str) + Send + Sync + 'static,
{
    let mut guard = SINK.write().unwrap_or_else(|p| p.into_inner());
    *guard = Some(Arc::new(sink));
    HAS_SINK.store(true, Ordering::Release);
}

/// Removes the sink installed by [`set_sink`]: lines go to standard error
/// (or the `log` facade) again.
pub fn clear_sink() {
    let mut guard = SINK.write().unwrap_or_else(|p| p.into_inner());
    *guard = None;
    HAS_SINK.store(false, Ordering::Release);
}

/// The installed sink, if any.
fn sink() -> Option<Arc<SinkFn>> {
    if !HAS_SINK.load(Ordering::Acquire) {
        return None;
    }
    SINK.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Sets the lowest level written to standard error or to a [sink](set_sink)
/// (default [`Level::Info`]). Under the `log` feature without a sink, the
/// logger's own filter decides instead.
pub fn set_level(level: Level) {
    MIN_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether a line at `level` would be written.
pub fn enabled(level: Level) -> bool {
    if HAS_SINK.load(Ordering::Acquire) {
        return level as u8 >= MIN_LEVEL.load(Ordering::Relaxed);
    }
    #[cfg(feature = "log")]
    {
        let _ = MIN_LEVEL.load(Ordering::Relaxed);
        log::log_enabled!(target: "maitred", to_log_level(level))
    }
    #[cfg(not(feature = "log"))]
    {
        level as u8 >= MIN_LEVEL.load(Ordering::Relaxed)
    }
}

#[cfg(feature = "log")]
fn to_log_level(level: Level) -> log::Level {
    match level {
        Level::Debug => log::Level::Debug,
        Level::Info => log::Level::Info,
        Level::Warning => log::Level::Warn,
        Level::Error => log::Level::Error,
    }
}

#[doc(hidden)]
pub fn write(level: Level, target: &str, args: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    if let Some(sink) = sink() {
        let message = match args.as_str() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(args.to_string()),
        };
        sink(level, target, &message);
        return;
    }
    #[cfg(feature = "log")]
    {
        let target = if target == "maitred.queue" {
            "maitred::queue"
        } else {
            "maitred"
        };
        log::log!(target: target, to_log_level(level), "{}", args);
    }
    #[cfg(not(feature = "log"))]
    {
        use std::io::Write;
        let line = format!("{}:{}:{}\n", level.name(), target, args);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
    #[cfg(feature = "log")]
    let _ = level.name();
}

/// Request-derived text as it goes into a log line (see [`escaped`]).
pub(crate) struct Escaped<'a>(&'a [u8]);

/// `text` for a log line: `\` and every byte outside printable ASCII
/// (control bytes such as CR, LF and ESC, and every byte of a non-ASCII
/// character) as `\xNN`, so that a client cannot write lines of its own
/// into the server's log nor send escape sequences to the terminal that
/// shows it. Every log line escapes what comes from a request (paths,
/// header values, addresses from proxy headers) and from an application
/// (panic messages) this way; the access log's text formats do too.
pub(crate) fn escaped<T: AsRef<[u8]> + ?Sized>(text: &T) -> Escaped<'_> {
    Escaped(text.as_ref())
}

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        escape_into(f, self.0, b"")
    }
}

/// Writes `bytes` to `out` with `\`, the bytes of `also` and every byte
/// outside printable ASCII as `\xNN` (the one escaping of [`escaped`] and
/// of the access log, which adds `"`).
pub(crate) fn escape_into<W: std::fmt::Write + ?Sized>(
    out: &mut W,
    bytes: &[u8],
    also: &[u8],
) -> std::fmt::Result {
    let mut rest = bytes;
    loop {
        // A run of bytes that stand as they are goes out in one piece.
        let plain = rest
            .iter()
            .position(|&b| !(0x20..0x7f).contains(&b) || b == b'\\' || also.contains(&b))
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(plain);
        // Printable ASCII only: always UTF-8.
        out.write_str(std::str::from_utf8(run).unwrap_or_default())?;
        let Some((&b, tail)) = tail.split_first() else {
            return Ok(());
        };
        write!(out, "\\x{b:02x}")?;
        rest = tail;
    }
}

/// Logs at info level.
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::logging::write($crate::logging::Level::Info, "maitred", format_args!($($arg)*)) };
}

/// Logs at warning level.
macro_rules! log_warning {
    ($($arg:tt)*) => { $crate::logging::write($crate::logging::Level::Warning, "maitred", format_args!($($arg)*)) };
}

/// Logs at error level.
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::logging::write($crate::logging::Level::Error, "maitred", format_args!($($arg)*)) };
}

// Crate-private: `crate::log_info!` and friends (see the crate root).
pub(crate) use {log_error, log_info, log_warning};

/// Serialises the unit tests that install a sink (it is process-wide).
#[cfg(test)]
pub(crate) static SINK_TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn escaped_text_is_printable_ascii_without_backslashes_of_its_own() {
        assert_eq!(
            escaped(b"/x\r\nERROR:forged\x1b[2J \\ \"q\" \xc3\xa9\x7f").to_string(),
            "/x\\x0d\\x0aERROR:forged\\x1b[2J \\x5c \"q\" \\xc3\\xa9\\x7f"
        );
        assert_eq!(escaped("plain /path?q=1").to_string(), "plain /path?q=1");
        assert_eq!(escaped("").to_string(), "");
        let mut quoted = String::new();
        escape_into(&mut quoted, b"a\"b\\", b"\"").unwrap();
        assert_eq!(quoted, "a\\x22b\\x5c");
    }

    #[test]
    fn a_sink_takes_the_lines_at_or_above_the_threshold() {
        let _serial = SINK_TEST_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&lines);
        set_sink(move |level: Level, target: &str, message: &str| {
            if message.starts_with("sink-test") {
                l.lock()
                    .unwrap()
                    .push(format!("{}:{target}:{message}", level.name()));
            }
        });
        crate::log_info!("sink-test {}", 1);
        write(Level::Debug, "maitred", format_args!("sink-test hidden"));
        write(
            Level::Warning,
            "maitred.queue",
            format_args!("sink-test queue"),
        );
        clear_sink();
        crate::log_error!("sink-test after clear");
        assert_eq!(
            *lines.lock().unwrap(),
            vec![
                "INFO:maitred:sink-test 1".to_string(),
                "WARNING:maitred.queue:sink-test queue".to_string()
            ]
        );
    }
}
