//! Service identity: P-256 JWKs, RFC 7638 thumbprints, the deployment registry, ES256 service tokens, ServiceIdentity and authorization. No async runtime.
