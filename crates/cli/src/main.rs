//! `svcid`: see `svcid_cli`.

fn main() -> std::process::ExitCode {
    svcid_cli::main()
}
