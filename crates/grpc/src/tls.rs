//! Transport security of the gRPC connections, from the checked settings of `svcid-config`
//! (which read and validated the PEM files at load): the server's TLS (and client-certificate
//! verification) and the client TLS of outbound channels. TLS runs on rustls via tonic.
//!
//! Neither side changes anything when TLS is off: plain text stays the default for a local pair.

use svcid_config::{ClientAuth, ClientTls, GrpcLimits, ServerTls};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

/// The server builder of [`crate::server::limited`], serving TLS when `tls` is set.
pub fn server(
    limits: &GrpcLimits,
    tls: Option<&ServerTls>,
) -> Result<Server, tonic::transport::Error> {
    let server = crate::server::limited(limits);
    match tls {
        None => Ok(server),
        Some(tls) => server.tls_config(server_config(tls)),
    }
}

/// tonic's server TLS configuration for `tls`.
pub fn server_config(tls: &ServerTls) -> ServerTlsConfig {
    let identity = Identity::from_pem(
        &tls.identity.cert_chain_pem,
        tls.identity.private_key_pem.expose(),
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    if let (Some(trust), ClientAuth::Optional | ClientAuth::Required) =
        (&tls.trust_store_pem, tls.client_auth)
    {
        config = config
            .client_ca_root(Certificate::from_pem(trust))
            .client_auth_optional(tls.client_auth == ClientAuth::Optional);
    }
    config
}

/// tonic's client TLS configuration for `tls`: the trust store as the only roots, the client
/// certificate when one is configured, and the server-name override.
pub fn client_config(tls: &ClientTls) -> ClientTlsConfig {
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

/// An endpoint for `host:port`: `https://` with `tls`, `http://` (plain text) without.
pub fn endpoint(
    host: &str,
    port: u16,
    tls: Option<&ClientTls>,
) -> Result<Endpoint, tonic::transport::Error> {
    let uri = crate::server::endpoint_uri(host, port);
    match tls {
        None => Endpoint::from_shared(uri),
        Some(tls) => {
            let uri = match uri.strip_prefix("http://") {
                Some(rest) => format!("https://{rest}"),
                None => uri,
            };
            Endpoint::from_shared(uri)?.tls_config(client_config(tls))
        }
    }
}

/// Logs INFO `grpcTls` with what the port serves and WARN `certificateExpiring` when the serving
/// certificate expires within [`svcid_config::EXPIRY_WARNING_DAYS`] days (see [`warn_if_expiring`]).
pub fn log_serving(tls: Option<&ServerTls>) {
    let Some(tls) = tls else {
        return;
    };
    let identity = &tls.identity;
    tracing::info!(
        eventId = "grpcTls",
        subject = %identity.subject,
        notAfter = %identity.not_after,
        clientAuth = ?tls.client_auth,
        "gRPC port serves TLS."
    );
    warn_if_expiring(Some(tls));
}

/// Logs WARN `certificateExpiring` when the serving certificate expires within
/// [`svcid_config::EXPIRY_WARNING_DAYS`] days; at start and again on every reload, so a daemon that
/// runs for weeks still says so in time.
pub fn warn_if_expiring(tls: Option<&ServerTls>) {
    let Some(tls) = tls else {
        return;
    };
    let identity = &tls.identity;
    if identity.expires_soon() {
        tracing::warn!(
            eventId = "certificateExpiring",
            file = %identity.cert_chain_file.display(),
            subject = %identity.subject,
            notAfter = %identity.not_after,
            daysLeft = identity.days_left,
            "The serving certificate expires soon; replace it before it does."
        );
    }
}

/// A call's failure with the causes tonic keeps out of [`tonic::Status::message`] (a transport
/// error says only "transport error"; the reason, such as an untrusted certificate, is in its
/// sources).
pub fn reason(status: &tonic::Status) -> String {
    let mut reason = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        let text = error.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = error.source();
    }
    reason
}
