//! `svcid`, the key and configuration tool: it replaces the vendor manual's procedure (a web key
//! generator, base64 by hand, copy-paste of fingerprints) with commands that cannot get it wrong.
//!
//! Every command is a library function writing to a `Write`, so unit tests can run it; `main`
//! only parses the command line and maps results to exit codes. Editing files is [`edit`]'s job,
//! loading homes as the daemons do is [`homes`]', and each command has its own module. The daemons'
//! live reload of a changed file is theirs; this tool only writes files, atomically.

pub mod check;
pub mod codes;
pub mod edit;
pub mod engines;
pub mod homes;
pub mod keygen;
pub mod link;
pub mod online;
pub mod revoke;
pub mod token;
pub mod userkey;
pub mod usertoken;
pub mod whoami;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Parser, Subcommand};
use svcid_identity::identity::ImpersonatedUser;
use svcid_identity::jwk::GeneratorKey;
use svcid_identity::token::TokenProfile;

use crate::homes::ModuleChoice;

/// Exit code of a command that failed (bad input, unreadable file, refused token).
const FAILED: u8 = 2;

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
    /// the manual copies by hand; --kty RSA and --pem DIR make keys for people's tokens.
    Keygen {
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
        /// Key type: EC (P-256, ES256) or RSA (RS256).
        #[arg(long, value_enum, default_value = "EC")]
        kty: userkey::Kty,
        /// RSA key size: 2048, 3072 or 4096 (only with --kty RSA).
        #[arg(long)]
        bits: Option<u32>,
        /// Write privateKey.pem (PKCS#8, mode 600) and publicKey.pem (SPKI) into DIR and print
        /// only the public key.
        #[arg(long, value_name = "DIR")]
        pem: Option<PathBuf>,
        /// With --pem: replace existing files.
        #[arg(long, requires = "pem")]
        force: bool,
        /// The module the EC key is for: the peers' deployment entry printed says module=MODULE
        /// (without it, a placeholder to fill in).
        #[arg(long, value_name = "MODULE", value_parser = ["dpm", "dpe"])]
        module: Option<String>,
    },
    /// Give both module homes a key and make each trust the other (dpm-<env> / dpe-<env>), and
    /// give homes without addresses loopback ones and ports; safe to run again. With --rotate,
    /// give one side or both new keys without breaking a running pair.
    Link {
        /// The DPM module home.
        dpm_home: PathBuf,
        /// The DPE module home.
        dpe_home: PathBuf,
        /// Environment name; deployments are named dpm-<env> and dpe-<env>.
        #[arg(long, default_value = "dev")]
        environment: String,
        /// New keys for dpm, dpe or both (a bare --rotate): add them on the verifiers first,
        /// wait, then switch the signers.
        #[arg(
            long,
            value_enum,
            value_name = "SIDE",
            num_args = 0..=1,
            default_missing_value = "both"
        )]
        rotate: Option<link::Rotate>,
        /// With --rotate: seconds to wait between writing the verifiers and switching the signers
        /// (running daemons re-read their files within about a second).
        #[arg(long, default_value_t = 3, value_name = "SECONDS")]
        grace: u64,
        /// Write security.token-profile=PROFILE into both deployment entries: product makes the
        /// pair talk the way Ataccama ONE's own modules do (no aud either way); without this
        /// option an existing token-profile is left as it is.
        #[arg(long, value_name = "PROFILE", value_parser = profile_parser())]
        token_profile: Option<TokenProfile>,
        /// DPM's gRPC port, when its home has none or should change (default 8531).
        #[arg(long, value_name = "PORT")]
        dpm_grpc_port: Option<u16>,
        /// DPM's HTTP port (server.port; default 8031).
        #[arg(long, value_name = "PORT")]
        dpm_http_port: Option<u16>,
        /// The engine's gRPC port (default 8532).
        #[arg(long, value_name = "PORT")]
        dpe_grpc_port: Option<u16>,
        /// The engine's HTTP port (server.port; default 8034).
        #[arg(long, value_name = "PORT")]
        dpe_http_port: Option<u16>,
        /// The address the engine reaches DPM at (default: DPM's gRPC host, or 127.0.0.1).
        #[arg(long, value_name = "HOST")]
        dpm_host: Option<String>,
        /// The host name the engine gives DPM to call it back by (default: the engine's gRPC
        /// host, or 127.0.0.1).
        #[arg(long, value_name = "HOST")]
        dpe_hostname: Option<String>,
    },
    /// Revoke a peer's key (set is-revoked=true); --undo reinstates it.
    Revoke {
        /// The module home whose file trusts the key.
        home: PathBuf,
        /// The deployment (peer) name, e.g. dpe-dev.
        deployment: String,
        /// The key entry under the deployment's jwt-keys, e.g. key.
        key: String,
        /// Set is-revoked back to false.
        #[arg(long)]
        undo: bool,
        /// Revoke even the deployment's last key that is not revoked (every call from that peer
        /// is then refused).
        #[arg(long)]
        force: bool,
    },
    /// Report every configuration problem of each home and, given a dpm and a dpe, whether they
    /// trust each other. Exit 0 clean, 1 warnings only, 2 errors.
    Check {
        /// Module homes to check.
        #[arg(required = true)]
        homes: Vec<PathBuf>,
        /// Module type of each home, in order: the Nth --module is for the Nth HOME (default auto).
        #[arg(long, value_enum)]
        module: Vec<ModuleChoice>,
        /// Print a JSON report for machines.
        #[arg(long)]
        json: bool,
        /// Also fetch, once each, the keys of every user-token issuer behind a URL (a Keycloak
        /// realm's certs, an http(s):// mp.jwt.verify.publickey.location) as the daemon would, and
        /// report what came back. Without it, check never touches the network.
        #[arg(long)]
        online: bool,
    },
    /// Mint or inspect service tokens; with --user, mint a person's token for tests.
    Token(TokenArgs),
    /// Ask a running dpm or dpe as whom it sees the caller (IdentityService.WhoAmI): with a
    /// person's token (--bearer) or a home's own module token (--home); --engine asks DPM to ask
    /// that engine on the caller's behalf.
    Whoami {
        /// The daemon's gRPC address.
        #[arg(value_name = "HOST:PORT")]
        address: String,
        /// A person's token, sent as "authorization: Bearer TOKEN"; - reads it from standard
        /// input.
        #[arg(
            long,
            value_name = "TOKEN",
            conflicts_with = "home",
            required_unless_present = "home"
        )]
        bearer: Option<String>,
        /// The module home whose generator key signs a module token instead.
        #[arg(long)]
        home: Option<PathBuf>,
        /// The home's module type (default: inferred).
        #[arg(long, value_enum, default_value_t = ModuleChoice::Auto, requires = "home")]
        module: ModuleChoice,
        /// With --home: the module type of the daemon called (the token's aud).
        #[arg(long, default_value = "dpm", requires = "home")]
        aud: String,
        /// Ask DPM to call this engine for the caller (EngineAdminService.WhoAmIOnEngine).
        #[arg(long, value_name = "ID")]
        engine: Option<String>,
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for the daemon.
        #[arg(long, default_value_t = 5, value_name = "SECONDS")]
        timeout: u64,
    },
    /// List the engines a running DPM knows (id, address, status, since, last seen, who
    /// registered it, constraints), calling it with a token signed by HOME's key (aud=dpm):
    /// DPM must trust that key (use the DPE home of a linked pair).
    Engines {
        /// DPM's gRPC address.
        #[arg(long, value_name = "HOST:PORT")]
        dpm: String,
        /// The module home whose generator key signs the call.
        #[arg(long)]
        home: PathBuf,
        /// The home's module type (default: inferred).
        #[arg(long, value_enum, default_value_t = ModuleChoice::Auto)]
        module: ModuleChoice,
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for DPM.
        #[arg(long, default_value_t = 5, value_name = "SECONDS")]
        timeout: u64,
        /// Call DPM over TLS (implied by any other TLS flag), verifying DPM's certificate against
        /// the system's roots unless --trust-store or --trust-all says otherwise. Without TLS
        /// flags, a DPE home's own ataccama.client.connection.dpm.grpc.tls.* settings apply.
        #[arg(long)]
        tls: bool,
        /// PEM file of the CA that issued DPM's certificate (instead of the system's roots).
        #[arg(long, value_name = "PEM")]
        trust_store: Option<PathBuf>,
        /// Accept any certificate DPM presents (encrypted, not authenticated: for trials only).
        #[arg(long)]
        trust_all: bool,
        /// This client's certificate chain (PEM), for a DPM that requires client certificates.
        #[arg(long, value_name = "PEM", requires = "private_key")]
        cert_chain: Option<PathBuf>,
        /// The private key (PEM) of --cert-chain.
        #[arg(long, value_name = "PEM", requires = "cert_chain")]
        private_key: Option<PathBuf>,
        /// The name DPM's certificate must carry, when it differs from the host connected to.
        #[arg(long, value_name = "NAME")]
        server_name: Option<String>,
    },
}

