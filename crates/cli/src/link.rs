//! `svcid link DPM_HOME DPE_HOME`: the whole manual procedure in one step, and `--rotate`, the
//! key rotation that never breaks a running pair.
//!
//! Plain `link` gives each home a generator key (an existing valid one is kept) and makes each
//! home trust the other's current key under a deployment `<module>-<environment>` with role
//! `IMPERSONATION`. It adds what is missing and corrects what is wrong (a wrong `module`, a
//! `content` that is not the signer's public key); it never removes or revokes a key, and a second
//! run changes nothing. A trusted key that is revoked stops it: un-revoking a key someone revoked
//! is a decision for `svcid revoke --undo`, not a side effect.
//!
//! `--token-profile product` also writes `security.token-profile=product` into both deployment
//! entries, so the pair talks the way Ataccama ONE's own modules do (no `aud` either way: see
//! docs/wire.md); `--token-profile strict` writes it back. Without the option a profile already
//! written is left alone.
//!
//! `--rotate` gives both sides a new key in the order that keeps a running pair READY: first each
//! verifier's file gets the peer's new key as a new entry beside the old one (both written), then
//! it waits `--grace` seconds for the daemons to re-read their files, and only then switches each
//! signer's `generator.key`. The old keys stay trusted until an operator revokes them.
//! `--rotate dpm` or `--rotate dpe` does the same for one side only (its peer is the only
//! verifier); a bare `--rotate` is `--rotate both`.
//!
//! Before anything is written, the homes' evidence (`svcid_config::evidence`) must not say they
//! are given in the wrong order, or contradict itself. A plain link also gives homes without
//! addresses complete ones: both daemons on loopback, default or asked-for ports that do not
//! collide, and the engine pointed at DPM; every value chosen is printed, and a value already in
//! a home stays unless an option asks for another (said as well).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use svcid_config::ModuleKind;
use svcid_config::evidence::{self, Verdict};
use svcid_config::names::{self, deployment as field};
use svcid_identity::jwk::{GeneratorKey, PublicKey};
use svcid_identity::token::{DEFAULT_IMPERSONATION_ROLE, TokenProfile};
use svcid_properties::{PropertySet, parse_bool, uniform};

use crate::edit::PropertiesFile;

/// The name of the first key entry under a deployment (the manual's); later ones are `key-2`, …
const FIRST_KEY_ENTRY: &str = "key";
/// The role `link` grants each peer (docs/keys.md): the one the daemons require by default to
/// act for a user.
const PEER_ROLE: &str = DEFAULT_IMPERSONATION_ROLE;
/// The group generator-key lines are kept with.
const JWT_GROUP: &str = "ataccama.authentication.internal.jwt";

/// What `svcid link` was asked to do.
#[derive(Clone, Debug)]
pub struct LinkOptions {
    /// Environment name; deployments are named `dpm-<environment>` and `dpe-<environment>`.
    pub environment: String,
    /// Give one side or both new keys (verifiers first, then signers); `None` is a plain link.
    pub rotate: Option<Rotate>,
    /// How long to wait between writing the verifiers and switching the signers.
    pub grace: Duration,
    /// The token profile to write into both deployment entries; `None` leaves them as they are.
    pub token_profile: Option<TokenProfile>,
    /// Addresses and ports asked for on the command line (plain link only).
    pub addresses: Addresses,
}

/// Which side `link --rotate` gives a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Rotate {
    /// DPM only: the engine trusts DPM's new key beside the old one, then DPM switches.
    Dpm,
    /// DPE only: DPM trusts the engine's new key beside the old one, then the engine switches.
    Dpe,
    /// Both sides (a bare `--rotate`).
    Both,
}

impl Rotate {
    /// The sides given a new key, dpm first.
    fn kinds(self) -> &'static [ModuleKind] {
        match self {
            Rotate::Dpm => &[ModuleKind::Dpm],
            Rotate::Dpe => &[ModuleKind::Dpe],
            Rotate::Both => &[ModuleKind::Dpm, ModuleKind::Dpe],
        }
    }
}

/// Where the pair listens and how the engine reaches DPM, as asked on the command line; what is
/// not asked for keeps the home's value, or gets a loopback default when the home has none.
#[derive(Clone, Debug, Default)]
pub struct Addresses {
    /// DPM's gRPC port (`ataccama.server.grpc.port` in the DPM home; default 8531).
    pub dpm_grpc_port: Option<u16>,
    /// DPM's HTTP port (`server.port`; default 8031).
    pub dpm_http_port: Option<u16>,
    /// The engine's gRPC port (default 8532).
    pub dpe_grpc_port: Option<u16>,
    /// The engine's HTTP port (default 8034).
    pub dpe_http_port: Option<u16>,
    /// The address the engine reaches DPM at (`ataccama.client.connection.dpm.host`).
    pub dpm_host: Option<String>,
    /// The host name the engine gives DPM to call it back (`ataccama.one.dpe.service.hostname`).
    pub dpe_hostname: Option<String>,
}

/// The address `link` binds a home to when it has none: only this machine can connect.
const LOOPBACK: &str = "127.0.0.1";

