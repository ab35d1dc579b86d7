//! The `replay` example's fixed interface: one JSON line, exit status 0 (2 for usage errors).
//!
//! Cargo builds examples for `cargo test`, but not for `cargo test --test replay_cli`, and it
//! gives tests no path to an example (`CARGO_BIN_EXE_*` is for binaries only), so the first
//! test to need it builds it with the cargo running this test, into the same target directory
//! and profile and with the same features: a no-op after a whole `cargo test`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The crate's features this test was built with, passed on to the example's build so that it
/// reuses the library this test was built against. (A feature missing here only costs a second
/// build of the library.)
const FEATURES: &[(&str, bool)] = &[
    ("defmt", cfg!(feature = "defmt")),
    ("log", cfg!(feature = "log")),
    ("wire-trace", cfg!(feature = "wire-trace")),
    ("embedded-tls", cfg!(feature = "embedded-tls")),
    ("p384", cfg!(feature = "p384")),
    ("ed25519", cfg!(feature = "ed25519")),
    ("rsa", cfg!(feature = "rsa")),
    ("embassy-time", cfg!(feature = "embassy-time")),
];

/// The example binary, built (once per test run) by `cargo build --example replay` next to this
/// test's executable: `<target>/<profile>/deps/replay_cli-…` → `<target>/<profile>/examples/`.
fn replay_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let target_dir = profile_dir.parent().unwrap();
        let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
            "debug" => "dev",
            other => other,
        };
        let features: Vec<&str> = FEATURES
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
        // The cargo that built this test (a toolchain's own, not rustup's proxy).
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo);
        // Without the variables cargo sets for this test's process: build scripts that watch
        // them (ring's watches CARGO_MANIFEST_DIR) would rerun and the test be rebuilt next time.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|p| name.starts_with(p))
                || [
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                ]
                .contains(&&*name)
            {
                build.env_remove(&*name);
            }
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "--example",
                "replay",
                "--profile",
                profile,
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .arg("--features")
            .arg(features.join(","))
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example replay: {status}");
        let bin = profile_dir
            .join("examples")
            .join(format!("replay{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} is missing", bin.display());
        bin
    })
}

/// A response file in the temp directory, removed when dropped (also when a test fails).
struct TempFile(PathBuf);

impl TempFile {
    fn new(bytes: &[u8]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("rawpost-replay-{}-{n}.http", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run(bytes: &[u8], args: &[&str]) -> (i32, String) {
    let file = TempFile::new(bytes);
    let out = Command::new(replay_bin())
        .arg(&file.0)
        .args(args)
        .output()
        .unwrap();
    drop(file);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn success_line() {
    let script = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\nX-Trace:  abc \r\n\r\n";
    for args in [&[][..], &["--read-size", "1"], &["--read-size", "5"]] {
        assert_eq!(
            run(script, args),
            (
                0,
                "{\"ok\":true,\"status\":200,\"reason\":\"OK\",\"version\":\"1.1\",\"headers\":[[\"Content-Type\",\"application/json\"],[\"Transfer-Encoding\",\"chunked\"]],\"body_b64\":\"eyJhIjoxfQ==\",\"trailers\":[[\"X-Trace\",\"abc\"]],\"reusable\":true}\n".to_string()
            ),
            "{args:?}"
        );
    }
}

#[test]
fn until_close_is_not_reusable_and_head_has_no_body() {
    let (code, line) = run(b"HTTP/1.0 200 OK\r\n\r\nbye", &[]);
    assert_eq!(code, 0);
    assert_eq!(
        line,
        "{\"ok\":true,\"status\":200,\"reason\":\"OK\",\"version\":\"1.0\",\"headers\":[],\"body_b64\":\"Ynll\",\"trailers\":[],\"reusable\":false}\n"
    );
    let (code, line) = run(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &["--head"]);
    assert_eq!(code, 0);
    assert!(line.contains("\"body_b64\":\"\""), "{line}");
    assert!(line.ends_with("\"reusable\":true}\n"), "{line}");
}

#[test]
fn failure_line() {
    assert_eq!(
        run(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &["--read-size", "2"]),
        (
            0,
            "{\"ok\":false,\"error\":\"TruncatedBody\",\"message\":\"the connection closed before the response body was complete\"}\n".to_string()
        )
    );
    let (code, line) = run(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        &[],
    );
    assert_eq!(code, 0);
    assert!(
        line.starts_with("{\"ok\":false,\"error\":\"ConflictingFraming\","),
        "{line}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["--read-size", "0"][..], &["--read-size"], &["--bogus"]] {
        let (code, out) = run(b"", args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}");
    }
    let out = Command::new(replay_bin()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(replay_bin())
        .arg("/nonexistent/rawpost/file")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn body_is_base64_with_padding_and_json_escapes() {
    for (body, b64) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        let script = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (code, line) = run(script.as_bytes(), &[]);
        assert_eq!(code, 0);
        assert!(line.contains(&format!("\"body_b64\":\"{b64}\"")), "{line}");
    }
    let (_, line) = run(
        b"HTTP/1.1 200 Quote \" and \\ slash\r\nX-A: tab\there\r\nContent-Length: 0\r\n\r\n",
        &[],
    );
    assert!(
        line.contains(r#""reason":"Quote \" and \\ slash""#),
        "{line}"
    );
    assert!(line.contains(r#"["X-A","tab\there"]"#), "{line}");
}
