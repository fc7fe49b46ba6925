//! P-256 JSON Web Keys: this module's signing key, peers' public keys and RFC 7638 thumbprints.
//!
//! Two kinds of key enter svcid through configuration: the generator key (this module's private
//! keypair, base64 of a JWK or of a one-key JWK set) and each peer's public `content` (single-line JWK
//! JSON or base64 of it). Both are parsed with the strict JSON reader and validated completely before
//! use: `kty` EC, `crv` P-256, `alg` ES256 (required), coordinates of exactly 32 bytes that form a
//! point on the curve, and for the generator key a private scalar that really belongs to that point.
//! Errors are [`KeyError`] values that name what is wrong and never contain key material. Turning
//! keys into signers and verifiers, and deciding what is a warning, belongs to the callers.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::printable::{EXCERPT_CHARS, excerpt, json_type};
use crate::strict_json::{self, StrictJsonError};

/// The only JWS algorithm svcid signs or accepts.
pub const ES256: &str = "ES256";
/// The only key type accepted.
const EC: &str = "EC";
/// The only curve accepted.
const P256: &str = "P-256";
/// Length of a P-256 coordinate or private scalar in bytes.
const FIELD_BYTES: usize = 32;

/// Strict base64url without padding, refusing non-zero trailing bits: the encoding JWK members and
/// JWS segments must use, so that every value has exactly one spelling.
pub(crate) const BASE64URL_STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Lenient decoders for configuration values, which people paste from many tools: padding optional.
const BASE64_STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64_URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a key was refused. Every variant is a distinct, human-readable reason; none carries key
/// material (only member names, short escaped excerpts of `kty`/`crv`/`alg`/`use`, and lengths).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The value is not base64 (standard or URL-safe).
    #[error("not valid base64{}", if *.looks_like_json { " (it looks like raw JSON: base64-encode the JWK)" } else { "" })]
    NotBase64 {
        /// The value starts with `{`: the usual mistake of pasting the JWK without encoding it.
        looks_like_json: bool,
    },
    /// Base64 of the beginning of a JWK only: the value was cut short (copied in part, or a
    /// line break that did not continue it).
    #[error(
        "the value looks cut off: it is base64 of the start of a JWK, not of a complete one (the JSON stops after {decoded} characters)"
    )]
    CutOff {
        /// How many characters the incomplete JSON has (never the text itself).
        decoded: usize,
    },
    /// A `content` value that is neither JSON (starting with `{`) nor base64 of it.
    #[error("neither single-line JWK JSON nor base64 of it")]
    NotJsonOrBase64,
    /// The text is not strict JSON (bad syntax, duplicate member, invalid UTF-8, too deep).
    #[error("not valid JSON: {detail}")]
    NotJson {
        /// What is wrong, with line and column; never the text itself.
        detail: StrictJsonError,
        /// 1-based column of a syntax error (0 when the problem has no position).
        near: usize,
    },
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A JWK set whose `keys` member is not an array of objects.
    #[error("a JWK set's \"keys\" must be an array holding one key")]
    KeySetMalformed,
    /// A JWK set holding zero or several keys: which one is meant would be a guess.
    #[error("the JWK set holds {count} keys; exactly one is required")]
    KeySetNotSingle {
        /// How many keys the set holds.
        count: usize,
    },
    /// A required member is absent.
    #[error("member \"{member}\" is missing")]
    MissingMember {
        /// The absent member's name.
        member: &'static str,
    },
    /// A member that must be a string is some other JSON type.
    #[error("member \"{member}\" must be a string, not {found}")]
    MemberNotString {
        /// The member's name.
        member: &'static str,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// `kty` is not `EC`.
    #[error("kty is \"{kty}\"; only EC (P-256) keys are accepted")]
    WrongKeyType {
        /// The `kty` found (shortened, escaped).
        kty: String,
    },
    /// `crv` is not `P-256`.
    #[error("crv is \"{crv}\"; only P-256 is accepted")]
    WrongCurve {
        /// The `crv` found (shortened, escaped).
        crv: String,
    },
    /// `alg` is not `ES256`.
    #[error("alg is \"{alg}\"; only ES256 is accepted")]
    WrongAlgorithm {
        /// The `alg` found (shortened, escaped).
        alg: String,
    },
    /// `use` is present and is not `sig`.
    #[error("use is \"{key_use}\"; a token key must have use \"sig\" or none")]
    WrongUse {
        /// The `use` found (shortened, escaped).
        key_use: String,
    },
    /// `kid` is present but empty.
    #[error("kid is empty")]
    EmptyKid,
    /// A coordinate or the private scalar is not strict base64url without padding.
    #[error("member \"{member}\" is not base64url without padding")]
    NotBase64Url {
        /// The member's name (`x`, `y` or `d`).
        member: &'static str,
    },
    /// A coordinate or the private scalar has the wrong length (e.g. a P-384 key labelled P-256).
    #[error("member \"{member}\" is {len} bytes; P-256 needs {FIELD_BYTES}")]
    WrongLength {
        /// The member's name (`x`, `y` or `d`).
        member: &'static str,
        /// The decoded length found.
        len: usize,
    },
    /// `x`/`y` do not form a point on P-256.
    #[error("x/y are not a point on the P-256 curve")]
    NotOnCurve,
    /// A generator key without its private part `d`.
    #[error("member \"d\" (the private key) is missing: this is a public key, not a keypair")]
    MissingPrivatePart,
    /// `d` is not a valid P-256 private scalar (zero or not below the group order).
    #[error("member \"d\" is not a valid P-256 private key")]
    InvalidPrivatePart,
    /// `d` belongs to a different public key than `x`/`y`.
    #[error("the private key \"d\" does not belong to the public key x/y")]
    PrivateKeyMismatch,
    /// [`thumbprint`] of a key type RFC 7638 does not define members for.
    #[error("no RFC 7638 thumbprint is defined for kty \"{kty}\"")]
    UnsupportedThumbprintKeyType {
        /// The `kty` found (shortened, escaped).
        kty: String,
    },
    /// OpenSSL (through josekit) refused a key that p256 accepted.
    #[error("the key could not be prepared for signing or verifying: {detail}")]
    Crypto {
        /// josekit's description (it never includes key bytes).
        detail: String,
    },
}

