//! `dpe [--home DIR] [--<property>=<value> ...]`: see `svcid_dpe::Dpe`.

use std::process::ExitCode;

fn main() -> ExitCode {
    svcid_grpc::daemon::main::<svcid_dpe::Dpe>()
}
