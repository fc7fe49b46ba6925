//! Binds `ataccama.one.platform.deployments.*` into a [`DeploymentRegistry`], catching every trap of
//! the vendor's manual (SPEC section 8, SECURITY.md rows C1–C7) with a problem that names the
//! property and the line.

use std::collections::HashMap;

use svcid_identity::jwk::PublicKey;
use svcid_identity::registry::{Deployment, DeploymentKey, DeploymentRegistry};
use svcid_properties::{Origin, Value, did_you_mean, uniform};

use crate::bind::Binder;
use crate::names::{self, deployment as field};

/// The fields a deployment may hold, relative to `<deployments>.<name>`, in uniform form
/// (`*` stands for a key name, `#` for a list index).
const DEPLOYMENT_FIELDS: &[&str] = &[
    "module",
    "environment",
    "uri",
    "security.roles",
    "security.roles#",
    "security.jwtkeys.*.fingerprint",
    "security.jwtkeys.*.content",
    "security.jwtkeys.*.isrevoked",
];

/// The spellings offered in "did you mean" for a misspelt last segment.
const FIELD_NAMES: &[&str] = &[
    "module",
    "environment",
    "uri",
    "roles",
    "jwt-keys",
    "fingerprint",
    "content",
    "is-revoked",
];

/// Reads every deployment; problems go to the binder. Returns the registry when the
/// deployments are usable (errors elsewhere in the file are the caller's business).
pub(crate) fn bind(binder: &mut Binder<'_>) -> Option<DeploymentRegistry> {
    let mut deployments = Vec::new();
    let mut failed = false;
    // Fingerprint -> where it was first configured, for duplicates (C6).
    let mut seen: HashMap<String, (String, Origin)> = HashMap::new();

    for name in binder.props.map_keys(names::DEPLOYMENTS) {
        let prefix = format!("{}.{name}", names::DEPLOYMENTS);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            if let Some(v) = binder.props.entries_under(&prefix).first().copied() {
                binder.error_at(
                    v,
                    format!("deployment name {name:?} may hold only letters, digits and dashes"),
                    "rename the deployment, e.g. dpe-dev",
                );
            }
            failed = true;
            continue;
        }
        check_unknown_fields(binder, &prefix);

        let module = match binder.string(&format!("{prefix}.{}", field::MODULE)) {
            Some((m, _)) if !m.is_empty() => Some(m),
            Some((_, v)) => {
                binder.error_at(
                    v,
                    "module is empty",
                    "set the peer's module type, e.g. dpm or dpe",
                );
                None
            }
            None => {
                binder.missing(
                    &format!("{prefix}.{}", field::MODULE),
                    format!("add {prefix}.module=<dpm|dpe|…> naming the peer's module type"),
                );
                None
            }
        };
        let environment = binder
            .string(&format!("{prefix}.{}", field::ENVIRONMENT))
            .map(|(s, _)| s)
            .filter(|s| !s.is_empty());
        let uri = binder
            .string(&format!("{prefix}.{}", field::URI))
            .map(|(s, _)| s)
            .filter(|s| !s.is_empty());
        let roles: Vec<String> = binder
            .props
            .get_list(&format!("{prefix}.{}", field::ROLES))
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.raw.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect();

        let mut keys = Vec::new();
        let keys_prefix = format!("{prefix}.{}", field::JWT_KEYS);
        for key_name in binder.props.map_keys(&keys_prefix) {
            match bind_key(
                binder,
                &name,
                &format!("{keys_prefix}.{key_name}"),
                &key_name,
            ) {
                Some((key, origin)) => {
                    if let Some((other, first)) = seen.get(&key.fingerprint) {
                        let v = fingerprint_value(binder, &format!("{keys_prefix}.{key_name}"));
                        if let Some(v) = v {
                            binder.error_at(
                                v,
                                format!(
                                    "fingerprint {:?} is already configured for deployment {other} at {first}",
                                    key.fingerprint
                                ),
                                "a key belongs to one deployment: remove one of the two entries",
                            );
                        }
                        failed = true;
                    } else {
                        seen.insert(key.fingerprint.clone(), (name.clone(), origin));
                    }
                    keys.push(key);
                }
                None => failed = true,
            }
        }
        if keys.is_empty()
            && let Some(v) = binder.props.entries_under(&prefix).first().copied()
        {
            binder.warn_at(
                v,
                format!("deployment {name} has no jwt-keys: no token from it can be verified"),
                format!("add {keys_prefix}.<key>.fingerprint and .content (svcid link does it)"),
            );
        }
        match module {
            Some(module) => deployments.push(Deployment {
                name,
                module,
                environment,
                uri,
                roles,
                keys,
            }),
            None => failed = true,
        }
    }

    if failed {
        return None;
    }
    match DeploymentRegistry::new(deployments) {
        Ok(registry) => Some(registry),
        Err(errors) => {
            for error in errors {
                binder.problems.push(svcid_properties::Problem::error(
                    None,
                    names::DEPLOYMENTS.to_owned(),
                    error.to_string(),
                    None,
                ));
            }
            None
        }
    }
}

fn fingerprint_value<'a>(binder: &Binder<'a>, key_prefix: &str) -> Option<&'a Value> {
    binder
        .props
        .get(&format!("{key_prefix}.{}", field::FINGERPRINT))
}