/// `svcid token …`: a subcommand, or `--user` and its options.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_required = false)]
pub struct TokenArgs {
    /// mint or inspect.
    #[command(subcommand)]
    pub command: Option<TokenCommand>,
    /// A person's token.
    #[command(flatten)]
    pub user: UserTokenArgs,
}

/// `svcid token --user …`.
#[derive(Debug, clap::Args)]
pub struct UserTokenArgs {
    /// Mint a person's token for tests, as the MicroProfile JWT guide's generateJWTString: the
    /// claims file plus iat = auth_time = now and exp = now + --expires-in; prints only the token.
    #[arg(long, requires_all = ["claims", "key"])]
    pub user: bool,
    /// The claims, a JSON object (iss, sub, upn, groups, …).
    #[arg(long, value_name = "FILE.json", requires = "user")]
    pub claims: Option<PathBuf>,
    /// The private key, PKCS#8 PEM (RSA signs RS256, EC P-256 signs ES256).
    #[arg(long, value_name = "PEM", requires = "user")]
    pub key: Option<PathBuf>,
    /// exp - iat: seconds, or with a unit s, m, h, d.
    #[arg(long, default_value = "1000s", value_parser = usertoken::parse_duration, requires = "user")]
    pub expires_in: Duration,
    /// The header's kid (default: the key's RFC 7638 thumbprint).
    #[arg(long, requires = "user")]
    pub kid: Option<String>,
    /// Make a bad token of this kind, for testing a verifier.
    #[arg(long, value_enum, requires = "user")]
    pub invalid: Option<usertoken::Invalid>,
}

