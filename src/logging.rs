//! The server's log lines.
//!
//! Like waitress's `waitress` and `waitress.queue` loggers, with Python's
//! `logging.basicConfig` format by default: `LEVEL:target:message` on
//! standard error (`INFO:maitred:Serving on http://127.0.0.1:8080`). With the
//! `log` cargo feature they go to the [`log`](https://docs.rs/log) facade
//! instead, with targets `maitred` and `maitred::queue`.
//!
//! Nothing is logged per request unless something went wrong.

use std::sync::atomic::{AtomicU8, Ordering};

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
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

static MIN_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the lowest level written to standard error (default
/// [`Level::Info`]). Without effect under the `log` feature, where the
/// logger's own filter decides.
pub fn set_level(level: Level) {
    MIN_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether a line at `level` would be written.
pub fn enabled(level: Level) -> bool {
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

/// Logs at info level.
#[macro_export]
#[doc(hidden)]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::logging::write($crate::logging::Level::Info, "maitred", format_args!($($arg)*)) };
}

/// Logs at warning level.
#[macro_export]
#[doc(hidden)]
macro_rules! log_warning {
    ($($arg:tt)*) => { $crate::logging::write($crate::logging::Level::Warning, "maitred", format_args!($($arg)*)) };
}

/// Logs at error level.
#[macro_export]
#[doc(hidden)]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::logging::write($crate::logging::Level::Error, "maitred", format_args!($($arg)*)) };
}

/// Logs at debug level.
#[macro_export]
#[doc(hidden)]
macro_rules! log_debug {
    ($($arg:tt)*) => { $crate::logging::write($crate::logging::Level::Debug, "maitred", format_args!($($arg)*)) };
}
