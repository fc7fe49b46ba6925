//! `svcid check HOME...`: every problem of every home in one run, then whether the homes agree.
//!
//! Each home is loaded exactly as its daemon loads it (`svcid_config::read_sources` + `bind`, the
//! file only), and every [`Problem`] is reported in its one-line form
//! `file:line: severity: property: message; fix: …`. Two findings the daemon only warns about are
//! errors here, because a tool run before a deployment can afford to be strict (SECURITY.md C2,
//! C3): a `fingerprint` that differs from the `kid` inside its `content`, and a peer `content` that
//! holds the private `d`. Given homes of different module types, each pair is cross-checked: the
//! verifier holds the signer's current generator key under the right fingerprint and module type,
//! with the same public point, not revoked. Exit 0 clean, 1 warnings only, 2 errors.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;
use svcid_config::names::{self, deployment as field};
use svcid_config::{MISSPELT_REVOCATION, Problem, Settings, Severity};
use svcid_identity::jwk::PublicKey;
use svcid_properties::{Origin, PropertySet};

use crate::homes::{self, ModuleChoice, OpenedHome};

/// Exit code: no problem at all.
pub const CLEAN: u8 = 0;
/// Exit code: warnings only.
pub const WARNINGS: u8 = 1;
/// Exit code: at least one error.
pub const ERRORS: u8 = 2;

/// Which part of `check` found a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Loading one home (the daemon's checks, made stricter).
    Home,
    /// Comparing two homes.
    Cross,
}

/// One problem and the home whose file it is in.
#[derive(Debug)]
struct Finding {
    /// Index of the home (the one to fix) in the command line.
    home: usize,
    /// Which check found it.
    scope: Scope,
    /// For a cross-check, the index of the signing home the problem is about.
    peer: Option<usize>,
    /// The problem itself.
    problem: Problem,
}

/// Checks `roots` (`choices[i]` is the `--module` of `roots[i]`) and writes the report; returns
/// the exit code.
pub fn check(
    roots: &[PathBuf],
    choices: &[ModuleChoice],
    json: bool,
    out: &mut dyn Write,
) -> Result<u8> {
    let decided = homes::decide_all(roots, choices);
    let opened: Vec<OpenedHome> = roots
        .iter()
        .zip(decided)
        .map(|(root, decided)| OpenedHome::open(root, decided))
        .collect();

    let mut findings = Vec::new();
    for (index, home) in opened.iter().enumerate() {
        let mut problems = match &home.loaded {
            Ok(loaded) => loaded.warnings.clone(),
            Err(problems) => problems.clone(),
        };
        if let Some(props) = &home.props {
            stricter_than_the_daemon(props, &mut problems);
        }
        if home.decided.guessed {
            problems.insert(
                0,
                Problem::warning(
                    Some(Origin::File {
                        path: home.file.clone(),
                        line: 0,
                    }),
                    String::new(),
                    format!(
                        "checked as a {} home, a guess ({})",
                        home.decided.kind, home.decided.reason
                    ),
                    Some("pass --module dpm or --module dpe for this home".to_owned()),
                ),
            );
        }
        findings.extend(problems.into_iter().map(|problem| Finding {
            home: index,
            scope: Scope::Home,
            peer: None,
            problem,
        }));
    }

    let mut pairs = Vec::new();
    for (v, verifier) in opened.iter().enumerate() {
        for (s, signer) in opened.iter().enumerate() {
            if v == s || verifier.decided.kind == signer.decided.kind {
                continue;
            }
            let (Ok(v_loaded), Ok(s_loaded)) = (&verifier.loaded, &signer.loaded) else {
                pairs.push((v, s, false));
                continue;
            };
            let before = findings.len();
            findings.extend(
                cross_check(verifier, &v_loaded.settings, &s_loaded.settings, signer)
                    .into_iter()
                    .map(|problem| Finding {
                        home: v,
                        scope: Scope::Cross,
                        peer: Some(s),
                        problem,
                    }),
            );
            pairs.push((v, s, findings.len() == before));
        }
    }

    let errors = findings.iter().filter(|f| f.problem.is_error()).count();
    let warnings = findings.len() - errors;
    let code = if errors > 0 {
        ERRORS
    } else if warnings > 0 {
        WARNINGS
    } else {
        CLEAN
    };
    if json {
        write_json(&opened, &findings, errors, warnings, code, out)?;
    } else {
        write_text(&opened, &findings, &pairs, errors, warnings, out)?;
    }
    Ok(code)
}

