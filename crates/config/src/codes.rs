//! The [`ProblemCode`] of every problem this crate reports, defined once. A code names the kind
//! of finding for programs (`svcid check --json`, and `svcid check`'s own verdicts, which escalate
//! some of these warnings to errors by code); the message beside it is for people and may change.
//! docs/configuration.md's "Problem codes" table lists them with those of
//! `svcid_properties::codes` and of `svcid check`. Each constant says whether it is an error (the
//! module does not start) or a warning.

use svcid_properties::ProblemCode;

// Values of any property, reported by the binder's typed reads.

/// Error: a value that must be `true` or `false`.
pub const NOT_BOOLEAN: ProblemCode = ProblemCode::new("value.not-boolean");
/// Error: a value that must be a port number.
pub const NOT_PORT: ProblemCode = ProblemCode::new("value.not-port");
/// Error: a value that must be a Spring duration.
pub const NOT_DURATION: ProblemCode = ProblemCode::new("value.not-duration");
/// Error: a duration that must be longer than zero.
pub const NOT_POSITIVE: ProblemCode = ProblemCode::new("value.not-positive");
/// Error: a value that must be an IP address to bind (`ataccama.server.grpc.host`,
/// `server.address`).
pub const NOT_BIND_ADDRESS: ProblemCode = ProblemCode::new("value.not-bind-address");
/// Error: a log level that is not one of TRACE, DEBUG, INFO, WARN, ERROR, OFF.
pub const NOT_LOG_LEVEL: ProblemCode = ProblemCode::new("value.not-log-level");
/// Error: any other value the property does not accept (data sizes, counts, back-off factors,
/// client-certificate modes), the message saying what it takes.
pub const INVALID_VALUE: ProblemCode = ProblemCode::new("value.invalid");

// The file as a whole.

/// Warning: an `ataccama.*` property no svcid module reads (often a typo; the message suggests
/// the nearest known name).
pub const UNKNOWN_PROPERTY: ProblemCode = ProblemCode::new("config.unknown-property");
/// Error: the configuration could not be bound and no other problem says why (a bug in svcid).
pub const NOT_BOUND: ProblemCode = ProblemCode::new("config.not-bound");

// Tokens (`ataccama.authentication.internal.jwt.*`).

/// Error: no `generator.key`.
pub const GENERATOR_KEY_MISSING: ProblemCode = ProblemCode::new("jwt.generator-key-missing");
/// Error: a `generator.key` that is empty or not a usable EC P-256 keypair.
pub const GENERATOR_KEY_UNUSABLE: ProblemCode = ProblemCode::new("jwt.generator-key-unusable");
/// Error: `token-expiration` written as a bare number, which is milliseconds.
pub const TOKEN_EXPIRATION_BARE_NUMBER: ProblemCode =
    ProblemCode::new("jwt.token-expiration-bare-number");
/// Error: `token-expiration` under a second.
pub const TOKEN_EXPIRATION_TOO_SHORT: ProblemCode =
    ProblemCode::new("jwt.token-expiration-too-short");
/// Error: `token-expiration` longer than `max-token-lifetime`: peers refuse every token.
pub const TOKEN_EXPIRATION_OVER_MAX_LIFETIME: ProblemCode =
    ProblemCode::new("jwt.token-expiration-over-max-lifetime");

// Trusted peers (`ataccama.one.platform.deployments.*`).

/// Error: a deployment name that is not letters, digits and dashes.
pub const DEPLOYMENT_NAME_INVALID: ProblemCode = ProblemCode::new("deployment.name-invalid");
/// Error: a deployment without `module`, or with an empty one.
pub const DEPLOYMENT_MODULE_MISSING: ProblemCode = ProblemCode::new("deployment.module-missing");
/// Warning: a deployment with no `jwt-keys`: no token from it can be verified.
pub const DEPLOYMENT_WITHOUT_KEYS: ProblemCode = ProblemCode::new("deployment.no-keys");
/// Error: a `security.token-profile` that is neither `strict` nor `product`.
pub const DEPLOYMENT_TOKEN_PROFILE_INVALID: ProblemCode =
    ProblemCode::new("deployment.token-profile-invalid");
/// Error: the deployments do not form a table (reported by the identity crate).
pub const DEPLOYMENTS_INVALID: ProblemCode = ProblemCode::new("deployment.registry-invalid");
/// Error: a key without `fingerprint`, or with an empty one or one holding spaces.
pub const FINGERPRINT_MISSING: ProblemCode = ProblemCode::new("deployment.fingerprint-missing");
/// Error: one fingerprint configured for two keys.
pub const FINGERPRINT_DUPLICATE: ProblemCode = ProblemCode::new("deployment.fingerprint-duplicate");
/// Warning (an error in `svcid check`): a `fingerprint` that differs from the `kid` inside its
/// `content` (docs/security.md C2).
pub const FINGERPRINT_DIFFERS_FROM_KID: ProblemCode =
    ProblemCode::new("deployment.fingerprint-differs-from-kid");
