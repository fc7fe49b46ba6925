//! What one user-token issuer's tokens must look like: [`UserIssuerPolicy`], built from the rules of
//! Keycloak (the product's way) or of MicroProfile JWT (the Payara way), plus the Payara vendor
//! file's settings ([`PayaraSettings`]).
//!
//! These are plain values. Reading them from properties and files is the configuration layer's job;
//! checking tokens against them is the verifier's.

use std::time::Duration;

use super::keys::{KeyFilter, UserAlgorithm};

/// Default leeway on `exp`, `nbf` and `iat` for user tokens: 60 s, the product's Keycloak skew and
/// the default of `mp.jwt.verify.clock.skew`.
pub const DEFAULT_USER_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// The claim-name prefix Payara strips when `enable.namespace=true` and no `custom.namespace` is
/// given.
pub const DEFAULT_PAYARA_NAMESPACE: &str = "https://payara.fish/mp-jwt/";
/// Default lifetime of fetched keys for a MicroProfile JWT issuer (`publicKey.cache.ttl`, 300000 ms).
pub const DEFAULT_PAYARA_KEY_CACHE_TTL: Duration = Duration::from_secs(300);

/// Whose rules name the user and carry the roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuerRules {
    /// Keycloak access tokens as the product reads them: `sub` is the id and `preferred_username`
    /// the username (both required strings); roles are `realm_access.roles` and nothing else.
    Keycloak,
    /// MicroProfile JWT: the name is `upn`, else `preferred_username`, else `sub`; the id is `sub`
    /// (the name when there is no `sub`); roles are `groups` (an array, or one string); `iat` is
    /// required.
    MicroProfileJwt,
}

impl IssuerRules {
    /// The name for logs and configuration messages: `keycloak` or `mp-jwt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keycloak => "keycloak",
            Self::MicroProfileJwt => "mp-jwt",
        }
    }
}

/// The token rules of one configured user-token issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserIssuerPolicy {
    /// Which claims name the user and carry roles, and which keys of a JWK set are used.
    pub rules: IssuerRules,
    /// The exact `iss` of this issuer's tokens: it routes a Bearer token here (compared byte for
    /// byte; a trailing `/` makes another issuer).
    pub issuer: String,
    /// The algorithms accepted, never taken from the token: RS256 for Keycloak; RS256 and ES256 for
    /// MicroProfile JWT unless configured. The key must be of the algorithm's type too.
    pub algorithms: Vec<UserAlgorithm>,
    /// When not empty, `aud` must be present and share one value with this list; when empty, `aud`
    /// is not checked.
    pub audiences: Vec<String>,
    /// Leeway on `exp`, `nbf` and `iat` for clocks that disagree.
    pub clock_skew: Duration,
    /// When set, a token whose `iat` is longer ago than this is refused (no skew added).
    pub token_age: Option<Duration>,
    /// `typ` must be present and `JWT` (MicroProfile JWT's default); when false, a token without
    /// `typ` is accepted too. Any other `typ` is always refused.
    pub require_typ: bool,
    /// Payara's namespaced claims: a claim whose name starts with this prefix is read under the
    /// name without it (and replaces a claim of that name) before any check, `iss` included.
    pub namespace: Option<String>,
}

impl UserIssuerPolicy {
    /// Keycloak's rules for tokens of `issuer` (usually [`keycloak_issuer`]): RS256 only, `typ`
    /// `JWT` or absent, 60 s skew, `aud` not checked, no token age.
    pub fn keycloak(issuer: impl Into<String>) -> Self {
        UserIssuerPolicy {
            rules: IssuerRules::Keycloak,
            issuer: issuer.into(),
            algorithms: vec![UserAlgorithm::Rs256],
            audiences: Vec::new(),
            clock_skew: DEFAULT_USER_CLOCK_SKEW,
            token_age: None,
            require_typ: false,
            namespace: None,
        }
    }

    /// MicroProfile JWT's rules for tokens of `issuer`: RS256 and ES256, `typ` `JWT` required,
    /// 60 s skew, `aud` not checked, no token age, no namespace.
    pub fn micro_profile(issuer: impl Into<String>) -> Self {
        UserIssuerPolicy {
            rules: IssuerRules::MicroProfileJwt,
            issuer: issuer.into(),
            algorithms: vec![UserAlgorithm::Rs256, UserAlgorithm::Es256],
            audiences: Vec::new(),
            clock_skew: DEFAULT_USER_CLOCK_SKEW,
            token_age: None,
            require_typ: true,
            namespace: None,
        }
    }