/// One side of the link.
struct Side {
    /// Which module the home is.
    kind: ModuleKind,
    /// The home as given.
    root: PathBuf,
    /// Its properties file, being edited.
    file: PropertiesFile,
    /// Its usable current generator key, if any.
    current: Option<GeneratorKey>,
}

/// Links the two homes, writing an account of each step to `out` as it happens.
pub fn link(
    dpm_home: &Path,
    dpe_home: &Path,
    options: &LinkOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let environment = options.environment.as_str();
    if environment.is_empty()
        || !environment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!(
            "--environment must be letters, digits and dashes (it becomes part of a deployment name)"
        );
    }
    if let (Ok(a), Ok(b)) = (dpm_home.canonicalize(), dpe_home.canonicalize())
        && a == b
    {
        bail!("DPM_HOME and DPE_HOME are the same folder");
    }
    refuse_swapped(dpm_home, dpe_home)?;
    let rotating = |kind| options.rotate.is_some_and(|r| r.kinds().contains(&kind));
    let mut dpm = open_side(ModuleKind::Dpm, dpm_home, rotating(ModuleKind::Dpm), out)?;
    let mut dpe = open_side(ModuleKind::Dpe, dpe_home, rotating(ModuleKind::Dpe), out)?;
    match options.rotate {
        Some(which) => rotate(&mut dpm, &mut dpe, which, options, out),
        None => {
            fill_addresses(&mut dpm, &mut dpe, &options.addresses, out)?;
            link_current(&mut dpm, &mut dpe, environment, options.token_profile, out)
        }
    }
}

/// Refuses, before anything is written, homes whose evidence (`svcid_config::evidence`) says they
/// are given in the wrong order, or that contradict themselves. A folder's name alone refuses
/// nothing.
fn refuse_swapped(dpm_home: &Path, dpe_home: &Path) -> Result<()> {
    let verdicts = [
        (
            ModuleKind::Dpm,
            dpm_home,
            evidence::judge(&evidence::gather(dpm_home)),
        ),
        (
            ModuleKind::Dpe,
            dpe_home,
            evidence::judge(&evidence::gather(dpe_home)),
        ),
    ];
    for (kind, home, verdict) in &verdicts {
        if matches!(verdict, Verdict::Conflict { .. })
            && let Some(why) = evidence::mismatch_of(*kind, home, verdict)
        {
            bail!(
                "{why}; nothing was changed: fix that home first (svcid check {} lists it; \
                 docs/keys.md, which module a home is)",
                home.display()
            );
        }
    }
    let wrong: Vec<String> = verdicts
        .iter()
        .filter(|(kind, _, verdict)| verdict.decided() == Some(evidence::other(*kind)))
        .map(|(kind, home, verdict)| {
            format!(
                "{}, given as {}_HOME, looks like a {} home ({})",
                home.display(),
                kind.as_str().to_ascii_uppercase(),
                evidence::other(*kind),
                verdict.reasons()
            )
        })
        .collect();
    match wrong.len() {
        0 => Ok(()),
        2 => bail!(
            "the homes are in the wrong order: {}; nothing was changed; the DPM home comes first: \
             svcid link {} {}",
            wrong.join(", and "),
            dpe_home.display(),
            dpm_home.display()
        ),
        _ => bail!(
            "{}; nothing was changed; svcid link takes the DPM home first, then the DPE home \
             (svcid link DPM_HOME DPE_HOME)",
            wrong.join("; ")
        ),
    }
}