/// Upgrades the daemon's C2 and C3 warnings to errors with a precise diagnosis, and a misspelt
/// `is-revoked=true` (the key the operator meant to revoke is still trusted) to an error.
fn stricter_than_the_daemon(props: &PropertySet, problems: &mut Vec<Problem>) {
    for problem in problems.iter_mut() {
        if problem.severity == Severity::Warning && problem.message.contains(MISSPELT_REVOCATION) {
            problem.severity = Severity::Error;
        }
    }
    for deployment in props.map_keys(names::DEPLOYMENTS) {
        let keys_prefix = format!("{}.{deployment}.{}", names::DEPLOYMENTS, field::JWT_KEYS);
        for key in props.map_keys(&keys_prefix) {
            let prefix = format!("{keys_prefix}.{key}");
            let (Some(fingerprint), Some(content)) = (
                props.get(&format!("{prefix}.{}", field::FINGERPRINT)),
                props.get(&format!("{prefix}.{}", field::CONTENT)),
            ) else {
                continue;
            };
            let Ok((public, findings)) = PublicKey::from_content(&content.raw) else {
                continue;
            };
            if findings.private_part {
                replace_warning(
                    problems,
                    &content.origin,
                    &content.key,
                    "PRIVATE",
                    Problem::error(
                        Some(content.origin.clone()),
                        content.key.clone(),
                        format!(
                            "content holds \"d\", the PRIVATE key of deployment {deployment}: whoever can \
                             read this file can sign as {deployment}"
                        ),
                        Some(
                            "remove d (and use) from content; that key is no longer secret, so have the peer \
                             switch to a new one (svcid link --rotate) and revoke this one"
                                .to_owned(),
                        ),
                    ),
                );
            }
            let fingerprint_text = fingerprint.raw.trim();
            if let Some(kid) = public.kid()
                && kid != fingerprint_text
            {
                let thumbprint = public.thumbprint();
                let message = if fingerprint_text == thumbprint {
                    format!(
                        "fingerprint is the key's RFC 7638 thumbprint but differs from the kid {kid:?} inside \
                         content: the peer signs with one kid, so one of the two is wrong"
                    )
                } else {
                    format!(
                        "fingerprint {fingerprint_text:?} matches no key: the kid inside content is {kid:?} and \
                         the key's RFC 7638 thumbprint is {thumbprint:?}; the peer's tokens carry its signing \
                         key's kid, so they will not find this entry (or will be checked against the wrong key)"
                    )
                };
                replace_warning(
                    problems,
                    &fingerprint.origin,
                    &fingerprint.key,
                    "differs from the kid",
                    Problem::error(
                        Some(fingerprint.origin.clone()),
                        fingerprint.key.clone(),
                        message,
                        Some(
                            "set fingerprint to the kid of the peer's generator key and content to that key's \
                             public JWK (svcid link writes both; svcid keygen prints a consistent pair)"
                                .to_owned(),
                        ),
                    ),
                );
            }
        }
    }
}

/// Replaces the daemon's warning at `origin`/`property` whose message contains `marker` with
/// `error`; adds `error` when the daemon said nothing there.
fn replace_warning(
    problems: &mut Vec<Problem>,
    origin: &Origin,
    property: &str,
    marker: &str,
    error: Problem,
) {
    let found = problems.iter().position(|p| {
        p.severity == Severity::Warning
            && p.origin.as_ref() == Some(origin)
            && p.property == property
            && p.message.contains(marker)
    });
    match found {
        Some(index) => problems[index] = error,
        None => problems.push(error),
    }
}