impl KeyError {
    fn not_json(detail: StrictJsonError) -> Self {
        match detail {
            StrictJsonError::NotAnObject => Self::NotAnObject,
            detail => Self::NotJson {
                near: detail.column().unwrap_or(0),
                detail,
            },
        }
    }
}

/// What loading a peer's `content` noticed that is not an error by itself but must be reported.
#[derive(Clone, Debug, Default)]
pub struct ContentFindings {
    /// `content` holds a private key `d`: a peer's secret was shared (docs/security.md C3). The key
    /// still loads (the public half is usable), but the caller must warn loudly.
    pub private_part: bool,
    /// `content` was base64 of the JSON rather than the JSON itself (both are accepted).
    pub was_base64: bool,
}

/// A validated P-256 / ES256 public key, as configured for a peer or derived from a generator key.
#[derive(Clone)]
pub struct PublicKey {
    /// The `kid` written inside the JWK, if any (it need not equal the configured fingerprint).
    kid: Option<String>,
    /// `x` coordinate, base64url without padding (canonical: re-encoding gives the same text).
    x: String,
    /// `y` coordinate, base64url without padding.
    y: String,
    /// The point itself, checked to lie on the curve.
    point: p256::PublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("thumbprint", &self.thumbprint())
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.point == other.point
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// Loads a peer's `content`: single-line JWK JSON, or base64 (standard or URL-safe) of it.
    ///
    /// Validates `kty` EC, `crv` P-256, `alg` ES256 (required: the token's `alg` must equal the
    /// key's), `use` sig when present, a non-empty string `kid` when present, and a point on the
    /// curve. A `d` member does not fail the load: it is reported in [`ContentFindings::private_part`]
    /// so the caller can warn (docs/security.md C3); its value is not even decoded.
    pub fn from_content(content: &str) -> Result<(PublicKey, ContentFindings), KeyError> {
        let trimmed = content.trim();
        let mut findings = ContentFindings::default();
        let object = if trimmed.starts_with('{') {
            strict_json::parse_object(trimmed.as_bytes()).map_err(KeyError::not_json)?
        } else {
            let decoded = decode_config_base64(trimmed).map_err(|_| KeyError::NotJsonOrBase64)?;
            findings.was_base64 = true;
            strict_json::parse_object(&decoded).map_err(KeyError::not_json)?
        };
        let key = Self::from_jwk(&object, false)?;
        findings.private_part = object.contains_key("d");
        Ok((key, findings))
    }