/// Plain `link` on homes without addresses: each daemon bound to loopback on its default ports
/// (or the ones asked for), the engine pointed at DPM and naming itself by a loopback address.
/// Values in the homes stay, unless an option asks for another (said on `out`). Nothing is written
/// when the ports collide.
fn fill_addresses(
    dpm: &mut Side,
    dpe: &mut Side,
    asked: &Addresses,
    out: &mut dyn Write,
) -> Result<()> {
    let mut said = Vec::new();
    for (side, grpc, http) in [
        (&mut *dpm, asked.dpm_grpc_port, asked.dpm_http_port),
        (&mut *dpe, asked.dpe_grpc_port, asked.dpe_http_port),
    ] {
        let props = parse(&side.file)?;
        if props.entries_under(names::GRPC).is_empty() && props.get(names::SERVER_PORT).is_none() {
            side.file.comment(&format!(
                "Where this {} listens (svcid link): loopback only, so only this machine connects; \
                 set {} to 0.0.0.0 to serve other machines.",
                side.kind,
                names::GRPC_HOST
            ));
        }
        let kind = side.kind;
        let mut setting = Setting {
            side,
            props: &props,
            said: &mut said,
        };
        setting.fill(names::GRPC_HOST, None, LOOPBACK, "loopback");
        setting.fill(
            names::GRPC_PORT,
            grpc.map(|p| (p.to_string(), format!("--{kind}-grpc-port"))),
            &kind.default_grpc_port().to_string(),
            "the default gRPC port",
        );
        setting.fill(
            names::SERVER_PORT,
            http.map(|p| (p.to_string(), format!("--{kind}-http-port"))),
            &svcid_config::default_http_port(kind).to_string(),
            "the default HTTP port: health, metrics, /console",
        );
    }
    let dpm_props = parse(&dpm.file)?;
    let dpe_props = parse(&dpe.file)?;
    let value = |props: &PropertySet, name: &str| props.get(name).map(|v| v.raw.trim().to_owned());
    let dpm_grpc_host = value(&dpm_props, names::GRPC_HOST).unwrap_or_default();
    let dpm_grpc_port = value(&dpm_props, names::GRPC_PORT).unwrap_or_default();
    let dpe_grpc_host = value(&dpe_props, names::GRPC_HOST).unwrap_or_default();

    if dpe_props.entries_under(names::DPM_CONNECTION).is_empty()
        && dpe_props.get(names::SERVICE_HOSTNAME).is_none()
    {
        dpe.file.comment(
            "Where this dpe finds dpm, and the host name dpm calls it back by (svcid link).",
        );
    }
    let mut setting = Setting {
        side: &mut *dpe,
        props: &dpe_props,
        said: &mut said,
    };
    setting.fill(
        names::DPM_HOST,
        asked.dpm_host.clone().map(|h| (h, "--dpm-host".to_owned())),
        specific_or_loopback(&dpm_grpc_host),
        "dpm's address",
    );
    match (dpe_props.get(names::DPM_PORT), dpm_grpc_port.as_str()) {
        (_, "0") => said.push(format!(
            "dpe: dpm's gRPC port is 0 (picked at each start), so {} is left as it is: pass the \
             engine dpm's port with --{}=PORT",
            names::DPM_PORT,
            names::DPM_PORT
        )),
        (Some(v), port) if v.raw.trim() != port && asked.dpm_grpc_port.is_none() => {
            said.push(format!(
                "warning: dpe: {}={} ({}) but dpm's gRPC port is {port}; left as written (the \
                 engine will not find dpm unless something forwards that port)",
                names::DPM_PORT,
                v.raw.trim(),
                v.origin
            ));
        }
        (_, port) => {
            setting.fill(
                names::DPM_PORT,
                asked
                    .dpm_grpc_port
                    .map(|_| (port.to_owned(), "dpm's gRPC port".to_owned())),
                port,
                "dpm's gRPC port",
            );
        }
    }
    let mut setting = Setting {
        side: &mut *dpe,
        props: &dpe_props,
        said: &mut said,
    };
    setting.fill(
        names::SERVICE_HOSTNAME,
        asked
            .dpe_hostname
            .clone()
            .map(|h| (h, "--dpe-hostname".to_owned())),
        specific_or_loopback(&dpe_grpc_host),
        "the name dpm calls the engine back by",
    );
    refuse_colliding_ports(dpm, dpe)?;
    for line in said {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `host` when it names one address, else loopback (for a wildcard such as `0.0.0.0`).
fn specific_or_loopback(host: &str) -> &str {
    match host {
        "" | "0.0.0.0" | "::" | "[::]" => LOOPBACK,
        specific => specific,
    }
}

/// Fails when two of the pair's ports are the same while the engine reaches DPM on this machine.
fn refuse_colliding_ports(dpm: &Side, dpe: &Side) -> Result<()> {
    let dpe_props = parse(&dpe.file)?;
    let dpm_props = parse(&dpm.file)?;
    let on_this_machine = dpe_props.get(names::DPM_HOST).is_none_or(|v| {
        let host = v.raw.trim();
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if !on_this_machine {
        return Ok(());
    }
    let mut ports: Vec<(String, u16)> = Vec::new();
    for (kind, props) in [(ModuleKind::Dpm, &dpm_props), (ModuleKind::Dpe, &dpe_props)] {
        for (name, what, default) in [
            (names::GRPC_PORT, "gRPC", kind.default_grpc_port()),
            (
                names::SERVER_PORT,
                "HTTP",
                svcid_config::default_http_port(kind),
            ),
        ] {
            let port = props
                .get(name)
                .and_then(|v| v.raw.trim().parse::<u16>().ok())
                .unwrap_or(default);
            if port == 0 {
                continue;
            }
            let label = format!("{kind}'s {what} port ({name})");
            if let Some((first, _)) = ports.iter().find(|(_, p)| *p == port) {
                bail!(
                    "{first} and {label} are both {port}, and both daemons run on this machine; \
                     nothing was changed: choose other ports with --dpm-grpc-port, \
                     --dpm-http-port, --dpe-grpc-port or --dpe-http-port"
                );
            }
            ports.push((label, port));
        }
    }
    Ok(())
}

/// One home's file being given the values `link` chooses, with what was said about each.
struct Setting<'a> {
    /// The side being edited.
    side: &'a mut Side,
    /// Its properties before this step.
    props: &'a PropertySet,
    /// The lines to print.
    said: &'a mut Vec<String>,
}

impl Setting<'_> {
    /// Sets `name` to the value asked for (with the option that asked), else keeps the file's
    /// value, else sets `default`; a new line goes at the end of the file (after the operator's
    /// own lines, which stay first). Returns the value the file ends with.
    fn fill(
        &mut self,
        name: &str,
        asked: Option<(String, String)>,
        default: &str,
        why: &str,
    ) -> String {
        let kind = self.side.kind;
        let current = self.props.get(name).map(|v| v.raw.trim().to_owned());
        match (asked, current) {
            (Some((value, _)), Some(current)) if value == current => current,
            (Some((value, option)), Some(current)) => {
                self.side.file.set(name, &value);
                self.said.push(format!(
                    "{kind}: {name} was {current}; set to {value} ({option})"
                ));
                value
            }
            (Some((value, option)), None) => {
                self.side.file.set(name, &value);
                self.said.push(format!("{kind}: {name}={value} ({option})"));
                value
            }
            (None, Some(current)) => current,
            (None, None) => {
                self.side.file.set(name, default);
                self.said.push(format!("{kind}: {name}={default} ({why})"));
                default.to_owned()
            }
        }
    }
}

/// Plain `link`: keys where missing, each side trusting the other's current key.
fn link_current(
    dpm: &mut Side,
    dpe: &mut Side,
    environment: &str,
    token_profile: Option<TokenProfile>,
    out: &mut dyn Write,
) -> Result<()> {
    for side in [&mut *dpm, &mut *dpe] {
        if side.current.is_none() {
            let key = GeneratorKey::generate();
            set_generator_key(&mut side.file, &key);
            writeln!(out, "{}: generated a new key, kid {}", side.kind, key.kid())?;
            side.current = Some(key);
        }
    }
    let (Some(dpm_key), Some(dpe_key)) = (&dpm.current, &dpe.current) else {
        bail!("internal: a side has no key after generation");
    };
    let entry = Entry {
        environment,
        token_profile,
    };
    let mut notes = trust(&mut dpm.file, ModuleKind::Dpe, dpe_key, None, &entry)?;
    notes.extend(trust(
        &mut dpe.file,
        ModuleKind::Dpm,
        dpm_key,
        None,
        &entry,
    )?);
    let summary = format!(
        "dpm trusts dpe's key {}; dpe trusts dpm's key {}",
        dpe_key.kid(),
        dpm_key.kid()
    );
    for note in notes {
        writeln!(out, "{note}")?;
    }
    for side in [&mut *dpm, &mut *dpe] {
        save(side, "", out)?;
    }
    writeln!(out, "{summary}")?;
    Ok(())
}

/// The signer's side and its peer, the verifier, of a pair.
fn signer_and_verifier<'a>(
    dpm: &'a mut Side,
    dpe: &'a mut Side,
    signer: ModuleKind,
) -> (&'a mut Side, &'a mut Side) {
    match signer {
        ModuleKind::Dpm => (dpm, dpe),
        ModuleKind::Dpe => (dpe, dpm),
    }
}

/// `link --rotate`: new keys on the verifiers, a grace period, then the signers; `which` says
/// whose keys.
fn rotate(
    dpm: &mut Side,
    dpe: &mut Side,
    which: Rotate,
    options: &LinkOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let entry = Entry {
        environment: options.environment.as_str(),
        token_profile: options.token_profile,
    };
    let signers = which.kinds();
    let mut new_keys = Vec::new();
    for kind in signers {
        let key = GeneratorKey::generate();
        writeln!(out, "{kind}: generated a new key, kid {}", key.kid())?;
        new_keys.push((*kind, key));
    }

    match which {
        Rotate::Both => writeln!(
            out,
            "step 1/3: verifiers first: each side trusts the other's new key beside the old one"
        )?,
        _ => writeln!(
            out,
            "step 1/3: verifier first: {} trusts {}'s new key beside the old one",
            evidence::other(signers[0]),
            signers[0]
        )?,
    }
    let mut notes = Vec::new();
    for (kind, key) in &new_keys {
        let (signer, verifier) = signer_and_verifier(dpm, dpe, *kind);
        let old = signer.current.as_ref().map(GeneratorKey::kid);
        notes.extend(trust(&mut verifier.file, *kind, key, old, &entry)?);
    }
    for note in &notes {
        writeln!(out, "  {note}")?;
    }
    for side in [&mut *dpm, &mut *dpe] {
        if signers.contains(&evidence::other(side.kind)) {
            save(side, "  ", out)?;
        }
    }

    writeln!(
        out,
        "step 2/3: waiting {}s for running daemons to re-read their files",
        options.grace.as_secs_f64()
    )?;
    out.flush()?;
    std::thread::sleep(options.grace);

    match which {
        Rotate::Both => writeln!(
            out,
            "step 3/3: signers: switching each side's generator key to its new key"
        )?,
        _ => writeln!(
            out,
            "step 3/3: signer: switching {}'s generator key to its new key",
            signers[0]
        )?,
    }
    let mut revokes = Vec::new();
    for (kind, new) in &new_keys {
        let (side, peer) = signer_and_verifier(dpm, dpe, *kind);
        let peer_root = peer.root.clone();
        // Re-read: the file may have been edited during the grace period.
        let path = side.file.path().to_owned();
        side.file = PropertiesFile::open(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        set_generator_key(&mut side.file, new);
        match &side.current {
            Some(old) => {
                writeln!(
                    out,
                    "  {}: generator key is now kid {} (was {})",
                    side.kind,
                    new.kid(),
                    old.kid()
                )?;
                revokes.push((peer_root, old.kid().to_owned()));
            }
            None => writeln!(
                out,
                "  {}: generator key is now kid {} (there was no usable key before)",
                side.kind,
                new.kid()
            )?,
        }
        save(side, "  ", out)?;
    }
    match which {
        Rotate::Both => writeln!(
            out,
            "done: running daemons re-read their files and sign with the new keys (a stopped one does at its next start); the old keys stay trusted until revoked"
        )?,
        _ => writeln!(
            out,
            "done: a running {0} re-reads its file and signs with the new key (a stopped one does at its next start); the old key stays trusted until revoked",
            signers[0]
        )?,
    }
    if !revokes.is_empty() {
        writeln!(
            out,
            "then, once {} (generatorKeyChanged in {}), revoke the old {}:",
            if which == Rotate::Both {
                "both sign with their new keys"
            } else {
                "it signs with its new key"
            },
            if which == Rotate::Both {
                "their logs"
            } else {
                "its log"
            },
            if which == Rotate::Both { "ones" } else { "one" }
        )?;
    }
    revokes.reverse();
    for (peer_root, old_kid) in revokes {
        let file =
            PropertiesFile::open(&svcid_config::ModuleHome::new(&peer_root).properties_file())
                .with_context(|| format!("cannot read {}", peer_root.display()))?;
        let props = parse(&file)?;
        if let Some((deployment, key)) = holder_of(&props, &old_kid) {
            writeln!(
                out,
                "  svcid revoke {} {deployment} {key}",
                peer_root.display()
            )?;
        }
    }
    Ok(())
}

/// Opens one home: its file and its current generator key.
fn open_side(kind: ModuleKind, root: &Path, rotating: bool, out: &mut dyn Write) -> Result<Side> {
    let path = svcid_config::ModuleHome::new(root).properties_file();
    let file =
        PropertiesFile::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let props = parse(&file)?;
    let current = match props.get(names::GENERATOR_KEY) {
        None => None,
        Some(value) => match GeneratorKey::from_base64(value.raw.trim()) {
            Ok(key) => Some(key),
            Err(error) if rotating => {
                writeln!(
                    out,
                    "{kind}: the existing generator key is not usable ({error}); rotation replaces it"
                )?;
                None
            }
            Err(error) => bail!(
                "{}: the existing generator key is not usable ({error}); fix or remove {} first, \
                 or replace it with svcid link --rotate",
                value.origin,
                names::GENERATOR_KEY
            ),
        },
    };
    Ok(Side {
        kind,
        root: root.to_owned(),
        file,
        current,
    })
}

/// The file's properties, or an error listing why it does not parse.
fn parse(file: &PropertiesFile) -> Result<PropertySet> {
    file.properties().map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} does not parse; fix it first (svcid check shows every problem):\n{}",
            file.path().display(),
            lines.join("\n")
        )
    })
}

