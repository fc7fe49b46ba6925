//! Who may call as a person: the user-token issuers bound from the Keycloak properties
//! (`ataccama.authentication.keycloak.*`), the MicroProfile JWT properties (`mp.jwt.*`) and Payara's
//! `etc/payara-mp-jwt.properties`, into the identity crate's [`UserIssuerPolicy`] plus where each
//! issuer's keys come from.
//!
//! Keys given as text or as a file are read and parsed here, at load, so a bad key stops the module
//! with the line to fix; keys behind an `http(s)://` URL are only named here and fetched later by
//! the key source (a module must start while its identity provider is down).

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use svcid_identity::user::{
    DEFAULT_PAYARA_KEY_CACHE_TTL, KeyFilter, MAX_KEY_SET_BYTES, PayaraSettings, UserAlgorithm,
    UserIssuerPolicy, UserKeySet, keycloak_certs_url, keycloak_issuer,
};
use svcid_properties::{DurationUnit, Problem, PropertySet, Severity, Value};

use crate::bind::{Binder, shown};
use crate::codes;
use crate::home::ModuleHome;
use crate::names::{self, payara};

/// Default of `…keycloak.token.key-cache-ttl`: how long fetched realm keys are used.
pub const DEFAULT_KEY_CACHE_TTL: Duration = Duration::from_secs(5 * 60);
/// Default of `…keycloak.token.key-cache-min-time-between-request`: at most one key fetch per
/// this period (also used for MicroProfile JWT key URLs, which have no such property).
pub const DEFAULT_KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Default of `mp.jwt.token.cookie`.
pub const DEFAULT_TOKEN_COOKIE: &str = "Bearer";

/// The user-token issuers of a module; empty when none is configured (then only modules call).
#[derive(Debug, Default)]
pub struct UserSettings {
    /// Each configured issuer with its keys; at most one Keycloak and one MicroProfile JWT issuer.
    pub issuers: Vec<UserIssuerSettings>,
    /// Where the HTTP port finds a MicroProfile JWT token (`mp.jwt.token.header`/`.cookie`).
    pub token_carrier: TokenCarrier,
}

/// One issuer: its token rules and its keys.
#[derive(Debug)]
pub struct UserIssuerSettings {
    /// What its tokens must look like.
    pub policy: UserIssuerPolicy,
    /// Where its keys come from.
    pub keys: UserKeySource,
    /// How long keys fetched from a URL are used before a refetch.
    pub key_cache_ttl: Duration,
    /// At most one key fetch per this period, whatever arrives.
    pub key_refetch_interval: Duration,
}

/// Where an issuer's keys come from.
pub enum UserKeySource {
    /// Keys read at load, from the property's text or a file.
    Loaded {
        /// The parsed keys.
        keys: Arc<UserKeySet>,
        /// Where they were read from, for logs: `mp.jwt.verify.publickey` or the file's path.
        from: String,
    },
    /// Keys behind an `http(s)://` URL, fetched on first need by the key source.
    Url(String),
}

impl fmt::Debug for UserKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Loaded { keys, from } => f
                .debug_struct("Loaded")
                .field("from", from)
                .field("keys", &keys.keys().len())
                .finish(),
            Self::Url(url) => f.debug_tuple("Url").field(url).finish(),
        }
    }
}

/// Where the HTTP port reads a user token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TokenCarrier {
    /// `Authorization: Bearer <token>` (the default; gRPC always uses this).
    #[default]
    Authorization,
    /// The cookie of this name; `Authorization` is then ignored on the HTTP port.
    Cookie(String),
}