    /// Validates the public members of an EC JWK object (see [`PublicKey::from_content`]).
    fn from_jwk(object: &Map<String, Value>, require_kid: bool) -> Result<PublicKey, KeyError> {
        let kty = required_string(object, "kty")?;
        if kty != EC {
            return Err(KeyError::WrongKeyType {
                kty: excerpt(kty, EXCERPT_CHARS),
            });
        }
        let crv = required_string(object, "crv")?;
        if crv != P256 {
            return Err(KeyError::WrongCurve {
                crv: excerpt(crv, EXCERPT_CHARS),
            });
        }
        let alg = required_string(object, "alg")?;
        if alg != ES256 {
            return Err(KeyError::WrongAlgorithm {
                alg: excerpt(alg, EXCERPT_CHARS),
            });
        }
        if let Some(key_use) = optional_string(object, "use")?
            && key_use != "sig"
        {
            return Err(KeyError::WrongUse {
                key_use: excerpt(key_use, EXCERPT_CHARS),
            });
        }
        let kid = match optional_string(object, "kid")? {
            Some("") => return Err(KeyError::EmptyKid),
            Some(kid) => Some(kid.to_owned()),
            None if require_kid => return Err(KeyError::MissingMember { member: "kid" }),
            None => None,
        };
        let x = coordinate(object, "x")?;
        let y = coordinate(object, "y")?;
        let point = p256_point(&x, &y).ok_or(KeyError::NotOnCurve)?;
        Ok(Self::from_point(point, kid))
    }

    fn from_point(point: p256::PublicKey, kid: Option<String>) -> PublicKey {
        let encoded = point.to_encoded_point(false);
        // An uncompressed encoding of a valid public key always has both coordinates.
        let (x, y) = match (encoded.x(), encoded.y()) {
            (Some(x), Some(y)) => (BASE64URL_STRICT.encode(x), BASE64URL_STRICT.encode(y)),
            _ => (String::new(), String::new()),
        };
        PublicKey { kid, x, y, point }
    }

    /// The `kid` written inside the JWK, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url without padding: what `svcid keygen` uses as kid.
    pub fn thumbprint(&self) -> String {
        digest(&format!(
            r#"{{"crv":"{P256}","kty":"{EC}","x":"{}","y":"{}"}}"#,
            self.x, self.y
        ))
    }

    /// The single-line public JWK for a peer's `content` property (no `d`, no `use`), members in
    /// the order the manual shows.
    pub fn content_json(&self) -> String {
        let kid = match &self.kid {
            Some(kid) => format!(r#""kid":{},"#, Value::from(kid.as_str())),
            None => String::new(),
        };
        format!(
            r#"{{"kty":"{EC}","crv":"{P256}",{kid}"x":"{}","y":"{}","alg":"{ES256}"}}"#,
            self.x, self.y
        )
    }

    /// The key's algorithm: always `ES256`, the only one accepted at load.
    pub fn alg(&self) -> &str {
        ES256
    }

    /// The validated curve point, for building verifiers.
    pub(crate) fn point(&self) -> &p256::PublicKey {
        &self.point
    }
}

/// This module's signing key: a P-256 keypair with `alg` ES256 and a `kid`.
///
/// The private scalar lives in a [`p256::SecretKey`], which zeroizes itself on drop; JSON forms of
/// the key are built in zeroizing buffers. `Debug` prints only the `kid`.
pub struct GeneratorKey {
    /// The private scalar `d`.
    secret: p256::SecretKey,
    /// The public half, carrying the same `kid`.
    public: PublicKey,
    /// The key id put in every token header; peers configure it as the `fingerprint`.
    kid: String,
}

impl fmt::Debug for GeneratorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratorKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Dropping a key wipes its private scalar: `secret` is a [`p256::SecretKey`], which zeroizes on
/// drop; `public` and `kid` are public. The marker lets callers require the property.
impl zeroize::ZeroizeOnDrop for GeneratorKey {}

impl GeneratorKey {
    /// A fresh P-256 key (operating system randomness) whose `kid` is its RFC 7638 thumbprint.
    pub fn generate() -> GeneratorKey {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let public = PublicKey::from_point(secret.public_key(), None);
        let kid = public.thumbprint();
        GeneratorKey {
            secret,
            public: PublicKey {
                kid: Some(kid.clone()),
                ..public
            },
            kid,
        }
    }

