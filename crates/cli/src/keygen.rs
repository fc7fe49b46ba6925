//! `svcid keygen`: what the manual has an operator do in a browser at mkjwk.org (EC, P-256,
//! signature use, ES256, key id = SHA-256 thumbprint), plus the three values it then derives and
//! copies by hand: the base64 generator key, the fingerprint, and the single-line public `content`
//! without `d` and `use`. This is the one command whose output holds a private key, on purpose;
//! `svcid link` writes keys straight into the files instead and is what most operators want.
//!
//! For people's tokens (`--kty RSA`, `--pem DIR`) it prints what the web generator shows for
//! the key type (the keypair, the keypair as a set, the public key) or, with `--pem`, writes
//! `privateKey.pem` and `publicKey.pem` as the MicroProfile JWT guide's `openssl` commands do and
//! prints only the public key.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use svcid_config::names::{self, deployment as field};
use svcid_identity::jwk::GeneratorKey;

use crate::userkey::KeyPair;

/// What the web generator shows for a key that is not a module's generator key: the keypair,
/// the keypair as a JWK set, and the public key (`json` for machines).
pub fn render_keypair(key: &KeyPair, json: bool) -> Result<String> {
    let keypair = key.private_jwk()?;
    let public = key.public_jwk()?;
    let set = json!({ "keys": [keypair.clone()] });
    if json {
        let value = json!({
            "keypair": keypair,
            "keypairSet": set,
            "publicKey": public,
            "kid": key.thumbprint()?,
        });
        return Ok(serde_json::to_string_pretty(&value)?);
    }
    Ok(format!(
        "Public and Private Keypair ({kty} {bits}, use sig, alg {alg}, kid = RFC 7638 SHA-256 thumbprint).\n\
         It holds the private key: keep it secret, never give it to a verifier.\n\
         {keypair}\n\n\
         Public and Private Keypair Set\n\
         {set}\n\n\
         Public Key (what a verifier is given)\n\
         {public}",
        kty = key.kty(),
        bits = key.bits(),
        alg = key.alg(),
        keypair = serde_json::to_string_pretty(&keypair)?,
        set = serde_json::to_string_pretty(&set)?,
        public = serde_json::to_string_pretty(&public)?,
    ))
}

/// After `--pem DIR`: where the files are and the public key (the private one is only in the file).
pub fn render_pem_written(
    key: &KeyPair,
    private: &Path,
    public: &Path,
    json: bool,
) -> Result<String> {
    let jwk = key.public_jwk()?;
    if json {
        let value = json!({
            "privateKeyFile": private.display().to_string(),
            "publicKeyFile": public.display().to_string(),
            "kid": key.thumbprint()?,
            "publicKey": jwk,
        });
        return Ok(serde_json::to_string_pretty(&value)?);
    }
    Ok(format!(
        "wrote {private} ({kty} {bits}, PKCS#8, mode 600: keep it secret; it signs tokens)\n\
         wrote {public} (public key, SPKI PEM: give it to verifiers, e.g. mp.jwt.verify.publickey.location={public_name})\n\
         kid (RFC 7638 SHA-256 thumbprint): {kid}\n\
         Public Key\n\
         {jwk}",
        private = private.display(),
        public = public.display(),
        public_name = public
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kty = key.kty(),
        bits = key.bits(),
        kid = key.thumbprint()?,
        jwk = serde_json::to_string_pretty(&Value::clone(&jwk))?,
    ))
}

