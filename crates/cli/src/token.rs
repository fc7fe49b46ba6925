//! `svcid token mint` and `svcid token inspect`: the operator's view of service tokens.
//!
//! `mint` signs a token with a home's own generator key through the daemons' [`TokenIssuer`], so
//! a token from here is byte for byte what that module sends (`--profile product`: what it sends
//! a product peer, without `aud`). `inspect` first decodes a token without trusting anything in it
//! (header, claims, times as RFC 3339, signature length), then, given a home, builds the very
//! [`TokenVerifier`] that home's daemon builds (its deployments and `Settings::verify_policy()`) and
//! reports its verdict: `accepted as <identity>` with the deployment, key and token profile that
//! admitted it, or `refused: <reason code>: <message>`, with a line of explanation for the
//! refusals an operator can act on. Decoding here is lenient on purpose (it must show what a hostile token carries);
//! the verdict is the daemon's strict one. Nothing here prints key material.

use std::io::{Read as _, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;
use svcid_config::names::{self, deployment as field};
use svcid_config::{Loaded, Settings};
use svcid_identity::clock::{Clock, SystemClock};
use svcid_identity::identity::ImpersonatedUser;
use svcid_identity::token::{
    AuthError, AuthErrorKind, MAX_TOKEN_BYTES, TokenIssuer, TokenProfile, TokenVerifier,
};
use svcid_properties::PropertySet;
use time::format_description::well_known::Rfc3339;

use crate::homes::{self, ModuleChoice, OpenedHome};

/// Exit code of `inspect`: accepted (or decoded, when no home was given).
pub const ACCEPTED: u8 = 0;
/// Exit code of `inspect`: refused by the home, or not decodable.
pub const REFUSED: u8 = 2;

/// Strict base64url without padding: what the daemons accept.
const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireNone),
);
/// Lenient decoders, to show what a malformed token carries anyway.
const LENIENT_URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Loads a home for `token` and `engines`: the daemon's settings, or an error listing every
/// problem.
pub(crate) fn load(home: &Path, module: ModuleChoice) -> Result<(OpenedHome, Loaded)> {
    let decided = homes::decide_all(&[home.to_owned()], &[module])
        .into_iter()
        .next()
        .context("internal: no module type decided")?;
    let mut opened = OpenedHome::open(home, decided);
    let loaded = std::mem::replace(&mut opened.loaded, Err(Vec::new()));
    match loaded {
        Ok(loaded) => Ok((opened, loaded)),
        Err(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .filter(|p| p.is_error())
                .map(ToString::to_string)
                .collect();
            bail!(
                "the {} home {} does not load, as its daemon would not start:\n{}",
                opened.decided.kind,
                home.display(),
                lines.join("\n")
            )
        }
    }
}

/// What `svcid token mint` is asked for.
#[derive(Clone, Debug)]
pub struct MintRequest<'a> {
    /// The receiver's module type (`--aud`); the token's `aud` under the strict profile.
    pub audience: &'a str,
    /// The receiver's token profile (`--profile`): `product` leaves `aud` out.
    pub profile: TokenProfile,
    /// The user to act for (`--user`), if any.
    pub user: Option<ImpersonatedUser>,
}

/// `svcid token mint`: prints a fresh token on `out`, and what it is on `info`.
pub fn mint(
    home: &Path,
    module: ModuleChoice,
    request: &MintRequest<'_>,
    out: &mut dyn Write,
    info: &mut dyn Write,
) -> Result<()> {
    let MintRequest {
        audience,
        profile,
        ref user,
    } = *request;
    if audience.is_empty()
        || audience
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("--aud must be a module type such as dpm or dpe");
    }
    let (opened, loaded) = load(home, module)?;
    let settings = loaded.settings;
    let kind = settings.kind;
    let lifetime = settings.jwt.token_expiration;
    let clock = Arc::new(SystemClock);
    let issuer = TokenIssuer::new(settings.jwt.generator_key, lifetime, clock.clone())
        .context("the generator key cannot sign")?;
    let token = issuer.mint_for_peer(audience, profile, user.as_ref());
    writeln!(out, "{token}")?;
    let now = clock.now_unix();
    let lifetime_secs = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX).max(1);
    let receiver = if profile.sends_audience() {
        format!("aud={audience}")
    } else {
        format!("a {audience} without aud (token profile: {profile})")
    };
    writeln!(
        info,
        "minted by the {kind} home {} ({}) with kid {} for {receiver}{}, valid until {} ({}s)",
        home.display(),
        opened.decided.reason,
        issuer.kid(),
        user.as_ref()
            .map(|u| format!(" acting for user {}", u.username))
            .unwrap_or_default(),
        rfc3339(now.saturating_add(lifetime_secs)),
        lifetime_secs
    )?;
    if profile.sends_audience() && audience == kind.as_str() {
        writeln!(
            info,
            "note: aud={audience} is this module's own type; a peer of another type refuses it (wrong_aud)"
        )?;
    }
    Ok(())
}