/// Problems with `verifier` trusting `signer`'s current generator key.
fn cross_check(
    verifier: &OpenedHome,
    v: &Settings,
    s: &Settings,
    signer: &OpenedHome,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(props) = &verifier.props else {
        return problems;
    };
    let key = &s.jwt.generator_key;
    let kid = key.kid();
    let thumbprint = key.public_key().thumbprint();
    let signer_kind = s.kind.as_str();
    let who = format!("the {signer_kind} home {}", signer.root.display());
    let at = |deployment: &str, rest: &str| -> (Option<Origin>, String) {
        let name = format!("{}.{deployment}.{rest}", names::DEPLOYMENTS);
        match props.get(&name) {
            Some(value) => (Some(value.origin.clone()), value.key.clone()),
            None => (
                Some(Origin::File {
                    path: verifier.file.clone(),
                    line: 0,
                }),
                name,
            ),
        }
    };
    let registry = &v.deployments;
    match registry.lookup(kid) {
        Some((deployment, entry)) => {
            let key_field = |f: &str| format!("{}.{}.{f}", field::JWT_KEYS, entry.name);
            if deployment.module != signer_kind {
                let (origin, property) = at(&deployment.name, field::MODULE);
                problems.push(Problem::error(
                    origin,
                    property,
                    format!(
                        "deployment {} holds the current key of {who} but says module={}: that peer's calls \
                         would be treated as a {} and refused",
                        deployment.name, deployment.module, deployment.module
                    ),
                    Some(format!("set module={signer_kind}")),
                ));
            }
            if entry.revoked {
                let (origin, property) = at(&deployment.name, &key_field(field::IS_REVOKED));
                problems.push(Problem::error(
                    origin,
                    property,
                    format!(
                        "{}/{} is the current key of {who} (kid {kid}) and it is revoked: every call from it \
                         is refused",
                        deployment.name, entry.name
                    ),
                    Some(
                        "give the peer a new key (svcid link --rotate), or reinstate this one \
                         (svcid revoke --undo)"
                            .to_owned(),
                    ),
                ));
            }
            if entry.public.thumbprint() != thumbprint {
                let (origin, property) = at(&deployment.name, &key_field(field::CONTENT));
                problems.push(Problem::error(
                    origin,
                    property,
                    format!(
                        "{}/{} has the fingerprint of {who}'s key but its content is another public key \
                         (thumbprint {}, the signing key's is {thumbprint}): every signature will fail",
                        deployment.name,
                        entry.name,
                        entry.public.thumbprint()
                    ),
                    Some("replace content with the signer's public JWK (svcid link does it)".to_owned()),
                ));
            }
        }
        None => {
            let same_point = registry.deployments().iter().find_map(|d| {
                d.keys
                    .iter()
                    .find(|k| k.public.thumbprint() == thumbprint)
                    .map(|k| (d, k))
            });
            match same_point {
                Some((deployment, entry)) => {
                    let (origin, property) = at(
                        &deployment.name,
                        &format!("{}.{}.{}", field::JWT_KEYS, entry.name, field::FINGERPRINT),
                    );
                    problems.push(Problem::error(
                        origin,
                        property,
                        format!(
                            "{}/{} holds {who}'s public key under fingerprint {:?}, but its tokens carry kid \
                             {kid:?}: they are refused as an unknown kid",
                            deployment.name, entry.name, entry.fingerprint
                        ),
                        Some(format!("set fingerprint to {kid}")),
                    ));
                }
                None => {
                    let held: Vec<String> = registry
                        .deployments()
                        .iter()
                        .filter(|d| d.module == signer_kind)
                        .flat_map(|d| {
                            d.keys.iter().map(move |k| {
                                format!("{}/{} (kid {})", d.name, k.name, k.fingerprint)
                            })
                        })
                        .collect();
                    let holding = if held.is_empty() {
                        format!("it has no {signer_kind} deployment with a key")
                    } else {
                        format!("its {signer_kind} keys are {}", held.join(", "))
                    };
                    problems.push(Problem::error(
                        Some(Origin::File {
                            path: verifier.file.clone(),
                            line: 0,
                        }),
                        names::DEPLOYMENTS.to_owned(),
                        format!(
                            "does not trust the current generator key of {who} (kid {kid}): {holding}; \
                             that peer's calls are refused as an unknown kid"
                        ),
                        Some(
                            "run svcid link DPM_HOME DPE_HOME (it adds the key beside the old ones), or, if \
                             the peer's key changed by mistake, restore it"
                                .to_owned(),
                        ),
                    ));
                }
            }
        }
    }
    problems
}

fn write_text(
    opened: &[OpenedHome],
    findings: &[Finding],
    pairs: &[(usize, usize, bool)],
    errors: usize,
    warnings: usize,
    out: &mut dyn Write,
) -> Result<()> {
    for (index, home) in opened.iter().enumerate() {
        let mine: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.home == index && f.scope == Scope::Home)
            .collect();
        writeln!(
            out,
            "{} home {} ({}): {}",
            home.decided.kind,
            home.root.display(),
            home.decided.reason,
            counts(&mine)
        )?;
        for finding in mine {
            writeln!(out, "{}", finding.problem)?;
        }
    }
    for (v, s, clean) in pairs {
        let (verifier, signer) = (&opened[*v], &opened[*s]);
        let title = format!(
            "cross-check: {} home {} trusts the current key of {} home {}",
            verifier.decided.kind,
            verifier.root.display(),
            signer.decided.kind,
            signer.root.display()
        );
        if verifier.loaded.is_err() || signer.loaded.is_err() {
            writeln!(out, "{title}: skipped until both homes load")?;
            continue;
        }
        let mine: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.scope == Scope::Cross && f.home == *v && f.peer == Some(*s))
            .collect();
        if *clean {
            writeln!(out, "{title}: ok")?;
        } else {
            writeln!(out, "{title}: {}", counts(&mine))?;
            for finding in mine {
                writeln!(out, "{}", finding.problem)?;
            }
        }
    }
    if opened.len() > 1 && pairs.is_empty() {
        writeln!(
            out,
            "no cross-check: all homes are the same module type (a dpm and a dpe are checked against each other)"
        )?;
    }
    writeln!(
        out,
        "result: {errors} error{}, {warnings} warning{}",
        plural(errors),
        plural(warnings)
    )?;
    Ok(())
}

