//! `svcid link DPM_HOME DPE_HOME`: the whole manual procedure in one step. Each home gets a
//! generator key (an existing valid one is kept) and a deployment entry trusting the other home's
//! key with role `IMPERSONATION`. Running it twice changes nothing.

use std::path::Path;

use anyhow::{Context, Result, bail};
use svcid_config::names::{self, deployment as field};
use svcid_config::{ModuleHome, ModuleKind};
use svcid_identity::jwk::GeneratorKey;
use svcid_properties::PropertySet;

use crate::edit::PropertiesFile;

/// The name of the key entry `link` writes under a deployment's `jwt-keys`.
const KEY_ENTRY: &str = "key";

/// One side of the link.
struct Side {
    kind: ModuleKind,
    home: ModuleHome,
    file: PropertiesFile,
    key: GeneratorKey,
}

/// Links the two homes; returns a human-readable account of what changed.
pub fn link(dpm_home: &Path, dpe_home: &Path, environment: &str) -> Result<String> {
    if environment.is_empty()
        || !environment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!(
            "--environment must be letters, digits and dashes (it becomes part of a deployment name)"
        );
    }
    let mut report = Vec::new();
    let mut dpm = open_side(ModuleKind::Dpm, dpm_home, &mut report)?;
    let mut dpe = open_side(ModuleKind::Dpe, dpe_home, &mut report)?;
    trust(&mut dpm, &dpe, environment);
    trust(&mut dpe, &dpm, environment);
    for side in [&dpm, &dpe] {
        let path = side.home.properties_file();
        if side.file.changed() {
            side.file
                .save()
                .with_context(|| format!("cannot write {}", path.display()))?;
            report.push(format!("{}: updated {}", side.kind, path.display()));
        } else {
            report.push(format!(
                "{}: {} already up to date",
                side.kind,
                path.display()
            ));
        }
    }
    report.push(format!(
        "dpm trusts dpe-{environment} (kid {}); dpe trusts dpm-{environment} (kid {})",
        dpe.key.kid(),
        dpm.key.kid()
    ));
    Ok(report.join("\n"))
}

fn open_side(kind: ModuleKind, root: &Path, report: &mut Vec<String>) -> Result<Side> {
    let home = ModuleHome::new(root);
    let path = home.properties_file();
    let mut file =
        PropertiesFile::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut props = PropertySet::new();
    if path.exists()
        && let Err(problems) = props.load_file(&path, &path)
    {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        bail!("{} does not parse:\n{}", path.display(), lines.join("\n"));
    }
    let existing = props
        .get(names::GENERATOR_KEY)
        .map(|v| GeneratorKey::from_base64(v.raw.trim()));
    let key = match existing {
        Some(Ok(key)) => key,
        Some(Err(error)) => bail!(
            "{}: the existing generator key is not usable ({error}); fix or remove {} first",
            path.display(),
            names::GENERATOR_KEY
        ),
        None => {
            let key = GeneratorKey::generate();
            file.set(names::GENERATOR_KEY, &key.to_base64());
            report.push(format!("{kind}: generated a new key, kid {}", key.kid()));
            key
        }
    };
    Ok(Side {
        kind,
        home,
        file,
        key,
    })
}

/// Makes `verifier` trust `signer` as deployment `<signer>-<environment>`.
fn trust(verifier: &mut Side, signer: &Side, environment: &str) {
    let prefix = format!("{}.{}-{environment}", names::DEPLOYMENTS, signer.kind);
    let key_prefix = format!("{prefix}.{}.{KEY_ENTRY}", field::JWT_KEYS);
    let public = signer.key.public_key();
    let file = &mut verifier.file;
    file.set(&format!("{prefix}.{}", field::MODULE), signer.kind.as_str());
    file.set(&format!("{prefix}.{}", field::ENVIRONMENT), environment);
    file.set(&format!("{prefix}.{}[0]", field::ROLES), "IMPERSONATION");
    file.set(
        &format!("{key_prefix}.{}", field::FINGERPRINT),
        signer.key.kid(),
    );
    file.set(
        &format!("{key_prefix}.{}", field::CONTENT),
        &public.content_json(),
    );
    file.set(&format!("{key_prefix}.{}", field::IS_REVOKED), "false");
}