/// The token as the user gave it: the compact JWS, and the `authorization` value a daemon gets.
fn split_scheme(given: &str) -> (&str, String) {
    match given.split_once(' ') {
        Some((_, token)) => (token.trim(), given.to_owned()),
        None => (given, format!("Internal-jwt {given}")),
    }
}

/// `svcid token inspect`: decodes `given` (`-` reads standard input) and, with a home, reports
/// whether that home's daemon accepts it. Returns the exit code.
pub fn inspect(
    given: &str,
    home: Option<(&Path, ModuleChoice)>,
    out: &mut dyn Write,
) -> Result<u8> {
    let mut read = String::new();
    let given = if given == "-" {
        std::io::stdin()
            .read_to_string(&mut read)
            .context("cannot read the token from standard input")?;
        read.trim()
    } else {
        given.trim()
    };
    let (token, authorization) = split_scheme(given);
    let now = SystemClock.now_unix();
    let claims = describe(token, now, out)?;

    let Some((home, module)) = home else {
        writeln!(
            out,
            "not verified: give --home DIR to see whether that module accepts it"
        )?;
        return Ok(if claims.is_some() { ACCEPTED } else { REFUSED });
    };
    let (opened, loaded) = load(home, module)?;
    let settings = loaded.settings;
    let kind = settings.kind;
    let policy = settings.verify_policy();
    let skew = policy.clock_skew.as_secs();
    let max_lifetime = policy.max_token_lifetime.as_secs();
    let require_audience = policy.require_audience;
    let Settings { deployments, .. } = settings;
    let verifier = TokenVerifier::new(policy, deployments, Arc::new(SystemClock));
    let verdict = verifier.verify_uncached(&[authorization.as_bytes()]);
    let deployments = verifier.deployments();
    let label = format!(
        "the {kind} home {} ({})",
        home.display(),
        opened.decided.reason
    );
    match verdict {
        Ok(caller) => {
            let via = deployments
                .lookup(caller.kid())
                .map(|(d, k)| {
                    format!(
                        " (deployment {}, key {}) ({})",
                        d.name,
                        k.name,
                        profile_note(d.token_profile, require_audience)
                    )
                })
                .unwrap_or_default();
            writeln!(out, "verdict of {label}:")?;
            writeln!(out, "accepted as {caller}{via}")?;
            Ok(ACCEPTED)
        }
        Err(error) => {
            writeln!(out, "verdict of {label}:")?;
            writeln!(out, "refused: {}: {error}", error.reason())?;
            let why = explain(
                &error,
                &Explain {
                    deployments: &deployments,
                    props: opened.props.as_ref(),
                    claims: claims.as_ref(),
                    kind: kind.as_str(),
                    now,
                    skew,
                    max_lifetime,
                    require_audience,
                },
            );
            if let Some(why) = why {
                writeln!(out, "why: {why}")?;
            }
            Ok(REFUSED)
        }
    }
}

/// Prints header, claims, times and signature; returns the claims when the token decodes.
fn describe(token: &str, now: i64, out: &mut dyn Write) -> Result<Option<Value>> {
    if token.len() > MAX_TOKEN_BYTES {
        writeln!(
            out,
            "token of {} bytes exceeds {MAX_TOKEN_BYTES}: daemons refuse it before decoding; not decoded",
            token.len()
        )?;
        return Ok(None);
    }
    let segments: Vec<&str> = token.split('.').collect();
    writeln!(
        out,
        "token: {} bytes, {} segment{}",
        token.len(),
        segments.len(),
        if segments.len() == 1 { "" } else { "s" }
    )?;
    if segments.len() != 3 {
        writeln!(
            out,
            "undecodable: a compact JWS has 3 segments (header.claims.signature)"
        )?;
        return Ok(None);
    }
    let header = decode_json("header", segments[0], out)?;
    let claims = decode_json("claims", segments[1], out)?;
    if let Some(claims) = &claims {
        for name in ["iat", "nbf", "exp"] {
            match claims.get(name) {
                None => writeln!(out, "{name}: absent")?,
                Some(Value::Number(n)) if n.as_i64().is_some() => {
                    let t = n.as_i64().unwrap_or_default();
                    writeln!(out, "{name}: {t} = {} ({})", rfc3339(t), relative(t, now))?;
                }
                Some(other) => writeln!(out, "{name}: {other} (not an integer NumericDate)")?,
            }
        }
    }
    match decode(segments[2]) {
        Ok((bytes, strict)) => writeln!(
            out,
            "signature: {} bytes{}",
            bytes.len(),
            if strict {
                ""
            } else {
                " (not strict base64url)"
            }
        )?,
        Err(()) => writeln!(out, "signature: not base64")?,
    }
    Ok(match (header, claims) {
        (Some(_), Some(claims)) => Some(claims),
        _ => None,
    })
}