/// Binds every user-token property of `props` (and `etc/payara-mp-jwt.properties` of `home` when
/// present). Problems are recorded in `b`; an issuer with an error is left out.
pub(crate) fn bind(b: &mut Binder<'_>, home: &ModuleHome) -> UserSettings {
    let mut issuers = Vec::new();
    issuers.extend(bind_keycloak(b));
    let (micro_profile, token_carrier) = bind_micro_profile(b, home);
    if let Some(mp) = micro_profile {
        if issuers
            .iter()
            .any(|kc: &UserIssuerSettings| kc.policy.issuer == mp.policy.issuer)
        {
            let value = b
                .props
                .get(names::MP_JWT_ISSUER)
                .or_else(|| b.props.get(names::KEYCLOAK_TOKEN_ISSUER))
                .cloned();
            let message = format!(
                "Keycloak and MicroProfile JWT both accept the issuer {}: a token could not be told apart",
                shown(&mp.policy.issuer)
            );
            let fix = "configure users one way, or give each its own issuer";
            match value {
                Some(value) => b.error_at(codes::USER_ISSUER_DUPLICATE, &value, message, fix),
                None => b.problems.push(Problem::error(
                    codes::USER_ISSUER_DUPLICATE,
                    None,
                    names::MP_JWT_ISSUER.to_owned(),
                    message,
                    Some(fix.to_owned()),
                )),
            }
        } else {
            issuers.push(mp);
        }
    }
    UserSettings {
        issuers,
        token_carrier,
    }
}

/// `ataccama.authentication.keycloak.*` (docs/users.md): the realm's issuer, audience and key URL.
fn bind_keycloak(b: &mut Binder<'_>) -> Option<UserIssuerSettings> {
    let enabled = b.bool(names::KEYCLOAK_TOKEN_ENABLE, true);
    let key_cache_ttl = b.positive_duration(names::KEYCLOAK_KEY_CACHE_TTL, DEFAULT_KEY_CACHE_TTL);
    let key_refetch_interval = b.duration(
        names::KEYCLOAK_KEY_CACHE_MIN_TIME,
        DEFAULT_KEY_REFETCH_INTERVAL,
        DurationUnit::Millis,
    );
    let (server_url, server_value) = match b.string(names::KEYCLOAK_SERVER_URL) {
        Some((url, value)) if !url.is_empty() => (url, value),
        _ => return None,
    };
    if !enabled {
        return None;
    }
    if !is_http_url(&server_url) {
        b.error_at(
            codes::INVALID_VALUE,
            server_value,
            format!("{} is not an http:// or https:// URL", shown(&server_url)),
            "use Keycloak's base URL, e.g. http://localhost:8029/auth",
        );
        return None;
    }
    let realm = b.string_or(names::KEYCLOAK_REALM, "");
    if realm.is_empty() {
        b.error_at(
            codes::KEYCLOAK_REALM_MISSING,
            server_value,
            "a Keycloak server URL without a realm: the realm's issuer and keys are unknown",
            format!("set {} (e.g. ataccamaone)", names::KEYCLOAK_REALM),
        );
        return None;
    }
    let issuer = b.string_or(
        names::KEYCLOAK_TOKEN_ISSUER,
        &keycloak_issuer(&server_url, &realm),
    );
    let mut policy = UserIssuerPolicy::keycloak(issuer);
    let audience = b.string_or(names::KEYCLOAK_TOKEN_AUDIENCE, "");
    if !audience.is_empty() {
        policy.audiences = vec![audience];
    }
    Some(UserIssuerSettings {
        policy,
        keys: UserKeySource::Url(keycloak_certs_url(&server_url, &realm)),
        key_cache_ttl,
        key_refetch_interval,
    })
}

