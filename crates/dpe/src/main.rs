//! `dpe [--home DIR] [--<property>=<value> ...]`: see `svcid_dpe::run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    svcid_grpc::daemon::main(
        svcid_config::ModuleKind::Dpe,
        |settings, overrides, listener| {
            svcid_dpe::run(
                settings,
                overrides,
                listener,
                svcid_grpc::server::shutdown_signal(),
            )
        },
    )
}
