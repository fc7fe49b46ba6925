//! Public keys that verify user tokens: RSA and EC P-256, from PEM, a JWK, a JWK set, or base64 of
//! a JWK or a JWK set.
//!
//! [`UserKeySet::parse`] takes the text as an identity provider publishes it or as a person pastes
//! it into a property, and keeps only what can verify an RS256 or ES256 signature. It refuses, by
//! name and without echoing any key material, a private key where a public one belongs, RSA moduli
//! under 2048 or over 4096 bits, curves other than P-256, sets of more than [`MAX_KEY_SET_KEYS`]
//! keys and texts over [`MAX_KEY_SET_BYTES`]. Where the text comes from (a property, a file, a URL)
//! is the caller's business; so is refreshing it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use openssl::bn::BigNum;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use p256::pkcs8::DecodePublicKey as _;
use serde_json::{Map, Value};

use crate::es256::{Es256Verifier, SIGNATURE_BYTES};
use crate::jwk::{self, p256_point};
use crate::printable::{EXCERPT_CHARS, excerpt};
use crate::rs256::Rs256Verifier;
use crate::strict_json::{self, StrictJsonError};

/// The largest key text accepted, in bytes (1 MiB). A key source reading from a file or a URL
/// stops reading at this size; [`UserKeySet::parse`] refuses longer text as well.
pub const MAX_KEY_SET_BYTES: usize = 1024 * 1024;
/// The most keys a JWK set may hold; a larger set is refused whole.
pub const MAX_KEY_SET_KEYS: usize = 100;
/// The shortest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;
/// The longest RSA modulus accepted, in bits: bounds the work one signature check can cost.
pub const MAX_RSA_BITS: u32 = 4096;

/// JWK members and base64 of JWKs: people paste both alphabets, padded or not.
const BASE64_STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64_URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signature algorithm a user token may use. Only these two exist, so an allow-list built from
/// them cannot hold `none`, an HMAC, PS256 or RS512.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, over an RSA key of 2048 to 4096 bits.
    Rs256,
    /// ECDSA over P-256 with SHA-256, signature as raw `r‖s`.
    Es256,
}

impl UserAlgorithm {
    /// The JWS name: `RS256` or `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
}

impl fmt::Display for UserAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not `RS256` or `ES256`.
#[derive(Debug, thiserror::Error)]
#[error("algorithm \"{0}\" is not accepted for user tokens; use RS256 or ES256")]
pub struct UnknownUserAlgorithm(String);

impl FromStr for UserAlgorithm {
    type Err = UnknownUserAlgorithm;

    /// `RS256` or `ES256`, exactly (JWS algorithm names are case-sensitive).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            other => Err(UnknownUserAlgorithm(excerpt(other, 16))),
        }
    }
}

/// Which keys of a JWK set are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFilter {
    /// Every RSA or P-256 key meant for signatures (`use` `sig` or absent) whose `alg`, when
    /// present, is RS256 or ES256 and fits its type. For MicroProfile JWT sources.
    Signing,
    /// Keycloak's realm keys: only `kty` RSA with `use` `sig` or absent and `alg` RS256 or absent.
    /// Keycloak also publishes an RSA-OAEP encryption key (`use` `enc`); it is skipped.
    KeycloakRealm,
}

