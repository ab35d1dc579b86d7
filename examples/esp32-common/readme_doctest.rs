//! The README, included as documentation so that its Rust examples compile as doc tests
//! (`src/lib.rs`, module `readme`, under `cfg(doctest)`). Here, next to `root-ca.pem`, because
//! the README's TLS example reads a file of that name with `include_bytes!`.
#![doc = include_str!("../../README.md")]
