//! The character classes and small rules of the HTTP/1.1 grammar, in one
//! place: RFC 9110 (semantics), RFC 9112 (HTTP/1.1 messages), the RFC 3986
//! URI rules they refer to, and the core rules of RFC 5234 (ABNF).
//!
//! Every rule quotes its ABNF next to the code. The request parser, the
//! chunked receiver, the response writer's checks of what the application
//! sends, and the proxy-header parser all use these, so a rule is written
//! once.
//!
//! Speed: classes that the parser applies to every byte of a head are
//! 256-entry tables built at compile time (one load per byte, no branch);
//! the others are `const fn`s small enough to be inlined where they are
//! used. The word-at-a-time scanners built on top of these classes are in
//! `parser/swar.rs`.
//!
//! Thread: any (pure functions and tables).

// ---------------------------------------------------------------------------
// Tables.

/// A `[bool; 256]` class table, built at compile time from a byte pattern
/// (httparse's approach).
macro_rules! byte_table {
    ($($p:pat_param)|+) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = matches!(i as u8, $($p)|+);
            i += 1;
        }
        t
    }};
}

/// ```text
/// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
///         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
/// ```
/// (RFC 9110 §5.6.2): the bytes of a `token` (method, field name, transfer
/// coding, chunk extension name and value).
pub(crate) static TCHAR: [bool; 256] = byte_table!(
    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\''
        | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
);

/// The bytes a field value may contain (RFC 9110 §5.5):
///
/// ```text
/// field-value   = *field-content
/// field-content = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]
/// field-vchar   = VCHAR / obs-text
/// ```
///
/// that is `field-vchar / SP / HTAB`. (Where SP and HTAB may stand, at the
/// ends, is `OWS`, which the parser strips.)
pub(crate) static FIELD_VALUE: [bool; 256] = byte_table!(b'\t' | b' '..=0x7E | 0x80..=0xFF);

/// The bytes of a `reg-name` (RFC 3986 §3.2.2), with `%` standing for the
/// start of a `pct-encoded` (whose two `HEXDIG`s are checked apart):
///
/// ```text
/// reg-name    = *( unreserved / pct-encoded / sub-delims )
/// unreserved  = ALPHA / DIGIT / "-" / "." / "_" / "~"
/// pct-encoded = "%" HEXDIG HEXDIG
/// sub-delims  = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
/// ```
pub(crate) static REG_NAME: [bool; 256] = byte_table!(
    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'%'
        | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
);

// ---------------------------------------------------------------------------
// Core rules (RFC 5234 Appendix B.1) and the HTTP character classes.

/// `SP = %x20`
pub(crate) const SP: u8 = b' ';
/// `HTAB = %x09`
pub(crate) const HTAB: u8 = b'\t';
/// `CR = %x0D`
pub(crate) const CR: u8 = b'\r';
/// `LF = %x0A`
pub(crate) const LF: u8 = b'\n';

/// `DIGIT = %x30-39`
#[inline]
pub(crate) const fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// `ALPHA = %x41-5A / %x61-7A`
#[inline]
pub(crate) const fn is_alpha(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

/// `HEXDIG = DIGIT / "A" / "B" / "C" / "D" / "E" / "F"` (ABNF strings are
/// case-insensitive, so `a`-`f` too): the digit's value, or `None`.
#[inline]
pub(crate) const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `VCHAR = %x21-7E` (visible, printing characters).
#[inline]
pub(crate) const fn is_vchar(b: u8) -> bool {
    matches!(b, 0x21..=0x7E)
}

/// `obs-text = %x80-FF` (RFC 9110 §5.6.4): bytes a field value may carry
/// and that are read as Latin-1 (see [`latin1`]).
#[inline]
pub(crate) const fn is_obs_text(b: u8) -> bool {
    b >= 0x80
}

/// `OWS = *( SP / HTAB )` (RFC 9110 §5.6.3): one byte of optional
/// whitespace. Nothing else is whitespace in HTTP (CVE-2019-16789).
#[inline]
pub(crate) const fn is_ows(b: u8) -> bool {
    matches!(b, SP | HTAB)
}

/// `s` without `OWS` at either end.
#[inline]
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    trim_by(s, is_ows)
}

/// `protocol = protocol-name ["/" protocol-version]`, both tokens (RFC
/// 9110 §7.8).
pub(crate) fn is_protocol(p: &[u8]) -> bool {
    let mut parts = p.splitn(2, |&b| b == b'/');
    let name = parts.next().unwrap_or(&[]);
    is_token(name) && parts.next().is_none_or(is_token)
}

/// `Upgrade = #protocol`, with at least one (a field a server sends: no
/// empty elements).
pub(crate) fn is_upgrade_list(v: &[u8]) -> bool {
    v.split(|&b| b == b',').all(|p| is_protocol(trim_ows(p)))
}

/// True when the `Upgrade` list `offer` names `protocol` (RFC 9110 §7.8:
/// `protocol-name ["/" protocol-version]`, compared case-insensitively; a
/// protocol given without a version matches any version of that name).
pub(crate) fn upgrade_list_has(offer: &[u8], protocol: &str) -> bool {
    let want = protocol.as_bytes();
    let versioned = want.contains(&b'/');
    offer.split(|&b| b == b',').any(|t| {
        let t = trim_ows(t);
        let name = t.split(|&b| b == b'/').next().unwrap_or(t);
        t.eq_ignore_ascii_case(want) || (!versioned && name.eq_ignore_ascii_case(want))
    })
}