fn save(side: &mut Side, indent: &str, out: &mut dyn Write) -> Result<()> {
    let path = side.file.path().display().to_string();
    if side.file.changed() {
        side.file
            .save()
            .with_context(|| format!("cannot write {path}"))?;
        writeln!(out, "{indent}{}: updated {path}", side.kind)?;
    } else {
        writeln!(out, "{indent}{}: {path} already up to date", side.kind)?;
    }
    Ok(())
}

fn set_generator_key(file: &mut PropertiesFile, key: &GeneratorKey) {
    if let Ok(props) = file.properties()
        && props.entries_under(JWT_GROUP).is_empty()
    {
        file.comment("This module's private signing key (svcid link). Never give it to a peer.");
    }
    file.set_in_group(names::GENERATOR_KEY, &key.to_base64(), JWT_GROUP);
}

/// `<deployments>.<deployment>`.
fn deployment_prefix(deployment: &str) -> String {
    format!("{}.{deployment}", names::DEPLOYMENTS)
}

/// `<deployments>.<deployment>.security.jwt-keys`.
fn keys_prefix(deployment: &str) -> String {
    format!("{}.{}", deployment_prefix(deployment), field::JWT_KEYS)
}

/// The deployment and key entry (as written) whose fingerprint is exactly `kid`.
fn holder_of(props: &PropertySet, kid: &str) -> Option<(String, String)> {
    for deployment in props.map_keys(names::DEPLOYMENTS) {
        let keys = keys_prefix(&deployment);
        for key in props.map_keys(&keys) {
            let fingerprint = format!("{keys}.{key}.{}", field::FINGERPRINT);
            if props.get(&fingerprint).is_some_and(|v| v.raw.trim() == kid) {
                return Some((deployment, key));
            }
        }
    }
    None
}

