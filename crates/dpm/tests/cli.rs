//! The `dpm` binary's command line: the checks both daemons share (`svcid_testkit::daemon_cli`).
//! This integration test also makes `cargo test --workspace` build the real `dpm` binary, which
//! the end-to-end tests in the root `tests/` start.

svcid_testkit::daemon_cli_tests!(dpm);
