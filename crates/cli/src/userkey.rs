//! Keys for people's tokens: what an identity provider, or the MicroProfile JWT guide's three
//! `openssl` commands, would give a user. An RSA (2048, 3072 or 4096 bits) or EC P-256 key pair,
//! its PEM files (`privateKey.pem` PKCS#8, `publicKey.pem` SPKI) and its JWK forms as a web JWK
//! generator offers them (`kty`, `use=sig`, `alg` RS256/ES256, `kid` = RFC 7638 thumbprint).
//!
//! Only the CLI uses these, so they live here; the daemons only ever read public keys.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::{Map, Value};
use svcid_identity::jwk::GeneratorKey;

/// Key type of `svcid keygen --kty`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kty {
    /// Elliptic curve P-256, signing ES256.
    #[value(name = "EC", alias = "ec")]
    Ec,
    /// RSA, signing RS256.
    #[value(name = "RSA", alias = "rsa")]
    Rsa,
}

/// RSA sizes `--bits` accepts (what MicroProfile JWT verifiers accept).
pub const RSA_BITS: [u32; 3] = [2048, 3072, 4096];

/// The file name of the private key `--pem DIR` writes (the guide's name).
pub const PRIVATE_PEM: &str = "privateKey.pem";
/// The file name of the public key `--pem DIR` writes (the guide's name).
pub const PUBLIC_PEM: &str = "publicKey.pem";

/// A private key of either type. Its `Debug` shows only the type and the thumbprint.
pub struct KeyPair {
    pkey: PKey<Private>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("alg", &self.alg())
            .field("kid", &self.thumbprint().unwrap_or_default())
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A big number as JWK wants it: big-endian, no leading zeros (at least one byte).
fn b64_bn(n: &openssl::bn::BigNumRef) -> String {
    b64(&n.to_vec())
}

/// A coordinate of P-256: exactly 32 bytes, left-padded.
fn b64_coordinate(n: &openssl::bn::BigNumRef) -> Result<String> {
    Ok(b64(&n.to_vec_padded(32).context(
        "internal: a P-256 coordinate exceeds 32 bytes",
    )?))
}

fn from_b64(value: &Value, name: &str) -> Result<BigNum> {
    let text = value
        .get(name)
        .and_then(Value::as_str)
        .with_context(|| format!("internal: the keypair has no {name}"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .with_context(|| format!("internal: the keypair's {name} is not base64url"))?;
    Ok(BigNum::from_slice(&bytes)?)
}

impl KeyPair {
    /// A fresh RSA key of `bits` (one of [`RSA_BITS`]).
    pub fn generate_rsa(bits: u32) -> Result<KeyPair> {
        if !RSA_BITS.contains(&bits) {
            bail!("--bits {bits}: RSA keys are 2048, 3072 or 4096 bits");
        }
        let rsa = Rsa::generate(bits).context("cannot generate an RSA key")?;
        Ok(KeyPair {
            pkey: PKey::from_rsa(rsa)?,
        })
    }

    /// A fresh EC P-256 key.
    pub fn generate_ec() -> Result<KeyPair> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let ec = EcKey::generate(&group).context("cannot generate an EC key")?;
        Ok(KeyPair {
            pkey: PKey::from_ec_key(ec)?,
        })
    }

    /// The same key as a generator key (so `keygen`'s EC values and its PEM files agree).
    pub fn from_generator(key: &GeneratorKey) -> Result<KeyPair> {
        let keypair: Value = serde_json::from_str(&key.keypair_json_pretty())
            .context("internal: the keypair JSON does not parse")?;
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let (d, x, y) = (
            from_b64(&keypair, "d")?,
            from_b64(&keypair, "x")?,
            from_b64(&keypair, "y")?,
        );
        let public = EcKey::from_public_key_affine_coordinates(&group, &x, &y)?;
        let ec = EcKey::from_private_components(&group, &d, public.public_key())?;
        ec.check_key()
            .context("internal: the generator key is not on P-256")?;
        Ok(KeyPair {
            pkey: PKey::from_ec_key(ec)?,
        })
    }

    /// Reads a private key PEM (PKCS#8 `BEGIN PRIVATE KEY`, or the traditional RSA / EC forms).
    /// A public key, an encrypted key, another key type or an unreadable file is an error naming
    /// the file; the key itself is never echoed.
    pub fn read_private_pem(path: &Path) -> Result<KeyPair> {
        let text = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        if let Ok(pkey) = PKey::private_key_from_pem(&text) {
            let key = KeyPair { pkey };
            key.check_supported(path)?;
            return Ok(key);
        }
        let shown = path.display();
        if PKey::public_key_from_pem(&text).is_ok()
            || openssl::rsa::Rsa::public_key_from_pem_pkcs1(&text).is_ok()
        {
            bail!(
                "{shown} holds a public key; signing needs the private key (the {PRIVATE_PEM} of svcid keygen --pem)"
            );
        }
        if String::from_utf8_lossy(&text).contains("ENCRYPTED") {
            bail!(
                "{shown} holds an encrypted private key; give an unencrypted PKCS#8 PEM (openssl pkcs8 -topk8 -nocrypt)"
            );
        }
        bail!("{shown} is not a PEM private key (expected -----BEGIN PRIVATE KEY-----)")
    }

    fn check_supported(&self, path: &Path) -> Result<()> {
        match self.pkey.id() {
            Id::RSA => {
                let bits = self.pkey.bits();
                if bits < 2048 {
                    bail!(
                        "{} holds a {bits}-bit RSA key; verifiers refuse RSA keys under 2048 bits",
                        path.display()
                    );
                }
                Ok(())
            }
            Id::EC => {
                let ec = self.pkey.ec_key()?;
                if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                    bail!(
                        "{} holds an EC key that is not on P-256; ES256 needs P-256",
                        path.display()
                    );
                }
                Ok(())
            }
            _ => bail!(
                "{} holds neither an RSA nor an EC key; tokens are signed RS256 or ES256",
                path.display()
            ),
        }
    }

    /// `RS256` or `ES256`.
    pub fn alg(&self) -> &'static str {
        if self.pkey.id() == Id::RSA {
            "RS256"
        } else {
            "ES256"
        }
    }

