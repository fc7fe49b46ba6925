//! `svcid token --user`: a person's token for tests, as the MicroProfile JWT guide's
//! `generateJWTString` mints it: the claims of a JSON file plus `iat = auth_time = now` and
//! `exp = now + expires-in` (the guide: 1000 s, the default here too), header
//! `{"alg":"RS256"|"ES256","typ":"JWT","kid":…}` signed with a PKCS#8 PEM private key.
//!
//! The `kid` defaults to the key's RFC 7638 thumbprint (the guide puts the PEM's path there; a
//! verifier configured with one PEM key ignores `kid`, one with a JWK set from `svcid keygen`
//! finds the key by it). `--invalid` makes the bad tokens of the MicroProfile JWT conformance
//! tests, for a user's own tests of a verifier.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::userkey::KeyPair;

/// The lifetime the guide gives its tokens.
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(1000);

/// Largest claims file read (the guide reads 16 KiB; this leaves room).
const MAX_CLAIMS_BYTES: u64 = 1024 * 1024;

/// How far in the past `--invalid exp` puts `exp`: beyond any usual clock skew.
const EXPIRED_BY: i64 = 3600;

/// The bad tokens `--invalid` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Invalid {
    /// `iss` altered (`.invalid` appended): no configured issuer matches it.
    Issuer,
    /// Expired an hour ago, beyond any usual clock skew.
    Exp,
    /// `iat` after `exp` (`exp` = `iat` - 1 s).
    Iat,
    /// Signed by a fresh key unrelated to `--key`, of the same type.
    Signer,
    /// `alg` HS256, signed with the public key's PEM bytes as the HMAC secret.
    Alg,
}

/// What `svcid token --user` is asked for.
#[derive(Clone, Debug)]
pub struct UserTokenRequest<'a> {
    /// The claims JSON file.
    pub claims: &'a Path,
    /// The private key PEM.
    pub key: &'a Path,
    /// `exp - iat`.
    pub expires_in: Duration,
    /// The header's `kid`; `None`: the key's thumbprint.
    pub kid: Option<String>,
    /// Make a bad token of this kind.
    pub invalid: Option<Invalid>,
}

/// Parses `--expires-in`: seconds, with an optional unit `s`, `m`, `h` or `d` (`1000s`, `15m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 1000s or 15m"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    let seconds = number
        .checked_mul(scale)
        .filter(|s| (1..=i64::MAX as u64 / 2).contains(s))
        .ok_or_else(|| format!("{text:?} is out of range"))?;
    Ok(Duration::from_secs(seconds))
}

/// Reads the claims file: a JSON object, named in every error.
fn read_claims(path: &Path) -> Result<Map<String, Value>> {
    let shown = path.display();
    let size = fs::metadata(path)
        .with_context(|| format!("cannot read the claims file {shown}"))?
        .len();
    if size > MAX_CLAIMS_BYTES {
        bail!("the claims file {shown} has {size} bytes; at most {MAX_CLAIMS_BYTES} are read");
    }
    let text = fs::read(path).with_context(|| format!("cannot read the claims file {shown}"))?;
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(claims)) => Ok(claims),
        Ok(_) => bail!("the claims file {shown} holds JSON that is not an object"),
        Err(error) => bail!("the claims file {shown} is not JSON: {error}"),
    }
}

