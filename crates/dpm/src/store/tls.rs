//! TLS of the connection to the registry's database (`sslmode` on `spring.datasource.url`,
//! docs/postgres.md "TLS to the database"), on rustls with ring like the gRPC ports.
//!
//! The files were read and checked when the configuration was loaded; here they become a rustls
//! client configuration with DPM's own certificate verifier, which does exactly what the mode
//! asks ([`ServerCheck`]): nothing (`prefer`, `require` without `sslrootcert`: encrypted, not
//! authenticated), the chain up to a CA of `sslrootcert` (`verify-ca`, `require` with
//! `sslrootcert`), or the chain and the URL's host (`verify-full`). The handshake's own
//! signatures are verified in every mode. A refused certificate is described in the operator's
//! terms (which check failed, for which names, by which file), and [`explain`] finds that
//! description again in the database client's error.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use openssl::x509::X509;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use svcid_config::{DatasourceTls, RootCertificates, ServerCheck, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The database client's TLS mode for `mode` (`verify-*` are `require` plus DPM's verifier).
pub(super) fn client_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    }
}

/// The TLS connector for `tls`; `None` under `sslmode=disable`. An error names what could not be
/// used (a file that changed since it was checked, no system CA).
pub(super) fn connector(tls: &DatasourceTls) -> Result<Option<MakeRustlsConnect>, String> {
    if tls.mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let check = tls.server_check();
    let (roots, trusted_by) = match (&tls.root, check) {
        (_, ServerCheck::None) | (None, _) => (None, String::new()),
        (Some(RootCertificates::File { pem, file }), _) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| {
                    format!(
                        "sslrootcert {}: not a PEM certificate ({e})",
                        file.display()
                    )
                })?;
                roots.add(cert).map_err(|e| {
                    format!(
                        "sslrootcert {}: a certificate is unusable ({e})",
                        file.display()
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "sslrootcert {} holds no certificate",
                    file.display()
                ));
            }
            (Some(roots), format!("sslrootcert {}", file.display()))
        }
        (Some(RootCertificates::System), _) => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "sslrootcert=system: no CA certificate was found among the system's roots \
                     (set SSL_CERT_FILE, or give sslrootcert the CA's PEM file)"
                        .to_owned(),
                );
            }
            (
                Some(roots),
                "the system's CAs (sslrootcert=system)".to_owned(),
            )
        }
    };
    let verifier = Verifier {
        provider: Arc::clone(&provider),
        roots: roots.map(Arc::new),
        check_host: check == ServerCheck::ChainAndHost,
        trusted_by,
        mode: tls.mode,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let config = match &tls.client {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(&identity.cert_chain_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    format!(
                        "sslcert {}: not a PEM certificate chain ({e})",
                        identity.cert_chain_file.display()
                    )
                })?;
            let key =
                PrivateKeyDer::from_pem_slice(identity.private_key_pem.expose()).map_err(|_| {
                    format!(
                        "sslkey {}: not a PEM private key",
                        identity.private_key_file.display()
                    )
                })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!(
                    "sslcert {} with sslkey {}: {e}",
                    identity.cert_chain_file.display(),
                    identity.private_key_file.display()
                )
            })?
        }
    };
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// Why the server's certificate was refused, in the operator's terms (carried through rustls
/// and the database client as the handshake's error).
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// DPM's check of the server's certificate (see the module's documentation).
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    /// The CAs the chain must reach; `None`: the certificate is not checked.
    roots: Option<Arc<RootCertStore>>,
    /// Whether the certificate must name the host connected to (`verify-full`).
    check_host: bool,
    /// Where the CAs come from, for messages (`sslrootcert /etc/dpm/db-ca.pem`).
    trusted_by: String,
    mode: SslMode,
}

/// The subject, issuer and names (DNS and IP subjectAltNames) of a DER certificate, for
/// messages; empty when it does not parse.
fn described(der: &[u8]) -> (String, String, Vec<String>) {
    let Ok(cert) = X509::from_der(der) else {
        return (String::new(), String::new(), Vec::new());
    };
    let name = |n: &openssl::x509::X509NameRef| {
        n.entries()
            .filter_map(|e| {
                let field = e.object().nid().short_name().ok()?;
                Some(format!(
                    "{field}={}",
                    String::from_utf8_lossy(e.data().as_slice())
                ))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let names = cert
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|san| {
                    san.dnsname().map(str::to_owned).or_else(|| {
                        let ip = san.ipaddress()?;
                        let ip: IpAddr = match ip.len() {
                            4 => <[u8; 4]>::try_from(ip).ok()?.into(),
                            16 => <[u8; 16]>::try_from(ip).ok()?.into(),
                            _ => return None,
                        };
                        Some(ip.to_string())
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    (name(cert.subject_name()), name(cert.issuer_name()), names)
}

impl Verifier {
    fn refused(&self, why: String) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refused(
            format!("{why} (sslmode={})", self.mode.as_str()),
        )))))
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let (subject, issuer, names) = described(end_entity);
        let cert = ParsedCertificate::try_from(end_entity)
            .map_err(|e| self.refused(format!("the server's certificate cannot be read ({e})")))?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )
        .map_err(|e| {
            let why = match e {
                rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                ) => format!(
                    "the server's certificate ({subject}, issued by {issuer}) is not trusted by \
                     {}",
                    self.trusted_by
                ),
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => format!("the server's certificate ({subject}) has expired"),
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
                ) => format!("the server's certificate ({subject}) is not valid yet"),
                other => format!(
                    "the server's certificate ({subject}, issued by {issuer}) was refused: {other}"
                ),
            };
            self.refused(why)
        })?;
        if self.check_host && rustls::client::verify_server_name(&cert, server_name).is_err() {
            let host = server_name.to_str();
            let why = if names.is_empty() {
                format!(
                    "the server's certificate ({subject}) names no host (no DNS or IP \
                     subjectAltName), not {host}"
                )
            } else {
                format!(
                    "the server's certificate is for host {}, not {host}",
                    names.join(", ")
                )
            };
            return Err(self.refused(why));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a connection error says about TLS, in the operator's terms: the server not offering TLS
/// where the mode needs it, or why DPM refused its certificate. `None` for other errors.
pub(super) fn explain(error: &tokio_postgres::Error, mode: SslMode) -> Option<String> {
    let source = std::error::Error::source(error)?;
    if source.to_string() == "server does not support TLS" {
        return Some(format!(
            "the server does not offer TLS (sslmode={}); enable ssl on the server, or lower \
             sslmode",
            mode.as_str()
        ));
    }
    let io = source.downcast_ref::<std::io::Error>()?;
    let tls = io.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match tls {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            match inner.downcast_ref::<Refused>() {
                Some(refused) => format!("TLS handshake refused: {refused}"),
                None => format!("TLS handshake failed: {tls}"),
            }
        }
        rustls::Error::AlertReceived(alert) => format!(
            "TLS handshake failed: the server sent the alert {alert:?} (sslmode={}; a server \
             that requires a client certificate refuses a connection without sslcert/sslkey)",
            mode.as_str()
        ),
        other => format!("TLS handshake failed: {other} (sslmode={})", mode.as_str()),
    })
}
