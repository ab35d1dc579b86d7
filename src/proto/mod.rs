//! The sans-IO protocol core: no I/O trait is imported here and nothing awaits.
//!
//! Every rule of RFC 9112 that the client applies lives in this module once, and is tested here
//! synchronously, whole and byte by byte. The I/O shells only move bytes between the stream and
//! the buffer as [`conn::Core`] asks.

pub mod body;
pub mod chunk;
pub mod conn;
pub mod framing;
pub mod head;
pub mod response;
pub mod timing;
