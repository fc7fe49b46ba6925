//! Where an outbound call goes: `http://host:port` in plain text, `https://host:port` with the
//! client TLS of the checked settings (the trust store as the only roots, the client certificate
//! for mutual TLS, the server-name override).

use std::net::{IpAddr, SocketAddr};

use svcid_config::ClientTls;
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

/// tonic's client TLS configuration for `tls`.
pub fn tls_config(tls: &ClientTls) -> ClientTlsConfig {
    let mut config =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.trust_store_pem));
    if let Some(identity) = &tls.identity {
        config = config.identity(Identity::from_pem(
            &identity.cert_chain_pem,
            identity.private_key_pem.expose(),
        ));
    }
    if let Some(name) = &tls.server_name {
        config = config.domain_name(name.clone());
    }
    config
}

/// An endpoint for `host:port`: TLS with `tls`, plain text without. Connection and call
/// timeouts are the caller's to add.
pub fn endpoint(
    host: &str,
    port: u16,
    tls: Option<&ClientTls>,
) -> Result<Endpoint, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(uri(host, port, tls.is_some()))?;
    match tls {
        None => Ok(endpoint),
        Some(tls) => endpoint.tls_config(tls_config(tls)),
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
