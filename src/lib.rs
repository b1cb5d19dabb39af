//! maitred: a small HTTP/1.x server, a Rust port of waitress.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod buffers;
pub mod error;
pub mod parser;
pub mod receiver;
pub(crate) mod response {
    pub(crate) fn reason_phrase(code: u16) -> &'static str {
        match code {
            400 => "Bad Request",
            413 => "Request Entity Too Large",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            _ => "Unknown",
        }
    }
}