/// `mp.jwt.*` and Payara's vendor file (docs/users.md).
fn bind_micro_profile(
    b: &mut Binder<'_>,
    home: &ModuleHome,
) -> (Option<UserIssuerSettings>, TokenCarrier) {
    let token_carrier = bind_token_carrier(b);
    let vendor = read_payara_file(b, home);
    let algorithms = bind_algorithms(b);
    let audiences: Vec<String> = b
        .string_or(names::MP_JWT_AUDIENCES, "")
        .split(',')
        .map(str::trim)
        .filter(|aud| !aud.is_empty())
        .map(str::to_owned)
        .collect();
    let clock_skew = b.duration(
        names::MP_JWT_CLOCK_SKEW,
        svcid_identity::user::DEFAULT_USER_CLOCK_SKEW,
        DurationUnit::Seconds,
    );
    let token_age = b.props.get(names::MP_JWT_TOKEN_AGE).is_some().then(|| {
        b.duration(
            names::MP_JWT_TOKEN_AGE,
            Duration::ZERO,
            DurationUnit::Seconds,
        )
    });
    let inline = b
        .string(names::MP_JWT_PUBLICKEY)
        .filter(|(raw, _)| !raw.is_empty());
    let location = b
        .string(names::MP_JWT_PUBLICKEY_LOCATION)
        .filter(|(raw, _)| !raw.is_empty());
    let (keys, key_value) = match (inline, location) {
        (None, None) => return (None, token_carrier),
        (Some((_, text)), Some((_, place))) => {
            b.error_at(
                codes::USER_KEY_TWICE,
                place,
                format!(
                    "both {} ({}) and {} are set: which key is meant would be a guess",
                    names::MP_JWT_PUBLICKEY,
                    text.origin,
                    names::MP_JWT_PUBLICKEY_LOCATION
                ),
                "keep one of the two lines",
            );
            return (None, token_carrier);
        }
        (Some((raw, value)), None) => {
            let keys = match UserKeySet::parse(&raw, KeyFilter::Signing) {
                Ok(keys) => UserKeySource::Loaded {
                    keys: Arc::new(keys),
                    from: names::MP_JWT_PUBLICKEY.to_owned(),
                },
                Err(error) => {
                    b.error_at(
                        codes::USER_KEY_UNUSABLE,
                        value,
                        error.to_string(),
                        "give the issuer's public key: PEM (BEGIN PUBLIC KEY), a JWK, a JWK set, or base64 of a JWK or set",
                    );
                    return (None, token_carrier);
                }
            };
            (keys, value)
        }
        (None, Some((raw, value))) => match key_location(b, home, &raw, value) {
            Some(keys) => (keys, value),
            None => return (None, token_carrier),
        },
    };
    let issuer = vendor
        .settings
        .accepted_issuer
        .clone()
        .or_else(|| Some(b.string_or(names::MP_JWT_ISSUER, "")))
        .filter(|issuer| !issuer.is_empty());
    let Some(issuer) = issuer else {
        b.error_at(
            codes::USER_ISSUER_MISSING,
            key_value,
            "a MicroProfile JWT key without an issuer: tokens could not be routed to it",
            format!(
                "set {} to the exact iss of the tokens (or accepted.issuer in etc/{})",
                names::MP_JWT_ISSUER,
                names::PAYARA_MP_JWT_FILE
            ),
        );
        return (None, token_carrier);
    };
    let mut policy = UserIssuerPolicy::micro_profile(issuer);
    vendor.settings.apply(&mut policy);
    policy.algorithms = algorithms;
    policy.audiences = audiences;
    policy.clock_skew = clock_skew;
    policy.token_age = token_age;
    let issuer = UserIssuerSettings {
        policy,
        keys,
        key_cache_ttl: vendor.settings.key_cache_ttl,
        key_refetch_interval: DEFAULT_KEY_REFETCH_INTERVAL,
    };
    (Some(issuer), token_carrier)
}

/// `mp.jwt.token.header` and `.cookie`.
fn bind_token_carrier(b: &mut Binder<'_>) -> TokenCarrier {
    let header = b.string_or(names::MP_JWT_TOKEN_HEADER, "Authorization");
    if header.eq_ignore_ascii_case("Authorization") {
        return TokenCarrier::Authorization;
    }
    if header.eq_ignore_ascii_case("Cookie") {
        return TokenCarrier::Cookie(b.string_or(names::MP_JWT_TOKEN_COOKIE, DEFAULT_TOKEN_COOKIE));
    }
    if let Some(value) = b.props.get(names::MP_JWT_TOKEN_HEADER).cloned() {
        b.error_at(
            codes::INVALID_VALUE,
            &value,
            format!("{} is neither Authorization nor Cookie", shown(&header)),
            "use Authorization (the default) or Cookie",
        );
    }
    TokenCarrier::Authorization
}