    /// Which keys of this issuer's JWK sets are used.
    pub fn key_filter(&self) -> KeyFilter {
        match self.rules {
            IssuerRules::Keycloak => KeyFilter::KeycloakRealm,
            IssuerRules::MicroProfileJwt => KeyFilter::Signing,
        }
    }
}

/// The settings of Payara's `payara-mp-jwt.properties` that shape token checks and key caching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayaraSettings {
    /// `accepted.issuer`: wins over `mp.jwt.verify.issuer`.
    pub accepted_issuer: Option<String>,
    /// `enable.namespace`: strip the namespace from claim names.
    pub enable_namespace: bool,
    /// `custom.namespace`: the prefix to strip instead of [`DEFAULT_PAYARA_NAMESPACE`].
    pub custom_namespace: Option<String>,
    /// `disable.type.verification`: accept a token without `typ`.
    pub disable_type_verification: bool,
    /// `publicKey.cache.ttl`: how long fetched keys are used (the key source reads it).
    pub key_cache_ttl: Duration,
}

impl Default for PayaraSettings {
    /// Payara's defaults: no issuer, no namespace, `typ` checked, keys cached 5 minutes.
    fn default() -> Self {
        PayaraSettings {
            accepted_issuer: None,
            enable_namespace: false,
            custom_namespace: None,
            disable_type_verification: false,
            key_cache_ttl: DEFAULT_PAYARA_KEY_CACHE_TTL,
        }
    }
}

impl PayaraSettings {
    /// Applies the settings to a MicroProfile JWT policy: `accepted.issuer` replaces the issuer,
    /// `enable.namespace` sets the namespace (`custom.namespace` or the default; `custom.namespace`
    /// alone does nothing), `disable.type.verification` lets `typ` be absent.
    pub fn apply(&self, policy: &mut UserIssuerPolicy) {
        if let Some(issuer) = &self.accepted_issuer {
            policy.issuer.clone_from(issuer);
        }
        if self.enable_namespace {
            policy.namespace = Some(
                self.custom_namespace
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PAYARA_NAMESPACE.to_owned()),
            );
        }
        if self.disable_type_verification {
            policy.require_typ = false;
        }
    }
}

/// A Keycloak realm's issuer, `<server-url>/realms/<realm>` (a trailing `/` of the server URL is
/// ignored): the default of `ataccama.authentication.keycloak.token.issuer`.
pub fn keycloak_issuer(server_url: &str, realm: &str) -> String {
    format!("{}/realms/{realm}", server_url.trim_end_matches('/'))
}

/// Where a Keycloak realm publishes its signing keys (a JWK set):
/// `<server-url>/realms/<realm>/protocol/openid-connect/certs`.
pub fn keycloak_certs_url(server_url: &str, realm: &str) -> String {
    format!(
        "{}/protocol/openid-connect/certs",
        keycloak_issuer(server_url, realm)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keycloak_urls_ignore_a_trailing_slash() {
        for server in ["http://localhost:8029/auth", "http://localhost:8029/auth/"] {
            assert_eq!(
                keycloak_issuer(server, "ataccamaone"),
                "http://localhost:8029/auth/realms/ataccamaone"
            );
            assert_eq!(
                keycloak_certs_url(server, "ataccamaone"),
                "http://localhost:8029/auth/realms/ataccamaone/protocol/openid-connect/certs"
            );
        }
    }

    #[test]
    fn payara_settings_shape_a_micro_profile_policy() {
        let mut policy = UserIssuerPolicy::micro_profile("https://server.example.com");
        PayaraSettings::default().apply(&mut policy);
        assert_eq!(
            policy,
            UserIssuerPolicy::micro_profile("https://server.example.com")
        );
        // custom.namespace alone does nothing.
        let custom_only = PayaraSettings {
            custom_namespace: Some("https://example.com/".into()),
            ..PayaraSettings::default()
        };
        custom_only.apply(&mut policy);
        assert_eq!(policy.namespace, None);
        PayaraSettings {
            accepted_issuer: Some("fish.payara.example".into()),
            enable_namespace: true,
            disable_type_verification: true,
            ..PayaraSettings::default()
        }
        .apply(&mut policy);
        assert_eq!(policy.issuer, "fish.payara.example");
        assert_eq!(policy.namespace.as_deref(), Some(DEFAULT_PAYARA_NAMESPACE));
        assert!(!policy.require_typ);
    }
}