/// The first key entry name not used under a deployment: `key`, then `key-2`, `key-3`, …
pub(crate) fn next_key_name(props: &PropertySet, deployment: &str) -> String {
    let used: Vec<String> = props
        .map_keys(&keys_prefix(deployment))
        .iter()
        .map(|k| uniform(k))
        .collect();
    if used.is_empty() {
        return FIRST_KEY_ENTRY.to_owned();
    }
    (2u32..)
        .map(|n| format!("{FIRST_KEY_ENTRY}-{n}"))
        .find(|name| !used.contains(&uniform(name)))
        .unwrap_or_else(|| FIRST_KEY_ENTRY.to_owned())
}

/// What `link` writes into a deployment entry besides the key.
#[derive(Clone, Copy, Debug)]
struct Entry<'a> {
    /// The environment of a new entry, and of its name `<signer>-<environment>`.
    environment: &'a str,
    /// The token profile to set, if asked for.
    token_profile: Option<TokenProfile>,
}

/// Makes the verifier's file trust `key`, the signer's key. The deployment used is the one already
/// holding that key, else the one holding `old_kid` (the key being rotated out), else
/// `<signer>-<environment>`. Returns notes on what changed.
fn trust(
    file: &mut PropertiesFile,
    signer: ModuleKind,
    key: &GeneratorKey,
    old_kid: Option<&str>,
    entry: &Entry<'_>,
) -> Result<Vec<String>> {
    let props = parse(file)?;
    let held = holder_of(&props, key.kid());
    let deployment = held
        .as_ref()
        .map(|(d, _)| d.clone())
        .or_else(|| old_kid.and_then(|kid| holder_of(&props, kid).map(|(d, _)| d)))
        .unwrap_or_else(|| format!("{signer}-{}", entry.environment));
    let mut edit = TrustEdit::new(file, &props, signer, key, deployment);
    edit.introduce_deployment();
    edit.set_module();
    edit.set_environment(entry.environment);
    if let Some(profile) = entry.token_profile {
        edit.set_token_profile(profile);
    }
    match &held {
        Some((_, key_name)) => edit.refresh_held_key(key_name)?,
        None => edit.add_key(),
    }
    edit.ensure_peer_role();
    Ok(edit.notes)
}

