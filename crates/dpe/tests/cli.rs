//! The `dpe` binary's command line. Besides checking `--help` and `--version`, this integration
//! test makes `cargo test --workspace` build the real `dpe` binary, which the end-to-end tests in
//! the root `tests/` start.

use std::process::Command;

#[test]
fn help_and_version_exit_zero() {
    let help = Command::new(env!("CARGO_BIN_EXE_dpe"))
        .arg("--help")
        .output()
        .expect("dpe runs");
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("usage: dpe [--home DIR]"), "{text}");
    let version = Command::new(env!("CARGO_BIN_EXE_dpe"))
        .arg("--version")
        .output()
        .expect("dpe runs");
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("dpe "));
}

#[test]
fn an_unknown_argument_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_dpe"))
        .arg("--home")
        .output()
        .expect("dpe runs");
    assert_eq!(out.status.code(), Some(64), "EX_USAGE");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--home needs a folder"));
}
