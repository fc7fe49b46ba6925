//! Binding of transport security: the server TLS of a daemon's gRPC port
//! (`ataccama.server.grpc.tls.*`) and the client TLS of its outbound connections (DPE → DPM:
//! `ataccama.client.connection.dpm.grpc.tls.*`; DPM → engines:
//! `ataccama.one.dpm.registry.grpc-client.tls.*`).
//!
//! Files are read and checked here, at load, before anything is bound: an unreadable file, PEM
//! that does not parse, a key that does not belong to its certificate, an expired serving
//! certificate, client-certificate verification without a trust store or a client that both
//! trusts all servers and names a trust store are configuration errors naming the property and
//! the fix; `trust-all` itself is a warning. The daemons only hand the checked PEM bytes to tonic. Paths
//! are relative to the module home. Certificates are parsed with OpenSSL, which svcid already
//! links for its ES256 keys; the TLS sessions themselves run on rustls (tonic's `tls-ring`).

use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::bind::{Binder, shown};
use crate::codes;
use crate::home::ModuleHome;
use crate::names;
use crate::names::tls as field;

/// A serving certificate that expires within this many days is logged as `certificateExpiring`.
pub const EXPIRY_WARNING_DAYS: i32 = 30;

/// Whether a TLS server asks its clients for a certificate (`….tls.mtls`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for; the service token alone identifies the peer.
    #[default]
    None,
    /// A client certificate is verified when one is presented; clients without one are served.
    Optional,
    /// Only clients presenting a certificate issued by the trust store may connect.
    Required,
}

/// PEM bytes of a private key: kept out of `Debug` and wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(Vec<u8>);