/// Why key text was refused. Messages name the form, the member or the key's position and `kid`,
/// never key material.
#[derive(Debug, thiserror::Error)]
pub enum UserKeyError {
    /// The text is empty.
    #[error("the key text is empty")]
    Empty,
    /// The text is longer than [`MAX_KEY_SET_BYTES`].
    #[error("the key text is {len} bytes; at most {MAX_KEY_SET_BYTES} are accepted")]
    TooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// A private key where a public key belongs. Its value is never read further nor shown.
    #[error(
        "{form} holds a private key; give the public key only (the private key must stay with the issuer)"
    )]
    PrivateKey {
        /// Where it was found: `PEM "PRIVATE KEY"`, `the JWK`, `key 2 (kid "abc") of the JWK set`.
        form: String,
    },
    /// PEM of a kind other than `PUBLIC KEY` or `RSA PUBLIC KEY` (e.g. a certificate).
    #[error("PEM \"{label}\" is not supported; give \"-----BEGIN PUBLIC KEY-----\"")]
    UnsupportedPem {
        /// The label after `BEGIN` (shortened, escaped).
        label: String,
    },
    /// PEM that OpenSSL cannot read as a public key.
    #[error("the PEM public key cannot be read")]
    BadPem,
    /// Neither PEM, JSON, nor base64 of JSON.
    #[error("not a PEM public key, a JWK, a JWK set, or base64 of a JWK or JWK set")]
    NotAKey,
    /// JSON that is not strict (syntax, duplicate member, depth).
    #[error("not valid JSON: {0}")]
    NotJson(StrictJsonError),
    /// `keys` is not an array of objects.
    #[error("the JWK set's \"keys\" must be an array of objects")]
    KeySetMalformed,
    /// More than [`MAX_KEY_SET_KEYS`] keys in a set.
    #[error("the JWK set holds {count} keys; at most {MAX_KEY_SET_KEYS} are accepted")]
    TooManyKeys {
        /// How many it holds.
        count: usize,
    },
    /// A key (or every key of a set) is of a kind that cannot verify RS256 or ES256 tokens.
    #[error("{form} cannot verify user tokens: {why}")]
    Unusable {
        /// `the PEM key`, `the JWK`, `the JWK set`.
        form: String,
        /// What is wrong: its `kty`, `crv`, `use` or `alg`, or that a set kept no key.
        why: String,
    },
    /// A JWK member is missing, of the wrong type or badly encoded.
    #[error("{form}: member \"{member}\" {problem}")]
    BadMember {
        /// Which key.
        form: String,
        /// The member's name.
        member: &'static str,
        /// `is missing`, `must be a string, not a number`, `is not base64url`.
        problem: String,
    },
    /// An RSA modulus outside [`MIN_RSA_BITS`]..=[`MAX_RSA_BITS`].
    #[error(
        "{form} is an RSA key of {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} bits are accepted"
    )]
    RsaSize {
        /// Which key.
        form: String,
        /// Its modulus length.
        bits: u32,
    },
    /// EC coordinates that are not a point on P-256.
    #[error("{form}: x/y are not a point on the P-256 curve")]
    NotOnCurve {
        /// Which key.
        form: String,
    },
}

/// How a key checks a signature.
enum KeyVerifier {
    /// An RSA public key (2048 to 4096 bits) for RS256.
    Rsa(Rs256Verifier),
    /// A P-256 point for ES256, on the crate's one ES256 implementation.
    Ec(Es256Verifier),
}

/// One public key able to verify user tokens.
pub struct UserKey {
    /// The JWK's `kid`; `None` for PEM and for JWKs without one.
    kid: Option<String>,
    /// The only algorithm this key verifies: RS256 for RSA, ES256 for P-256.
    algorithm: UserAlgorithm,
    /// The prepared key.
    verifier: KeyVerifier,
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl UserKey {
    /// The key's `kid`, when its JWK had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> UserAlgorithm {
        self.algorithm
    }

    /// Whether `signature` is a valid signature of `message` under this key. Anything OpenSSL
    /// cannot evaluate (wrong length, malformed) counts as invalid.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            KeyVerifier::Rsa(verifier) => verifier.verify(message, signature),
            KeyVerifier::Ec(verifier) => match <&[u8; SIGNATURE_BYTES]>::try_from(signature) {
                Ok(raw) => verifier.verify(message, raw),
                Err(_) => false,
            },
        }
    }
}

/// Whether a key source holds one key or a set: it decides how a token's `kid` is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyForm {
    /// One PEM key or one JWK: the token's `kid` is ignored (test tokens carry meaningless ones).
    Single,
    /// A JWK set: a `kid` naming a key selects that key alone.
    Set,
}

/// The keys of one issuer, parsed and filtered.
#[derive(Debug)]
pub struct UserKeySet {
    /// Whether the text was a single key or a set.
    form: KeyForm,
    /// The usable keys, in the set's order.
    keys: Vec<UserKey>,
    /// Keys of the set left out by the filter (encryption keys, other types), for logs.
    skipped: usize,
}