/// The keypair and the three derived values, as printed (`json` for machines). `module` (`dpm`,
/// `dpe`) is the module the key is for, which the peers' deployment entry names; without it the
/// printed entry holds a placeholder.
pub fn render(key: &GeneratorKey, json: bool, module: Option<&str>) -> Result<String> {
    let public = key.public_key();
    if json {
        let keypair: serde_json::Value = serde_json::from_str(&key.keypair_json_pretty())
            .context("internal: the keypair JSON does not parse")?;
        let mut value = serde_json::json!({
            "keypair": keypair,
            "generatorKey": key.to_base64(),
            "fingerprint": key.kid(),
            "content": public.content_json(),
        });
        if let (Some(module), Some(object)) = (module, value.as_object_mut()) {
            object.insert("module".to_owned(), module.into());
        }
        return Ok(serde_json::to_string_pretty(&value)?);
    }
    let deployment = format!("{}.<deployment>", names::DEPLOYMENTS);
    let peer = format!(
        "{}.<deployment>.{}.key",
        names::DEPLOYMENTS,
        field::JWT_KEYS
    );
    Ok(format!(
        "Public and Private Keypair (EC P-256, use sig, alg ES256, kid = RFC 7638 SHA-256 thumbprint).\n\
         It holds the private key d: keep it secret, never give it to a peer.\n\
         {keypair}\n\n\
         # 1. The generator key: base64 of the keypair, for THIS module's etc/application.properties\n\
         {generator_name}={generator}\n\n\
         # 2. The fingerprint (the kid) and 3. the public content (no d, no use), for EACH PEER's\n\
         #    etc/application.properties, under the deployment entry that names this module\n\
         {deployment}.{module_field}={module}\n\
         {peer}.{fingerprint_field}={kid}\n\
         {peer}.{content_field}={content}\n\
         {peer}.{revoked_field}=false\n",
        keypair = key.keypair_json_pretty(),
        generator_name = names::GENERATOR_KEY,
        generator = key.to_base64(),
        module_field = field::MODULE,
        module = module.unwrap_or("<this module's type: dpm or dpe>"),
        fingerprint_field = field::FINGERPRINT,
        content_field = field::CONTENT,
        revoked_field = field::IS_REVOKED,
        kid = key.kid(),
        content = public.content_json(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use svcid_identity::jwk::PublicKey;

    #[test]
    fn json_values_are_consistent() {
        let key = GeneratorKey::generate();
        let value: serde_json::Value =
            serde_json::from_str(&render(&key, true, None).unwrap()).unwrap();
        let generator = GeneratorKey::from_base64(value["generatorKey"].as_str().unwrap()).unwrap();
        assert_eq!(generator.kid(), key.kid());
        assert_eq!(value["fingerprint"], key.kid());
        assert_eq!(value["keypair"]["kid"], key.kid());
        assert_eq!(value["keypair"]["use"], "sig");
        let content = value["content"].as_str().unwrap();
        assert!(!content.contains("\"d\"") && !content.contains("\"use\""));
        let (public, findings) = PublicKey::from_content(content).unwrap();
        assert_eq!(public.thumbprint(), key.kid());
        assert!(!findings.private_part);
    }

    #[test]
    fn rsa_output_has_the_three_forms() {
        let key = KeyPair::generate_rsa(2048).unwrap();
        let text = render_keypair(&key, false).unwrap();
        assert!(text.starts_with("Public and Private Keypair (RSA 2048, use sig, alg RS256"));
        assert!(text.contains("Public and Private Keypair Set"));
        assert!(text.contains("Public Key (what a verifier is given)"));
        let value: serde_json::Value =
            serde_json::from_str(&render_keypair(&key, true).unwrap()).unwrap();
        assert_eq!(value["kid"], key.thumbprint().unwrap());
        assert_eq!(value["keypairSet"]["keys"][0]["kid"], value["kid"]);
        assert!(value["publicKey"].get("d").is_none());
        assert_eq!(value["keypair"]["alg"], "RS256");
    }

    #[test]
    fn the_peer_block_names_the_module() {
        let key = GeneratorKey::generate();
        let module = format!("{}.<deployment>.module=", names::DEPLOYMENTS);
        let text = render(&key, false, Some("dpe")).unwrap();
        assert!(text.contains(&format!("{module}dpe\n")), "{text}");
        let text = render(&key, false, None).unwrap();
        assert!(
            text.contains(&format!("{module}<this module's type: dpm or dpe>\n")),
            "{text}"
        );
        let value: serde_json::Value =
            serde_json::from_str(&render(&key, true, Some("dpm")).unwrap()).unwrap();
        assert_eq!(value["module"], "dpm");
    }

    #[test]
    fn text_names_each_property() {
        let key = GeneratorKey::generate();
        let text = render(&key, false, None).unwrap();
        assert!(text.starts_with("Public and Private Keypair"));
        assert!(text.contains(&format!("{}={}", names::GENERATOR_KEY, key.to_base64())));
        assert!(text.contains(&format!(".security.jwt-keys.key.fingerprint={}", key.kid())));
        assert!(text.contains(&format!(
            ".security.jwt-keys.key.content={}",
            key.public_key().content_json()
        )));
    }
}