/// `mp.jwt.verify.publickey.algorithm`: a comma list of RS256 and ES256 (default both).
fn bind_algorithms(b: &mut Binder<'_>) -> Vec<UserAlgorithm> {
    let default = vec![UserAlgorithm::Rs256, UserAlgorithm::Es256];
    let Some((raw, value)) = b.string(names::MP_JWT_PUBLICKEY_ALGORITHM) else {
        return default;
    };
    let mut algorithms = Vec::new();
    for name in raw
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        match name.parse::<UserAlgorithm>() {
            Ok(algorithm) if !algorithms.contains(&algorithm) => algorithms.push(algorithm),
            Ok(_) => {}
            Err(_) => {
                // Quoted by this crate's rule: a long value (a key pasted on the wrong line) is
                // never echoed, not even in part.
                b.error_at(
                    codes::INVALID_VALUE,
                    value,
                    format!(
                        "algorithm {} is not accepted for user tokens; use RS256 or ES256",
                        shown(name)
                    ),
                    "use RS256, ES256 or RS256,ES256",
                );
                return default;
            }
        }
    }
    if algorithms.is_empty() {
        default
    } else {
        algorithms
    }
}

/// `mp.jwt.verify.publickey.location`: a URL is kept for the key source; a file (relative to
/// `etc/`, absolute, or a `file:` URL) is read and parsed now.
fn key_location(
    b: &mut Binder<'_>,
    home: &ModuleHome,
    raw: &str,
    value: &Value,
) -> Option<UserKeySource> {
    if is_http_url(raw) {
        return Some(UserKeySource::Url(raw.to_owned()));
    }
    let path = match raw.strip_prefix("file:") {
        Some(rest) => PathBuf::from(rest.strip_prefix("//").unwrap_or(rest)),
        None if raw.contains("://") => {
            b.error_at(
                codes::INVALID_VALUE,
                value,
                format!("{} is neither a file nor an http(s):// URL", shown(raw)),
                "use a file relative to etc/, a file: URL, or an http:// or https:// URL",
            );
            return None;
        }
        None => home.root().join("etc").join(raw),
    };
    let unusable = |b: &mut Binder<'_>, message: String| {
        b.error_at(
            codes::USER_KEY_UNUSABLE,
            value,
            message,
            "point it at a file holding the issuer's public key (PEM, JWK, JWK set, or base64 of a JWK or set)",
        );
        None
    };
    let text = match read_bounded(&path) {
        Ok(text) => text,
        Err(why) => return unusable(b, format!("{}: {why}", path.display())),
    };
    match UserKeySet::parse(&text, KeyFilter::Signing) {
        Ok(keys) => Some(UserKeySource::Loaded {
            keys: Arc::new(keys),
            from: path.display().to_string(),
        }),
        Err(error) => unusable(b, format!("{}: {error}", path.display())),
    }
}

