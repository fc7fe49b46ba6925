//! `svcid`, the key and configuration tool: it replaces the vendor manual's procedure (a web key
//! generator, base64 by hand, copy-paste of fingerprints) with commands that cannot get it wrong.

pub mod edit;
pub mod keygen;
pub mod link;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use svcid_identity::jwk::GeneratorKey;

/// Command line of `svcid`.
#[derive(Debug, Parser)]
#[command(
    name = "svcid",
    version,
    about = "Service identity keys and configuration for dpm and dpe"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an EC P-256 / ES256 signing key (kid = RFC 7638 thumbprint) and print the values
    /// the manual copies by hand.
    Keygen {
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// Give both module homes a key and make each trust the other (dpm-<env> / dpe-<env>).
    Link {
        /// The DPM module home.
        dpm_home: PathBuf,
        /// The DPE module home.
        dpe_home: PathBuf,
        /// Environment name; deployments are named dpm-<env> and dpe-<env>.
        #[arg(long, default_value = "dev")]
        environment: String,
    },
}

/// Runs the command line; the binary's `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("svcid: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<String> {
    match cli.command {
        Command::Keygen { json } => Ok(keygen::render(&GeneratorKey::generate(), json)),
        Command::Link {
            dpm_home,
            dpe_home,
            environment,
        } => link::link(&dpm_home, &dpe_home, &environment),
    }
}