impl UserKeySet {
    /// Parses key text: PEM `BEGIN PUBLIC KEY` (RSA or EC) or `BEGIN RSA PUBLIC KEY`, a JWK, a JWK
    /// set (`{"keys":[…]}`), or base64 (standard or URL-safe, padded or not) of a JWK or a set.
    ///
    /// A single key must be usable. In a set, keys the filter does not keep are skipped and
    /// counted; a private key, a malformed key or an RSA key of the wrong size anywhere in the set
    /// refuses the whole set, and so does a set that keeps no key.
    pub fn parse(text: &str, filter: KeyFilter) -> Result<UserKeySet, UserKeyError> {
        if text.len() > MAX_KEY_SET_BYTES {
            return Err(UserKeyError::TooLarge { len: text.len() });
        }
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(UserKeyError::Empty);
        }
        if trimmed.starts_with("-----BEGIN") {
            let key = from_pem(trimmed)?;
            return Self::single(key, filter, "the PEM key");
        }
        let object = if trimmed.starts_with('{') {
            strict_json::parse_object(trimmed.as_bytes()).map_err(UserKeyError::NotJson)?
        } else {
            let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
            let decoded = BASE64_STANDARD_LENIENT
                .decode(&compact)
                .or_else(|_| BASE64_URL_LENIENT.decode(&compact))
                .map_err(|_| UserKeyError::NotAKey)?;
            if !decoded.trim_ascii_start().starts_with(b"{") {
                return Err(UserKeyError::NotAKey);
            }
            strict_json::parse_object(&decoded).map_err(UserKeyError::NotJson)?
        };
        match object.get("keys") {
            Some(keys) => Self::from_set(keys, filter),
            None => {
                let form = "the JWK".to_owned();
                match from_jwk(&object, &form)? {
                    Jwk::Key(key) => Self::single(key, filter, "the JWK"),
                    Jwk::Skip(why) => Err(UserKeyError::Unusable { form, why }),
                }
            }
        }
    }

    /// A one-key source, checked against the filter like a set member.
    fn single(key: UserKey, filter: KeyFilter, form: &str) -> Result<UserKeySet, UserKeyError> {
        if filter == KeyFilter::KeycloakRealm && key.algorithm != UserAlgorithm::Rs256 {
            return Err(UserKeyError::Unusable {
                form: form.to_owned(),
                why: "Keycloak realm keys are RSA (RS256)".to_owned(),
            });
        }
        Ok(UserKeySet {
            form: KeyForm::Single,
            keys: vec![key],
            skipped: 0,
        })
    }

    fn from_set(keys: &Value, filter: KeyFilter) -> Result<UserKeySet, UserKeyError> {
        let Value::Array(members) = keys else {
            return Err(UserKeyError::KeySetMalformed);
        };
        if members.len() > MAX_KEY_SET_KEYS {
            return Err(UserKeyError::TooManyKeys {
                count: members.len(),
            });
        }
        let mut kept = Vec::new();
        let mut skipped = 0;
        for (index, member) in members.iter().enumerate() {
            let Value::Object(jwk) = member else {
                return Err(UserKeyError::KeySetMalformed);
            };
            let form = match jwk.get("kid").and_then(Value::as_str) {
                Some(kid) => format!(
                    "key {} (kid \"{}\") of the JWK set",
                    index + 1,
                    excerpt(kid, EXCERPT_CHARS)
                ),
                None => format!("key {} of the JWK set", index + 1),
            };
            if keycloak_skips(jwk, filter) {
                // Refuse a private key even in a key the filter would skip: it must not be here.
                if has_private_part(jwk) {
                    return Err(UserKeyError::PrivateKey { form });
                }
                skipped += 1;
                continue;
            }
            match from_jwk(jwk, &form)? {
                Jwk::Key(key) => kept.push(key),
                Jwk::Skip(_) => skipped += 1,
            }
        }
        if kept.is_empty() {
            return Err(UserKeyError::Unusable {
                form: "the JWK set".to_owned(),
                why: format!(
                    "none of its {} keys is an RS256/ES256 signing key",
                    members.len()
                ),
            });
        }
        Ok(UserKeySet {
            form: KeyForm::Set,
            keys: kept,
            skipped,
        })
    }

    /// One key or a set.
    pub fn form(&self) -> KeyForm {
        self.form
    }

    /// The usable keys, in their order in the text.
    pub fn keys(&self) -> &[UserKey] {
        &self.keys
    }

    /// How many keys of a set the filter left out (encryption keys, other types).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Whether a key with this `kid` is in the set (a key source refetches when it is not).
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid() == Some(kid))
    }
}