/// `s` without the bytes `drop` selects at either end.
#[inline]
pub(crate) fn trim_by(mut s: &[u8], drop: impl Fn(u8) -> bool) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !drop(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !drop(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// One byte of `tchar` (see [`TCHAR`]).
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// `token = 1*tchar` (RFC 9110 §5.6.2).
#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// One byte of a field value: `field-vchar / SP / HTAB` (see
/// [`FIELD_VALUE`]).
#[inline]
pub(crate) fn is_field_value_byte(b: u8) -> bool {
    FIELD_VALUE[usize::from(b)]
}

/// One byte of a status line's reason phrase (RFC 9112 §4):
///
/// ```text
/// reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
/// ```
///
/// The same class as a field value's bytes.
#[inline]
pub(crate) fn is_reason_phrase_byte(b: u8) -> bool {
    is_field_value_byte(b)
}

/// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text` (RFC 9110
/// §5.6.4): a byte inside a quoted-string that needs no escape.
#[inline]
pub(crate) const fn is_qdtext(b: u8) -> bool {
    matches!(b, HTAB | SP | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// `quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )` (RFC 9110 §5.6.4):
/// whether `b` may follow the backslash.
#[inline]
pub(crate) const fn is_quoted_pair_byte(b: u8) -> bool {
    matches!(b, HTAB | SP) || is_vchar(b) || is_obs_text(b)
}

// ---------------------------------------------------------------------------
// URI rules (RFC 3986) used by the request-target and Host.

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1):
/// a byte after the first.
#[inline]
pub(crate) const fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"` (RFC 3986 §2.3).
#[inline]
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// One byte of a `reg-name`, `%` included (see [`REG_NAME`]).
#[inline]
pub(crate) fn is_reg_name_byte(b: u8) -> bool {
    REG_NAME[usize::from(b)]
}

/// `port = *DIGIT` (RFC 3986 §3.2.3).
#[inline]
pub(crate) fn is_port(s: &[u8]) -> bool {
    s.iter().all(|&b| is_digit(b))
}

// ---------------------------------------------------------------------------
// Text.

/// Header bytes as text, each byte one Latin-1 character: how HTTP has
/// historically read `obs-text` (RFC 9110 §5.5), and how waitress quotes a
/// line in an error detail and hands values to WSGI.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables and functions agree with the ABNF, checked by
    /// enumerating the bytes each rule names.
    #[test]
    fn classes_match_the_abnf() {
        let tchar_specials = b"!#$%&'*+-.^_`|~";
        let unreserved_specials = b"-._~";
        let sub_delims = b"!$&'()*+,;=";
        for b in 0..=255u8 {
            let alpha = b.is_ascii_alphabetic();
            let digit = b.is_ascii_digit();
            assert_eq!(
                is_tchar(b),
                alpha || digit || tchar_specials.contains(&b),
                "{b:#x}"
            );
            assert_eq!(
                is_field_value_byte(b),
                b == b' ' || b == b'\t' || (0x21..=0x7E).contains(&b) || b >= 0x80,
                "{b:#x}"
            );
            assert_eq!(
                is_reg_name_byte(b),
                alpha
                    || digit
                    || unreserved_specials.contains(&b)
                    || sub_delims.contains(&b)
                    || b == b'%',
                "{b:#x}"
            );
            assert_eq!(
                is_qdtext(b),
                is_field_value_byte(b) && b != b'"' && b != b'\\',
                "{b:#x}"
            );
            assert_eq!(is_quoted_pair_byte(b), is_field_value_byte(b), "{b:#x}");
            assert_eq!(hex_value(b).is_some(), b.is_ascii_hexdigit(), "{b:#x}");
            assert_eq!(is_ows(b), b == b' ' || b == b'\t', "{b:#x}");
            assert_eq!(
                is_unreserved(b),
                alpha || digit || unreserved_specials.contains(&b),
                "{b:#x}"
            );
        }
        assert_eq!(hex_value(b'f'), Some(15));
        assert_eq!(hex_value(b'A'), Some(10));
        assert_eq!(hex_value(b'9'), Some(9));
    }

    #[test]
    fn small_rules() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"\x0ba\x0b"), b"\x0ba\x0b");
        assert_eq!(trim_ows(b"  "), b"");
        assert!(is_token(b"chunked"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(is_port(b"") && is_port(b"8080") && !is_port(b"80a"));
        assert_eq!(latin1(b"a\xe9"), "a\u{e9}");
    }

    #[test]
    fn protocols_and_upgrade_lists() {
        for ok in [&b"websocket"[..], b"h2c/1", b"HTTP/2.0", b"a/b"] {
            assert!(is_protocol(ok), "{ok:?}");
        }
        for bad in [&b""[..], b"/1", b"a/", b"a/b/c", b"web socket", b"a b/1"] {
            assert!(!is_protocol(bad), "{bad:?}");
        }
        assert!(is_upgrade_list(b"websocket"));
        assert!(is_upgrade_list(b"websocket, h2c/1 ,\tx"));
        assert!(!is_upgrade_list(b""));
        assert!(!is_upgrade_list(b"websocket,,x"));
        assert!(!is_upgrade_list(b"websocket,"));
        assert!(upgrade_list_has(b"h2c, WebSocket", "websocket"));
        assert!(upgrade_list_has(b"HTTP/2.0", "http"));
        assert!(!upgrade_list_has(b"HTTP/2.0", "http/1.1"));
    }
}
