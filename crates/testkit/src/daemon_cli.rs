//! The command line both daemons' binaries share: `--help` and `--version` exit 0, and a usage
//! error exits 64 (`EX_USAGE`). Each daemon crate runs these checks on its own binary with
//! [`daemon_cli_tests!`](crate::daemon_cli_tests), which also makes `cargo test --workspace`
//! build that binary for the end-to-end tests.

use std::process::{Command, Output};

/// Runs `exe` with `args`; fails when it cannot be started.
fn run(exe: &str, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{exe} does not run: {e}"))
}

/// `<name> --help` prints the usage and `--version` the name and version; both exit 0.
pub fn help_and_version_exit_zero(name: &str, exe: &str) {
    let help = run(exe, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains(&format!("usage: {name} [--home DIR]")),
        "{text}"
    );
    let version = run(exe, &["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with(&format!("{name} ")));
}

/// `--home` without a folder is a usage error.
pub fn an_unknown_argument_is_a_usage_error(exe: &str) {
    let out = run(exe, &["--home"]);
    assert_eq!(out.status.code(), Some(64), "EX_USAGE");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--home needs a folder"));
}

/// The tests of [`help_and_version_exit_zero`] and [`an_unknown_argument_is_a_usage_error`] for
/// the binary `$name` of the crate whose integration test invokes this.
#[macro_export]
macro_rules! daemon_cli_tests {
    ($name:ident) => {
        #[test]
        fn help_and_version_exit_zero() {
            $crate::daemon_cli::help_and_version_exit_zero(
                stringify!($name),
                env!(concat!("CARGO_BIN_EXE_", stringify!($name))),
            );
        }

        #[test]
        fn an_unknown_argument_is_a_usage_error() {
            $crate::daemon_cli::an_unknown_argument_is_a_usage_error(env!(concat!(
                "CARGO_BIN_EXE_",
                stringify!($name)
            )));
        }
    };
}
