//! Binds `ataccama.one.platform.deployments.*` into a [`Deployments`], catching every trap of
//! the vendor's manual (docs/keys.md; docs/security.md, C1–C7) with a problem that names the
//! property and the line.

use std::collections::HashMap;

use svcid_identity::deployments::{Deployment, DeploymentKey, Deployments};
use svcid_identity::jwk::PublicKey;
use svcid_identity::token::TokenProfile;
use svcid_properties::{Origin, Value, did_you_mean, uniform};

use crate::bind::{Binder, segments, shown, shown_id};
use crate::codes;
use crate::names::{self, deployment as field};

/// How a misspelt `is-revoked=true` is described: the key meant to be revoked is still trusted.
/// `svcid check` makes this warning an error, by its code ([`codes::MISSPELT_REVOCATION`]).
const MISSPELT_REVOCATION: &str = "the key is NOT revoked";

/// The fields a deployment may hold, relative to `<deployments>.<name>`, in uniform form
/// (`*` stands for a key name, `#` for a list index).
const DEPLOYMENT_FIELDS: &[&str] = &[
    "module",
    "environment",
    "uri",
    "security.roles",
    "security.roles#",
    "security.tokenprofile",
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
    "token-profile",
    "jwt-keys",
    "fingerprint",
    "content",
    "is-revoked",
];

/// Where each of [`FIELD_NAMES`] belongs under `<deployments>.<name>`, for a field written at the
/// wrong depth (e.g. `security.is-revoked` without the key).
const FIELD_PLACES: &[(&str, &str)] = &[
    ("module", "module"),
    ("environment", "environment"),
    ("uri", "uri"),
    ("roles", "security.roles[0]"),
    ("token-profile", "security.token-profile"),
    ("jwt-keys", "security.jwt-keys.<key>.fingerprint"),
    ("fingerprint", "security.jwt-keys.<key>.fingerprint"),
    ("content", "security.jwt-keys.<key>.content"),
    ("is-revoked", "security.jwt-keys.<key>.is-revoked"),
];

/// Fingerprint -> the `deployment/key` that first configured it and where, for duplicates (C6).
type SeenFingerprints = HashMap<String, (String, Origin)>;

/// Reads every deployment; problems go to the binder. Returns the table when the
/// deployments are usable (errors elsewhere in the file are the caller's business).
pub(crate) fn bind(binder: &mut Binder<'_>) -> Option<Deployments> {
    let mut deployments = Vec::new();
    let mut failed = false;
    let mut seen = SeenFingerprints::new();
    // Every deployment is read even after one failed, so that all problems come back at once.
    for name in binder.props.map_keys(names::DEPLOYMENTS) {
        match bind_deployment(binder, name, &mut seen) {
            Some(deployment) => deployments.push(deployment),
            None => failed = true,
        }
    }
    if failed {
        return None;
    }
    into_table(binder, deployments)
}

/// One `<deployments>.<name>` entry. `None` when any part of it is unusable (the problems are
/// recorded; every part is read all the same).
fn bind_deployment(
    binder: &mut Binder<'_>,
    name: String,
    seen: &mut SeenFingerprints,
) -> Option<Deployment> {
    let prefix = format!("{}.{name}", names::DEPLOYMENTS);
    if !is_deployment_name(&name) {
        report_invalid_name(binder, &name, &prefix);
        return None;
    }
    check_unknown_fields(binder, &prefix);
    let module = bind_module(binder, &prefix);
    let environment = optional_string(binder, &prefix, field::ENVIRONMENT);
    let uri = optional_string(binder, &prefix, field::URI);
    let roles = bind_roles(binder, &prefix);
    let token_profile = bind_token_profile(binder, &prefix);
    let keys = bind_keys(binder, &name, &prefix, seen);
    Some(Deployment {
        name,
        module: module?,
        environment,
        uri,
        roles,
        keys: keys?,
        token_profile,
    })
}

/// A deployment name holds only ASCII letters, digits and dashes.
fn is_deployment_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn report_invalid_name(binder: &mut Binder<'_>, name: &str, prefix: &str) {
    let message = format!(
        "deployment name {} may hold only letters, digits and dashes",
        shown_id(name)
    );
    let fix = "rename the deployment, e.g. dpe-dev";
    // A bracketed name (`deployments[a.b]`) is not found under the dotted prefix; the
    // error must be reported all the same, or the load would fail without a reason.
    match binder.props.entries_under(prefix).first().copied() {
        Some(v) => binder.error_at(codes::DEPLOYMENT_NAME_INVALID, v, message, fix),
        None => binder.problems.push(svcid_properties::Problem::error(
            codes::DEPLOYMENT_NAME_INVALID,
            None,
            names::DEPLOYMENTS.to_owned(),
            message,
            Some(fix.to_owned()),
        )),
    }
}

