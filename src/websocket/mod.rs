//! WebSocket (RFC 6455), with the `websocket` feature (off by default).
//! The building blocks come first: SHA-1 and base64 for the handshake,
//! written in the crate so that the feature needs no dependency, and the
//! frame decoder and encoders (sans I/O).

#![allow(dead_code)]

mod base64;
mod frame;
mod sha1;

/// The decoder and encoders, for the fuzz target and tests
/// (`maitred::__private::websocket`).
pub(crate) mod sans_io {
    pub use super::frame::{
        apply_mask, close_payload, encode_frame, encode_masked, frame_header, is_valid_close_code,
        CloseFrame, Decoder, Event, ProtocolError, Utf8Validator, MAX_CONTROL_PAYLOAD, OP_BINARY,
        OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
    };
}