fn counts(findings: &[&Finding]) -> String {
    let errors = findings.iter().filter(|f| f.problem.is_error()).count();
    let warnings = findings.len() - errors;
    if findings.is_empty() {
        "ok".to_owned()
    } else {
        format!(
            "{errors} error{}, {warnings} warning{}",
            plural(errors),
            plural(warnings)
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn write_json(
    opened: &[OpenedHome],
    findings: &[Finding],
    errors: usize,
    warnings: usize,
    code: u8,
    out: &mut dyn Write,
) -> Result<()> {
    let homes: Vec<_> = opened
        .iter()
        .map(|home| {
            json!({
                "home": home.root.display().to_string(),
                "file": home.file.display().to_string(),
                "module": home.decided.kind.as_str(),
                "moduleReason": home.decided.reason,
                "loads": home.loaded.is_ok(),
            })
        })
        .collect();
    let problems: Vec<_> = findings
        .iter()
        .map(|finding| {
            let p = &finding.problem;
            let (file, line) = match &p.origin {
                Some(Origin::File { path, line }) => {
                    (Some(path.display().to_string()), Some(*line))
                }
                _ => (None, None),
            };
            json!({
                "home": opened[finding.home].root.display().to_string(),
                "check": match finding.scope { Scope::Home => "home", Scope::Cross => "cross" },
                "severity": p.severity.to_string(),
                "file": file,
                "line": line.filter(|l| *l > 0),
                "origin": p.origin.as_ref().map(ToString::to_string),
                "property": p.property,
                "message": p.message,
                "fix": p.fix,
                "text": p.to_string(),
            })
        })
        .collect();
    let report = json!({
        "homes": homes,
        "problems": problems,
        "errors": errors,
        "warnings": warnings,
        "exitCode": code,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use super::*;
    use svcid_identity::jwk::GeneratorKey;

    fn props(text: &str) -> PropertySet {
        let mut set = PropertySet::new();
        set.load_str(text, Path::new("f.properties")).unwrap();
        set
    }

    #[test]
    fn fingerprint_differing_from_kid_and_private_content_become_errors() {
        let key = GeneratorKey::generate();
        let public = key.public_key().content_json();
        let keypair: serde_json::Value = serde_json::from_str(&key.keypair_json_pretty()).unwrap();
        let p = "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys";
        let set = props(&format!(
            "{p}.a.fingerprint=other\n{p}.a.content={public}\n\
             {p}.b.fingerprint={kid}\n{p}.b.content={private}\n",
            kid = key.kid(),
            private = keypair
        ));
        let origin = |line| Origin::File {
            path: "f.properties".into(),
            line,
        };
        let mut problems = vec![
            Problem::warning(
                Some(origin(1)),
                format!("{p}.a.fingerprint"),
                "fingerprint \"other\" differs from the kid …".into(),
                None,
            ),
            Problem::warning(
                Some(origin(4)),
                format!("{p}.b.content"),
                "SECURITY: deployment dpe-dev was given a PRIVATE key".into(),
                None,
            ),
        ];
        stricter_than_the_daemon(&set, &mut problems);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems.iter().all(Problem::is_error));
        assert!(
            problems[0].message.contains("matches no key"),
            "{}",
            problems[0]
        );
        assert!(problems[1].message.contains("PRIVATE"), "{}", problems[1]);
        assert!(!problems[1].to_string().contains(&keypair["d"].to_string()));
    }

    #[test]
    fn a_misspelt_revocation_is_an_error() {
        let set = props("");
        let mut problems = vec![Problem::warning(
            None,
            "x.is-revokd".into(),
            "unknown property under a deployment; it is ignored: the key is NOT revoked".into(),
            Some("did you mean is-revoked?".into()),
        )];
        stricter_than_the_daemon(&set, &mut problems);
        assert!(problems[0].is_error(), "{}", problems[0]);
    }
}