/// Error: a key without `content`.
pub const CONTENT_MISSING: ProblemCode = ProblemCode::new("deployment.content-missing");
/// Error: a `content` that is not a usable public JWK.
pub const CONTENT_INVALID: ProblemCode = ProblemCode::new("deployment.content-invalid");
/// Warning (an error in `svcid check`): a peer's `content` holding the private `d`
/// (docs/security.md C3).
pub const PRIVATE_KEY_IN_CONTENT: ProblemCode =
    ProblemCode::new("deployment.private-key-in-content");
/// Warning: the `kid` inside `content` is not the key's RFC 7638 thumbprint.
pub const KID_NOT_THUMBPRINT: ProblemCode = ProblemCode::new("deployment.kid-not-thumbprint");
/// Warning: a known field at the wrong depth under a deployment (`security.is-revoked`); ignored.
pub const FIELD_MISPLACED: ProblemCode = ProblemCode::new("deployment.field-misplaced");
/// Warning: an unknown field under a deployment; ignored.
pub const UNKNOWN_FIELD: ProblemCode = ProblemCode::new("deployment.unknown-field");
/// Warning (an error in `svcid check`): a misspelt `is-revoked` set to `true`: the key meant to
/// be revoked is still trusted.
pub const MISSPELT_REVOCATION: ProblemCode = ProblemCode::new("deployment.misspelt-revocation");

// DPE capabilities (`constraints.<key>=<value>`, the product's syntax).

/// Error: the value starts with `[…]` that is not a type specifier (or has no `]`).
pub const CONSTRAINT_UNKNOWN_TYPE: ProblemCode = ProblemCode::new("constraints.unknown-type");
/// Error: the value cannot be split into elements (an open `"`, a lone `\` at the end) or has
/// an empty element.
pub const CONSTRAINT_MALFORMED: ProblemCode = ProblemCode::new("constraints.malformed");
/// Error: an element that is not of the value's type, or out of its range.
pub const CONSTRAINT_NOT_OF_TYPE: ProblemCode = ProblemCode::new("constraints.not-of-type");
/// Warning: `constraints=<value>` with no capability name; ignored.
pub const CONSTRAINT_IGNORED: ProblemCode = ProblemCode::new("constraints.ignored");

// Transport security (`….tls.*`).

/// Error: a file TLS needs is not configured (certificate chain, private key, trust store).
pub const TLS_FILE_MISSING: ProblemCode = ProblemCode::new("tls.file-missing");
/// Error: a configured file cannot be read.
pub const TLS_FILE_UNREADABLE: ProblemCode = ProblemCode::new("tls.file-unreadable");
/// Error: a file holds no PEM certificate, or no PEM private key, that parses.
pub const TLS_PEM_INVALID: ProblemCode = ProblemCode::new("tls.pem-invalid");
/// Error: the private key does not belong to the first certificate of the chain.
pub const TLS_KEY_MISMATCH: ProblemCode = ProblemCode::new("tls.key-mismatch");
/// Error: the serving certificate has expired.
pub const TLS_CERTIFICATE_EXPIRED: ProblemCode = ProblemCode::new("tls.certificate-expired");
/// Error: a client TLS block with both `trust-all=true` and a `trust-store`.
pub const TLS_TRUST_CONFLICT: ProblemCode = ProblemCode::new("tls.trust-all-with-trust-store");
/// Warning: a client TLS block with `trust-all=true`: any server certificate is accepted.
pub const TLS_TRUST_ALL: ProblemCode = ProblemCode::new("tls.trust-all");

// The registry's database (`spring.datasource.*`).

/// Error: a `spring.datasource.url` that is not a PostgreSQL URL DPM can use.
pub const DATASOURCE_URL_INVALID: ProblemCode = ProblemCode::new("datasource.url-invalid");
/// Error: an `sslmode` (or `ssl`) on the URL that is not a known value, or a mode too weak for
/// `sslrootcert=system`.
pub const DATASOURCE_SSLMODE_INVALID: ProblemCode = ProblemCode::new("datasource.sslmode-invalid");
/// Error: `sslmode=verify-ca` or `verify-full` without `sslrootcert`.
pub const DATASOURCE_ROOT_CERT_MISSING: ProblemCode =
    ProblemCode::new("datasource.root-cert-missing");
/// Error: `sslcert` without `sslkey`, or the reverse.
pub const DATASOURCE_CLIENT_CERT_INCOMPLETE: ProblemCode =
    ProblemCode::new("datasource.client-cert-incomplete");
