//! `svcid check HOME...`: every problem of every home in one run, then whether the homes agree.
//!
//! Each home is loaded exactly as its daemon loads it (`svcid_config::read_sources` + `bind`, the
//! file only), and every [`Problem`] is reported in its one-line form
//! `file:line: severity: property: message; fix: …` (with `--json`, also its stable code). Three
//! findings the daemon only warns about are errors here, because a tool run before a deployment
//! can afford to be strict: the warnings whose codes are in [`ESCALATED`] (docs/security.md C2, C3,
//! a misspelt `is-revoked=true`). The verdict goes by code only, never by the wording of a
//! message. Given homes of different module types, each pair is cross-checked: the verifier holds
//! the signer's current generator key under the right fingerprint and module type, with the same
//! public point, not revoked, and with a token profile that admits the tokens the signer sends it
//! (docs/wire.md). Exit 0 clean, 1 warnings only, 2 errors.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;
use svcid_config::names::{self, deployment as field};
use svcid_config::{Problem, ProblemCode, Settings, Severity};
use svcid_identity::jwk::PublicKey;
use svcid_identity::{Deployment, DeploymentKey};
use svcid_properties::{Origin, PropertySet};

use crate::codes;
use crate::homes::{self, ModuleChoice, OpenedHome};

/// Exit code: no problem at all.
pub const CLEAN: u8 = 0;
/// Exit code: warnings only.
pub const WARNINGS: u8 = 1;
/// Exit code: at least one error.
pub const ERRORS: u8 = 2;