    /// Loads the generator key property: base64 (standard or URL-safe, padding optional, whitespace
    /// and line breaks ignored) of a JWK object or of a JWK set `{"keys":[<one key>]}`.
    ///
    /// Validates `kty` EC, `crv` P-256, `alg` ES256 (required), `use` sig when present, `kid`
    /// (required, non-empty), `d` present, `x`/`y` on the curve and `d` matching `x`/`y`.
    pub fn from_base64(value: &str) -> Result<GeneratorKey, KeyError> {
        let decoded = match decode_config_base64(value) {
            Ok(decoded) => decoded,
            Err(_) => {
                return Err(cut_off(value).unwrap_or(KeyError::NotBase64 {
                    looks_like_json: value.trim_start().starts_with('{'),
                }));
            }
        };
        let document = strict_json::parse_object(&decoded).map_err(|error| {
            if error.ends_early() && decoded.starts_with(b"{") {
                KeyError::CutOff {
                    decoded: decoded.len(),
                }
            } else {
                KeyError::not_json(error)
            }
        })?;
        let object = match document.get("keys") {
            None => &document,
            Some(Value::Array(keys)) => match keys.as_slice() {
                [Value::Object(only)] => only,
                [_] => return Err(KeyError::KeySetMalformed),
                _ => return Err(KeyError::KeySetNotSingle { count: keys.len() }),
            },
            Some(_) => return Err(KeyError::KeySetMalformed),
        };
        let public = PublicKey::from_jwk(object, true)?;
        let d = match object.get("d") {
            None => return Err(KeyError::MissingPrivatePart),
            Some(Value::String(d)) => d,
            Some(other) => {
                return Err(KeyError::MemberNotString {
                    member: "d",
                    found: json_type(other),
                });
            }
        };
        let d = Zeroizing::new(
            BASE64URL_STRICT
                .decode(d)
                .map_err(|_| KeyError::NotBase64Url { member: "d" })?,
        );
        if d.len() != FIELD_BYTES {
            return Err(KeyError::WrongLength {
                member: "d",
                len: d.len(),
            });
        }
        let secret = p256::SecretKey::from_slice(&d).map_err(|_| KeyError::InvalidPrivatePart)?;
        if secret.public_key() != *public.point() {
            return Err(KeyError::PrivateKeyMismatch);
        }
        let kid = public.kid.clone().unwrap_or_default();
        Ok(GeneratorKey {
            secret,
            public,
            kid,
        })
    }

    /// Standard base64 of the compact keypair JSON, on one line: the generator key property value.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.keypair_json(false).as_bytes())
    }

    /// The keypair as mkjwk shows it under "Public and Private Keypair" (kty, d, use, crv, kid, x,
    /// y, alg), indented. It contains the private key: for the key tool's output only.
    pub fn keypair_json_pretty(&self) -> String {
        self.keypair_json(true).to_string()
    }

    fn keypair_json(&self, pretty: bool) -> Zeroizing<String> {
        let d = Zeroizing::new(BASE64URL_STRICT.encode(self.secret.to_bytes()));
        let kid = Value::from(self.kid.as_str()).to_string();
        let members: [(&str, &str); 8] = [
            ("kty", "\"EC\""),
            ("d", ""),
            ("use", "\"sig\""),
            ("crv", "\"P-256\""),
            ("kid", &kid),
            ("x", ""),
            ("y", ""),
            ("alg", "\"ES256\""),
        ];
        let (open, separator, colon, close) = if pretty {
            ("{\n    ", ",\n    ", ": ", "\n}")
        } else {
            ("{", ",", ":", "}")
        };
        let mut out = Zeroizing::new(String::with_capacity(256));
        out.push_str(open);
        for (index, (name, value)) in members.iter().enumerate() {
            if index > 0 {
                out.push_str(separator);
            }
            out.push('"');
            out.push_str(name);
            out.push('"');
            out.push_str(colon);
            // Base64url text needs no JSON escaping; the rest were rendered above.
            let raw = match *name {
                "d" => d.as_str(),
                "x" => self.public.x.as_str(),
                "y" => self.public.y.as_str(),
                _ => {
                    out.push_str(value);
                    continue;
                }
            };
            out.push('"');
            out.push_str(raw);
            out.push('"');
        }
        out.push_str(close);
        out
    }

    /// The key id put in token headers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, with the same `kid` and `alg`.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// The private scalar, for building the signer.
    pub(crate) fn secret(&self) -> &p256::SecretKey {
        &self.secret
    }
}

/// RFC 7638 thumbprint (SHA-256, base64url without padding) of a JWK JSON object.
///
/// Uses exactly the required members of its `kty` (EC: crv, kty, x, y; RSA: e, kty, n; OKP: crv,
/// kty, x; oct: k, kty) in lexicographic order, with no whitespace, whatever else the object holds.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, KeyError> {
    let kty = required_string(jwk, "kty")?;
    let members: &[&'static str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        "oct" => &["k", "kty"],
        other => {
            return Err(KeyError::UnsupportedThumbprintKeyType {
                kty: excerpt(other, EXCERPT_CHARS),
            });
        }
    };
    let mut canonical = String::from("{");
    for (index, member) in members.iter().enumerate() {
        if index > 0 {
            canonical.push(',');
        }
        let value = required_string(jwk, member)?;
        // serde_json's string rendering is RFC 8259 JSON with minimal escaping, as RFC 7638 asks.
        canonical.push_str(&format!("\"{member}\":{}", Value::from(value)));
    }
    canonical.push('}');
    Ok(digest(&canonical))
}

fn digest(canonical: &str) -> String {
    BASE64URL_STRICT.encode(Sha256::digest(canonical.as_bytes()))
}