    /// `RSA` or `EC`.
    pub fn kty(&self) -> &'static str {
        if self.pkey.id() == Id::RSA {
            "RSA"
        } else {
            "EC"
        }
    }

    /// Bits of an RSA key; 256 for P-256.
    pub fn bits(&self) -> u32 {
        self.pkey.bits()
    }

    /// The private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), what `openssl pkcs8 -topk8 -nocrypt`
    /// writes.
    pub fn private_pem(&self) -> Result<Vec<u8>> {
        Ok(self.pkey.private_key_to_pem_pkcs8()?)
    }

    /// The public key as SPKI PEM (`BEGIN PUBLIC KEY`), what `openssl rsa -pubout` writes.
    pub fn public_pem(&self) -> Result<Vec<u8>> {
        Ok(self.pkey.public_key_to_pem()?)
    }

    /// The public members of the JWK (`kty` and its key members), no `use`, `alg`, `kid`.
    fn public_members(&self) -> Result<Vec<(&'static str, String)>> {
        if self.pkey.id() == Id::RSA {
            let rsa = self.pkey.rsa()?;
            return Ok(vec![("e", b64_bn(rsa.e())), ("n", b64_bn(rsa.n()))]);
        }
        let ec = self.pkey.ec_key()?;
        let mut ctx = BigNumContext::new()?;
        let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)?;
        Ok(vec![
            ("crv", "P-256".to_owned()),
            ("x", b64_coordinate(&x)?),
            ("y", b64_coordinate(&y)?),
        ])
    }

    /// RFC 7638 SHA-256 thumbprint of the public key: the `kid`.
    pub fn thumbprint(&self) -> Result<String> {
        let mut jwk = Map::new();
        jwk.insert("kty".into(), Value::from(self.kty()));
        for (name, value) in self.public_members()? {
            jwk.insert(name.into(), Value::from(value));
        }
        svcid_identity::jwk::thumbprint(&jwk).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The public JWK: `kty`, `use=sig`, `kid`, `alg` and the key members.
    pub fn public_jwk(&self) -> Result<Value> {
        let mut jwk = Map::new();
        jwk.insert("kty".into(), Value::from(self.kty()));
        jwk.insert("use".into(), Value::from("sig"));
        jwk.insert("kid".into(), Value::from(self.thumbprint()?));
        jwk.insert("alg".into(), Value::from(self.alg()));
        for (name, value) in self.public_members()? {
            jwk.insert(name.into(), Value::from(value));
        }
        Ok(Value::Object(jwk))
    }

    /// The private JWK: the public one plus the private members (`d`, and for RSA the CRT values).
    pub fn private_jwk(&self) -> Result<Value> {
        let mut jwk = self.public_jwk()?;
        let Some(map) = jwk.as_object_mut() else {
            bail!("internal: a JWK is not an object");
        };
        if self.pkey.id() == Id::RSA {
            let rsa = self.pkey.rsa()?;
            map.insert("d".into(), Value::from(b64_bn(rsa.d())));
            let parts = [
                ("p", rsa.p()),
                ("q", rsa.q()),
                ("dp", rsa.dmp1()),
                ("dq", rsa.dmq1()),
                ("qi", rsa.iqmp()),
            ];
            for (name, value) in parts {
                let value =
                    value.with_context(|| format!("internal: the RSA key has no {name}"))?;
                map.insert(name.into(), Value::from(b64_bn(value)));
            }
        } else {
            let ec = self.pkey.ec_key()?;
            map.insert(
                "d".into(),
                Value::from(b64(&ec.private_key().to_vec_padded(32)?)),
            );
        }
        Ok(jwk)
    }

    /// A compact JWS over `header` and `claims` with this key (RS256: PKCS#1 v1.5 SHA-256;
    /// ES256: the 64-byte `r || s` of RFC 7518).
    pub fn sign_compact(&self, header: &Value, claims: &Value) -> Result<String> {
        let input = signing_input(header, claims)?;
        let mut signer = Signer::new(MessageDigest::sha256(), &self.pkey)?;
        signer.update(input.as_bytes())?;
        let der = signer.sign_to_vec()?;
        let signature = if self.pkey.id() == Id::RSA {
            der
        } else {
            let sig = openssl::ecdsa::EcdsaSig::from_der(&der)?;
            let mut raw = sig.r().to_vec_padded(32)?;
            raw.extend(sig.s().to_vec_padded(32)?);
            raw
        };
        Ok(format!("{input}.{}", b64(&signature)))
    }

    /// A compact JWS signed HS256 with `secret`: the algorithm-confusion token of the MicroProfile
    /// JWT tests (the secret being the public key's bytes).
    pub fn sign_hs256(header: &Value, claims: &Value, secret: &[u8]) -> Result<String> {
        let input = signing_input(header, claims)?;
        let key = PKey::hmac(secret)?;
        let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
        signer.update(input.as_bytes())?;
        Ok(format!("{input}.{}", b64(&signer.sign_to_vec()?)))
    }

    /// A fresh key of the same type and size (another signer).
    pub fn unrelated(&self) -> Result<KeyPair> {
        if self.pkey.id() == Id::RSA {
            KeyPair::generate_rsa(self.bits())
        } else {
            KeyPair::generate_ec()
        }
    }
}

