//! Where an outbound call goes: `http://host:port` in plain text, `https://host:port` with the
//! client TLS of the checked settings: the server's certificate verified against the trust store
//! (the only roots), against the system's roots when there is no trust store, or not at all with
//! `trust-all`; the client certificate for mutual TLS; the server-name override.
//!
//! Callers get one [`Endpoint`] whatever the trust: tonic connects it, with tonic's own verifier
//! for a trust store or the system's roots and [`AcceptAnyServerCertificate`] for `trust-all`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use svcid_config::{ClientTls, ServerTrust};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// `host:port` as a URI tonic can connect to (IPv6 literals bracketed): `https://` when `tls`,
/// `http://` otherwise.
pub fn uri(host: &str, port: u16, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("{scheme}://{}", SocketAddr::from((ip, port))),
        _ => format!("{scheme}://{host}:{port}"),
    }
}

/// An endpoint for `host:port`: TLS with `tls`, plain text without. Connection and call
/// timeouts are the caller's to add.
///
/// With [`ServerTrust::SystemRoots`] the system's roots are read here (on Linux the
/// distribution's bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set); finding none is an
/// error.
pub fn endpoint(host: &str, port: u16, tls: Option<&ClientTls>) -> Result<Endpoint, EndpointError> {
    let endpoint = Endpoint::from_shared(uri(host, port, tls.is_some())).map_err(EndpointError)?;
    let Some(tls) = tls else {
        return Ok(endpoint);
    };
    let mut config = ClientTlsConfig::new();
    if let Some(identity) = &tls.identity {
        config = config.identity(Identity::from_pem(
            &identity.cert_chain_pem,
            identity.private_key_pem.expose(),
        ));
    }
    if let Some(name) = &tls.server_name {
        config = config.domain_name(name.clone());
    }
    match &tls.trust {
        ServerTrust::Store { pem, .. } => {
            endpoint.tls_config(config.ca_certificate(Certificate::from_pem(pem)))
        }
        ServerTrust::SystemRoots => endpoint.tls_config(config.with_native_roots()),
        ServerTrust::TrustAll => {
            endpoint.tls_config_with_verifier(config, Arc::new(AcceptAnyServerCertificate::new()))
        }
    }
    .map_err(EndpointError)
}

/// Why [`endpoint`] could not build an endpoint: a host that makes no URI, or client TLS tonic
/// cannot set up (no system roots found, a certificate it cannot use). Displayed with tonic's
/// causes, which its own error keeps out of its text ("transport error").
#[derive(Debug)]
pub struct EndpointError(tonic::transport::Error);

impl std::fmt::Display for EndpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(&self.0);
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

// The causes are in the text already; no `source` repeats them.
impl std::error::Error for EndpointError {}

/// The server-certificate verifier of `trust-all`: every certificate is accepted, whoever issued
/// it, whatever names it carries and however long ago it expired.
///
/// Validation policy: nothing about the certificate is checked. The handshake signatures are: the
/// server must still prove it holds the private key of the certificate it sent (with the
/// signature algorithms of rustls' ring provider), so the session keys are agreed with that
/// holder. That makes the connection encrypted, not authenticated: whoever can intercept it can
/// present a certificate of their own.
#[derive(Debug)]
pub struct AcceptAnyServerCertificate {
    /// The signature algorithms the handshake signatures are verified with.
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyServerCertificate {
    /// The verifier, with the ring provider's signature algorithms (those tonic's TLS uses).
    pub fn new() -> Self {
        Self::with_provider(&rustls::crypto::ring::default_provider())
    }

    /// The verifier with `provider`'s signature algorithms.
    pub fn with_provider(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl Default for AcceptAnyServerCertificate {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCertVerifier for AcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The handshake signatures of trust-all are checked end to end (tests/tls.rs): rustls
    // builds no `DigitallySignedStruct` outside a handshake.

    #[test]
    fn uris_bracket_ipv6_and_name_the_scheme() {
        assert_eq!(uri("localhost", 8531, false), "http://localhost:8531");
        assert_eq!(uri("127.0.0.1", 1, true), "https://127.0.0.1:1");
        assert_eq!(uri("::1", 8531, false), "http://[::1]:8531");
        assert_eq!(uri("fe80::1", 2, true), "https://[fe80::1]:2");
    }

    #[test]
    fn a_plain_endpoint_is_http() {
        let endpoint = endpoint("dpm.example", 8531, None).unwrap();
        assert_eq!(endpoint.uri().to_string(), "http://dpm.example:8531/");
    }

    #[test]
    fn a_host_that_makes_no_uri_is_an_error_with_its_cause() {
        let error = endpoint("bad host", 8531, None).unwrap_err().to_string();
        assert!(error.starts_with("invalid URI"), "{error}");
        assert!(error.contains(": "), "{error}");
    }

    fn client_tls(trust: ServerTrust) -> ClientTls {
        ClientTls {
            trust,
            identity: None,
            server_name: Some("dpm.example.com".into()),
        }
    }

    #[test]
    fn every_trust_gives_an_https_endpoint() {
        let trust_all = client_tls(ServerTrust::TrustAll);
        let endpoint = endpoint("127.0.0.1", 8531, Some(&trust_all)).unwrap();
        assert_eq!(endpoint.uri().to_string(), "https://127.0.0.1:8531/");
        let store = client_tls(ServerTrust::Store {
            pem: Vec::new(),
            file: "ca.pem".into(),
        });
        let endpoint = super::endpoint("::1", 8531, Some(&store)).unwrap();
        assert_eq!(endpoint.uri().to_string(), "https://[::1]:8531/");
    }

    #[test]
    fn trust_all_accepts_any_certificate() {
        let verifier = AcceptAnyServerCertificate::new();
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let name = ServerName::try_from("dpm.example.com").unwrap();
        assert!(
            verifier
                .verify_server_cert(&garbage, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        assert!(!verifier.supported_verify_schemes().is_empty());
    }
}