/// Decodes a base64 configuration value: whitespace anywhere is ignored, padding is optional, and the
/// alphabet (standard or URL-safe) is recognised from the text.
fn decode_config_base64(value: &str) -> Result<Zeroizing<Vec<u8>>, base64::DecodeError> {
    let compact: Zeroizing<String> =
        Zeroizing::new(value.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let engine = if compact.contains(['-', '_']) {
        &BASE64_URL_LENIENT
    } else {
        &BASE64_STANDARD_LENIENT
    };
    if compact.is_empty() {
        return Err(base64::DecodeError::InvalidLength(0));
    }
    engine.decode(compact.as_bytes()).map(Zeroizing::new)
}

/// [`KeyError::CutOff`] when `value`, not base64 as a whole, is base64 of the start of a JSON
/// object once its last incomplete group of four characters is dropped: a value cut short at a
/// length base64 cannot have, or whose last character carries bits a complete value would not.
fn cut_off(value: &str) -> Option<KeyError> {
    let compact: Zeroizing<String> =
        Zeroizing::new(value.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let whole = compact.len() / 4 * 4;
    if whole == 0 || whole == compact.len() {
        return None;
    }
    let decoded = decode_config_base64(compact.get(..whole)?).ok()?;
    let ends_early = decoded.starts_with(b"{")
        && strict_json::parse_object(&decoded).is_err_and(|e| e.ends_early());
    ends_early.then_some(KeyError::CutOff {
        decoded: decoded.len(),
    })
}

fn required_string<'a>(
    object: &'a Map<String, Value>,
    member: &'static str,
) -> Result<&'a str, KeyError> {
    optional_string(object, member)?.ok_or(KeyError::MissingMember { member })
}

fn optional_string<'a>(
    object: &'a Map<String, Value>,
    member: &'static str,
) -> Result<Option<&'a str>, KeyError> {
    string_member(object, member).map_err(|found| KeyError::MemberNotString { member, found })
}

/// A JWK's `member` when present: its text, or (`Err`) the JSON type found instead of a string.
/// Shared by the peers' keys here and people's keys (`user::keys`), each wrapping the error its
/// way.
pub(crate) fn string_member<'a>(
    object: &'a Map<String, Value>,
    member: &str,
) -> Result<Option<&'a str>, &'static str> {
    match object.get(member) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(json_type(other)),
    }
}

/// The P-256 public key whose affine coordinates are `x` and `y` (32 bytes each, big-endian, as
/// a JWK's decoded `x` and `y`); `None` when they are not a point on the curve.
pub(crate) fn p256_point(x: &[u8], y: &[u8]) -> Option<p256::PublicKey> {
    if x.len() != FIELD_BYTES || y.len() != FIELD_BYTES {
        return None;
    }
    let mut sec1 = [0u8; 1 + 2 * FIELD_BYTES];
    sec1[0] = 0x04; // uncompressed point
    sec1[1..=FIELD_BYTES].copy_from_slice(x);
    sec1[1 + FIELD_BYTES..].copy_from_slice(y);
    p256::PublicKey::from_sec1_bytes(&sec1).ok()
}