/// The edits [`trust`] makes to one deployment entry of the verifier's file, in the order they
/// are written, with the notes on what changed.
struct TrustEdit<'a> {
    /// The verifier's file being edited.
    file: &'a mut PropertiesFile,
    /// The file's properties as they were before any edit.
    props: &'a PropertySet,
    /// The signer's module type.
    signer: ModuleKind,
    /// The verifier's module type.
    verifier: ModuleKind,
    /// The signer's key to trust.
    key: &'a GeneratorKey,
    /// The deployment entry's name.
    deployment: String,
    /// `<deployments>.<deployment>`.
    prefix: String,
    /// What changed, one line each.
    notes: Vec<String>,
}

impl<'a> TrustEdit<'a> {
    fn new(
        file: &'a mut PropertiesFile,
        props: &'a PropertySet,
        signer: ModuleKind,
        key: &'a GeneratorKey,
        deployment: String,
    ) -> Self {
        let verifier = match signer {
            ModuleKind::Dpm => ModuleKind::Dpe,
            ModuleKind::Dpe => ModuleKind::Dpm,
        };
        TrustEdit {
            file,
            props,
            signer,
            verifier,
            key,
            prefix: deployment_prefix(&deployment),
            deployment,
            notes: Vec::new(),
        }
    }

    /// A comment above a deployment the file does not have yet.
    fn introduce_deployment(&mut self) {
        let (deployment, signer, verifier) = (&self.deployment, self.signer, self.verifier);
        if self.props.entries_under(&self.prefix).is_empty() {
            self.file.comment(&format!(
                "{deployment}: the {signer} peer this {verifier} trusts (svcid link)"
            ));
            self.notes
                .push(format!("{verifier}: added deployment {deployment}"));
        }
    }

    /// `module=<signer>`, replacing another module type.
    fn set_module(&mut self) {
        let (deployment, signer, verifier) = (&self.deployment, self.signer, self.verifier);
        let module = format!("{}.{}", self.prefix, field::MODULE);
        match self.props.get(&module) {
            Some(v) if v.raw.trim() == signer.as_str() => {}
            Some(v) => {
                self.notes.push(format!(
                    "{verifier}: {deployment}.module was {:?}; set to {signer}",
                    v.raw.trim()
                ));
                self.file
                    .set_in_group(&module, signer.as_str(), &self.prefix);
            }
            None => {
                self.file
                    .set_in_group(&module, signer.as_str(), &self.prefix);
            }
        }
    }

    /// `environment`, unless the entry has one.
    fn set_environment(&mut self, environment: &str) {
        let env_name = format!("{}.{}", self.prefix, field::ENVIRONMENT);
        if self.props.get(&env_name).is_none() {
            self.file.set_in_group(&env_name, environment, &self.prefix);
        }
    }

    /// `security.token-profile=<profile>`, replacing another profile.
    fn set_token_profile(&mut self, profile: TokenProfile) {
        let (deployment, verifier) = (&self.deployment, self.verifier);
        let profile_name = format!("{}.{}", self.prefix, field::TOKEN_PROFILE);
        match self.props.get(&profile_name) {
            Some(v) if v.raw.trim().parse::<TokenProfile>() == Ok(profile) => {}
            Some(v) => {
                self.notes.push(format!(
                    "{verifier}: {deployment}.token-profile was {:?}; set to {profile}",
                    v.raw.trim()
                ));
                self.file
                    .set_in_group(&profile_name, profile.as_str(), &self.prefix);
            }
            None => {
                self.notes.push(format!(
                    "{verifier}: {deployment}.token-profile set to {profile}"
                ));
                self.file
                    .set_in_group(&profile_name, profile.as_str(), &self.prefix);
            }
        }
    }