/// One `jwt-keys.<key>` entry. `None` when it is unusable (the problem is recorded).
fn bind_key(
    binder: &mut Binder<'_>,
    deployment: &str,
    prefix: &str,
    key_name: &str,
) -> Option<(DeploymentKey, Origin)> {
    let fingerprint = match binder.string(&format!("{prefix}.{}", field::FINGERPRINT)) {
        Some((f, v)) if f.is_empty() || f.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            binder.error_at(
                v,
                "fingerprint is empty or contains spaces",
                "set it to the kid the peer puts in its token headers (svcid keygen prints it)",
            );
            None
        }
        Some((f, v)) => Some((f, v)),
        None => {
            binder.missing(
                &format!("{prefix}.{}", field::FINGERPRINT),
                "add the kid the peer signs with (svcid keygen prints it as the fingerprint)",
            );
            None
        }
    };
    let public = match binder.string(&format!("{prefix}.{}", field::CONTENT)) {
        Some((content, v)) => match PublicKey::from_content(&content) {
            Ok((public, findings)) => {
                if findings.private_part {
                    binder.warn_at(
                        v,
                        format!(
                            "SECURITY: deployment {deployment} was given a PRIVATE key (content holds \"d\"): \
                             whoever can read this file can sign as {deployment}"
                        ),
                        "remove d and use from content, and have the peer rotate its key (svcid link --rotate)",
                    );
                }
                Some((public, v))
            }
            Err(error) => {
                binder.error_at(
                    v,
                    format!("content is not a usable public key: {error}"),
                    content_fix(&content),
                );
                None
            }
        },
        None => {
            binder.missing(
                &format!("{prefix}.{}", field::CONTENT),
                "add the peer's public JWK as single-line JSON (svcid keygen prints it as content)",
            );
            None
        }
    };
    let revoked = binder.bool(&format!("{prefix}.{}", field::IS_REVOKED), false);

    let ((fingerprint, fingerprint_value), (public, content_value)) = (fingerprint?, public?);
    let origin = fingerprint_value.origin.clone();
    let thumbprint = public.thumbprint();
    match public.kid() {
        Some(kid) if kid != fingerprint => {
            let (kid, fv) = (kid.to_owned(), fingerprint_value);
            binder.warn_at(
                fv,
                format!(
                    "fingerprint {fingerprint:?} differs from the kid {kid:?} inside content: the peer's tokens \
                     carry the kid of its signing key, so one of the two is wrong"
                ),
                format!(
                    "set fingerprint to the kid in the peer's generator key (this key's RFC 7638 thumbprint is {thumbprint})"
                ),
            );
        }
        _ => {}
    }
    if public.kid().is_some_and(|kid| kid != thumbprint) {
        binder.warn_at(
            content_value,
            format!("the kid inside content is not the RFC 7638 thumbprint of the key ({thumbprint})"),
            "generate keys with svcid keygen, whose kid is the thumbprint, so a fingerprint can be checked against its key",
        );
    }
    Some((
        DeploymentKey {
            name: key_name.to_owned(),
            fingerprint,
            public,
            revoked,
        },
        origin,
    ))
}

/// The fix for a `content` that did not load, naming the manual's known slip when it is that one.
fn content_fix(content: &str) -> String {
    let manual_slip = content.starts_with("{kty\"") || content.contains(",crv\"");
    let mut fix = String::from(
        "content must be the peer's public JWK as one line of JSON, e.g. \
         {\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"…\",\"x\":\"…\",\"y\":\"…\",\"alg\":\"ES256\"} (or base64 of it)",
    );
    if manual_slip {
        fix.push_str(
            "; the quotes before kty and crv are missing, as in the vendor manual's first example",
        );
    }
    fix
}

/// Warns about properties under a deployment that svcid does not know (typos such as `is-revokd`).
fn check_unknown_fields(binder: &mut Binder<'_>, prefix: &str) {
    let depth = prefix.split('.').count();
    let unknown: Vec<&Value> = binder
        .props
        .entries_under(prefix)
        .into_iter()
        // Environment variables cannot be split back into segments reliably; they are
        // Spring's escape hatch and are not checked for typos.
        .filter(|v| !matches!(v.origin, Origin::Env { .. }))
        .filter(|v| {
            let rest: Vec<String> = v.key.split('.').skip(depth).map(uniform_field).collect();
            !DEPLOYMENT_FIELDS.iter().any(|pattern| fits(pattern, &rest))
        })
        .collect();
    for v in unknown {
        let last = v.key.rsplit('.').next().unwrap_or_default();
        let fix = match did_you_mean(last, FIELD_NAMES) {
            Some(guess) => format!("did you mean {guess}?"),
            None => format!("known fields: {}", FIELD_NAMES.join(", ")),
        };
        binder.warn_at(v, "unknown property under a deployment; it is ignored", fix);
    }
}

/// Uniform form of one segment, with a list index `[n]` turned into `#`.
fn uniform_field(segment: &str) -> String {
    match segment.find('[') {
        Some(i) if segment.ends_with(']') => format!("{}#", uniform(&segment[..i])),
        _ => uniform(segment),
    }
}

fn fits(pattern: &str, rest: &[String]) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == rest.len() && parts.iter().zip(rest).all(|(p, r)| *p == "*" || *p == r)
}