/// Whether Keycloak's filter leaves a set member out before it is parsed: anything but an RSA
/// key with `use` `sig` or absent and `alg` `RS256` or absent.
fn keycloak_skips(jwk: &Map<String, Value>, filter: KeyFilter) -> bool {
    if filter != KeyFilter::KeycloakRealm {
        return false;
    }
    let is = |member: &str, wanted: &str| match jwk.get(member) {
        None => true,
        Some(value) => value.as_str() == Some(wanted),
    };
    jwk.get("kty").and_then(Value::as_str) != Some("RSA")
        || !is("use", "sig")
        || !is("alg", "RS256")
}

fn has_private_part(jwk: &Map<String, Value>) -> bool {
    // `d` is the private exponent (RSA) or scalar (EC); `p`/`q` are RSA primes.
    ["d", "p", "q"]
        .iter()
        .any(|member| jwk.contains_key(*member))
}

/// What one JWK turned out to be.
enum Jwk {
    /// A usable key.
    Key(UserKey),
    /// A key of a kind this verifier never uses, and why (a set skips it; a single key is refused).
    Skip(String),
}

/// Reads one JWK object. `form` names it in errors.
fn from_jwk(jwk: &Map<String, Value>, form: &str) -> Result<Jwk, UserKeyError> {
    if has_private_part(jwk) {
        return Err(UserKeyError::PrivateKey {
            form: form.to_owned(),
        });
    }
    let kty = string_member(jwk, "kty", form)?.ok_or_else(|| missing(form, "kty"))?;
    let key_use = string_member(jwk, "use", form)?;
    if let Some(key_use) = key_use
        && key_use != "sig"
    {
        return Ok(Jwk::Skip(format!(
            "use is \"{}\", not sig",
            excerpt(key_use, EXCERPT_CHARS)
        )));
    }
    let algorithm = match kty {
        "RSA" => UserAlgorithm::Rs256,
        "EC" => UserAlgorithm::Es256,
        other => {
            return Ok(Jwk::Skip(format!(
                "kty is \"{}\"; RSA or EC is needed",
                excerpt(other, EXCERPT_CHARS)
            )));
        }
    };
    if let Some(alg) = string_member(jwk, "alg", form)?
        && alg != algorithm.as_str()
    {
        return Ok(Jwk::Skip(format!(
            "alg is \"{}\"; a {kty} key here must be {algorithm} or have no alg",
            excerpt(alg, EXCERPT_CHARS)
        )));
    }
    let kid = string_member(jwk, "kid", form)?.map(str::to_owned);
    let verifier = match algorithm {
        UserAlgorithm::Rs256 => {
            let n = BigNum::from_slice(&binary_member(jwk, "n", form)?)
                .map_err(|_| bad(form, "n", "is not a valid integer"))?;
            let e = BigNum::from_slice(&binary_member(jwk, "e", form)?)
                .map_err(|_| bad(form, "e", "is not a valid integer"))?;
            let rsa = Rsa::from_public_components(n, e)
                .map_err(|_| bad(form, "n", "does not form an RSA key with e"))?;
            rsa_verifier(rsa, form)?
        }
        UserAlgorithm::Es256 => {
            let crv = string_member(jwk, "crv", form)?.ok_or_else(|| missing(form, "crv"))?;
            if crv != "P-256" {
                return Ok(Jwk::Skip(format!(
                    "crv is \"{}\"; only P-256 is accepted",
                    excerpt(crv, EXCERPT_CHARS)
                )));
            }
            let x = binary_member(jwk, "x", form)?;
            let y = binary_member(jwk, "y", form)?;
            let point = p256_point(&x, &y).ok_or_else(|| UserKeyError::NotOnCurve {
                form: form.to_owned(),
            })?;
            ec_verifier(&point, form)?
        }
    };
    Ok(Jwk::Key(UserKey {
        kid,
        algorithm,
        verifier,
    }))
}