/// A key file's text, at most [`MAX_KEY_SET_BYTES`] bytes of UTF-8.
fn read_bounded(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read ({e})"))?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_KEY_SET_BYTES).unwrap_or(u64::MAX);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({e})"))?;
    if bytes.len() > MAX_KEY_SET_BYTES {
        return Err(format!("is larger than {MAX_KEY_SET_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_owned())
}

fn is_http_url(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// What Payara's vendor file said.
struct VendorFile {
    /// Its settings (Payara's defaults when the file is absent).
    settings: PayaraSettings,
}

/// Reads `etc/payara-mp-jwt.properties` when it exists; its problems join the others.
fn read_payara_file(b: &mut Binder<'_>, home: &ModuleHome) -> VendorFile {
    let mut settings = PayaraSettings::default();
    let path = home.root().join("etc").join(names::PAYARA_MP_JWT_FILE);
    if !path.exists() {
        return VendorFile { settings };
    }
    let mut props = PropertySet::new();
    if let Err(problems) = props.load_file(&path, &path) {
        let fatal = problems.iter().any(|p| p.severity == Severity::Error);
        b.problems.extend(problems);
        if fatal {
            return VendorFile { settings };
        }
    }
    let mut vendor = Binder::new(&props);
    settings.accepted_issuer = vendor
        .string(payara::ACCEPTED_ISSUER)
        .map(|(issuer, _)| issuer)
        .filter(|issuer| !issuer.is_empty());
    settings.enable_namespace = vendor.bool(payara::ENABLE_NAMESPACE, false);
    settings.custom_namespace = vendor
        .string(payara::CUSTOM_NAMESPACE)
        .map(|(namespace, _)| namespace)
        .filter(|namespace| !namespace.is_empty());
    settings.disable_type_verification = vendor.bool(payara::DISABLE_TYPE_VERIFICATION, false);
    settings.key_cache_ttl = vendor.duration(
        payara::PUBLIC_KEY_CACHE_TTL,
        DEFAULT_PAYARA_KEY_CACHE_TTL,
        DurationUnit::Millis,
    );
    b.problems.extend(vendor.problems);
    VendorFile { settings }
}

/// Binds user-token settings alone, for tests and tools: every problem, or the settings.
pub fn bind_users(props: &PropertySet, home: &ModuleHome) -> Result<UserSettings, Vec<Problem>> {
    let mut b = Binder::new(props);
    let users = bind(&mut b, home);
    if b.problems.iter().any(Problem::is_error) {
        Err(b.problems)
    } else {
        Ok(users)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use std::path::Path;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use svcid_identity::jwk::GeneratorKey;
    use svcid_identity::user::{IssuerRules, KeyForm};

    use super::*;
    use crate::ModuleKind;

    const FILE: &str = "etc/application.properties";
    const KC_ISS: &str = "http://localhost:8029/auth/realms/ataccamaone";

    /// A module home in a temporary folder with `etc/` and the given files in it.
    fn make_home(files: &[(&str, &str)]) -> (tempfile::TempDir, ModuleHome) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("etc").join(name), text).unwrap();
        }
        let home = ModuleHome::new(dir.path());
        (dir, home)
    }

    fn props(text: &str) -> PropertySet {
        let mut set = PropertySet::new();
        set.load_str(text, Path::new(FILE)).unwrap();
        set
    }

    fn users(text: &str, home: &ModuleHome) -> UserSettings {
        match bind_users(&props(text), home) {
            Ok(users) => users,
            Err(problems) => panic!("{problems:#?}"),
        }
    }

    /// The problems, each as its display line.
    fn problems(text: &str, home: &ModuleHome) -> Vec<Problem> {
        match bind_users(&props(text), home) {
            Ok(users) => panic!("expected problems, got {users:?}"),
            Err(problems) => problems,
        }
    }

    /// Public PEM, public JWK JSON and PKCS#8 private PEM of a fresh RSA key.
    fn rsa(bits: u32) -> (String, String, String) {
        let rsa = Rsa::generate(bits).unwrap();
        let jwk = format!(
            r#"{{"kty":"RSA","kid":"k1","n":"{}","e":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            URL_SAFE_NO_PAD.encode(rsa.e().to_vec())
        );
        let key = PKey::from_rsa(rsa).unwrap();
        (
            String::from_utf8(key.public_key_to_pem().unwrap()).unwrap(),
            jwk,
            String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        )
    }

    /// A PEM as one properties line: its lines joined by `\` continuations.
    fn property_pem(pem: &str) -> String {
        pem.trim_end().lines().collect::<Vec<_>>().join("\\\n")
    }

    #[test]
    fn nothing_configured_means_no_users() {
        let (_dir, home) = make_home(&[]);
        let settings = users("", &home);
        assert!(settings.issuers.is_empty());
        assert_eq!(settings.token_carrier, TokenCarrier::Authorization);
    }

    #[test]
    fn keycloak_properties_give_the_realm_issuer_and_key_url() {
        let (_dir, home) = make_home(&[]);
        let text = format!(
            "{}=http://localhost:8029/auth/\n{}=ataccamaone\n{}=dpm-token-client\n{}=s3cret-value\n",
            names::KEYCLOAK_SERVER_URL,
            names::KEYCLOAK_REALM,
            names::KEYCLOAK_TOKEN_CLIENT_ID,
            names::KEYCLOAK_TOKEN_SECRET
        );
        let settings = users(&text, &home);
        let [issuer] = settings.issuers.as_slice() else {
            panic!("{settings:?}")
        };
        assert_eq!(issuer.policy, UserIssuerPolicy::keycloak(KC_ISS));
        assert!(matches!(&issuer.keys, UserKeySource::Url(url)
            if url == "http://localhost:8029/auth/realms/ataccamaone/protocol/openid-connect/certs"));
        assert_eq!(issuer.key_cache_ttl, DEFAULT_KEY_CACHE_TTL);
        assert_eq!(issuer.key_refetch_interval, DEFAULT_KEY_REFETCH_INTERVAL);
        // The product's other token properties: issuer, audience, cache periods.
        let text = format!(
            "{text}{}=https://sso.example.com/realms/one\n{}=dpm\n{}=1m\n{}=30s\n",
            names::KEYCLOAK_TOKEN_ISSUER,
            names::KEYCLOAK_TOKEN_AUDIENCE,
            names::KEYCLOAK_KEY_CACHE_TTL,
            names::KEYCLOAK_KEY_CACHE_MIN_TIME
        );
        let settings = users(&text, &home);
        let issuer = &settings.issuers[0];
        assert_eq!(issuer.policy.issuer, "https://sso.example.com/realms/one");
        assert_eq!(issuer.policy.audiences, ["dpm"]);
        assert_eq!(issuer.key_cache_ttl, Duration::from_secs(60));
        assert_eq!(issuer.key_refetch_interval, Duration::from_secs(30));
        // token.enable=false turns them off.
        let off = format!("{text}{}=false\n", names::KEYCLOAK_TOKEN_ENABLE);
        assert!(users(&off, &home).issuers.is_empty());
    }

    #[test]
    fn keycloak_properties_are_known_and_the_secret_is_never_shown() {
        let (_dir, home) = make_home(&[]);
        let text = format!(
            "{}={}\n{}=http://localhost:8029/auth\n{}=ataccamaone\n{}=dpm-token-client\n{}=s3cret-value\n",
            names::GENERATOR_KEY,
            GeneratorKey::generate().to_base64(),
            names::KEYCLOAK_SERVER_URL,
            names::KEYCLOAK_REALM,
            names::KEYCLOAK_TOKEN_CLIENT_ID,
            names::KEYCLOAK_TOKEN_SECRET
        );
        let loaded = crate::bind(ModuleKind::Dpm, home, &props(&text)).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.settings.users.issuers.len(), 1);
        assert!(!format!("{:?}", loaded.settings.users).contains("s3cret"));
    }

    #[test]
    fn a_keycloak_server_without_a_realm_is_an_error_at_its_line() {
        let (_dir, home) = make_home(&[]);
        let text = format!(
            "# users\n{}=http://localhost:8029/auth\n",
            names::KEYCLOAK_SERVER_URL
        );
        let found = problems(&text, &home);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].code, codes::KEYCLOAK_REALM_MISSING);
        assert!(
            found[0]
                .to_string()
                .starts_with("etc/application.properties:2: error:")
        );
        assert!(found[0].to_string().contains(names::KEYCLOAK_REALM));
        let not_url = format!(
            "{}=localhost:8029\n{}=r\n",
            names::KEYCLOAK_SERVER_URL,
            names::KEYCLOAK_REALM
        );
        assert_eq!(problems(&not_url, &home)[0].code, codes::INVALID_VALUE);
    }

    #[test]
    fn micro_profile_inline_key_and_claims_properties() {
        let (_dir, home) = make_home(&[]);
        let (pem, _, _) = rsa(2048);
        let text = format!(
            "{}={}\n{}=https://server.example.com\n{}=aud3, badAud ,s6BhdRkqt3\n{}=30\n{}=4\n{}=ES256\n",
            names::MP_JWT_PUBLICKEY,
            property_pem(&pem),
            names::MP_JWT_ISSUER,
            names::MP_JWT_AUDIENCES,
            names::MP_JWT_CLOCK_SKEW,
            names::MP_JWT_TOKEN_AGE,
            names::MP_JWT_PUBLICKEY_ALGORITHM
        );
        let settings = users(&text, &home);
        let [issuer] = settings.issuers.as_slice() else {
            panic!("{settings:?}")
        };
        let policy = &issuer.policy;
        assert_eq!(policy.rules, IssuerRules::MicroProfileJwt);
        assert_eq!(policy.issuer, "https://server.example.com");
        assert_eq!(policy.audiences, ["aud3", "badAud", "s6BhdRkqt3"]);
        assert_eq!(policy.clock_skew, Duration::from_secs(30));
        assert_eq!(policy.token_age, Some(Duration::from_secs(4)));
        assert_eq!(policy.algorithms, [UserAlgorithm::Es256]);
        assert!(policy.require_typ);
        let UserKeySource::Loaded { keys, from } = &issuer.keys else {
            panic!("{:?}", issuer.keys)
        };
        assert_eq!(
            (keys.form(), from.as_str()),
            (KeyForm::Single, names::MP_JWT_PUBLICKEY)
        );
        // Defaults: both algorithms, 60 s skew, no age, no audiences.
        let text = format!(
            "{}={}\n{}=https://server.example.com\n",
            names::MP_JWT_PUBLICKEY,
            property_pem(&pem),
            names::MP_JWT_ISSUER
        );
        let policy = &users(&text, &home).issuers[0].policy;
        assert_eq!(
            policy,
            &UserIssuerPolicy::micro_profile("https://server.example.com")
        );
        let bad = format!("{text}{}=RS512\n", names::MP_JWT_PUBLICKEY_ALGORITHM);
        assert_eq!(problems(&bad, &home)[0].code, codes::INVALID_VALUE);
    }

    #[test]
    fn both_key_properties_are_an_error_naming_both_lines() {
        let (_dir, home) = make_home(&[("publicKey.pem", "x")]);
        let (pem, _, _) = rsa(2048);
        let text = format!(
            "{}={}\n{}=https://server.example.com\n{}=publicKey.pem\n",
            names::MP_JWT_PUBLICKEY,
            property_pem(&pem),
            names::MP_JWT_ISSUER,
            names::MP_JWT_PUBLICKEY_LOCATION
        );
        let found = problems(&text, &home);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].code, codes::USER_KEY_TWICE);
        let line = found[0].to_string();
        let pem_lines = pem.trim_end().lines().count();
        let location_line = pem_lines + 2;
        assert!(
            line.starts_with(&format!(
                "etc/application.properties:{location_line}: error:"
            )),
            "{line}"
        );
        assert!(line.contains("etc/application.properties:1)"), "{line}");
    }

    #[test]
    fn a_key_without_an_issuer_and_unusable_keys_are_errors() {
        let (_dir, home) = make_home(&[]);
        let (pem, jwk, private) = rsa(2048);
        let no_issuer = format!("{}={jwk}\n", names::MP_JWT_PUBLICKEY);
        let found = problems(&no_issuer, &home);
        assert_eq!(found[0].code, codes::USER_ISSUER_MISSING);
        // A private key where the public key belongs: named, never echoed.
        let text = format!(
            "{}={}\n{}=https://server.example.com\n",
            names::MP_JWT_PUBLICKEY,
            property_pem(&private),
            names::MP_JWT_ISSUER
        );
        let found = problems(&text, &home);
        assert_eq!(found[0].code, codes::USER_KEY_UNUSABLE);
        let line = found[0].to_string();
        assert!(line.contains("private key"), "{line}");
        let body: String = private.lines().nth(2).unwrap().chars().take(20).collect();
        assert!(!line.contains(&body), "{line}");
        // RSA under 2048 bits.
        let (short, _, _) = rsa(1024);
        let text = format!(
            "{}={}\n{}=https://server.example.com\n",
            names::MP_JWT_PUBLICKEY,
            property_pem(&short),
            names::MP_JWT_ISSUER
        );
        let line = problems(&text, &home)[0].to_string();
        assert!(line.contains("1024 bits"), "{line}");
        assert!(!pem.is_empty());
    }

    #[test]
    fn key_locations_files_file_urls_and_http_urls() {
        let (pem, jwk, _) = rsa(2048);
        let jwks = format!(r#"{{"keys":[{jwk}]}}"#);
        let (dir, home) = make_home(&[("publicKey.pem", &pem)]);
        std::fs::create_dir_all(dir.path().join("etc/keys")).unwrap();
        std::fs::write(dir.path().join("etc/keys/set.jwks"), &jwks).unwrap();
        let with = |location: &str| {
            format!(
                "{}={location}\n{}=https://server.example.com\n",
                names::MP_JWT_PUBLICKEY_LOCATION,
                names::MP_JWT_ISSUER
            )
        };
        let relative = users(&with("publicKey.pem"), &home);
        assert!(
            matches!(&relative.issuers[0].keys, UserKeySource::Loaded { keys, .. } if keys.form() == KeyForm::Single)
        );
        let set = users(&with("keys/set.jwks"), &home);
        assert!(
            matches!(&set.issuers[0].keys, UserKeySource::Loaded { keys, .. } if keys.contains_kid("k1"))
        );
        let file_url = format!("file:{}", dir.path().join("etc/publicKey.pem").display());
        assert_eq!(users(&with(&file_url), &home).issuers.len(), 1);
        let url = "https://sso.example.com/realms/one/protocol/openid-connect/certs";
        assert!(
            matches!(&users(&with(url), &home).issuers[0].keys, UserKeySource::Url(u) if u == url)
        );
        let missing = problems(&with("nowhere.pem"), &home);
        assert_eq!(missing[0].code, codes::USER_KEY_UNUSABLE);
        assert!(missing[0].to_string().contains("nowhere.pem"));
        assert_eq!(
            problems(&with("ftp://example.com/key"), &home)[0].code,
            codes::INVALID_VALUE
        );
    }

    #[test]
    fn payaras_vendor_file_shapes_the_policy() {
        let (pem, _, _) = rsa(2048);
        let vendor = "accepted.issuer=fish.payara.example\nenable.namespace=true\n\
                      disable.type.verification=true\npublicKey.cache.ttl=5000\n";
        let (_dir, home) = make_home(&[(names::PAYARA_MP_JWT_FILE, vendor)]);
        let text = format!(
            "{}={}\n{}=https://ignored.example.com\n",
            names::MP_JWT_PUBLICKEY,
            property_pem(&pem),
            names::MP_JWT_ISSUER
        );
        let settings = users(&text, &home);
        let issuer = &settings.issuers[0];
        assert_eq!(issuer.policy.issuer, "fish.payara.example");
        assert_eq!(
            issuer.policy.namespace.as_deref(),
            Some(svcid_identity::user::DEFAULT_PAYARA_NAMESPACE)
        );
        assert!(!issuer.policy.require_typ);
        assert_eq!(issuer.key_cache_ttl, Duration::from_secs(5));
        // accepted.issuer alone is enough for a key.
        let no_mp_issuer = format!("{}={}\n", names::MP_JWT_PUBLICKEY, property_pem(&pem));
        assert_eq!(
            users(&no_mp_issuer, &home).issuers[0].policy.issuer,
            "fish.payara.example"
        );
        // A bad value in the vendor file is reported at its own file and line.
        let (_dir, bad_home) =
            make_home(&[(names::PAYARA_MP_JWT_FILE, "enable.namespace=yes please\n")]);
        let found = problems(&text, &bad_home);
        assert_eq!(found[0].code, codes::NOT_BOOLEAN);
        assert!(
            found[0].to_string().contains("payara-mp-jwt.properties:1:"),
            "{}",
            found[0]
        );
    }

    #[test]
    fn token_carrier_and_duplicate_issuers() {
        let (_dir, home) = make_home(&[]);
        let cookie = format!(
            "{}=Cookie\n{}=jwt\n",
            names::MP_JWT_TOKEN_HEADER,
            names::MP_JWT_TOKEN_COOKIE
        );
        assert_eq!(
            users(&cookie, &home).token_carrier,
            TokenCarrier::Cookie("jwt".into())
        );
        let default_cookie = format!("{}=Cookie\n", names::MP_JWT_TOKEN_HEADER);
        assert_eq!(
            users(&default_cookie, &home).token_carrier,
            TokenCarrier::Cookie(DEFAULT_TOKEN_COOKIE.into())
        );
        let other = format!("{}=X-Token\n", names::MP_JWT_TOKEN_HEADER);
        assert_eq!(problems(&other, &home)[0].code, codes::INVALID_VALUE);
        let (pem, _, _) = rsa(2048);
        let both = format!(
            "{}=http://localhost:8029/auth\n{}=ataccamaone\n{}={}\n{}={KC_ISS}\n",
            names::KEYCLOAK_SERVER_URL,
            names::KEYCLOAK_REALM,
            names::MP_JWT_PUBLICKEY,
            property_pem(&pem),
            names::MP_JWT_ISSUER
        );
        assert_eq!(problems(&both, &home)[0].code, codes::USER_ISSUER_DUPLICATE);
    }
}
