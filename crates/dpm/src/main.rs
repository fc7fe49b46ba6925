//! `dpm [--home DIR] [--<property>=<value> ...]`: see `svcid_dpm::Dpm`.

use std::process::ExitCode;

fn main() -> ExitCode {
    svcid_grpc::daemon::main::<svcid_dpm::Dpm>()
}