/// `<deployment>.module`: required and not empty.
fn bind_module(binder: &mut Binder<'_>, prefix: &str) -> Option<String> {
    match binder.string(&format!("{prefix}.{}", field::MODULE)) {
        Some((m, _)) if !m.is_empty() => Some(m),
        Some((_, v)) => {
            binder.error_at(
                codes::DEPLOYMENT_MODULE_MISSING,
                v,
                "module is empty",
                "set the peer's module type, e.g. dpm or dpe",
            );
            None
        }
        None => {
            binder.missing(
                codes::DEPLOYMENT_MODULE_MISSING,
                &format!("{prefix}.{}", field::MODULE),
                format!("add {prefix}.module=<dpm|dpe|…> naming the peer's module type"),
            );
            None
        }
    }
}

/// `<deployment>.<field>` when set and not empty (`environment`, `uri`: informational).
fn optional_string(binder: &Binder<'_>, prefix: &str, field: &str) -> Option<String> {
    binder
        .string(&format!("{prefix}.{field}"))
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty())
}

/// `<deployment>.security.roles`, blank entries left out.
fn bind_roles(binder: &Binder<'_>, prefix: &str) -> Vec<String> {
    binder
        .props
        .get_list(&format!("{prefix}.{}", field::ROLES))
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.raw.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect()
}

/// Every `<deployment>.security.jwt-keys.<key>`. `None` when any key is unusable or its
/// fingerprint is already configured (the problems are recorded; every key is read).
fn bind_keys(
    binder: &mut Binder<'_>,
    name: &str,
    prefix: &str,
    seen: &mut SeenFingerprints,
) -> Option<Vec<DeploymentKey>> {
    let mut keys = Vec::new();
    let mut failed = false;
    let keys_prefix = format!("{prefix}.{}", field::JWT_KEYS);
    let key_names = binder.props.map_keys(&keys_prefix);
    for key_name in &key_names {
        let key_prefix = format!("{keys_prefix}.{key_name}");
        match bind_key(binder, name, &key_prefix, key_name) {
            Some((key, origin)) => {
                let label = format!("{name}/{key_name}");
                if !first_use_of_fingerprint(binder, seen, &key, origin, label, &key_prefix) {
                    failed = true;
                }
                keys.push(key);
            }
            None => failed = true,
        }
    }
    // Only when no key is configured at all: keys that failed have their own errors.
    if key_names.is_empty()
        && let Some(v) = binder.props.entries_under(prefix).first().copied()
    {
        binder.warn_at(
            codes::DEPLOYMENT_WITHOUT_KEYS,
            v,
            format!("deployment {name} has no jwt-keys: no token from it can be verified"),
            format!("add {keys_prefix}.<key>.fingerprint and .content (svcid link does it)"),
        );
    }
    (!failed).then_some(keys)
}

/// Records `key`'s fingerprint as configured by `label` (`deployment/key`) at `key_prefix`; false
/// (with an error) when another key already has it (C6).
fn first_use_of_fingerprint(
    binder: &mut Binder<'_>,
    seen: &mut SeenFingerprints,
    key: &DeploymentKey,
    origin: Origin,
    label: String,
    key_prefix: &str,
) -> bool {
    let Some((other, first)) = seen.get(&key.fingerprint) else {
        seen.insert(key.fingerprint.clone(), (label, origin));
        return true;
    };
    let message = format!(
        "fingerprint {} of {label} is already configured for {other} at {first}: \
         a token with this kid could not name one peer",
        shown_id(&key.fingerprint)
    );
    let fix = "a key belongs to one deployment: remove one of the two entries";
    match fingerprint_value(binder, key_prefix) {
        Some(v) => binder.error_at(codes::FINGERPRINT_DUPLICATE, v, message, fix),
        None => binder.problems.push(svcid_properties::Problem::error(
            codes::FINGERPRINT_DUPLICATE,
            None,
            names::DEPLOYMENTS.to_owned(),
            message,
            Some(fix.to_owned()),
        )),
    }
    false
}

