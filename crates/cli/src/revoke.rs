//! `svcid revoke HOME DEPLOYMENT KEY [--undo] [--force]`: flips one key entry's `is-revoked` in
//! place.
//!
//! Revoking the deployment's last key that is not revoked would make the home refuse every call
//! from that peer; it is refused, naming the calls that would start failing, unless `--force`.
//!
//! The deployment and the key entry must exist (matched with relaxed names, as the daemons match
//! them); the flag is changed on its own line, keeping the operator's spelling (`isRevoked`), or
//! added beside the key's other lines. Nothing else in the file changes. A running daemon picks
//! the change up when it re-reads its file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use svcid_config::ModuleHome;
use svcid_config::names::{self, deployment as field};
use svcid_properties::{parse_bool, uniform};

use crate::edit::PropertiesFile;

/// Sets (or with `undo`, clears) `is-revoked` of `deployment`/`key` in `home`'s file. Revoking
/// the deployment's last key that is not revoked fails, with the file unchanged, unless `force`.
pub fn revoke(
    home: &Path,
    deployment: &str,
    key: &str,
    undo: bool,
    force: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let path = ModuleHome::new(home).properties_file();
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    let mut file =
        PropertiesFile::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let props = file.properties().map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} does not parse; fix it first:\n{}",
            path.display(),
            lines.join("\n")
        )
    })?;

    let deployments = props.map_keys(names::DEPLOYMENTS);
    let Some(deployment) = deployments
        .iter()
        .find(|d| uniform(d) == uniform(deployment))
        .cloned()
    else {
        bail!(
            "{}: no deployment {deployment:?}; deployments here: {}",
            path.display(),
            list(&deployments)
        );
    };
    let prefix = format!("{}.{deployment}", names::DEPLOYMENTS);
    let keys_prefix = format!("{prefix}.{}", field::JWT_KEYS);
    let keys = props.map_keys(&keys_prefix);
    let Some(key) = keys.iter().find(|k| uniform(k) == uniform(key)).cloned() else {
        bail!(
            "{}: deployment {deployment} has no key entry {key:?}; its keys: {}",
            path.display(),
            list(&keys)
        );
    };
    let key_prefix = format!("{keys_prefix}.{key}");
    let flag = format!("{key_prefix}.{}", field::IS_REVOKED);
    let fingerprint = props
        .get(&format!("{key_prefix}.{}", field::FINGERPRINT))
        .map(|v| v.raw.trim().to_owned())
        .unwrap_or_default();
    let was = props
        .get(&flag)
        .map(|v| parse_bool(v.raw.trim()).unwrap_or(false))
        .unwrap_or(false);
    let wanted = !undo;
    let word = if wanted {
        "revoked (is-revoked=true)"
    } else {
        "trusted again (is-revoked=false)"
    };
    let still_valid = keys.iter().filter(|k| **k != key).any(|k| {
        props
            .get(&format!("{keys_prefix}.{k}.{}", field::IS_REVOKED))
            .is_none_or(|v| !parse_bool(v.raw.trim()).unwrap_or(false))
    });
    let strands = wanted && !was && !still_valid;
    if strands && !force {
        let peer = props
            .get(&format!("{prefix}.{}", field::MODULE))
            .map(|v| v.raw.trim().to_ascii_lowercase())
            .unwrap_or_default();
        bail!(
            "{deployment}/{key} (kid {fingerprint}) is the last key of {deployment} that is not \
             revoked: {}; {} unchanged. Give the peer a new key first (svcid link DPM_HOME \
             DPE_HOME --rotate {} adds it here beside this one), then revoke this one; or pass \
             --force to revoke it anyway",
            failing_calls(&peer, &deployment),
            path.display(),
            if peer == "dpm" { "dpm" } else { "dpe" }
        );
    }
    if file.set_in_group(&flag, if wanted { "true" } else { "false" }, &key_prefix) {
        file.save()
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(
            out,
            "{deployment}/{key} (kid {fingerprint}) is now {word} in {}",
            path.display()
        )?;
        writeln!(
            out,
            "a running daemon applies it when it re-reads the file (about a second)"
        )?;
    } else {
        writeln!(
            out,
            "{deployment}/{key} (kid {fingerprint}) is {word} already; {} unchanged",
            path.display()
        )?;
    }
    if strands {
        writeln!(
            out,
            "warning: {deployment} has no other key that is not revoked (--force): {}",
            failing_calls(
                &props
                    .get(&format!("{prefix}.{}", field::MODULE))
                    .map(|v| v.raw.trim().to_ascii_lowercase())
                    .unwrap_or_default(),
                &deployment
            )
        )?;
    }
    Ok(())
}

/// What stops working when this home refuses every call signed as `deployment`, a `peer` module:
/// the calls that module makes to this one, in an operator's words.
fn failing_calls(peer: &str, deployment: &str) -> String {
    match peer {
        "dpe" => format!(
            "dpm would refuse every call from {deployment}: RegisterEngine (the engine's \
             registration and its keep-alives, so DPM drops the engine), UnregisterEngine (at the \
             engine's stop), the engine list (svcid engines with the engine's home) and WhoAmI"
        ),
        "dpm" => format!(
            "the engine would refuse every call from {deployment}: DPM's status checks \
             (Heartbeat GetStatus, so DPM marks the engine DISCONNECTED within seconds) and WhoAmI"
        ),
        _ => format!("this home would refuse every call signed as {deployment}"),
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