/// Decodes one segment leniently; `true` when it was also strict base64url.
fn decode(segment: &str) -> Result<(Vec<u8>, bool), ()> {
    if let Ok(bytes) = STRICT.decode(segment) {
        return Ok((bytes, true));
    }
    LENIENT_URL
        .decode(segment)
        .or_else(|_| LENIENT_STANDARD.decode(segment))
        .map(|bytes| (bytes, false))
        .map_err(|_| ())
}

fn decode_json(what: &str, segment: &str, out: &mut dyn Write) -> Result<Option<Value>> {
    let Ok((bytes, strict)) = decode(segment) else {
        writeln!(out, "{what}: undecodable: not base64")?;
        return Ok(None);
    };
    let note = if strict {
        ""
    } else {
        " (not strict base64url: daemons refuse it)"
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => {
            writeln!(out, "{what}{note}:")?;
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            Ok(Some(value))
        }
        Err(error) => {
            writeln!(out, "{what}{note}: undecodable: not JSON ({error})")?;
            Ok(None)
        }
    }
}

/// What `explain` may consult.
struct Explain<'a> {
    /// The home's deployments.
    deployments: &'a svcid_identity::deployments::Deployments,
    /// The home's properties, for file:line of a revoked flag.
    props: Option<&'a PropertySet>,
    /// The decoded claims, if any.
    claims: Option<&'a Value>,
    /// The home's module type.
    kind: &'a str,
    /// Now, in Unix seconds.
    now: i64,
    /// Clock skew in seconds.
    skew: u64,
    /// Maximum token lifetime in seconds.
    max_lifetime: u64,
    /// `require-audience` of the home.
    require_audience: bool,
}

/// How the home treats `aud` for a deployment of `profile`, as `inspect` reports it.
fn profile_note(profile: TokenProfile, require_audience: bool) -> String {
    match (profile, require_audience) {
        (TokenProfile::Product, _) => format!("token profile: {profile} — no aud required"),
        (TokenProfile::Strict, true) => format!("token profile: {profile} — aud required"),
        (TokenProfile::Strict, false) => {
            format!("token profile: {profile} — no aud required (require-audience=false)")
        }
    }
}