/// The daemon's warnings that `check` reports as errors, by code: a fingerprint that differs from
/// the kid inside its content (the peer's tokens find no key, or the wrong one), a peer's content
/// holding the private `d` (whoever reads the file can sign as that peer), and a misspelt
/// `is-revoked=true` (the key meant to be revoked is still trusted).
pub const ESCALATED: &[ProblemCode] = &[
    svcid_config::codes::FINGERPRINT_DIFFERS_FROM_KID,
    svcid_config::codes::PRIVATE_KEY_IN_CONTENT,
    svcid_config::codes::MISSPELT_REVOCATION,
];

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
/// the exit code. With `online`, the keys of every user-token issuer behind a URL are fetched
/// once (crate::online); without it nothing touches the network.
pub fn check(
    roots: &[PathBuf],
    choices: &[ModuleChoice],
    json: bool,
    online: bool,
    out: &mut dyn Write,
) -> Result<u8> {
    let decided = homes::decide_all(roots, choices);
    let opened: Vec<OpenedHome> = roots
        .iter()
        .zip(decided)
        .map(|(root, decided)| OpenedHome::open(root, decided))
        .collect();

    let mut findings = Vec::new();
    let mut fetched: Vec<Vec<String>> = vec![Vec::new(); opened.len()];
    for (index, home) in opened.iter().enumerate() {
        let mut problems = match &home.loaded {
            Ok(loaded) => loaded.warnings.clone(),
            Err(problems) => problems.clone(),
        };
        if let Some(props) = &home.props {
            stricter_than_the_daemon(props, &mut problems);
        }
        if online && let (Ok(loaded), Some(props)) = (&home.loaded, &home.props) {
            for found in crate::online::check_user_keys(&loaded.settings, props) {
                match found {
                    crate::online::Online::Ok(line) => fetched[index].push(line),
                    crate::online::Online::Problem(problem) => problems.push(problem),
                }
            }
        }
        // A home whose file cannot be read holds no evidence of its type: only why it cannot be
        // read is worth saying, not a guess.
        if home.decided.guessed && home.props.is_some() {
            problems.insert(
                0,
                Problem::warning(
                    codes::MODULE_GUESSED,
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
        if let Some(against) = &home.decided.against {
            problems.insert(0, module_evidence(home, against));
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
        write_json(&opened, &findings, &fetched, errors, warnings, code, out)?;
    } else {
        write_text(&opened, &findings, &fetched, &pairs, errors, warnings, out)?;
    }
    Ok(code)
}

/// The error of a home whose evidence contradicts the module it is checked as, or itself.
fn module_evidence(home: &OpenedHome, against: &str) -> Problem {
    Problem::error(
        codes::MODULE_EVIDENCE,
        Some(Origin::File {
            path: home.file.clone(),
            line: 0,
        }),
        String::new(),
        format!(
            "checked as a {} home ({}), but {against}",
            home.decided.kind, home.decided.reason
        ),
        Some(
            "homes given to svcid link in the wrong order look like this: link takes DPM_HOME \
             first, then DPE_HOME; pass the --module the evidence names, or remove what does not \
             belong to this home (docs/keys.md, which module a home is)"
                .to_owned(),
        ),
    )
}

/// Makes the daemon's warnings whose codes are [`ESCALATED`] errors, then words the C2 and C3
/// ones with check's more precise diagnosis. Only the code decides; the wording follows.
fn stricter_than_the_daemon(props: &PropertySet, problems: &mut [Problem]) {
    for problem in problems.iter_mut() {
        if problem.severity == Severity::Warning && ESCALATED.contains(&problem.code) {
            problem.severity = Severity::Error;
        }
    }
    sharper_diagnoses(props, problems);
}

/// Rewords the daemon's private-key and fingerprint findings with what check can say on top: the
/// fix that also retires the leaked key, and whether the fingerprint is the key's thumbprint or
/// matches no key at all. Severity and code stay as they are.
fn sharper_diagnoses(props: &PropertySet, problems: &mut [Problem]) {
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
            let Ok((public, findings)) = PublicKey::from_content(content.raw.trim()) else {
                continue;
            };
            if findings.private_part {
                reword(
                    problems,
                    svcid_config::codes::PRIVATE_KEY_IN_CONTENT,
                    &content.origin,
                    &content.key,
                    format!(
                        "content holds \"d\", the PRIVATE key of deployment {deployment}: whoever can \
                         read this file can sign as {deployment}"
                    ),
                    "remove d (and use) from content; that key is no longer secret, so have the peer \
                     switch to a new one (svcid link --rotate) and revoke this one",
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
                reword(
                    problems,
                    svcid_config::codes::FINGERPRINT_DIFFERS_FROM_KID,
                    &fingerprint.origin,
                    &fingerprint.key,
                    message,
                    "set fingerprint to the kid of the peer's generator key and content to that key's \
                     public JWK (svcid link writes both; svcid keygen prints a consistent pair)",
                );
            }
        }
    }
}

/// Gives the daemon's problem `code` at `origin`/`property` check's message and fix. Nothing is
/// added where the daemon found nothing: what is a problem is the daemon's finding, check only
/// judges it more strictly.
fn reword(
    problems: &mut [Problem],
    code: ProblemCode,
    origin: &Origin,
    property: &str,
    message: String,
    fix: &str,
) {
    if let Some(problem) = problems
        .iter_mut()
        .find(|p| p.code == code && p.origin.as_ref() == Some(origin) && p.property == property)
    {
        problem.message = message;
        problem.fix = Some(fix.to_owned());
    }
}

/// Problems with `verifier` trusting `signer`'s current generator key.
fn cross_check(
    verifier: &OpenedHome,
    v: &Settings,
    s: &Settings,
    signer: &OpenedHome,
) -> Vec<Problem> {
    let Some(props) = &verifier.props else {
        return Vec::new();
    };
    let pair = Pair::new(verifier, props, v, s, signer);
    match v.deployments.lookup(pair.kid) {
        Some((deployment, entry)) => pair.check_trusted_entry(deployment, entry),
        None => match pair.entry_with_signer_key() {
            Some((deployment, entry)) => vec![pair.fingerprint_mismatch(deployment, entry)],
            None => vec![pair.key_not_trusted()],
        },
    }
}

/// One verifier home and one signer home being cross-checked, with what every check reads.
struct Pair<'a> {
    /// The verifier's home.
    verifier: &'a OpenedHome,
    /// The verifier's properties, to point problems at the lines to fix.
    props: &'a PropertySet,
    /// The verifier's settings.
    v: &'a Settings,
    /// The signer's settings.
    s: &'a Settings,
    /// The signer's current kid.
    kid: &'a str,
    /// The RFC 7638 thumbprint of the signer's current public key.
    thumbprint: String,
    /// The signer's module type (`dpm`, `dpe`).
    signer_kind: &'static str,
    /// The signer as messages name it: `the dpe home <root>`.
    who: String,
}

impl<'a> Pair<'a> {
    fn new(
        verifier: &'a OpenedHome,
        props: &'a PropertySet,
        v: &'a Settings,
        s: &'a Settings,
        signer: &OpenedHome,
    ) -> Self {
        let key = &s.jwt.generator_key;
        let signer_kind = s.kind.as_str();
        Pair {
            verifier,
            props,
            v,
            s,
            kid: key.kid(),
            thumbprint: key.public_key().thumbprint(),
            signer_kind,
            who: format!("the {signer_kind} home {}", signer.root.display()),
        }
    }

    /// Where `deployments.<deployment>.<rest>` is in the verifier's file, or the file itself
    /// when the property is not written; and the property's name as written.
    fn at(&self, deployment: &str, rest: &str) -> (Option<Origin>, String) {
        let name = format!("{}.{deployment}.{rest}", names::DEPLOYMENTS);
        match self.props.get(&name) {
            Some(value) => (Some(value.origin.clone()), value.key.clone()),
            None => (Some(self.file()), name),
        }
    }

    /// The verifier's file, without a line.
    fn file(&self) -> Origin {
        Origin::File {
            path: self.verifier.file.clone(),
            line: 0,
        }
    }

    /// The entry under the signer's kid must name the signer's module, not be revoked, hold the
    /// signer's public key and take the tokens the signer sends.
    fn check_trusted_entry(&self, deployment: &Deployment, entry: &DeploymentKey) -> Vec<Problem> {
        [
            self.module_mismatch(deployment),
            self.current_key_revoked(deployment, entry),
            self.content_mismatch(deployment, entry),
            self.token_profile_mismatch(deployment),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn module_mismatch(&self, deployment: &Deployment) -> Option<Problem> {
        let signer_kind = self.signer_kind;
        if deployment.module == signer_kind {
            return None;
        }
        let (origin, property) = self.at(&deployment.name, field::MODULE);
        Some(Problem::error(
            codes::PEER_MODULE_MISMATCH,
            origin,
            property,
            format!(
                "deployment {} holds the current key of {} but says module={}: that peer's calls \
                 would be treated as a {} and refused",
                deployment.name, self.who, deployment.module, deployment.module
            ),
            Some(format!("set module={signer_kind}")),
        ))
    }

    fn current_key_revoked(
        &self,
        deployment: &Deployment,
        entry: &DeploymentKey,
    ) -> Option<Problem> {
        if !entry.revoked {
            return None;
        }
        let (origin, property) = self.at(&deployment.name, &key_field(entry, field::IS_REVOKED));
        Some(Problem::error(
            codes::CURRENT_KEY_REVOKED,
            origin,
            property,
            format!(
                "{}/{} is the current key of {} (kid {}) and it is revoked: every call from it \
                 is refused",
                deployment.name, entry.name, self.who, self.kid
            ),
            Some(
                "give the peer a new key (svcid link --rotate), or reinstate this one \
                 (svcid revoke --undo)"
                    .to_owned(),
            ),
        ))
    }

    fn content_mismatch(&self, deployment: &Deployment, entry: &DeploymentKey) -> Option<Problem> {
        let held = entry.public.thumbprint();
        if held == self.thumbprint {
            return None;
        }
        let (origin, property) = self.at(&deployment.name, &key_field(entry, field::CONTENT));
        Some(Problem::error(
            codes::CONTENT_MISMATCH,
            origin,
            property,
            format!(
                "{}/{} has the fingerprint of {}'s key but its content is another public key \
                 (thumbprint {held}, the signing key's is {}): every signature will fail",
                deployment.name, entry.name, self.who, self.thumbprint
            ),
            Some("replace content with the signer's public JWK (svcid link does it)".to_owned()),
        ))
    }

    fn token_profile_mismatch(&self, deployment: &Deployment) -> Option<Problem> {
        let (v, s) = (self.v, self.s);
        // Token profile: the signer leaves aud out of its tokens for this home when its own entry
        // for this home says product; a strict entry here then refuses them all.
        let sent = s.deployments.lookup(v.jwt.generator_key.kid()).map_or_else(
            || s.deployments.token_profile_for_module(v.kind.as_str()),
            |(d, _)| d.token_profile,
        );
        if sent.sends_audience()
            || !deployment.token_profile.requires_audience()
            || !v.jwt.require_audience
        {
            return None;
        }
        // Where to fix it: the token-profile line, or the entry's module line when the
        // profile is not written (strict by default).
        let (mut origin, property) = self.at(&deployment.name, field::TOKEN_PROFILE);
        if self.props.get(&property).is_none() {
            origin = self.at(&deployment.name, field::MODULE).0;
        }
        Some(Problem::error(
            codes::TOKEN_PROFILE_MISMATCH,
            origin,
            property,
            format!(
                "{} has token-profile=product for this home, so its tokens carry no aud, but \
                 deployment {} here is strict: every call from it is refused (missing_aud)",
                self.who, deployment.name
            ),
            Some(
                "give both sides the same token-profile: product here too, or strict on the \
                 signer (svcid link --token-profile PROFILE writes both)"
                    .to_owned(),
            ),
        ))
    }

    /// The verifier's entry holding the signer's public key under another fingerprint, if any.
    fn entry_with_signer_key(&self) -> Option<(&'a Deployment, &'a DeploymentKey)> {
        self.v.deployments.deployments().iter().find_map(|d| {
            d.keys
                .iter()
                .find(|k| k.public.thumbprint() == self.thumbprint)
                .map(|k| (d, k))
        })
    }

    fn fingerprint_mismatch(&self, deployment: &Deployment, entry: &DeploymentKey) -> Problem {
        let kid = self.kid;
        let (origin, property) = self.at(&deployment.name, &key_field(entry, field::FINGERPRINT));
        Problem::error(
            codes::FINGERPRINT_MISMATCH,
            origin,
            property,
            format!(
                "{}/{} holds {}'s public key under fingerprint {:?}, but its tokens carry kid \
                 {kid:?}: they are refused as an unknown kid",
                deployment.name, entry.name, self.who, entry.fingerprint
            ),
            Some(format!("set fingerprint to {kid}")),
        )
    }

    fn key_not_trusted(&self) -> Problem {
        let signer_kind = self.signer_kind;
        let held: Vec<String> = self
            .v
            .deployments
            .deployments()
            .iter()
            .filter(|d| d.module == signer_kind)
            .flat_map(|d| {
                d.keys
                    .iter()
                    .map(move |k| format!("{}/{} (kid {})", d.name, k.name, k.fingerprint))
            })
            .collect();
        let holding = if held.is_empty() {
            format!("it has no {signer_kind} deployment with a key")
        } else {
            format!("its {signer_kind} keys are {}", held.join(", "))
        };
        Problem::error(
            codes::KEY_NOT_TRUSTED,
            Some(self.file()),
            names::DEPLOYMENTS.to_owned(),
            format!(
                "does not trust the current generator key of {} (kid {}): {holding}; \
                 that peer's calls are refused as an unknown kid",
                self.who, self.kid
            ),
            Some(
                "run svcid link DPM_HOME DPE_HOME (it adds the key beside the old ones), or, if \
                 the peer's key changed by mistake, restore it"
                    .to_owned(),
            ),
        )
    }
}

/// `jwt-keys.<key>.<rest>`: a property of one of a deployment's keys.
fn key_field(entry: &DeploymentKey, rest: &str) -> String {
    format!("{}.{}.{rest}", field::JWT_KEYS, entry.name)
}

fn write_text(
    opened: &[OpenedHome],
    findings: &[Finding],
    fetched: &[Vec<String>],
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
        if home.decided.guessed && home.props.is_none() {
            writeln!(out, "home {}: {}", home.root.display(), counts(&mine))?;
        } else {
            writeln!(
                out,
                "{} home {} ({}): {}",
                home.decided.kind,
                home.root.display(),
                home.decided.reason,
                counts(&mine)
            )?;
        }
        for finding in mine {
            writeln!(out, "{}", finding.problem)?;
        }
        for line in &fetched[index] {
            writeln!(out, "{line}")?;
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
    fetched: &[Vec<String>],
    errors: usize,
    warnings: usize,
    code: u8,
    out: &mut dyn Write,
) -> Result<()> {
    let homes: Vec<_> = opened
        .iter()
        .zip(fetched)
        .map(|(home, fetched)| {
            json!({
                "home": home.root.display().to_string(),
                "file": home.file.display().to_string(),
                "module": home.decided.kind.as_str(),
                "moduleReason": home.decided.reason,
                "loads": home.loaded.is_ok(),
                "userKeysFetched": fetched,
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
                "code": p.code.as_str(),
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
    use svcid_config::codes as config_codes;
    use svcid_config::{ModuleKind, Overrides};
    use svcid_identity::jwk::GeneratorKey;

    const KEYS: &str = "ataccama.one.platform.deployments.dpm-dev.security.jwt-keys";

    fn props(text: &str) -> PropertySet {
        let mut set = PropertySet::new();
        set.load_str(text, Path::new("f.properties")).unwrap();
        set
    }

    /// The single-line JSON of a keypair, `d` included: what a careless copy gives a peer.
    fn keypair_line(key: &GeneratorKey) -> String {
        let keypair: serde_json::Value = serde_json::from_str(&key.keypair_json_pretty()).unwrap();
        keypair.to_string()
    }

    /// A dpe home trusting one dpm key under `dpm-dev/key`, with `extra` lines after it.
    fn dpe_home(fingerprint: &str, content: &str, extra: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        let own = GeneratorKey::generate();
        std::fs::write(
            dir.path().join("etc/application.properties"),
            format!(
                "ataccama.authentication.internal.jwt.generator.key={}\n\
                 ataccama.one.platform.deployments.dpm-dev.module=dpm\n\
                 {KEYS}.key.fingerprint={fingerprint}\n\
                 {KEYS}.key.content={content}\n{extra}",
                own.to_base64()
            ),
        )
        .unwrap();
        dir
    }

    /// The daemon's loader gives `code` as a warning, and check reports it as an error (in its
    /// JSON report, with the code).
    fn assert_escalated(home: &Path, code: ProblemCode) {
        let loaded = svcid_config::load(ModuleKind::Dpe, home, &Overrides::default())
            .unwrap_or_else(|problems| panic!("the daemon refuses to start: {problems:#?}"));
        let warned: Vec<_> = loaded.warnings.iter().filter(|p| p.code == code).collect();
        assert_eq!(warned.len(), 1, "{:#?}", loaded.warnings);
        assert_eq!(warned[0].severity, Severity::Warning);

        let mut out = Vec::new();
        let exit = check(
            &[home.to_owned()],
            &[ModuleChoice::Dpe],
            true,
            false,
            &mut out,
        )
        .unwrap();
        assert_eq!(exit, ERRORS);
        let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let reported: Vec<_> = report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["code"] == code.as_str())
            .collect();
        assert_eq!(reported.len(), 1, "{report:#}");
        assert_eq!(reported[0]["severity"], "error", "{report:#}");
        assert_eq!(report["errors"], 1, "{report:#}");
    }

    #[test]
    fn a_missing_home_gets_its_error_without_a_guess_first() {
        let dir = tempfile::tempdir().unwrap();
        let nope = dir.path().join("nope");
        let mut out = Vec::new();
        let exit = check(std::slice::from_ref(&nope), &[], false, false, &mut out).unwrap();
        assert_eq!(exit, ERRORS);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("guess"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("home {}: 1 error, 0 warnings", nope.display())
        );
        assert!(
            lines[1].contains("application.properties: error: cannot read the file"),
            "{text}"
        );
    }

    #[test]
    fn the_escalated_codes_are_exactly_these() {
        let mut escalated: Vec<&str> = ESCALATED.iter().map(|c| c.as_str()).collect();
        escalated.sort_unstable();
        assert_eq!(
            escalated,
            [
                "deployment.fingerprint-differs-from-kid",
                "deployment.misspelt-revocation",
                "deployment.private-key-in-content",
            ]
        );
    }

    #[test]
    fn a_fingerprint_differing_from_the_kid_is_escalated() {
        let peer = GeneratorKey::generate();
        let home = dpe_home("not-the-kid", &peer.public_key().content_json(), "");
        assert_escalated(home.path(), config_codes::FINGERPRINT_DIFFERS_FROM_KID);
    }

    #[test]
    fn a_private_key_in_content_is_escalated() {
        let peer = GeneratorKey::generate();
        let home = dpe_home(peer.kid(), &keypair_line(&peer), "");
        assert_escalated(home.path(), config_codes::PRIVATE_KEY_IN_CONTENT);
    }

    #[test]
    fn a_misspelt_revocation_is_escalated() {
        let peer = GeneratorKey::generate();
        let home = dpe_home(
            peer.kid(),
            &peer.public_key().content_json(),
            &format!("{KEYS}.key.is-revokd=true\n"),
        );
        assert_escalated(home.path(), config_codes::MISSPELT_REVOCATION);
    }

    #[test]
    fn escalation_goes_by_code_not_by_words() {
        let set = props("");
        let warning =
            |code, message: &str| Problem::warning(code, None, "x".into(), message.into(), None);
        let mut problems = vec![
            // The words of an escalated finding under another code stay a warning...
            warning(
                config_codes::UNKNOWN_FIELD,
                "the key is NOT revoked, a PRIVATE key, differs from the kid",
            ),
            // ... and an escalated code is an error whatever it says.
            warning(config_codes::MISSPELT_REVOCATION, "reworded"),
        ];
        stricter_than_the_daemon(&set, &mut problems);
        assert_eq!(problems[0].severity, Severity::Warning);
        assert_eq!(problems[1].severity, Severity::Error);
        assert_eq!(problems[1].message, "reworded");
    }

    #[test]
    fn fingerprint_and_private_content_get_checks_diagnosis() {
        let key = GeneratorKey::generate();
        let public = key.public_key().content_json();
        let private = keypair_line(&key);
        let set = props(&format!(
            "{KEYS}.a.fingerprint=other\n{KEYS}.a.content={public}\n\
             {KEYS}.b.fingerprint={kid}\n{KEYS}.b.content={private}\n",
            kid = key.kid(),
        ));
        let origin = |line| Origin::File {
            path: "f.properties".into(),
            line,
        };
        let mut problems = vec![
            Problem::warning(
                config_codes::FINGERPRINT_DIFFERS_FROM_KID,
                Some(origin(1)),
                format!("{KEYS}.a.fingerprint"),
                "fingerprint \"other\" differs from the kid …".into(),
                None,
            ),
            Problem::warning(
                config_codes::PRIVATE_KEY_IN_CONTENT,
                Some(origin(4)),
                format!("{KEYS}.b.content"),
                "SECURITY: deployment dpm-dev was given a PRIVATE key".into(),
                None,
            ),
        ];
        stricter_than_the_daemon(&set, &mut problems);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems.iter().all(Problem::is_error));
        assert_eq!(problems[0].code, config_codes::FINGERPRINT_DIFFERS_FROM_KID);
        assert!(
            problems[0].message.contains("matches no key"),
            "{}",
            problems[0]
        );
        assert_eq!(problems[1].code, config_codes::PRIVATE_KEY_IN_CONTENT);
        assert!(problems[1].message.contains("PRIVATE"), "{}", problems[1]);
        let keypair: serde_json::Value = serde_json::from_str(&private).unwrap();
        assert!(!problems[1].to_string().contains(&keypair["d"].to_string()));
    }

    #[test]
    fn the_readme_documents_every_code_and_the_escalated_ones_as_such() {
        let readme = include_str!("../../../docs/configuration.md");
        let table = &readme[readme.find("### Problem codes").unwrap()..];
        let table = &table[..table.find("\n## ").unwrap()];
        for code in codes::ALL
            .iter()
            .chain(config_codes::ALL)
            .chain(svcid_properties::codes::ALL)
        {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("| `{code}` |")))
                .unwrap_or_else(|| panic!("the problem codes table lacks {code}"));
            assert_eq!(
                row.contains("**check: error**"),
                ESCALATED.contains(code),
                "{row}"
            );
        }
        let rows = table.lines().filter(|l| l.starts_with("| `")).count();
        let known = codes::ALL.len() + config_codes::ALL.len() + svcid_properties::codes::ALL.len();
        assert_eq!(rows, known, "the problem codes table lists unknown codes");
    }

    #[test]
    fn checks_codes_are_distinct_from_the_daemons() {
        let mut seen = std::collections::HashSet::new();
        for code in codes::ALL
            .iter()
            .chain(config_codes::ALL)
            .chain(svcid_properties::codes::ALL)
        {
            assert!(seen.insert(code), "{code} twice");
        }
    }
}
