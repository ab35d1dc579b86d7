//! The `replay` example's fixed interface: one JSON line, exit status 0 (2 for usage errors).

use std::path::PathBuf;
use std::process::Command;

/// The example binary, built by `cargo test` next to the test executables.
fn replay_bin() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop(); // the test executable
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir
        .join("examples")
        .join(format!("replay{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the whole `cargo test`, which builds the examples",
        bin.display()
    );
    bin
}

fn run(bytes: &[u8], args: &[&str]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("rawpost-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!(
        "{:x}.http",
        bytes
            .iter()
            .fold(17u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
    ));
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new(replay_bin())
        .arg(&file)
        .args(args)
        .output()
        .unwrap();
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
