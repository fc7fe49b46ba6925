//! Transport security of the gRPC connections, from the checked settings of `svcid-config`
//! (which read and validated the PEM files at load): the server's TLS (and client-certificate
//! verification), accepted here on rustls so a reload can replace it ([`LiveServerTls`],
//! [`incoming`]). The client TLS of outbound channels is `svcid-client`'s.
//!
//! Neither side changes anything when TLS is off: plain text stays the default for a local pair.

use svcid_config::{ClientAuth, RoleSettings, ServerTls, ServerTrust, names};

/// Logs INFO `grpcTls` with what the port serves and WARN `certificateExpiring` when the serving
/// certificate expires within [`svcid_config::EXPIRY_WARNING_DAYS`] days (see [`warn_if_expiring`]).
pub fn log_serving(tls: Option<&ServerTls>) {
    let Some(tls) = tls else {
        return;
    };
    let identity = &tls.identity;
    tracing::info!(
        eventId = crate::events::GRPC_TLS,
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
            eventId = crate::events::CERTIFICATE_EXPIRING,
            file = %identity.cert_chain_file.display(),
            subject = %identity.subject,
            notAfter = %identity.not_after,
            daysLeft = identity.days_left,
            "The serving certificate expires soon; replace it before it does."
        );
    }
}

/// Logs WARN `insecureTrustAll` when this module's outbound client TLS accepts any server
/// certificate (`<prefix>.trust-all=true`), naming the property prefix and what it connects to.
/// At every start: the setting is meant for trials, and the log is where it must not go unseen.
pub fn warn_if_trusting_all(role: &RoleSettings) {
    let (tls, prefix, connection) = match role {
        RoleSettings::Dpe(dpe) => (
            dpe.dpm_tls.as_ref(),
            names::DPM_TLS,
            format!("DPE → DPM at {}", host_port(&dpe.dpm_host, dpe.dpm_port)),
        ),
        RoleSettings::Dpm(dpm) => (
            dpm.engine_tls.as_ref(),
            names::ENGINE_TLS,
            "DPM → engines".to_owned(),
        ),
    };
    if tls.is_some_and(|tls| tls.trust == ServerTrust::TrustAll) {
        tracing::warn!(
            eventId = crate::events::INSECURE_TRUST_ALL,
            connection = %connection,
            property = %format!("{prefix}.{}", names::tls::TRUST_ALL),
            fix = %format!(
                "set {prefix}.{} to the CA's PEM file (or leave it unset for the system's roots) \
                 and remove {prefix}.{}",
                names::tls::TRUST_STORE,
                names::tls::TRUST_ALL
            ),
            "Client TLS accepts any server certificate: the connection is encrypted but not \
             authenticated."
        );
    }
}

/// `host:port`, IPv6 literals bracketed.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Why a TLS configuration could not be built from (already validated) settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file did not parse as rustls reads it.
    #[error("{what}: {source}")]
    Pem {
        /// Which file.
        what: &'static str,
        /// rustls' reason.
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the certificate, key or trust store.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. an empty trust store).
    #[error("client-certificate verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The server TLS of a port, replaceable while it serves: every new connection is accepted with
/// the configuration in force, connections already open keep theirs. tonic's own server TLS is
/// fixed at start, so the daemons accept TLS here ([`incoming`]) and hand tonic the decrypted
/// streams.
#[derive(Debug)]
pub struct LiveServerTls {
    /// The rustls configuration in force and the settings it was built from.
    current: std::sync::RwLock<(std::sync::Arc<rustls::ServerConfig>, ServerTls)>,
}

impl LiveServerTls {
    /// The TLS of `tls`.
    pub fn new(tls: &ServerTls) -> Result<Self, TlsError> {
        Ok(Self {
            current: std::sync::RwLock::new((rustls_config(tls)?, tls.clone())),
        })
    }

    /// Serves `tls` to new connections; `Ok(false)` when it is what is already served.
    pub fn replace(&self, tls: &ServerTls) -> Result<bool, TlsError> {
        if self.read().1 == *tls {
            return Ok(false);
        }
        let config = rustls_config(tls)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (config, tls.clone());
        Ok(true)
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, (std::sync::Arc<rustls::ServerConfig>, ServerTls)> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::clone(&self.read().0))
    }
}

/// The rustls server configuration of `tls`, speaking HTTP/2 (ALPN `h2`) as gRPC needs.
fn rustls_config(tls: &ServerTls) -> Result<std::sync::Arc<rustls::ServerConfig>, TlsError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_slice_iter(&tls.identity.cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: "cert-chain",
            source,
        })?;
    let key =
        PrivateKeyDer::from_pem_slice(tls.identity.private_key_pem.expose()).map_err(|source| {
            TlsError::Pem {
                what: "private-key",
                source,
            }
        })?;
    let builder = rustls::ServerConfig::builder_with_provider(std::sync::Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match (&tls.trust_store_pem, tls.client_auth) {
        (Some(trust), ClientAuth::Optional | ClientAuth::Required) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(trust) {
                roots.add(cert.map_err(|source| TlsError::Pem {
                    what: "trust-store",
                    source,
                })?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                std::sync::Arc::new(roots),
                provider,
            );
            let verifier = if tls.client_auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build()?)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// Longest a TLS handshake may take before the connection is dropped (a client that connects and
/// says nothing must not hold a task forever).
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// TLS over the guarded connections of `admitted` (see [`crate::connections`]): each handshake
/// runs on a task of its own, bounded by [`HANDSHAKE_TIMEOUT`], with the configuration in force
/// when the connection arrived; finished streams come out for tonic.
pub fn incoming(
    mut admitted: tokio_stream::wrappers::ReceiverStream<
        std::io::Result<crate::connections::Guarded>,
    >,
    tls: std::sync::Arc<LiveServerTls>,
) -> tokio_stream::wrappers::ReceiverStream<
    Result<tokio_rustls::server::TlsStream<crate::connections::Guarded>, std::io::Error>,
> {
    use tokio_stream::StreamExt as _;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = admitted.next() => next,
                () = tx.closed() => return,
            };
            let Some(Ok(stream)) = next else {
                return;
            };
            let peer = tonic::transport::server::Connected::connect_info(&stream)
                .tcp
                .remote_addr()
                .map_or_else(|| "-".to_owned(), |a| a.to_string());
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(eventId = crate::events::TLS_HANDSHAKE_FAILED, peer = %peer, error = %error);
                    }
                    Err(_) => {
                        tracing::debug!(eventId = crate::events::TLS_HANDSHAKE_FAILED, peer = %peer, error = "timed out");
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
