//! The sans-IO protocol core: no I/O trait is imported here and nothing awaits.
//!
//! Every rule of RFC 9112 that the client applies, and every rule of a connection's life, lives
//! in this module once and is tested here synchronously, whole and byte by byte. The I/O
//! shells only move bytes between the stream and the buffer as [`conn::Core`] asks, and time.
//!
//! This module is public for the fuzz targets, the benches and the curious; it is not part of
//! the stable API and may change in any release.

pub mod conn;
pub mod decode;
pub mod encode;
pub mod framing;
pub mod response;
pub mod text;
pub mod timing;
