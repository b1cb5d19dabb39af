//! The limits a request is received under ([`ParserConfig`]), from the
//! server's settings: the sizes of a head and of its elements, the size of
//! a body, and how much of a body is kept in memory before it moves to a
//! temporary file.
//!
//! The parser (`parser`) enforces the head's limits; the body receivers
//! (`receiver`) enforce the body's and the trailer section's. Both take
//! them from here, so neither imports the other for them.
//!
//! Thread: any (made from the settings at start-up, then copied into each
//! connection's parser).

/// The limits the parser enforces, from the server's settings.
///
/// The defaults are waitress's, plus the limits on a head's elements that
/// waitress does not have (`max_request_line_size`, `max_header_field_size`,
/// `max_header_fields`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParserConfig {
    /// `max_request_header_size`: the most bytes a head (and a chunked
    /// body's trailer section) may have, counted as described in the
    /// module documentation of `parser`; reaching it is 431. Default 262144
    /// (256 KiB). Values above `HEAD_LIMIT_CAP` (1 GiB) act as that cap.
    pub max_request_header_size: u64,
    /// `max_request_body_size`: a `Content-Length` at or over it is 413, and
    /// so is a chunked body whose wire bytes reach it. Default 1073741824
    /// (1 GiB).
    pub max_request_body_size: u64,
    /// `inbuf_overflow`: a body is kept in memory until it would reach this
    /// many bytes, then in a temporary file. Default 524288 (512 KiB).
    pub inbuf_overflow: u64,
    /// `max_request_line_size`: the most bytes a request line may have,
    /// CRLF not counted. The byte past it is answered with 414 when the
    /// request-target is what is long, else 400. Default 8192.
    pub max_request_line_size: u64,
    /// `max_header_field_size`: the most bytes one field line may have
    /// (name, colon and value, CRLF not counted); the byte past it is
    /// answered with 431. Default 8192.
    pub max_header_field_size: u64,
    /// `max_header_fields`: the most field lines a head may have; the first
    /// byte of one more is answered with 431. Default 100.
    pub max_header_fields: usize,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            max_request_header_size: 262_144,
            max_request_body_size: 1_073_741_824,
            inbuf_overflow: 524_288,
            max_request_line_size: 8192,
            max_header_field_size: 8192,
            max_header_fields: 100,
        }
    }
}