/// The deployments as one table; what only the whole set can show (a fingerprint or a name
/// twice) is reported here.
fn into_table(binder: &mut Binder<'_>, deployments: Vec<Deployment>) -> Option<Deployments> {
    match Deployments::new(deployments) {
        Ok(table) => Some(table),
        Err(errors) => {
            for error in errors {
                binder.problems.push(svcid_properties::Problem::error(
                    codes::DEPLOYMENTS_INVALID,
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

/// The fix offered for a `token-profile` that names no profile.
const TOKEN_PROFILE_FIX: &str = "use strict (the default: tokens carry aud both ways) or product (the peer is an \
     Ataccama ONE module: its tokens are accepted without aud, and ours to it carry none)";

/// `<deployment>.security.token-profile`: `strict` unless set; anything but `strict` or
/// `product` (in any case) is an error, and the load fails.
fn bind_token_profile(binder: &mut Binder<'_>, prefix: &str) -> TokenProfile {
    binder.parsed(
        &format!("{prefix}.{}", field::TOKEN_PROFILE),
        TokenProfile::default(),
        codes::DEPLOYMENT_TOKEN_PROFILE_INVALID,
        TOKEN_PROFILE_FIX,
        |raw| {
            raw.parse::<TokenProfile>()
                .map_err(|_| format!("{} is not a token profile", shown(raw)))
        },
    )
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
                codes::FINGERPRINT_MISSING,
                v,
                "fingerprint is empty or contains spaces",
                "set it to the kid the peer puts in its token headers (svcid keygen prints it)",
            );
            None
        }
        Some((f, v)) => Some((f, v)),
        None => {
            binder.missing(
                codes::FINGERPRINT_MISSING,
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
                        codes::PRIVATE_KEY_IN_CONTENT,
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
                    codes::CONTENT_INVALID,
                    v,
                    format!("content is not a usable public key: {error}"),
                    content_fix(&content),
                );
                None
            }
        },
        None => {
            binder.missing(
                codes::CONTENT_MISSING,
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
                codes::FINGERPRINT_DIFFERS_FROM_KID,
                fv,
                format!(
                    "fingerprint {} differs from the kid {} inside content: the peer's tokens \
                     carry the kid of its signing key, so one of the two is wrong",
                    shown_id(&fingerprint),
                    shown_id(&kid)
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
            codes::KID_NOT_THUMBPRINT,
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
    let depth = segments(prefix).len();
    let unknown: Vec<&Value> = binder
        .props
        .entries_under(prefix)
        .into_iter()
        // Environment variables cannot be split back into segments reliably; they are
        // Spring's escape hatch and are not checked for typos.
        .filter(|v| !matches!(v.origin, Origin::Env { .. }))
        .filter(|v| {
            let rest = uniform_fields(&v.key, depth);
            !DEPLOYMENT_FIELDS.iter().any(|pattern| fits(pattern, &rest))
        })
        .collect();
    for v in unknown {
        let all = segments(&v.key);
        let last = all.last().map(|s| s.text).unwrap_or_default();
        let (code, message, fix) = match did_you_mean(last, FIELD_NAMES) {
            // A known field in the wrong place, e.g. `security.is-revoked` without the key.
            Some(guess) if uniform(guess) == uniform(last) => {
                let place = FIELD_PLACES
                    .iter()
                    .find(|(field, _)| *field == guess)
                    .map_or(guess, |(_, place)| place);
                (
                    codes::FIELD_MISPLACED,
                    format!(
                        "{guess} is not valid at this depth under the deployment; it is ignored"
                    ),
                    format!("{guess} belongs at {prefix}.{place}"),
                )
            }
            Some(guess) => {
                let mut code = codes::UNKNOWN_FIELD;
                let mut message = "unknown property under a deployment; it is ignored".to_owned();
                // A misspelt revocation is the dangerous typo: the key the operator meant to
                // revoke stays trusted. The spec keeps it a warning; the message says it plainly
                // and its own code lets `svcid check` make it an error.
                if guess == field::IS_REVOKED && v.raw.trim().eq_ignore_ascii_case("true") {
                    code = codes::MISSPELT_REVOCATION;
                    message.push_str(": ");
                    message.push_str(MISSPELT_REVOCATION);
                }
                (code, message, format!("did you mean {guess}?"))
            }
            None => (
                codes::UNKNOWN_FIELD,
                "unknown property under a deployment; it is ignored".to_owned(),
                format!("known fields: {}", FIELD_NAMES.join(", ")),
            ),
        };
        binder.warn_at(code, v, message, fix);
    }
}

/// The segments of `key` after the first `depth`, in uniform form, a list index (`[n]` or `.n`)
/// folded into the segment before it as `#` (`roles[0]` and `roles.0` both give `roles#`).
fn uniform_fields(key: &str, depth: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for segment in segments(key).into_iter().skip(depth) {
        match out.last_mut() {
            Some(previous) if segment.is_index() && !previous.ends_with('#') => previous.push('#'),
            _ => out.push(uniform(segment.text)),
        }
    }
    out
}

fn fits(pattern: &str, rest: &[String]) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == rest.len() && parts.iter().zip(rest).all(|(p, r)| *p == "*" || *p == r)
}
