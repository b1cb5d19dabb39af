//! SCAFFOLD: the public API of the incremental request parser. The full
//! implementation replaces this file; the signatures below are the contract
//! the channel codes against.

use crate::buffers::RequestBody;
use crate::error::HttpError;

/// The limits the parser enforces (from the server's settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParserConfig {
    /// `max_request_header_size`.
    pub max_request_header_size: u64,
    /// `max_request_body_size`.
    pub max_request_body_size: u64,
    /// `inbuf_overflow`.
    pub inbuf_overflow: u64,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            max_request_header_size: 262_144,
            max_request_body_size: 1_073_741_824,
            inbuf_overflow: 524_288,
        }
    }
}

/// HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

impl Version {
    /// `"1.0"` or `"1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "1.0",
            Version::Http11 => "1.1",
        }
    }
}

/// The parsed head of a request.
#[derive(Clone, Debug, Default)]
pub struct RequestHead {}

impl RequestHead {
    /// Method.
    pub fn method(&self) -> &str {
        ""
    }
    /// Raw request-target.
    pub fn uri(&self) -> &str {
        ""
    }
    /// Version.
    pub fn version(&self) -> Version {
        Version::Http11
    }
    /// Percent-decoded path.
    pub fn path(&self) -> &[u8] {
        b""
    }
    /// Raw query string.
    pub fn query(&self) -> &str {
        ""
    }
    /// Headers in arrival order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        std::iter::empty()
    }
    /// Case-insensitive lookup.
    pub fn header(&self, _name: &str) -> Option<&[u8]> {
        None
    }
    /// Content length seen by the app.
    pub fn content_length(&self) -> Option<u64> {
        None
    }
    /// Replace or add a header.
    pub fn set_header(&mut self, _name: &str, _value: &[u8]) {}
    /// Remove all fields with that name.
    pub fn remove_header(&mut self, _name: &str) -> bool {
        false
    }
}

/// What a completed parser produced.
#[derive(Debug)]
pub enum Parsed {
    /// A valid request.
    Request(RequestHead, RequestBody),
    /// A request that must be answered with an error.
    Error(HttpError, Version),
}

/// The incremental parser.
#[derive(Debug)]
pub struct RequestParser {
    _config: ParserConfig,
}

impl RequestParser {
    /// New parser.
    pub fn new(config: ParserConfig) -> RequestParser {
        RequestParser { _config: config }
    }
    /// Feed bytes; returns how many were consumed.
    pub fn received(&mut self, data: &[u8]) -> usize {
        data.len()
    }
    /// Complete?
    pub fn is_completed(&self) -> bool {
        false
    }
    /// Empty?
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Head finished?
    pub fn headers_finished(&self) -> bool {
        false
    }
    /// 100-continue wanted?
    pub fn expect_continue(&self) -> bool {
        false
    }
    /// Error?
    pub fn error(&self) -> Option<&HttpError> {
        None
    }
    /// Head, once finished.
    pub fn head(&self) -> Option<&RequestHead> {
        None
    }
    /// The outcome.
    pub fn into_parsed(self) -> Parsed {
        Parsed::Error(HttpError::internal_server_error("incomplete"), Version::Http11)
    }
}