fn signing_input(header: &Value, claims: &Value) -> Result<String> {
    Ok(format!(
        "{}.{}",
        b64(&serde_json::to_vec(header)?),
        b64(&serde_json::to_vec(claims)?)
    ))
}

/// Writes `privateKey.pem` (mode 600 on Unix) and `publicKey.pem` into `dir` (created if
/// missing). Refuses to replace either file unless `force`; returns both paths.
pub fn write_pem_files(key: &KeyPair, dir: &Path, force: bool) -> Result<(PathBuf, PathBuf)> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let private = dir.join(PRIVATE_PEM);
    let public = dir.join(PUBLIC_PEM);
    if !force {
        for path in [&private, &public] {
            if path.exists() {
                bail!(
                    "{} exists; give --force to replace it (a replaced private key cannot be recovered)",
                    path.display()
                );
            }
        }
    }
    write_file(&private, &key.private_pem()?, true)?;
    write_file(&public, &key.public_pem()?, false)?;
    Ok((private, public))
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if secret {
        // An existing file keeps its mode on open: narrow it before the key goes in.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {} to mode 600", path.display()))?;
    }
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generator_key_and_pem_are_the_same_key() {
        let generator = GeneratorKey::generate();
        let key = KeyPair::from_generator(&generator).unwrap();
        assert_eq!(key.thumbprint().unwrap(), generator.kid());
        assert_eq!(key.alg(), "ES256");
        let keypair: Value = serde_json::from_str(&generator.keypair_json_pretty()).unwrap();
        let jwk = key.private_jwk().unwrap();
        for name in ["d", "x", "y", "kid"] {
            assert_eq!(jwk[name], keypair[name], "{name}");
        }
    }

    #[test]
    fn rsa_jwk_has_mkjwk_members_and_thumbprint_kid() {
        let key = KeyPair::generate_rsa(2048).unwrap();
        let jwk = key.public_jwk().unwrap();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["kid"], key.thumbprint().unwrap());
        assert!(jwk.get("d").is_none());
        let private = key.private_jwk().unwrap();
        for name in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(private[name].is_string(), "{name}");
        }
        assert!(KeyPair::generate_rsa(1024).is_err());
    }

    #[test]
    fn pem_files_round_trip_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate_rsa(2048).unwrap();
        let (private, public) = write_pem_files(&key, dir.path(), false).unwrap();
        let text = fs::read_to_string(&private).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        assert!(
            fs::read_to_string(&public)
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&private).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = KeyPair::read_private_pem(&private).unwrap();
        assert_eq!(read.thumbprint().unwrap(), key.thumbprint().unwrap());
        let error = write_pem_files(&key, dir.path(), false).unwrap_err();
        assert!(format!("{error:#}").contains("--force"), "{error:#}");
        write_pem_files(&key, dir.path(), true).unwrap();
        let error = KeyPair::read_private_pem(&public).unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains("public key") && text.contains(PUBLIC_PEM),
            "{text}"
        );
        let missing = dir.path().join("none.pem");
        let error = KeyPair::read_private_pem(&missing).unwrap_err();
        assert!(format!("{error:#}").contains("none.pem"));
    }
}
