//! WebSocket (RFC 6455), with the `websocket` feature (off by default).
//! The building blocks come first: SHA-1 and base64 for the handshake,
//! written in the crate so that the feature needs no dependency.

#![allow(dead_code)]

mod base64;
mod sha1;