    /// The key entry already under the signer's kid: its content is made the signer's public
    /// key; a revoked entry is an error (rotating or reinstating is the operator's choice).
    fn refresh_held_key(&mut self, entry: &str) -> Result<()> {
        let (deployment, signer, verifier, key) =
            (&self.deployment, self.signer, self.verifier, self.key);
        let entry_prefix = format!("{}.{entry}", keys_prefix(deployment));
        let content_name = format!("{entry_prefix}.{}", field::CONTENT);
        let right = self.props.get(&content_name).is_some_and(|v| {
            PublicKey::from_content(&v.raw).is_ok_and(|(public, findings)| {
                public.thumbprint() == key.public_key().thumbprint() && !findings.private_part
            })
        });
        if !right {
            let content = key.public_key().content_json();
            self.file
                .set_in_group(&content_name, &content, &self.prefix);
            self.notes.push(format!(
                "{verifier}: {deployment}/{entry}: content was not {signer}'s public key; replaced"
            ));
        }
        let revoked_name = format!("{entry_prefix}.{}", field::IS_REVOKED);
        if let Some(v) = self.props.get(&revoked_name)
            && parse_bool(v.raw.trim()).unwrap_or(false)
        {
            bail!(
                "{}: {deployment}/{entry} holds {signer}'s current key {} but it is revoked; \
                 give {signer} a new key with svcid link --rotate, or reinstate this one with \
                 svcid revoke --undo HOME {deployment} {entry}",
                v.origin,
                key.kid()
            );
        }
        Ok(())
    }

    /// A new key entry with the signer's key, beside the deployment's other keys (none revoked).
    fn add_key(&mut self) {
        let (deployment, signer, verifier, key) =
            (&self.deployment, self.signer, self.verifier, self.key);
        let entry = next_key_name(self.props, deployment);
        let entry_prefix = format!("{}.{entry}", keys_prefix(deployment));
        // A new key goes right after the deployment's other keys, else after its other lines.
        let group = if self
            .props
            .entries_under(&keys_prefix(deployment))
            .is_empty()
        {
            self.prefix.clone()
        } else {
            keys_prefix(deployment)
        };
        let content = key.public_key().content_json();
        for (field, value) in [
            (field::FINGERPRINT, key.kid()),
            (field::CONTENT, content.as_str()),
            (field::IS_REVOKED, "false"),
        ] {
            self.file
                .set_in_group(&format!("{entry_prefix}.{field}"), value, &group);
        }
        let others = self.props.map_keys(&keys_prefix(deployment));
        self.notes.push(if others.is_empty() {
            format!(
                "{verifier}: {deployment}/{entry} trusts {signer}'s key {}",
                key.kid()
            )
        } else {
            format!(
                "{verifier}: {deployment}/{entry} trusts {signer}'s key {} (beside {}; nothing is revoked)",
                key.kid(),
                others.join(", ")
            )
        });
    }

