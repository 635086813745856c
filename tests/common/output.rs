//! What a finished program left: its exit code, its output as text, its
//! JSON, and the description that goes into assertion messages.

use std::process::Output;

use serde_json::Value;

/// The exit code, or a panic naming the signal.
pub fn code(out: &Output) -> i32 {
    match out.status.code() {
        Some(c) => c,
        None => panic!(
            "modseal was killed by a signal: {:?}\n{}",
            out.status,
            describe(out)
        ),
    }
}

/// Stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        cut(&stdout),
        cut(&stderr)
    )
}

/// The first 4000 bytes of a text (on a character boundary), and its length
/// if that was not all.
pub(super) fn cut(s: &str) -> String {
    if s.len() > 4000 {
        let mut i = 4000;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        format!("{}… ({} bytes)", &s[..i], s.len())
    } else {
        s.to_string()
    }
}

/// The JSON document modseal printed on stdout.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", describe(out)))
}

/// Stdout as text (invalid UTF-8 replaced).
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text (invalid UTF-8 replaced).
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