/// Reads one PEM block: a public key, never a private one. The armor is read by hand and the body
/// decoded whatever its line breaks, because a key pasted into a properties file often arrives on
/// one line (a `\` continuation joins lines without a break).
fn from_pem(pem: &str) -> Result<UserKey, UserKeyError> {
    let form = "the PEM key";
    let after_begin = pem
        .strip_prefix("-----BEGIN ")
        .ok_or(UserKeyError::BadPem)?;
    let label_end = after_begin.find("-----").ok_or(UserKeyError::BadPem)?;
    let label = after_begin[..label_end].trim();
    if label.contains("PRIVATE KEY") {
        return Err(UserKeyError::PrivateKey {
            form: format!("PEM \"{}\"", excerpt(label, EXCERPT_CHARS)),
        });
    }
    if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
        return Err(UserKeyError::UnsupportedPem {
            label: excerpt(label, EXCERPT_CHARS),
        });
    }
    let body = &after_begin[label_end + "-----".len()..];
    let end = format!("-----END {label}-----");
    let body = &body[..body.find(&end).ok_or(UserKeyError::BadPem)?];
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = BASE64_STANDARD_LENIENT
        .decode(compact)
        .map_err(|_| UserKeyError::BadPem)?;
    let key = match label {
        "PUBLIC KEY" => PKey::public_key_from_der(&der).map_err(|_| UserKeyError::BadPem)?,
        _ => Rsa::public_key_from_der_pkcs1(&der)
            .and_then(PKey::from_rsa)
            .map_err(|_| UserKeyError::BadPem)?,
    };
    let (algorithm, verifier) = match key.id() {
        Id::RSA => {
            let rsa = key.rsa().map_err(|_| UserKeyError::BadPem)?;
            (UserAlgorithm::Rs256, rsa_verifier(rsa, form)?)
        }
        Id::EC => {
            let ec = key.ec_key().map_err(|_| UserKeyError::BadPem)?;
            if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                return Err(UserKeyError::Unusable {
                    form: form.to_owned(),
                    why: "its curve is not P-256".to_owned(),
                });
            }
            let der = key.public_key_to_der().map_err(|_| UserKeyError::BadPem)?;
            let point =
                p256::PublicKey::from_public_key_der(&der).map_err(|_| UserKeyError::BadPem)?;
            (UserAlgorithm::Es256, ec_verifier(&point, form)?)
        }
        _ => {
            return Err(UserKeyError::Unusable {
                form: form.to_owned(),
                why: "it is neither RSA nor EC".to_owned(),
            });
        }
    };
    Ok(UserKey {
        kid: None,
        algorithm,
        verifier,
    })
}

fn rsa_verifier(rsa: Rsa<Public>, form: &str) -> Result<KeyVerifier, UserKeyError> {
    let bits = u32::try_from(rsa.n().num_bits()).unwrap_or(0);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(UserKeyError::RsaSize {
            form: form.to_owned(),
            bits,
        });
    }
    Rs256Verifier::new(rsa)
        .map(KeyVerifier::Rsa)
        .ok_or_else(|| bad(form, "n", "cannot be prepared by OpenSSL"))
}

fn ec_verifier(point: &p256::PublicKey, form: &str) -> Result<KeyVerifier, UserKeyError> {
    Es256Verifier::new(point)
        .map(KeyVerifier::Ec)
        .map_err(|_| UserKeyError::NotOnCurve {
            form: form.to_owned(),
        })
}

fn string_member<'j>(
    jwk: &'j Map<String, Value>,
    member: &'static str,
    form: &str,
) -> Result<Option<&'j str>, UserKeyError> {
    jwk::string_member(jwk, member)
        .map_err(|found| bad(form, member, &format!("must be a string, not {found}")))
}

/// A base64url member (`n`, `e`, `x`, `y`), padding tolerated.
fn binary_member(
    jwk: &Map<String, Value>,
    member: &'static str,
    form: &str,
) -> Result<Vec<u8>, UserKeyError> {
    let text = string_member(jwk, member, form)?.ok_or_else(|| missing(form, member))?;
    BASE64_URL_LENIENT
        .decode(text)
        .map_err(|_| bad(form, member, "is not base64url"))
}

fn missing(form: &str, member: &'static str) -> UserKeyError {
    bad(form, member, "is missing")
}

fn bad(form: &str, member: &'static str, problem: &str) -> UserKeyError {
    UserKeyError::BadMember {
        form: form.to_owned(),
        member,
        problem: problem.to_owned(),
    }
}
