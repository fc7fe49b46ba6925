//! `svcid keygen`: what the manual has an operator do in a browser at mkjwk.org, plus the three
//! values it then copies by hand.

use svcid_identity::jwk::GeneratorKey;

/// The keypair and the three derived values, as printed.
pub fn render(key: &GeneratorKey, json: bool) -> String {
    let public = key.public_key();
    if json {
        let value = serde_json::json!({
            "keypair": serde_json::from_str::<serde_json::Value>(&key.keypair_json_pretty()).unwrap_or_default(),
            "generatorKey": key.to_base64(),
            "fingerprint": key.kid(),
            "content": public.content_json(),
        });
        return serde_json::to_string_pretty(&value).unwrap_or_default();
    }
    format!(
        "Public and Private Keypair (keep it secret; it is the signing key):\n{keypair}\n\n\
         # This module's own etc/application.properties:\n\
         ataccama.authentication.internal.jwt.generator.key={generator}\n\n\
         # Each peer's etc/application.properties, under its deployment entry for this module:\n\
         ...security.jwt-keys.key.fingerprint={kid}\n\
         ...security.jwt-keys.key.content={content}\n\
         ...security.jwt-keys.key.is-revoked=false\n",
        keypair = key.keypair_json_pretty(),
        generator = key.to_base64(),
        kid = key.kid(),
        content = public.content_json(),
    )
}