    /// `security.roles[0]=<peer role>` when the entry has no roles; roles without it are left as
    /// configured, with a note.
    fn ensure_peer_role(&mut self) {
        let (deployment, verifier) = (&self.deployment, self.verifier);
        let roles_name = format!("{}.{}", self.prefix, field::ROLES);
        match self.props.get_list(&roles_name) {
            None => {
                self.file
                    .set_in_group(&format!("{roles_name}[0]"), PEER_ROLE, &self.prefix);
            }
            Some(roles) if !roles.iter().any(|r| r.raw.trim() == PEER_ROLE) => {
                self.notes.push(format!(
                    "{verifier}: {deployment} has roles but not {PEER_ROLE}; left as configured"
                ));
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(text: &str) -> PropertiesFile {
        PropertiesFile::from_text(Path::new("x.properties"), text)
    }

    fn entry(environment: &str) -> Entry<'_> {
        Entry {
            environment,
            token_profile: None,
        }
    }

    #[test]
    fn key_names_follow_the_first_free_one() {
        let f = file("");
        assert_eq!(next_key_name(&f.properties().unwrap(), "dpe-dev"), "key");
        let f = file(
            "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key1.fingerprint=a\n\
             ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key_2.fingerprint=b\n",
        );
        assert_eq!(next_key_name(&f.properties().unwrap(), "dpe-dev"), "key-3");
    }

    #[test]
    fn trust_adds_a_deployment_in_the_manuals_order_and_is_idempotent() {
        let key = GeneratorKey::generate();
        let mut f = file("# mine\nataccama.server.grpc.port=8531\n");
        let notes = trust(&mut f, ModuleKind::Dpe, &key, None, &entry("dev")).unwrap();
        assert!(notes[0].contains("added deployment dpe-dev"), "{notes:?}");
        let text = f.text();
        let p = "ataccama.one.platform.deployments.dpe-dev";
        let expected = format!(
            "# mine\nataccama.server.grpc.port=8531\n\n\
             # dpe-dev: the dpe peer this dpm trusts (svcid link)\n\
             {p}.module=dpe\n{p}.environment=dev\n\
             {p}.security.jwt-keys.key.fingerprint={}\n\
             {p}.security.jwt-keys.key.content={}\n\
             {p}.security.jwt-keys.key.is-revoked=false\n\
             {p}.security.roles[0]=IMPERSONATION\n",
            key.kid(),
            key.public_key().content_json()
        );
        assert_eq!(text, expected);
        let mut again = file(&text);
        assert!(
            trust(&mut again, ModuleKind::Dpe, &key, None, &entry("dev"))
                .unwrap()
                .is_empty()
        );
        assert!(!again.changed());
    }

    #[test]
    fn the_token_profile_is_written_once_and_switched_with_a_note() {
        let key = GeneratorKey::generate();
        let product = Entry {
            environment: "dev",
            token_profile: Some(TokenProfile::Product),
        };
        let mut f = file("");
        let notes = trust(&mut f, ModuleKind::Dpm, &key, None, &product).unwrap();
        assert!(
            notes
                .iter()
                .any(|n| n == "dpe: dpm-dev.token-profile set to product"),
            "{notes:?}"
        );
        let p = "ataccama.one.platform.deployments.dpm-dev";
        let text = f.text();
        assert!(
            text.contains(&format!(
                "{p}.environment=dev\n{p}.security.token-profile=product\n{p}.security.jwt-keys.key.fingerprint="
            )),
            "{text}"
        );
        let mut again = file(&text);
        assert!(
            trust(&mut again, ModuleKind::Dpm, &key, None, &product)
                .unwrap()
                .is_empty()
        );
        // Without the option the profile stays; with strict it is switched back.
        assert!(
            trust(&mut again, ModuleKind::Dpm, &key, None, &entry("dev"))
                .unwrap()
                .is_empty()
        );
        assert!(!again.changed());
        let strict = Entry {
            token_profile: Some(TokenProfile::Strict),
            ..product
        };
        let notes = trust(&mut again, ModuleKind::Dpm, &key, None, &strict).unwrap();
        assert_eq!(
            notes,
            ["dpe: dpm-dev.token-profile was \"product\"; set to strict"]
        );
        assert!(
            again
                .text()
                .contains(&format!("{p}.security.token-profile=strict\n"))
        );
    }

    #[test]
    fn a_new_key_goes_beside_the_old_one_in_the_same_deployment() {
        let old = GeneratorKey::generate();
        let new = GeneratorKey::generate();
        let mut f = file("");
        trust(&mut f, ModuleKind::Dpe, &old, None, &entry("prod")).unwrap();
        let notes = trust(
            &mut f,
            ModuleKind::Dpe,
            &new,
            Some(old.kid()),
            &entry("dev"),
        )
        .unwrap();
        assert!(notes[0].contains("dpe-prod/key-2"), "{notes:?}");
        let props = f.properties().unwrap();
        let p = "ataccama.one.platform.deployments.dpe-prod.security.jwt-keys";
        assert_eq!(
            props.get(&format!("{p}.key.fingerprint")).unwrap().raw,
            old.kid()
        );
        assert_eq!(
            props.get(&format!("{p}.key-2.fingerprint")).unwrap().raw,
            new.kid()
        );
        assert_eq!(
            props.get(&format!("{p}.key.is-revoked")).unwrap().raw,
            "false"
        );
        let text = f.text();
        let lines: Vec<&str> = text.lines().collect();
        let old_flag = lines
            .iter()
            .position(|l| l.contains(".key.is-revoked"))
            .unwrap();
        assert!(
            lines[old_flag + 1].contains(".key-2.fingerprint="),
            "{text}"
        );
        assert!(lines.last().unwrap().contains("roles[0]"), "{text}");
    }

    #[test]
    fn wrong_module_and_content_are_corrected_and_a_revoked_key_stops() {
        let key = GeneratorKey::generate();
        let other = GeneratorKey::generate();
        let p = "ataccama.one.platform.deployments.dpm-dev";
        let mut f = file(&format!(
            "{p}.module=dpe\n{p}.security.jwt-keys.key.fingerprint={}\n\
             {p}.security.jwt-keys.key.content={}\n{p}.security.roles=OTHER\n",
            key.kid(),
            other.public_key().content_json()
        ));
        let notes = trust(&mut f, ModuleKind::Dpm, &key, None, &entry("dev")).unwrap();
        assert_eq!(notes.len(), 3, "{notes:?}");
        let props = f.properties().unwrap();
        assert_eq!(props.get(&format!("{p}.module")).unwrap().raw, "dpm");
        assert_eq!(
            props
                .get(&format!("{p}.security.jwt-keys.key.content"))
                .unwrap()
                .raw,
            key.public_key().content_json()
        );
        let mut revoked = file(&format!(
            "{p}.module=dpm\n{p}.security.jwt-keys.key.fingerprint={}\n\
             {p}.security.jwt-keys.key.content={}\n{p}.security.jwt-keys.key.isRevoked=true\n",
            key.kid(),
            key.public_key().content_json()
        ));
        let error = trust(&mut revoked, ModuleKind::Dpm, &key, None, &entry("dev")).unwrap_err();
        assert!(error.to_string().contains("revoked"), "{error}");
    }
}