/// One line an operator can act on, for the refusals where the reason code alone is not enough.
fn explain(error: &AuthError, cx: &Explain<'_>) -> Option<String> {
    let claim = |name: &str| cx.claims.and_then(|c| c.get(name)).and_then(Value::as_i64);
    let entry = |kid: &str| {
        cx.deployments
            .lookup(kid)
            .map(|(d, k)| format!("{}/{}", d.name, k.name))
    };
    let kid = error.kid().unwrap_or_default();
    match error.kind() {
        AuthErrorKind::UnknownKid => {
            let trusted: Vec<String> = cx
                .deployments
                .deployments()
                .iter()
                .flat_map(|d| {
                    d.keys
                        .iter()
                        .map(move |k| format!("{}/{} (kid {})", d.name, k.name, k.fingerprint))
                })
                .collect();
            Some(format!(
                "no deployment of this home has fingerprint {kid}; it trusts {}",
                if trusted.is_empty() {
                    "no key at all".to_owned()
                } else {
                    trusted.join(", ")
                }
            ))
        }
        AuthErrorKind::RevokedKey => {
            let (d, k) = cx.deployments.lookup(kid)?;
            let flag = format!(
                "{}.{}.{}.{}.{}",
                names::DEPLOYMENTS,
                d.name,
                field::JWT_KEYS,
                k.name,
                field::IS_REVOKED
            );
            let at = cx
                .props
                .and_then(|p| p.get(&flag))
                .map(|v| format!(" ({}: {}={})", v.origin, v.key, v.raw.trim()))
                .unwrap_or_default();
            Some(format!("{}/{} is revoked{at}", d.name, k.name))
        }
        AuthErrorKind::BadSignature => Some(format!(
            "the signature does not verify with the public key configured as {}: the token was signed \
             by another key under this kid, or altered",
            entry(kid).unwrap_or_else(|| kid.to_owned())
        )),
        AuthErrorKind::Expired => claim("exp").map(|exp| {
            format!(
                "exp {} was {}; the clock skew allows {}s",
                rfc3339(exp),
                relative(exp, cx.now),
                cx.skew
            )
        }),
        AuthErrorKind::NotYetValid { claim: name } => claim(name).map(|t| {
            format!(
                "{name} {} is {}; the clock skew allows {}s",
                rfc3339(t),
                relative(t, cx.now),
                cx.skew
            )
        }),
        AuthErrorKind::LifetimeTooLong => match (claim("iat"), claim("exp")) {
            (Some(iat), Some(exp)) => Some(format!(
                "exp - iat is {}s; max-token-lifetime is {}s",
                exp.saturating_sub(iat),
                cx.max_lifetime
            )),
            _ => None,
        },
        AuthErrorKind::WrongAudience | AuthErrorKind::MissingAudience => {
            let aud = cx
                .claims
                .and_then(|c| c.get("aud"))
                .map_or_else(|| "absent".to_owned(), Value::to_string);
            let kind = cx.kind;
            let deployment = cx.deployments.lookup(kid).map(|(d, _)| d);
            let required = cx.require_audience
                && deployment.is_none_or(|d| d.token_profile.requires_audience());
            let mut why = if required {
                format!(
                    "aud is {aud}; this home is a {kind}, so tokens for it must carry aud={kind}"
                )
            } else {
                format!(
                    "aud is {aud}; this home is a {kind}, so a token for it that carries aud must name {kind}"
                )
            };
            if let Some(d) = deployment {
                why.push_str(&format!(
                    " ({}: {})",
                    d.name,
                    profile_note(d.token_profile, cx.require_audience)
                ));
                if matches!(error.kind(), AuthErrorKind::MissingAudience) {
                    why.push_str(&format!(
                        "; if {} is an Ataccama ONE module, which mints no aud, set {}.{}.{}=product",
                        d.name,
                        names::DEPLOYMENTS,
                        d.name,
                        field::TOKEN_PROFILE
                    ));
                }
            }
            Some(why)
        }
        AuthErrorKind::ImpersonationNotAllowed => Some(format!(
            "the token acts for a user (usr) but {} does not hold the impersonation role here",
            entry(kid).unwrap_or_else(|| kid.to_owned())
        )),
        _ => None,
    }
}

/// A Unix time as RFC 3339 UTC.
fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| "out of range".to_owned())
}

/// `in 14s` / `3s ago` / `now`.
fn relative(t: i64, now: i64) -> String {
    let delta = t.saturating_sub(now);
    match delta {
        0 => "now".to_owned(),
        d if d > 0 => format!("in {d}s"),
        d => format!("{}s ago", d.unsigned_abs()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b64(text: &str) -> String {
        STRICT.encode(text)
    }

    #[test]
    fn describes_claims_and_times_without_trusting_them() {
        let token = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"none","kid":"k"}"#),
            b64(r#"{"iat":0,"exp":"soon","aud":"dpm"}"#),
            b64("sig")
        );
        let mut out = Vec::new();
        let claims = describe(&token, 10, &mut out).unwrap().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(claims["aud"], "dpm");
        assert!(text.contains("\"alg\": \"none\""), "{text}");
        assert!(
            text.contains("iat: 0 = 1970-01-01T00:00:00Z (10s ago)"),
            "{text}"
        );
        assert!(text.contains("nbf: absent"), "{text}");
        assert!(
            text.contains("exp: \"soon\" (not an integer NumericDate)"),
            "{text}"
        );
        assert!(text.contains("signature: 3 bytes"), "{text}");
    }

    #[test]
    fn undecodable_tokens_say_why() {
        for token in [
            "abc",
            "a.b",
            "!!.!!.!!",
            &format!("{}.x.y", b64("not json")),
        ] {
            let mut out = Vec::new();
            assert!(describe(token, 0, &mut out).unwrap().is_none(), "{token}");
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("undecodable"), "{text}");
        }
        let mut out = Vec::new();
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(describe(&huge, 0, &mut out).unwrap().is_none());
    }

    #[test]
    fn the_scheme_is_optional() {
        assert_eq!(split_scheme("abc"), ("abc", "Internal-jwt abc".to_owned()));
        assert_eq!(split_scheme("Bearer abc"), ("abc", "Bearer abc".to_owned()));
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative(5, 5), "now");
        assert_eq!(relative(7, 5), "in 2s");
        assert_eq!(relative(3, 5), "2s ago");
    }
}