impl PrivateKeyPem {
    /// The PEM text, for the TLS library only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

impl Drop for PrivateKeyPem {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A certificate chain and its private key, both checked to belong together. Two are equal when
/// their files and contents are ([`CertifiedKey::days_left`] is left out: it changes with the
/// day a file is read, not with the certificate).
#[derive(Clone, Debug, Eq)]
pub struct CertifiedKey {
    /// Where the chain was read from (for logs and reloads).
    pub cert_chain_file: PathBuf,
    /// Where the key was read from.
    pub private_key_file: PathBuf,
    /// The chain, leaf first, PEM.
    pub cert_chain_pem: Vec<u8>,
    /// The leaf's private key, PEM.
    pub private_key_pem: PrivateKeyPem,
    /// The leaf's subject, for logs (`CN=dpm.example.com`).
    pub subject: String,
    /// The leaf's `notAfter`, as OpenSSL prints it (`Nov 26 12:00:00 2027 GMT`).
    pub not_after: String,
    /// Whole days from load until `notAfter` (negative once expired).
    pub days_left: i32,
}

impl PartialEq for CertifiedKey {
    fn eq(&self, other: &Self) -> bool {
        self.cert_chain_file == other.cert_chain_file
            && self.private_key_file == other.private_key_file
            && self.cert_chain_pem == other.cert_chain_pem
            && self.private_key_pem == other.private_key_pem
    }
}

impl CertifiedKey {
    /// Whether the certificate expires within [`EXPIRY_WARNING_DAYS`] (the WARN at start).
    pub fn expires_soon(&self) -> bool {
        self.days_left < EXPIRY_WARNING_DAYS
    }
}

/// `ataccama.server.grpc.tls.*`: the gRPC port speaks TLS with this identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// The serving certificate and key.
    pub identity: CertifiedKey,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
    /// CA certificates (PEM) that issue client certificates; present whenever `client_auth` is
    /// not [`ClientAuth::None`].
    pub trust_store_pem: Option<Vec<u8>>,
    /// Where the trust store was read from (watched for changes); set with `trust_store_pem`.
    pub trust_store_file: Option<PathBuf>,
}

/// How a client decides whether to trust the server's certificate (`<prefix>.trust-store`,
/// `<prefix>.trust-all`).
#[derive(Clone, PartialEq, Eq)]
pub enum ServerTrust {
    /// `trust-store`: the server's certificate must chain to these CA certificates, the only
    /// roots (the usual case: inter-module certificates come from a private CA).
    Store {
        /// The CA certificates, PEM.
        pem: Vec<u8>,
        /// Where they were read from (watched for changes).
        file: PathBuf,
    },
    /// No `trust-store`: the operating system's roots (on Linux the distribution's CA bundle;
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` replace them), read when a connection is set up.
    SystemRoots,
    /// `trust-all=true`: any server certificate is accepted, as in the product. The connection is
    /// encrypted but not authenticated; the daemons warn at every start.
    TrustAll,
}

impl ServerTrust {
    /// The trust-store file, when there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Store { file, .. } => Some(file),
            Self::SystemRoots | Self::TrustAll => None,
        }
    }
}

impl std::fmt::Debug for ServerTrust {
    // The file says which store; its bytes would only fill logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store { file, .. } => f.debug_struct("Store").field("file", file).finish(),
            Self::SystemRoots => f.write_str("SystemRoots"),
            Self::TrustAll => f.write_str("TrustAll"),
        }
    }
}

/// Client TLS of one kind of outbound connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTls {
    /// Which server certificates are accepted.
    pub trust: ServerTrust,
    /// The client certificate and key offered to servers that verify clients (mTLS).
    pub identity: Option<CertifiedKey>,
    /// The name the server's certificate must carry, when it differs from the host connected to.
    pub server_name: Option<String>,
}

fn name(prefix: &str, field: &str) -> String {
    format!("{prefix}.{field}")
}

/// Binds `ataccama.server.grpc.tls.*`; `None` when TLS is off (the default) or broken (with the
/// problems recorded).
pub(crate) fn bind_server(b: &mut Binder<'_>, home: &ModuleHome) -> Option<ServerTls> {
    let prefix = names::GRPC_TLS;
    let enabled_name = name(prefix, field::ENABLED);
    if !b.bool(&enabled_name, false) {
        return None;
    }
    let client_auth = b.parsed(
        &name(prefix, field::MTLS),
        ClientAuth::None,
        codes::INVALID_VALUE,
        "use NONE, OPTIONAL or REQUIRED",
        |raw| match raw.to_ascii_uppercase().as_str() {
            "NONE" | "" => Ok(ClientAuth::None),
            "OPTIONAL" => Ok(ClientAuth::Optional),
            "REQUIRED" => Ok(ClientAuth::Required),
            _ => Err(format!("{} is not a client-certificate mode", shown(raw))),
        },
    );
    let identity = bind_identity(b, home, prefix, &enabled_name, true);
    let trust_store_name = name(prefix, field::TRUST_STORE);
    let trust_store_pem = match (client_auth, b.string(&trust_store_name)) {
        (_, Some((path, value))) if !path.is_empty() => {
            read_certificates(b, home, value, &path).map(|(pem, _)| (pem, resolve(home, &path)))
        }
        (ClientAuth::None, _) => None,
        (_, _) => {
            b.missing(
                codes::TLS_FILE_MISSING,
                &trust_store_name,
                "client-certificate verification (mtls=OPTIONAL or REQUIRED) needs the PEM file \
                 of the CA that issues client certificates",
            );
            None
        }
    };
    let (trust_store_pem, trust_store_file) = if client_auth == ClientAuth::None {
        (None, None)
    } else {
        let (pem, file) = trust_store_pem?;
        (Some(pem), Some(file))
    };
    Some(ServerTls {
        identity: identity?,
        client_auth,
        trust_store_pem,
        trust_store_file,
    })
}

/// Binds one client TLS block under `prefix` (e.g. `ataccama.client.connection.dpm.grpc.tls`);
/// `None` when it is off (the default) or broken (with the problems recorded).
pub(crate) fn bind_client(
    b: &mut Binder<'_>,
    home: &ModuleHome,
    prefix: &str,
) -> Option<ClientTls> {
    let enabled_name = name(prefix, field::ENABLED);
    if !b.bool(&enabled_name, false) {
        return None;
    }
    let trust_all_name = name(prefix, field::TRUST_ALL);
    let trust_all = b.bool(&trust_all_name, false);
    let trust_store_name = name(prefix, field::TRUST_STORE);
    let trust_store = b
        .string(&trust_store_name)
        .filter(|(path, _)| !path.is_empty());
    let trust = match (trust_all, trust_store) {
        (true, Some((_, value))) => {
            b.error_at(
                codes::TLS_TRUST_CONFLICT,
                value,
                format!(
                    "{trust_all_name}=true accepts any server certificate, so a trust store \
                     cannot also be given"
                ),
                format!(
                    "remove {trust_all_name} to verify the server against this trust store \
                     (recommended), or remove {trust_store_name}"
                ),
            );
            None
        }
        (true, None) => {
            if let Some((_, value)) = b.string(&trust_all_name) {
                b.warn_at(
                    codes::TLS_TRUST_ALL,
                    value,
                    "any server certificate is accepted: the connection is encrypted, but whoever \
                     can intercept it can pose as the server and read the service tokens",
                    format!(
                        "set {trust_store_name} to the PEM file of the CA that issued the server's \
                         certificate (or leave it unset to use the system's roots) and remove \
                         {trust_all_name}"
                    ),
                );
            }
            Some(ServerTrust::TrustAll)
        }
        (false, Some((path, value))) => {
            read_certificates(b, home, value, &path).map(|(pem, _)| ServerTrust::Store {
                pem,
                file: resolve(home, &path),
            })
        }
        (false, None) => Some(ServerTrust::SystemRoots),
    };
    let has_cert = b
        .string(&name(prefix, field::CERT_CHAIN))
        .is_some_and(|(p, _)| !p.is_empty());
    let has_key = b
        .string(&name(prefix, field::PRIVATE_KEY))
        .is_some_and(|(p, _)| !p.is_empty());
    // A client certificate is optional; half of one is a mistake.
    let identity = if has_cert || has_key {
        Some(bind_identity(b, home, prefix, &enabled_name, false)?)
    } else {
        None
    };
    let server_name = b
        .string(&name(prefix, field::SERVER_NAME))
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty());
    Some(ClientTls {
        trust: trust?,
        identity,
        server_name,
    })
}

/// The client TLS of a connection to DPM set by `--<name>=<value>` arguments alone, under the
/// names a DPE reads ([`names::DPM_TLS`]`.enabled`, `.trust-store`, `.trust-all`,
/// `.cert-chain`, `.private-key`, `.server-name`), with relative paths resolved against `base`: `svcid`'s own
/// calls get the daemons' rules and the same errors. `Ok(None)` when `enabled` is not true.
pub fn dpm_client_tls_from_args(
    base: &Path,
    args: &[String],
) -> Result<Option<ClientTls>, Vec<svcid_properties::Problem>> {
    let mut props = svcid_properties::PropertySet::new();
    props.add_args(args)?;
    let mut b = Binder::new(&props);
    let tls = bind_client(&mut b, &ModuleHome::new(base), names::DPM_TLS);
    if b.problems
        .iter()
        .any(|p| p.severity == svcid_properties::Severity::Error)
    {
        return Err(b.problems);
    }
    Ok(tls)
}

/// Reads `<prefix>.cert-chain` and `<prefix>.private-key` and checks that they belong together
/// (and, for a serving certificate, that it has not expired).
fn bind_identity(
    b: &mut Binder<'_>,
    home: &ModuleHome,
    prefix: &str,
    enabled_name: &str,
    serving: bool,
) -> Option<CertifiedKey> {
    let cert_name = name(prefix, field::CERT_CHAIN);
    let key_name = name(prefix, field::PRIVATE_KEY);
    let what = if serving {
        "TLS"
    } else {
        "a client certificate"
    };
    let cert = match b.string(&cert_name) {
        Some((path, value)) if !path.is_empty() => Some((path, value)),
        _ => {
            b.missing(
                codes::TLS_FILE_MISSING,
                &cert_name,
                format!(
                    "{what} needs the certificate chain, a PEM file relative to the module home \
                     (or set {enabled_name}=false)"
                ),
            );
            None
        }
    };
    let key = match b.string(&key_name) {
        Some((path, value)) if !path.is_empty() => Some((path, value)),
        _ => {
            b.missing(
                codes::TLS_FILE_MISSING,
                &key_name,
                format!(
                    "{what} needs the certificate's private key, a PEM file relative to the \
                     module home (or set {enabled_name}=false)"
                ),
            );
            None
        }
    };
    let (cert_path, cert_value) = cert?;
    let (key_path, key_value) = key?;
    certified_key(
        b,
        home,
        (&cert_path, cert_value),
        (&key_path, key_value),
        serving,
    )
}

/// Reads a certificate chain and its private key (each a path with the property it came from)
/// and checks that they belong together (and, for a serving certificate, that it has not
/// expired).
pub(crate) fn certified_key(
    b: &mut Binder<'_>,
    home: &ModuleHome,
    (cert_path, cert_value): (&str, &svcid_properties::Value),
    (key_path, key_value): (&str, &svcid_properties::Value),
    serving: bool,
) -> Option<CertifiedKey> {
    let chain = read_certificates(b, home, cert_value, cert_path);
    let key = read_private_key(b, home, key_value, key_path);
    let ((cert_chain_pem, chain), (private_key_pem, key)) = (chain?, key?);
    let leaf = chain.first()?;
    let matches = leaf
        .public_key()
        .map(|public| public.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        b.error_at(
            codes::TLS_KEY_MISMATCH,
            key_value,
            format!(
                "the private key {} does not belong to the certificate {} (the first certificate \
                 of the chain)",
                shown(key_path),
                shown(cert_path)
            ),
            "use the key the certificate was issued for, and put the server's own certificate \
             first in the chain file",
        );
        return None;
    }
    let subject = subject_of(leaf);
    let not_after = leaf.not_after().to_string();
    let days_left = Asn1Time::days_from_now(0)
        .ok()
        .and_then(|now| now.diff(leaf.not_after()).ok())
        .map(|diff| diff.days)
        .unwrap_or(0);
    let expired = Asn1Time::days_from_now(0)
        .map(|now| leaf.not_after() <= now)
        .unwrap_or(false);
    if serving && expired {
        b.error_at(
            codes::TLS_CERTIFICATE_EXPIRED,
            cert_value,
            format!(
                "the certificate {} ({subject}) expired on {not_after}",
                shown(cert_path)
            ),
            "issue a new certificate and replace the file",
        );
        return None;
    }
    Some(CertifiedKey {
        cert_chain_file: resolve(home, cert_path),
        private_key_file: resolve(home, key_path),
        cert_chain_pem,
        private_key_pem: PrivateKeyPem(private_key_pem),
        subject,
        not_after,
        days_left,
    })
}

fn subject_of(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .filter_map(|e| {
            let field = e.object().nid().short_name().ok()?;
            let value = String::from_utf8_lossy(e.data().as_slice()).into_owned();
            Some(format!("{field}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The file's bytes, or a problem naming the property and the OS's reason.
fn read_file(
    b: &mut Binder<'_>,
    home: &ModuleHome,
    value: &svcid_properties::Value,
    path: &str,
) -> Option<Vec<u8>> {
    let full = resolve(home, path);
    match std::fs::read(&full) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            b.error_at(
                codes::TLS_FILE_UNREADABLE,
                value,
                format!("cannot read {}: {error}", full.display()),
                "give the path of a readable PEM file (relative paths start at the module home)",
            );
            None
        }
    }
}

pub(crate) fn resolve(home: &ModuleHome, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_owned()
    } else {
        home.root().join(path)
    }
}

/// One or more PEM certificates.
pub(crate) fn read_certificates(
    b: &mut Binder<'_>,
    home: &ModuleHome,
    value: &svcid_properties::Value,
    path: &str,
) -> Option<(Vec<u8>, Vec<X509>)> {
    let bytes = read_file(b, home, value, path)?;
    match X509::stack_from_pem(&bytes) {
        Ok(chain) if !chain.is_empty() => Some((bytes, chain)),
        _ => {
            b.error_at(
                codes::TLS_PEM_INVALID,
                value,
                format!("{} holds no PEM certificate that parses", shown(path)),
                "give a file with one or more -----BEGIN CERTIFICATE----- blocks",
            );
            None
        }
    }
}

/// A PEM private key (PKCS#8, RSA or EC).
fn read_private_key(
    b: &mut Binder<'_>,
    home: &ModuleHome,
    value: &svcid_properties::Value,
    path: &str,
) -> Option<(Vec<u8>, PKey<Private>)> {
    let bytes = read_file(b, home, value, path)?;
    match PKey::private_key_from_pem(&bytes) {
        Ok(key) => Some((bytes, key)),
        Err(_) => {
            let mut bytes = bytes;
            zeroize::Zeroize::zeroize(&mut bytes);
            b.error_at(
                codes::TLS_PEM_INVALID,
                value,
                format!("{} holds no PEM private key that parses", shown(path)),
                "give an unencrypted PEM key (-----BEGIN PRIVATE KEY-----, as openssl genpkey writes)",
            );
            None
        }
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use openssl::asn1::Asn1Integer;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509Builder, X509NameBuilder};
    use svcid_properties::PropertySet;

    use super::*;

    fn key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    /// A certificate for `key` valid from `from` to `until` (unix seconds), signed by `issuer`
    /// or self-signed.
    fn cert(
        key: &PKey<Private>,
        cn: &str,
        issuer: Option<(&X509, &PKey<Private>)>,
        from: i64,
        until: i64,
    ) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = Asn1Integer::from_bn(&BigNum::from_u32(7).unwrap()).unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(issuer.map_or(&*name, |(c, _)| c.subject_name()))
            .unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(from).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(until).unwrap())
            .unwrap();
        if issuer.is_none() {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
        } else {
            let san = SubjectAlternativeName::new()
                .dns("localhost")
                .build(&b.x509v3_context(None, None))
                .unwrap();
            b.append_extension(san).unwrap();
            b.append_extension(
                ExtendedKeyUsage::new()
                    .server_auth()
                    .client_auth()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        }
        b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
            .unwrap();
        b.build()
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    const DAY: i64 = 86_400;

    /// A home with `ca.pem`, `server.pem` / `server.key` (valid a year), `other.key`,
    /// `expired.pem` / `expired.key` and `soon.pem` / `soon.key` (10 days left).
    fn home() -> (tempfile::TempDir, ModuleHome) {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = key();
        let ca = cert(
            &ca_key,
            "svcid test CA",
            None,
            now() - DAY,
            now() + 400 * DAY,
        );
        let write =
            |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes).unwrap();
        write("ca.pem", ca.to_pem().unwrap());
        for (name, from, until) in [
            ("server", now() - DAY, now() + 365 * DAY),
            ("expired", now() - 10 * DAY, now() - DAY),
            ("soon", now() - DAY, now() + 10 * DAY),
        ] {
            let k = key();
            let c = cert(&k, name, Some((&ca, &ca_key)), from, until);
            write(&format!("{name}.pem"), c.to_pem().unwrap());
            write(
                &format!("{name}.key"),
                k.private_key_to_pem_pkcs8().unwrap(),
            );
        }
        write("other.key", key().private_key_to_pem_pkcs8().unwrap());
        write(
            "garbage.pem",
            b"-----BEGIN CERTIFICATE-----\nnot base64\n".to_vec(),
        );
        let home = ModuleHome::new(dir.path());
        (dir, home)
    }

    fn server(text: &str) -> (Option<ServerTls>, Vec<String>) {
        let (_dir, home) = home();
        let mut set = PropertySet::new();
        set.load_str(text, Path::new("application.properties"))
            .unwrap();
        let mut b = Binder::new(&set);
        let tls = bind_server(&mut b, &home);
        (tls, b.problems.iter().map(ToString::to_string).collect())
    }

    fn client(text: &str) -> (Option<ClientTls>, Vec<String>) {
        let (_dir, home) = home();
        let mut set = PropertySet::new();
        set.load_str(text, Path::new("application.properties"))
            .unwrap();
        let mut b = Binder::new(&set);
        let tls = bind_client(&mut b, &home, names::DPM_TLS);
        (tls, b.problems.iter().map(ToString::to_string).collect())
    }

    const SERVER: &str = "ataccama.server.grpc.tls.enabled=true\n\
                          ataccama.server.grpc.tls.cert-chain=server.pem\n\
                          ataccama.server.grpc.tls.private-key=server.key\n";

    #[test]
    fn tls_is_off_unless_enabled() {
        let (tls, problems) = server("ataccama.server.grpc.tls.cert-chain=missing.pem\n");
        assert!(tls.is_none());
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_valid_server_identity_binds() {
        let (tls, problems) = server(SERVER);
        assert!(problems.is_empty(), "{problems:?}");
        let tls = tls.unwrap();
        assert_eq!(tls.client_auth, ClientAuth::None);
        assert_eq!(tls.identity.subject, "CN=server");
        assert!(tls.identity.days_left >= 364, "{}", tls.identity.days_left);
        assert!(!tls.identity.expires_soon());
        assert!(!format!("{tls:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn mtls_needs_a_trust_store() {
        for mode in ["OPTIONAL", "required"] {
            let (tls, problems) =
                server(&format!("{SERVER}ataccama.server.grpc.tls.mtls={mode}\n"));
            assert!(tls.is_none());
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("trust-store"), "{}", problems[0]);
            assert!(problems[0].contains("missing"), "{}", problems[0]);
        }
        let (tls, problems) = server(&format!(
            "{SERVER}ataccama.server.grpc.tls.mtls=REQUIRED\nataccama.server.grpc.tls.trust-store=ca.pem\n"
        ));
        assert!(problems.is_empty(), "{problems:?}");
        let tls = tls.unwrap();
        assert_eq!(tls.client_auth, ClientAuth::Required);
        assert!(tls.trust_store_pem.is_some());
        assert!(tls.trust_store_file.unwrap().ends_with("ca.pem"));
        let (_, problems) = server(&format!(
            "{SERVER}ataccama.server.grpc.tls.mtls=sometimes\n"
        ));
        assert!(
            problems[0].contains("NONE, OPTIONAL or REQUIRED"),
            "{problems:?}"
        );
    }

    #[test]
    fn enabled_without_certificate_or_key_names_both() {
        let (tls, problems) = server("ataccama.server.grpc.tls.enabled=true\n");
        assert!(tls.is_none());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("cert-chain"), "{}", problems[0]);
        assert!(problems[1].contains("private-key"), "{}", problems[1]);
    }

    #[test]
    fn unreadable_and_unparsable_files_are_errors() {
        let (tls, problems) = server(
            "ataccama.server.grpc.tls.enabled=true\n\
             ataccama.server.grpc.tls.cert-chain=garbage.pem\n\
             ataccama.server.grpc.tls.private-key=nowhere.key\n",
        );
        assert!(tls.is_none());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("no PEM certificate"),
            "{}",
            problems[0]
        );
        assert!(problems[0].contains("cert-chain"), "{}", problems[0]);
        assert!(problems[1].contains("cannot read"), "{}", problems[1]);
        assert!(problems[1].contains("nowhere.key"), "{}", problems[1]);
        let (_, problems) = server(
            "ataccama.server.grpc.tls.enabled=true\n\
             ataccama.server.grpc.tls.cert-chain=server.pem\n\
             ataccama.server.grpc.tls.private-key=ca.pem\n",
        );
        assert!(problems[0].contains("no PEM private key"), "{problems:?}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (tls, problems) = server(&SERVER.replace("=server.key", "=other.key"));
        assert!(tls.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("does not belong"), "{}", problems[0]);
        assert!(problems[0].contains("private-key"), "{}", problems[0]);
    }

    #[test]
    fn an_expired_serving_certificate_is_refused_and_a_soon_expiring_one_flagged() {
        let (tls, problems) = server(&SERVER.replace("=server.", "=expired."));
        assert!(tls.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("expired on"), "{}", problems[0]);
        let (tls, problems) = server(&SERVER.replace("=server.", "=soon."));
        assert!(problems.is_empty(), "{problems:?}");
        let identity = tls.unwrap().identity;
        assert!(identity.expires_soon());
        assert!(
            (8..=10).contains(&identity.days_left),
            "{}",
            identity.days_left
        );
    }

    const CLIENT: &str = "ataccama.client.connection.dpm.grpc.tls.enabled=true\n";

    #[test]
    fn client_tls_without_a_trust_store_uses_the_system_roots() {
        let (tls, problems) = client(CLIENT);
        assert!(problems.is_empty(), "{problems:?}");
        let tls = tls.unwrap();
        assert_eq!(tls.trust, ServerTrust::SystemRoots);
        assert_eq!(tls.trust.file(), None);
        let (tls, problems) = client(&format!(
            "{CLIENT}ataccama.client.connection.dpm.grpc.tls.trust-store=\n"
        ));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(tls.unwrap().trust, ServerTrust::SystemRoots);
    }

    #[test]
    fn client_tls_with_a_trust_store_reads_it() {
        let (tls, problems) = client(&format!(
            "{CLIENT}ataccama.client.connection.dpm.grpc.tls.trust-store=ca.pem\n"
        ));
        assert!(problems.is_empty(), "{problems:?}");
        let trust = tls.unwrap().trust;
        assert!(trust.file().unwrap().ends_with("ca.pem"));
        let ServerTrust::Store { pem, .. } = &trust else {
            panic!("{trust:?}");
        };
        assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
        // The store's bytes stay out of Debug (`-----` would print as `45, 45, 45, 45, 45`).
        assert!(!format!("{trust:?}").contains("45, 45, 45"), "{trust:?}");
    }

    #[test]
    fn trust_all_is_a_warning_and_with_a_trust_store_an_error() {
        let (tls, problems) = client(&format!(
            "{CLIENT}ataccama.client.connection.dpm.grpc.tls.trust-all=true\n"
        ));
        assert_eq!(tls.unwrap().trust, ServerTrust::TrustAll);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("warning"), "{}", problems[0]);
        assert!(problems[0].contains("trust-all"), "{}", problems[0]);
        assert!(
            problems[0].contains("any server certificate"),
            "{}",
            problems[0]
        );

        let (tls, problems) = client(&format!(
            "{CLIENT}ataccama.client.connection.dpm.grpc.tls.trust-all=false\n"
        ));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(tls.unwrap().trust, ServerTrust::SystemRoots);

        let (tls, problems) = client(&format!(
            "{CLIENT}ataccama.client.connection.dpm.grpc.tls.trust-all=true\n\
             ataccama.client.connection.dpm.grpc.tls.trust-store=ca.pem\n"
        ));
        assert!(tls.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("error"), "{}", problems[0]);
        assert!(
            problems[0].contains("remove ataccama.client.connection.dpm.grpc.tls.trust-all"),
            "{}",
            problems[0]
        );
        assert!(
            problems[0].contains("or remove ataccama.client.connection.dpm.grpc.tls.trust-store"),
            "{}",
            problems[0]
        );

        let (tls, problems) = client(&format!(
            "{CLIENT}ataccama.client.connection.dpm.grpc.tls.trust-all=yes please\n"
        ));
        assert!(tls.is_some());
        assert!(problems[0].contains("true or false"), "{problems:?}");
    }

    #[test]
    fn client_tls_needs_a_whole_client_certificate() {
        let (tls, problems) = client(&format!(
            "{CLIENT}ataccama.client.connection.dpm.grpc.tls.cert-chain=server.pem\n"
        ));
        assert!(tls.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("private-key"), "{}", problems[0]);
        let (tls, problems) = client(&format!(
            "{CLIENT}ataccama.client.connection.dpm.grpc.tls.trust-store=ca.pem\n\
             ataccama.client.connection.dpm.grpc.tls.cert-chain=server.pem\n\
             ataccama.client.connection.dpm.grpc.tls.private-key=server.key\n\
             ataccama.client.connection.dpm.grpc.tls.server-name=dpm.example.com\n"
        ));
        assert!(problems.is_empty(), "{problems:?}");
        let tls = tls.unwrap();
        assert!(tls.identity.is_some());
        assert_eq!(tls.server_name.as_deref(), Some("dpm.example.com"));
        let shown = format!("{tls:?}");
        assert!(shown.contains("PrivateKeyPem(<redacted>)"), "{shown}");
        let ServerTrust::Store { pem, .. } = &tls.trust else {
            panic!("{shown}");
        };
        assert!(!shown.contains(&format!("{pem:?}")), "{shown}");
    }
}