/// Mints the token at `now` (Unix seconds).
pub fn mint_user(request: &UserTokenRequest<'_>, now: i64) -> Result<String> {
    let mut claims = read_claims(request.claims)?;
    let key = KeyPair::read_private_pem(request.key)?;
    let lifetime = i64::try_from(request.expires_in.as_secs()).unwrap_or(i64::MAX / 2);
    let (iat, exp) = match request.invalid {
        Some(Invalid::Exp) => {
            let exp = now.saturating_sub(EXPIRED_BY);
            (exp.saturating_sub(lifetime), exp)
        }
        Some(Invalid::Iat) => (now, now.saturating_sub(1)),
        _ => (now, now.saturating_add(lifetime)),
    };
    claims.insert("iat".into(), json!(iat));
    claims.insert("auth_time".into(), json!(iat));
    claims.insert("exp".into(), json!(exp));
    if request.invalid == Some(Invalid::Issuer) {
        let Some(Value::String(iss)) = claims.get("iss") else {
            bail!(
                "--invalid issuer alters the iss claim, but the claims file {} has no iss string",
                request.claims.display()
            );
        };
        let altered = format!("{iss}.invalid");
        claims.insert("iss".into(), Value::from(altered));
    }
    let kid = match &request.kid {
        Some(kid) => kid.clone(),
        None => key.thumbprint()?,
    };
    let claims = Value::Object(claims);
    match request.invalid {
        Some(Invalid::Alg) => {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
            KeyPair::sign_hs256(&header, &claims, &key.public_pem()?)
        }
        Some(Invalid::Signer) => {
            let header = json!({"alg": key.alg(), "typ": "JWT", "kid": kid});
            key.unrelated()?.sign_compact(&header, &claims)
        }
        _ => {
            let header = json!({"alg": key.alg(), "typ": "JWT", "kid": kid});
            key.sign_compact(&header, &claims)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::userkey::{KeyPair, write_pem_files};
    use std::sync::Arc;
    use svcid_identity::clock::{Clock as _, SystemClock};
    use svcid_identity::user::{KeyFilter, UserIssuerPolicy, UserKeySet, UserTokenVerifier};

    const ISSUER: &str = "https://server.example.com";

    fn setup(key: &KeyPair) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (private, _public) = write_pem_files(key, dir.path(), false).unwrap();
        let claims = dir.path().join("jwt-token.json");
        fs::write(
            &claims,
            format!(
                r#"{{"iss":"{ISSUER}","jti":"a-123","sub":"24400320","upn":"jdoe@example.com","groups":["architect","dev"]}}"#
            ),
        )
        .unwrap();
        (dir, private, claims)
    }

    fn verdict(key: &KeyPair, token: &str) -> Result<String, String> {
        let text = String::from_utf8(key.public_pem().unwrap()).unwrap();
        let keys = UserKeySet::parse(&text, KeyFilter::Signing).unwrap();
        let verifier = UserTokenVerifier::new(
            vec![UserIssuerPolicy::micro_profile(ISSUER)],
            Arc::new(SystemClock),
        )
        .unwrap();
        verifier
            .verify(token, |_| &keys)
            .map(|identity| identity.username.clone())
            .map_err(|e| e.reason().to_owned())
    }

    #[test]
    fn tokens_of_both_key_types_verify_and_each_invalid_kind_is_refused() {
        let now = SystemClock.now_unix();
        for key in [
            KeyPair::generate_rsa(2048).unwrap(),
            KeyPair::generate_ec().unwrap(),
        ] {
            let (_dir, private, claims) = setup(&key);
            let mut request = UserTokenRequest {
                claims: &claims,
                key: &private,
                expires_in: DEFAULT_EXPIRES_IN,
                kid: None,
                invalid: None,
            };
            let token = mint_user(&request, now).unwrap();
            assert_eq!(verdict(&key, &token).unwrap(), "jdoe@example.com");
            for (invalid, reason) in [
                (Invalid::Issuer, "not_user_token"),
                (Invalid::Exp, "expired"),
                (Invalid::Iat, "iat_after_exp"),
                (Invalid::Signer, "bad_signature"),
                (Invalid::Alg, "alg_refused"),
            ] {
                request.invalid = Some(invalid);
                let token = mint_user(&request, now).unwrap();
                assert_eq!(verdict(&key, &token).unwrap_err(), reason, "{invalid:?}");
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1000s").unwrap(), Duration::from_secs(1000));
        assert_eq!(parse_duration("1000").unwrap(), Duration::from_secs(1000));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn bad_claims_files_are_named() {
        let key = KeyPair::generate_ec().unwrap();
        let (dir, private, _) = setup(&key);
        let claims = dir.path().join("array.json");
        fs::write(&claims, "[1]").unwrap();
        let request = UserTokenRequest {
            claims: &claims,
            key: &private,
            expires_in: DEFAULT_EXPIRES_IN,
            kid: None,
            invalid: None,
        };
        let error = format!("{:#}", mint_user(&request, 0).unwrap_err());
        assert!(
            error.contains("array.json") && error.contains("not an object"),
            "{error}"
        );
    }
}