/// `svcid token mint|inspect`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a token minted with a home's own generator key.
    Mint {
        /// The module home whose key signs.
        #[arg(long)]
        home: PathBuf,
        /// The module type the token is for (the receiver), e.g. dpe.
        #[arg(long)]
        aud: String,
        /// The home's module type (default: inferred).
        #[arg(long, value_enum, default_value_t = ModuleChoice::Auto)]
        module: ModuleChoice,
        /// The receiver's token profile: strict puts aud=MODULE in the token; product (an
        /// Ataccama ONE module as the receiver) leaves aud out.
        #[arg(long, default_value = "strict", value_parser = profile_parser())]
        profile: TokenProfile,
        /// Act for this user id (adds a usr claim; the receiver requires the impersonation role).
        #[arg(long, requires = "username")]
        user: Option<String>,
        /// The user's login name.
        #[arg(long, requires = "user")]
        username: Option<String>,
        /// A role of the user (repeat for several).
        #[arg(long, requires = "user")]
        role: Vec<String>,
    },
    /// Decode a token without trusting it and, with --home, say whether that module accepts it.
    /// Exit 0 accepted (or decoded, without --home), 2 refused or undecodable.
    Inspect {
        /// The token (optionally with its scheme, "Bearer …"); - reads it from standard input.
        token: String,
        /// The module home whose verdict to give.
        #[arg(long)]
        home: Option<PathBuf>,
        /// The home's module type (default: inferred).
        #[arg(long, value_enum, default_value_t = ModuleChoice::Auto)]
        module: ModuleChoice,
    },
}

/// Parses `strict` or `product`, listing both in `--help` and in the error for anything else.
fn profile_parser() -> impl clap::builder::TypedValueParser<Value = TokenProfile> {
    PossibleValuesParser::new(TokenProfile::ALL.map(TokenProfile::as_str))
        .try_map(|value| value.parse::<TokenProfile>())
}

/// Runs the command line; the binary's `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run(cli, &mut out) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let _ = out.flush();
            eprintln!("svcid: {error:#}");
            ExitCode::from(FAILED)
        }
    }
}

/// `svcid keygen`: today's EC values, the web generator's RSA forms, or PEM files.
fn keygen_command(
    kty: userkey::Kty,
    bits: Option<u32>,
    pem: Option<&std::path::Path>,
    force: bool,
    json: bool,
    module: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if bits.is_some() && kty != userkey::Kty::Rsa {
        anyhow::bail!("--bits is for --kty RSA; EC keys are P-256");
    }
    if module.is_some() && (kty != userkey::Kty::Ec || pem.is_some()) {
        anyhow::bail!("--module is for a module's EC generator key (without --kty RSA or --pem)");
    }
    let (key, generator) = match kty {
        userkey::Kty::Rsa => (userkey::KeyPair::generate_rsa(bits.unwrap_or(2048))?, None),
        userkey::Kty::Ec => {
            let generator = GeneratorKey::generate();
            (
                userkey::KeyPair::from_generator(&generator)?,
                Some(generator),
            )
        }
    };
    let text = match (pem, generator) {
        (Some(dir), _) => {
            let (private, public) = userkey::write_pem_files(&key, dir, force)?;
            keygen::render_pem_written(&key, &private, &public, json)?
        }
        (None, Some(generator)) => keygen::render(&generator, json, module)?,
        (None, None) => keygen::render_keypair(&key, json)?,
    };
    writeln!(out, "{text}")?;
    Ok(())
}

