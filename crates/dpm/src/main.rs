//! `dpm [--home DIR] [--<property>=<value> ...]`: see `svcid_dpm::run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    svcid_grpc::daemon::main(
        svcid_config::ModuleKind::Dpm,
        |settings, overrides, listener| {
            svcid_dpm::run(
                settings,
                overrides,
                listener,
                svcid_grpc::server::shutdown_signal(),
            )
        },
    )
}