fn coordinate(
    object: &Map<String, Value>,
    member: &'static str,
) -> Result<[u8; FIELD_BYTES], KeyError> {
    let text = required_string(object, member)?;
    let bytes = BASE64URL_STRICT
        .decode(text)
        .map_err(|_| KeyError::NotBase64Url { member })?;
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| KeyError::WrongLength {
            member,
            len: bytes.len(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    /// The manual's first `content` example: quotes missing before kty and crv.
    const MANUAL_FIRST: &str = r#"{kty":"EC",crv":"P-256","kid":"vcjAli5Xm_pvtE8ItBkd3aT_FWi_23WieMf5f-lppBI","x":"Hbs53V5zC-1DjNf5RtJ1bNHlxvzM5jST7J1ADVePV9g","y":"4pVfzrF7FMHt_Xx2FgLauvLZuJqbpL9crdOxvTXWb64","alg":"ES256"}"#;
    /// The manual's second `content` example; its fingerprint in the manual is kHSz…, its kid KBv0….
    const MANUAL_SECOND: &str = r#"{"kty":"EC","crv":"P-256","kid":"KBv0lrEO88ISAnmwXn6Y5jYjG9TvemuZA0yQlq7QpG0","x":"KsJKpmDA03Js3o8JWWiH5tyUfv80kaJy60_7BOrwmKo","y":"7kfcrUzl95MQEZnCjhWA0dIIhzK-jvdaAtGRAuBzZbk","alg":"ES256"}"#;

    fn object(json: &str) -> Map<String, Value> {
        strict_json::parse_object(json.as_bytes()).unwrap()
    }

    /// A generated keypair as a JSON object, to be broken by each test.
    fn keypair_object(key: &GeneratorKey) -> Map<String, Value> {
        object(&key.keypair_json(false))
    }

    fn load(object: &Map<String, Value>) -> Result<GeneratorKey, KeyError> {
        GeneratorKey::from_base64(&STANDARD.encode(Value::Object(object.clone()).to_string()))
    }

    #[test]
    fn rfc7638_rsa_example() {
        let jwk = object(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        );
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn thumbprint_refuses_unknown_types_and_missing_members() {
        assert!(matches!(
            thumbprint(&object(r#"{"kty":"XYZ"}"#)),
            Err(KeyError::UnsupportedThumbprintKeyType { .. })
        ));
        assert!(matches!(
            thumbprint(&object(r#"{"kty":"EC","crv":"P-256","x":"AA"}"#)),
            Err(KeyError::MissingMember { member: "y" })
        ));
        assert!(thumbprint(&object(r#"{"kty":"oct","k":"AAEC"}"#)).is_ok());
    }

    #[test]
    fn generated_key_kid_is_its_thumbprint_and_the_generic_function_agrees() {
        let key = GeneratorKey::generate();
        assert_eq!(key.kid(), key.public_key().thumbprint());
        assert_eq!(thumbprint(&keypair_object(&key)).unwrap(), key.kid());
        assert_eq!(key.public_key().alg(), "ES256");
        assert_eq!(key.public_key().kid(), Some(key.kid()));
    }

    #[test]
    fn generator_key_round_trips_through_every_accepted_form() {
        let key = GeneratorKey::generate();
        let json = key.keypair_json(false);
        let set = format!(r#"{{"keys":[{}]}}"#, json.as_str());
        let standard = key.to_base64();
        let with_line_breaks = standard
            .as_bytes()
            .chunks(60)
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n");
        let forms = [
            standard.clone(),
            STANDARD_NO_PAD.encode(json.as_bytes()),
            URL_SAFE.encode(json.as_bytes()),
            URL_SAFE_NO_PAD.encode(json.as_bytes()),
            format!("  {with_line_breaks}\n"),
            STANDARD.encode(set.as_bytes()),
            URL_SAFE_NO_PAD.encode(set.as_bytes()),
            STANDARD.encode(key.keypair_json_pretty()),
        ];
        for form in forms {
            let loaded = GeneratorKey::from_base64(&form).unwrap();
            assert_eq!(loaded.kid(), key.kid());
            assert_eq!(loaded.public_key(), key.public_key());
            assert_eq!(loaded.to_base64(), standard);
        }
    }

    #[test]
    fn keypair_json_has_mkjwk_member_order() {
        let key = GeneratorKey::generate();
        let pretty = key.keypair_json_pretty();
        let names: Vec<&str> = pretty
            .lines()
            .filter_map(|line| line.trim().strip_prefix('"'))
            .filter_map(|line| line.split('"').next())
            .collect();
        assert_eq!(names, ["kty", "d", "use", "crv", "kid", "x", "y", "alg"]);
        assert!(!key.to_base64().contains('\n'));
    }

    #[test]
    fn a_generator_key_cut_short_anywhere_is_said_to_be_cut_off() {
        let key = GeneratorKey::generate();
        let whole = key.to_base64();
        let unpadded = whole.trim_end_matches('=');
        for cut in 4..unpadded.len() {
            let error = GeneratorKey::from_base64(&unpadded[..cut]).unwrap_err();
            assert!(
                matches!(error, KeyError::CutOff { .. }),
                "cut at {cut} of {}: {error}",
                unpadded.len()
            );
            assert!(error.to_string().contains("looks cut off"), "{error}");
        }
        // Dropping only the padding is no cut.
        assert_eq!(
            GeneratorKey::from_base64(unpadded).unwrap().kid(),
            key.kid()
        );
        // Raw JSON and text that is no base64 at all keep their own reasons.
        assert!(matches!(
            GeneratorKey::from_base64(r#"{"kty":"EC"}"#),
            Err(KeyError::NotBase64 {
                looks_like_json: true
            })
        ));
        assert!(matches!(
            GeneratorKey::from_base64(&STANDARD.encode(r#"{kty":"EC"}"#)),
            Err(KeyError::NotJson { .. })
        ));
    }

    #[test]
    fn a_set_of_two_keys_or_none_is_refused() {
        let (a, b) = (GeneratorKey::generate(), GeneratorKey::generate());
        let two = format!(
            r#"{{"keys":[{},{}]}}"#,
            a.keypair_json(false).as_str(),
            b.keypair_json(false).as_str()
        );
        assert!(matches!(
            GeneratorKey::from_base64(&STANDARD.encode(two)),
            Err(KeyError::KeySetNotSingle { count: 2 })
        ));
        assert!(matches!(
            GeneratorKey::from_base64(&STANDARD.encode(r#"{"keys":[]}"#)),
            Err(KeyError::KeySetNotSingle { count: 0 })
        ));
        assert!(matches!(
            GeneratorKey::from_base64(&STANDARD.encode(r#"{"keys":{}}"#)),
            Err(KeyError::KeySetMalformed)
        ));
    }

    #[test]
    fn generator_key_errors_c5() {
        assert!(matches!(
            GeneratorKey::from_base64("not base64 at all!"),
            Err(KeyError::NotBase64 {
                looks_like_json: false
            })
        ));
        assert!(matches!(
            GeneratorKey::from_base64(r#"{"kty":"EC"}"#),
            Err(KeyError::NotBase64 {
                looks_like_json: true
            })
        ));
        assert!(matches!(
            GeneratorKey::from_base64(""),
            Err(KeyError::NotBase64 { .. })
        ));
        assert!(matches!(
            GeneratorKey::from_base64(&STANDARD.encode("not json")),
            Err(KeyError::NotJson { .. })
        ));
        let key = GeneratorKey::generate();
        for (member, expected) in [("d", "MissingPrivatePart"), ("alg", "alg"), ("kid", "kid")] {
            let mut broken = keypair_object(&key);
            broken.remove(member);
            let error = load(&broken).unwrap_err();
            match (expected, &error) {
                ("MissingPrivatePart", KeyError::MissingPrivatePart) => {}
                (name, KeyError::MissingMember { member }) if *member == name => {}
                _ => panic!("{member}: unexpected {error:?}"),
            }
        }
        let mut empty_kid = keypair_object(&key);
        empty_kid.insert("kid".into(), Value::from(""));
        assert!(matches!(load(&empty_kid), Err(KeyError::EmptyKid)));
    }

    #[test]
    fn d_not_matching_the_public_key_is_refused() {
        let (a, b) = (GeneratorKey::generate(), GeneratorKey::generate());
        let mut mixed = keypair_object(&a);
        mixed.insert("d".into(), keypair_object(&b)["d"].clone());
        assert!(matches!(load(&mixed), Err(KeyError::PrivateKeyMismatch)));
        let mut zero = keypair_object(&a);
        zero.insert("d".into(), Value::from(URL_SAFE_NO_PAD.encode([0u8; 32])));
        assert!(matches!(load(&zero), Err(KeyError::InvalidPrivatePart)));
        let mut short = keypair_object(&a);
        short.insert("d".into(), Value::from(URL_SAFE_NO_PAD.encode([1u8; 24])));
        assert!(matches!(
            load(&short),
            Err(KeyError::WrongLength {
                member: "d",
                len: 24
            })
        ));
    }

    #[test]
    fn key_shape_errors_c4() {
        let key = GeneratorKey::generate();
        type Case = (&'static str, Value, fn(&KeyError) -> bool);
        let cases: [Case; 7] = [
            (
                "kty",
                Value::from("RSA"),
                |e| matches!(e, KeyError::WrongKeyType { kty } if kty == "RSA"),
            ),
            ("crv", Value::from("P-384"), |e| {
                matches!(e, KeyError::WrongCurve { .. })
            }),
            (
                "alg",
                Value::from("ES384"),
                |e| matches!(e, KeyError::WrongAlgorithm { alg } if alg == "ES384"),
            ),
            ("alg", Value::from(256), |e| {
                matches!(e, KeyError::MemberNotString { member: "alg", .. })
            }),
            ("use", Value::from("enc"), |e| {
                matches!(e, KeyError::WrongUse { .. })
            }),
            // A P-384 key labelled P-256: 48-byte coordinates.
            ("x", Value::from(URL_SAFE_NO_PAD.encode([7u8; 48])), |e| {
                matches!(
                    e,
                    KeyError::WrongLength {
                        member: "x",
                        len: 48
                    }
                )
            }),
            ("y", Value::from("not+base64url="), |e| {
                matches!(e, KeyError::NotBase64Url { member: "y" })
            }),
        ];
        for (member, value, expected) in cases {
            let mut broken = keypair_object(&key);
            broken.insert(member.into(), value);
            let error = load(&broken).unwrap_err();
            assert!(expected(&error), "{member}: {error:?}");
            // Same validation for peer content.
            broken.remove("d");
            let error = PublicKey::from_content(&Value::Object(broken).to_string()).unwrap_err();
            assert!(expected(&error), "{member} in content: {error:?}");
        }
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let key = GeneratorKey::generate();
        let mut public = object(&key.public_key().content_json());
        let mut y = URL_SAFE_NO_PAD
            .decode(public["y"].as_str().unwrap())
            .unwrap();
        y[31] ^= 1;
        public.insert("y".into(), Value::from(URL_SAFE_NO_PAD.encode(&y)));
        assert!(matches!(
            PublicKey::from_content(&Value::Object(public).to_string()),
            Err(KeyError::NotOnCurve)
        ));
    }

    #[test]
    fn manual_first_example_is_not_json() {
        let error = PublicKey::from_content(MANUAL_FIRST).unwrap_err();
        assert!(
            matches!(error, KeyError::NotJson { near: 2, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("column 2"), "{error}");
    }

    #[test]
    fn manual_second_example_loads_but_its_kid_is_not_its_thumbprint() {
        let (key, findings) = PublicKey::from_content(MANUAL_SECOND).unwrap();
        assert_eq!(
            key.kid(),
            Some("KBv0lrEO88ISAnmwXn6Y5jYjG9TvemuZA0yQlq7QpG0")
        );
        assert_ne!(
            key.thumbprint(),
            "KBv0lrEO88ISAnmwXn6Y5jYjG9TvemuZA0yQlq7QpG0"
        );
        assert_ne!(
            key.thumbprint(),
            "kHSzWkPiZKfSKAgdIkCdXfAAKs7x23jszQLkTOzQTEM"
        );
        assert!(!findings.private_part && !findings.was_base64);
        // content_json reproduces the manual's own line exactly.
        assert_eq!(key.content_json(), MANUAL_SECOND);
        // And base64 of it is accepted too.
        let (again, findings) = PublicKey::from_content(&STANDARD.encode(MANUAL_SECOND)).unwrap();
        assert!(findings.was_base64);
        assert_eq!(again, key);
    }

    #[test]
    fn content_without_alg_or_with_garbage_is_refused() {
        let mut public = object(MANUAL_SECOND);
        public.remove("alg");
        assert!(matches!(
            PublicKey::from_content(&Value::Object(public).to_string()),
            Err(KeyError::MissingMember { member: "alg" })
        ));
        assert!(matches!(
            PublicKey::from_content("%%%"),
            Err(KeyError::NotJsonOrBase64)
        ));
        assert!(matches!(
            PublicKey::from_content("[1,2]"),
            Err(KeyError::NotJsonOrBase64)
        ));
        assert!(matches!(
            PublicKey::from_content(&STANDARD.encode("[1,2]")),
            Err(KeyError::NotAnObject)
        ));
        let duplicate =
            MANUAL_SECOND.replacen(r#""alg":"ES256""#, r#""alg":"ES256","alg":"ES256""#, 1);
        assert!(matches!(
            PublicKey::from_content(&duplicate),
            Err(KeyError::NotJson { .. })
        ));
    }

    #[test]
    fn content_holding_d_is_reported_not_refused_c3() {
        let key = GeneratorKey::generate();
        let (public, findings) = PublicKey::from_content(&key.keypair_json(false)).unwrap();
        assert!(findings.private_part);
        assert_eq!(public, key.public_key());
        assert!(!public.content_json().contains("\"d\""));
        assert!(!format!("{public:?}").contains("\"d\""));
    }

    #[test]
    fn content_json_round_trips_and_has_no_private_part() {
        let key = GeneratorKey::generate();
        let content = key.public_key().content_json();
        assert!(!content.contains("\"d\"") && !content.contains("\"use\""));
        let (public, _) = PublicKey::from_content(&content).unwrap();
        assert_eq!(public, key.public_key());
        assert_eq!(public.thumbprint(), key.kid());
    }

    #[test]
    fn private_scalars_are_wiped_on_drop() {
        // Compile-time proof that the key and the p256 types that may carry `d` (the secret key,
        // a signing key, a PKCS#8 document) zeroize it when dropped.
        fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroized_on_drop::<GeneratorKey>();
        zeroized_on_drop::<p256::SecretKey>();
        zeroized_on_drop::<p256::ecdsa::SigningKey>();
        zeroized_on_drop::<p256::pkcs8::SecretDocument>();
    }

    #[test]
    fn debug_of_a_generator_key_shows_only_the_kid() {
        let key = GeneratorKey::generate();
        let d = keypair_object(&key)["d"].as_str().unwrap().to_owned();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.kid()));
        assert!(!debug.contains(&d));
        assert!(!debug.contains("\"d\"") && !debug.contains("secret"));
    }

    #[test]
    fn errors_never_echo_the_private_key() {
        let key = GeneratorKey::generate();
        let d = keypair_object(&key)["d"].as_str().unwrap().to_owned();
        let mut with_bad_json = key.keypair_json(false).to_string();
        with_bad_json.push('x');
        let error = GeneratorKey::from_base64(&STANDARD.encode(&with_bad_json)).unwrap_err();
        assert!(matches!(error, KeyError::NotJson { .. }));
        assert!(!error.to_string().contains(&d), "{error}");
        assert!(!format!("{error:?}").contains(&d), "{error:?}");
    }
}