/// Runs one command, writing its report to `out`; returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<u8> {
    match cli.command {
        Command::Keygen {
            json,
            kty,
            bits,
            pem,
            force,
            module,
        } => {
            keygen_command(
                kty,
                bits,
                pem.as_deref(),
                force,
                json,
                module.as_deref(),
                out,
            )?;
            Ok(0)
        }
        Command::Link {
            dpm_home,
            dpe_home,
            environment,
            rotate,
            grace,
            token_profile,
            dpm_grpc_port,
            dpm_http_port,
            dpe_grpc_port,
            dpe_http_port,
            dpm_host,
            dpe_hostname,
        } => {
            let options = link::LinkOptions {
                environment,
                rotate,
                grace: Duration::from_secs(grace),
                token_profile,
                addresses: link::Addresses {
                    dpm_grpc_port,
                    dpm_http_port,
                    dpe_grpc_port,
                    dpe_http_port,
                    dpm_host,
                    dpe_hostname,
                },
            };
            link::link(&dpm_home, &dpe_home, &options, out)?;
            Ok(0)
        }
        Command::Revoke {
            home,
            deployment,
            key,
            undo,
            force,
        } => {
            revoke::revoke(&home, &deployment, &key, undo, force, out)?;
            Ok(0)
        }
        Command::Check {
            homes,
            module,
            json,
            online,
        } => {
            if module.len() > homes.len() {
                anyhow::bail!(
                    "{} --module options for {} homes: give at most one per home, in order",
                    module.len(),
                    homes.len()
                );
            }
            check::check(&homes, &module, json, online, out)
        }
        Command::Token(TokenArgs {
            command: None,
            user,
        }) => {
            let (true, Some(claims), Some(key)) = (user.user, user.claims, user.key) else {
                anyhow::bail!(
                    "svcid token needs a subcommand (mint, inspect) or --user --claims FILE.json --key PEM"
                );
            };
            let request = usertoken::UserTokenRequest {
                claims: &claims,
                key: &key,
                expires_in: user.expires_in,
                kid: user.kid,
                invalid: user.invalid,
            };
            use svcid_identity::clock::Clock as _;
            let now = svcid_identity::clock::SystemClock.now_unix();
            writeln!(out, "{}", usertoken::mint_user(&request, now)?)?;
            Ok(0)
        }
        Command::Whoami {
            address,
            bearer,
            home,
            module,
            aud,
            engine,
            json,
            timeout,
        } => {
            let caller = match (bearer, home) {
                (Some(token), _) => whoami::Caller::Bearer(whoami::read_token(&token)?),
                (None, Some(home)) => whoami::Caller::Home { home, module, aud },
                (None, None) => anyhow::bail!("give --bearer TOKEN or --home DIR"),
            };
            let query = whoami::WhoamiQuery {
                address: &address,
                caller,
                engine,
                json,
                timeout: Duration::from_secs(timeout.max(1)),
            };
            whoami::whoami(&query, out)?;
            Ok(0)
        }
        Command::Token(TokenArgs {
            command:
                Some(TokenCommand::Mint {
                    home,
                    aud,
                    module,
                    profile,
                    user,
                    username,
                    role,
                }),
            ..
        }) => {
            let user = user.map(|id| ImpersonatedUser {
                username: username.unwrap_or_else(|| id.clone()),
                id,
                roles: role,
            });
            let request = token::MintRequest {
                audience: &aud,
                profile,
                user,
            };
            token::mint(&home, module, &request, out, &mut std::io::stderr())?;
            Ok(0)
        }
        Command::Token(TokenArgs {
            command:
                Some(TokenCommand::Inspect {
                    token,
                    home,
                    module,
                }),
            ..
        }) => token::inspect(&token, home.as_deref().map(|h| (h, module)), out),
        Command::Engines {
            dpm,
            home,
            module,
            json,
            timeout,
            tls,
            trust_store,
            trust_all,
            cert_chain,
            private_key,
            server_name,
        } => {
            let query = engines::EnginesQuery {
                dpm: &dpm,
                home: &home,
                module,
                json,
                timeout: Duration::from_secs(timeout.max(1)),
                tls: engines::TlsFlags {
                    enabled: tls,
                    trust_store,
                    trust_all,
                    cert_chain,
                    private_key,
                    server_name,
                },
            };
            engines::engines(&query, out)?;
            Ok(0)
        }
    }
}
