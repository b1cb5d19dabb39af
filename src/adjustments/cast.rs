//! waitress's cast functions in the form the settings table uses them
//! (`cast_of!` picks one per value kind): the setting's name, for the error
//! message, and its string form, to the field's type.

use std::collections::BTreeSet;
use std::os::fd::RawFd;

use crate::error::Error;

/// waitress's `int()`: optional sign and surrounding whitespace, decimal
/// digits (underscores allowed between digits, as in Python).
fn parse_int(name: &str, value: &str) -> Result<i64, Error> {
    let t = value.trim();
    let bad = || {
        Error::config(format!(
            "invalid value for {name}: {value:?} is not an integer"
        ))
    };
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return Err(bad());
    }
    let v: i64 = digits.replace('_', "").parse().map_err(|_| bad())?;
    Ok(if neg { -v } else { v })
}

/// The field types waitress's `int` fills: an integer type (the value must
/// fit it), or one in an `Option` (for a setting not set by default).
pub(super) trait FromInt: Sized {
    /// The value as this type, if it fits.
    fn from_int(v: i64) -> Option<Self>;
}

macro_rules! from_int {
    ($($t:ty)*) => {$(
        impl FromInt for $t {
            fn from_int(v: i64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
        }
    )*};
}

from_int!(u16 u32 u64 usize i32);

impl<T: FromInt> FromInt for Option<T> {
    fn from_int(v: i64) -> Option<Self> {
        T::from_int(v).map(Some)
    }
}

/// `asbool`.
pub(super) fn asbool(_name: &str, value: &str) -> Result<bool, Error> {
    Ok(super::asbool(value))
}

/// `int`: an integer that fits the field's type.
pub(super) fn int<T: FromInt>(name: &str, value: &str) -> Result<T, Error> {
    T::from_int(parse_int(name, value)?).ok_or_else(|| {
        Error::config(format!(
            "invalid value for {name}: {value:?} is out of range"
        ))
    })
}

/// `str`.
pub(super) fn string<T: From<String>>(_name: &str, value: &str) -> Result<T, Error> {
    Ok(T::from(value.to_string()))
}

/// `str_iftruthy`: an empty string is `None`.
pub(super) fn str_iftruthy<T: From<String>>(_name: &str, value: &str) -> Result<Option<T>, Error> {
    Ok((!value.is_empty()).then(|| T::from(value.to_string())))
}

/// `aslist`.
pub(super) fn aslist(_name: &str, value: &str) -> Result<Vec<String>, Error> {
    Ok(super::aslist(value))
}

/// `asset` of lower-cased names (waitress lower-cases
/// `trusted_proxy_headers` after `asset`).
pub(super) fn asset_lowercase(_name: &str, value: &str) -> Result<BTreeSet<String>, Error> {
    Ok(super::aslist(value)
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect())
}

/// `asoctal`.
pub(super) fn asoctal(name: &str, value: &str) -> Result<u32, Error> {
    super::asoctal(value).ok_or_else(|| {
        Error::config(format!(
            "invalid value for {name}: {value:?} is not an octal number"
        ))
    })
}

/// `slash_fixed_str`.
pub(super) fn slash_fixed_str(_name: &str, value: &str) -> Result<String, Error> {
    Ok(super::slash_fixed_str(value))
}

/// `aslist` of descriptor numbers (waitress takes socket objects).
pub(super) fn fds(name: &str, value: &str) -> Result<Vec<RawFd>, Error> {
    super::aslist(value)
        .iter()
        .map(|part| int(name, part))
        .collect()
}