/// Error: the `sslkey` file may be read by the file's group or by every user.
pub const DATASOURCE_KEY_EXPOSED: ProblemCode = ProblemCode::new("datasource.key-exposed");

// People's tokens (`ataccama.authentication.keycloak.*`, `mp.jwt.*`, `etc/payara-mp-jwt.properties`).

/// Error: `ataccama.authentication.keycloak.server-url` without `realm`.
pub const KEYCLOAK_REALM_MISSING: ProblemCode = ProblemCode::new("users.keycloak-realm-missing");
/// Error: both `mp.jwt.verify.publickey` and `mp.jwt.verify.publickey.location` are set.
pub const USER_KEY_TWICE: ProblemCode = ProblemCode::new("users.key-twice");
/// Error: a MicroProfile JWT key without an issuer (`mp.jwt.verify.issuer` or Payara's
/// `accepted.issuer`).
pub const USER_ISSUER_MISSING: ProblemCode = ProblemCode::new("users.issuer-missing");
/// Error: a user-token key that cannot be read or used: unreadable file, not a public key, a
/// private key, RSA under 2048 or over 4096 bits, a curve other than P-256.
pub const USER_KEY_UNUSABLE: ProblemCode = ProblemCode::new("users.key-unusable");
/// Error: Keycloak and MicroProfile JWT configured with the same issuer.
pub const USER_ISSUER_DUPLICATE: ProblemCode = ProblemCode::new("users.issuer-duplicate");

// Who may see the HTTP port (`ataccama.authentication.http.acl.*`, `ataccama.one.webserver.*`,
// `svcid.console.*`).

/// Error: an ACL endpoint with an `endpoint-filter` and no `allowed-roles`, or the reverse.
pub const ACL_INCOMPLETE: ProblemCode = ProblemCode::new("access.acl-incomplete");
/// Error: a login endpoint or the console's public URL that is not an `http(s)://` URL.
pub const ACCESS_URL_INVALID: ProblemCode = ProblemCode::new("access.url-invalid");

/// Every code above, for documentation checks and uniqueness tests.
pub const ALL: &[ProblemCode] = &[
    ACL_INCOMPLETE,
    ACCESS_URL_INVALID,
    NOT_BOOLEAN,
    NOT_PORT,
    NOT_DURATION,
    NOT_POSITIVE,
    NOT_BIND_ADDRESS,
    NOT_LOG_LEVEL,
    INVALID_VALUE,
    UNKNOWN_PROPERTY,
    NOT_BOUND,
    GENERATOR_KEY_MISSING,
    GENERATOR_KEY_UNUSABLE,
    TOKEN_EXPIRATION_BARE_NUMBER,
    TOKEN_EXPIRATION_TOO_SHORT,
    TOKEN_EXPIRATION_OVER_MAX_LIFETIME,
    DEPLOYMENT_NAME_INVALID,
    DEPLOYMENT_MODULE_MISSING,
    DEPLOYMENT_WITHOUT_KEYS,
    DEPLOYMENT_TOKEN_PROFILE_INVALID,
    DEPLOYMENTS_INVALID,
    FINGERPRINT_MISSING,
    FINGERPRINT_DUPLICATE,
    FINGERPRINT_DIFFERS_FROM_KID,
    CONTENT_MISSING,
    CONTENT_INVALID,
    PRIVATE_KEY_IN_CONTENT,
    KID_NOT_THUMBPRINT,
    FIELD_MISPLACED,
    UNKNOWN_FIELD,
    MISSPELT_REVOCATION,
    CONSTRAINT_UNKNOWN_TYPE,
    CONSTRAINT_MALFORMED,
    CONSTRAINT_NOT_OF_TYPE,
    CONSTRAINT_IGNORED,
    TLS_FILE_MISSING,
    TLS_FILE_UNREADABLE,
    TLS_PEM_INVALID,
    TLS_KEY_MISMATCH,
    TLS_CERTIFICATE_EXPIRED,
    TLS_TRUST_CONFLICT,
    TLS_TRUST_ALL,
    DATASOURCE_URL_INVALID,
    DATASOURCE_SSLMODE_INVALID,
    DATASOURCE_ROOT_CERT_MISSING,
    DATASOURCE_CLIENT_CERT_INCOMPLETE,
    DATASOURCE_KEY_EXPOSED,
    KEYCLOAK_REALM_MISSING,
    USER_KEY_TWICE,
    USER_ISSUER_MISSING,
    USER_KEY_UNUSABLE,
    USER_ISSUER_DUPLICATE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_from_each_other_and_from_the_properties_crates() {
        let mut seen = std::collections::HashSet::new();
        for code in ALL.iter().chain(svcid_properties::codes::ALL) {
            assert!(seen.insert(code), "{code} twice");
        }
    }
}
