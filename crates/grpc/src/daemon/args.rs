//! The daemons' command line: `[--home DIR] [--<property>=<value> ...]`, `--help` and `--version`.

use std::path::PathBuf;
use std::process::ExitCode;

use svcid_config::ModuleKind;

use super::exit::{EX_CONFIG, EX_IOERR, EX_UNAVAILABLE, EX_USAGE};

/// What the command line asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonArgs {
    /// The module home (`--home`, default: the current folder).
    pub home: PathBuf,
    /// `--name=value` property overrides, in order.
    pub overrides: Vec<String>,
}

/// Parses `[--home DIR] [--<property>=<value> ...]`. `Err` carries the exit code after `--help`,
/// `--version` (0) or a usage error (already printed).
pub fn parse_args(
    kind: ModuleKind,
    args: impl IntoIterator<Item = String>,
) -> Result<DaemonArgs, ExitCode> {
    let mut home = PathBuf::from(".");
    let mut overrides = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{}", usage(kind));
                return Err(ExitCode::SUCCESS);
            }
            "-V" | "--version" => {
                println!("{kind} {}", env!("CARGO_PKG_VERSION"));
                return Err(ExitCode::SUCCESS);
            }
            "--home" => match args.next() {
                Some(dir) => home = PathBuf::from(dir),
                None => return Err(usage_error(kind, "--home needs a folder")),
            },
            _ if arg.starts_with("--home=") => home = PathBuf::from(&arg["--home=".len()..]),
            _ if arg.starts_with("--") && arg.contains('=') => overrides.push(arg),
            _ => return Err(usage_error(kind, &format!("unexpected argument {arg:?}"))),
        }
    }
    Ok(DaemonArgs { home, overrides })
}

fn usage(kind: ModuleKind) -> String {
    format!(
        "usage: {kind} [--home DIR] [--<property>=<value> ...]\n\n\
         Starts the {name} from the module home DIR (default: the current folder), reading\n\
         DIR/etc/application.properties, then environment variables, then --property=value arguments.\n\
         Logs go to DIR/log/spring-boot-logger.json.log unless logging.file.path says otherwise.\n\n\
         exit codes: 0 stopped by SIGINT/SIGTERM, {EX_USAGE} bad arguments, {EX_UNAVAILABLE} port not bound,\n\
         {EX_IOERR} log or data folder not writable, {EX_CONFIG} configuration error (one line per problem)",
        name = match kind {
            ModuleKind::Dpm => "Data Processing Module (engine registry)",
            ModuleKind::Dpe => "Data Processing Engine",
        }
    )
}

fn usage_error(kind: ModuleKind, why: &str) -> ExitCode {
    eprintln!("{kind}: {why}\n{}", usage(kind));
    ExitCode::from(EX_USAGE)
}
