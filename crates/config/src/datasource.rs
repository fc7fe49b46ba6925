//! `spring.datasource.*`: where DPM keeps its engine registry outside memory (docs/postgres.md).
//!
//! The URL is taken as the product writes it (`jdbc:postgresql://host:port/db`) or as PostgreSQL
//! does (`postgresql://…`, `postgres://…`). The password is a [`DatabasePassword`]: its `Debug`
//! hides it, and what is shown of a URL ([`Datasource::shown_url`]) never carries one, so neither
//! a log line, `/actuator/info` nor an error message can echo it.
//!
//! The connection's TLS is set by the query parameters PostgreSQL's own client and the product's
//! JDBC driver read, with their meanings (docs/postgres.md, "TLS to the database"): `sslmode`
//! (`disable`, `allow` read as `prefer`, `prefer`, the default, `require`, `verify-ca`,
//! `verify-full`), the JDBC driver's `ssl=true` (`verify-full`, as that driver reads it),
//! `sslrootcert` (a PEM file, or `system` for the operating system's CAs), `sslcert` and `sslkey`
//! (a client certificate), and `user`, `password`. Paths are relative to the module home. Every
//! file is read and checked here, at load, so `svcid check` reports what is wrong before DPM
//! starts; any other parameter is refused, so a setting that would change the connection is never
//! silently dropped.

use std::path::PathBuf;

use svcid_properties::Value;

use crate::bind::{Binder, shown};
use crate::home::ModuleHome;
use crate::tls::{CertifiedKey, read_certificates, resolve};
use crate::{codes, names};

/// The PostgreSQL port when the URL names none.
pub const DEFAULT_POSTGRES_PORT: u16 = 5432;

/// Where the registry's database is and how DPM logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datasource {
    /// Server host name or address.
    pub host: String,
    /// Server port (5432 when the URL names none).
    pub port: u16,
    /// Database name.
    pub database: String,
    /// `spring.datasource.username` (or the URL's user); `None` leaves it to the server's default.
    pub username: Option<String>,
    /// `spring.datasource.password` (or the URL's); never shown.
    pub password: Option<DatabasePassword>,
    /// The connection's TLS (`sslmode` and its files; boxed: the files' bytes are large beside
    /// the other settings).
    pub tls: Box<DatasourceTls>,
}

impl Datasource {
    /// The URL for people: `postgresql://user@host:port/db?sslmode=…`, never with a password
    /// (nor the paths of the TLS files).
    pub fn shown_url(&self) -> String {
        let user = self
            .username
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        format!(
            "postgresql://{user}{}:{}/{}?sslmode={}",
            self.host,
            self.port,
            self.database,
            self.tls.mode.as_str()
        )
    }
}

/// `sslmode`: whether the connection is encrypted and what of the server's certificate is
/// checked, as PostgreSQL's client reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text.
    Disable,
    /// TLS when the server offers it, plain text otherwise; the certificate is not checked.
    /// The default, as in PostgreSQL's client and the JDBC driver (`allow` is read as this too).
    Prefer,
    /// TLS or no connection; the certificate is checked against `sslrootcert` when one is given
    /// (as PostgreSQL's client does), not at all otherwise.
    Require,
    /// TLS, and the server's certificate must be issued by a CA of `sslrootcert`.
    VerifyCa,
    /// As [`SslMode::VerifyCa`], and the certificate must name the URL's host.
    VerifyFull,
}

impl SslMode {
    /// The value as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// What of the server's certificate DPM checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCheck {
    /// Nothing: the connection is encrypted but whoever sits in between can pose as the server.
    None,
    /// The chain up to a CA of `sslrootcert`.
    Chain,
    /// The chain, and that the certificate names the URL's host.
    ChainAndHost,
}

/// `sslrootcert`: the CAs the server's certificate must chain to.
#[derive(Clone, PartialEq, Eq)]
pub enum RootCertificates {
    /// A PEM file of CA certificates.
    File {
        /// The certificates, PEM.
        pem: Vec<u8>,
        /// Where they were read from.
        file: PathBuf,
    },
    /// `sslrootcert=system`: the operating system's CAs (`verify-full` only).
    System,
}

impl std::fmt::Debug for RootCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File { file, .. } => f.debug_struct("File").field("file", file).finish(),
            Self::System => f.write_str("System"),
        }
    }
}

/// The TLS of the connection to the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasourceTls {
    /// `sslmode` (or what `ssl=true` stands for); [`SslMode::Prefer`] when the URL sets neither.
    pub mode: SslMode,
    /// `sslrootcert`, read; `None` when not given or not used (`sslmode=disable`).
    pub root: Option<RootCertificates>,
    /// `sslcert` with `sslkey`, read and matched; `None` when not given or not used.
    pub client: Option<CertifiedKey>,
}

impl Default for DatasourceTls {
    fn default() -> Self {
        Self {
            mode: SslMode::Prefer,
            root: None,
            client: None,
        }
    }
}

impl DatasourceTls {
    /// What of the server's certificate is checked: `require` with an `sslrootcert` checks the
    /// chain, as PostgreSQL's client does.
    pub fn server_check(&self) -> ServerCheck {
        match self.mode {
            SslMode::VerifyFull => ServerCheck::ChainAndHost,
            SslMode::VerifyCa => ServerCheck::Chain,
            SslMode::Require if self.root.is_some() => ServerCheck::Chain,
            SslMode::Disable | SslMode::Prefer | SslMode::Require => ServerCheck::None,
        }
    }
}

/// A database password: only [`DatabasePassword::expose`] gives it out, for the connection.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabasePassword(String);

impl DatabasePassword {
    /// The password, for the database client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabasePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabasePassword(<redacted>)")
    }
}

impl Drop for DatabasePassword {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// The TLS query parameters of a datasource URL, percent-decoded, as written.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    sslmode: Option<String>,
    ssl: Option<String>,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
}

/// The parts of a datasource URL.
#[derive(Debug, PartialEq, Eq)]
struct UrlParts {
    host: String,
    port: u16,
    database: String,
    user: Option<String>,
    password: Option<String>,
    tls: TlsParams,
}

/// The query parameters a datasource URL may carry.
const KNOWN_PARAMETERS: &str = "sslmode, ssl, sslrootcert, sslcert, sslkey, user and password";

/// `%XX` decoded (as PostgreSQL's client reads URL parameters); `None` for a broken escape or
/// bytes that are not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses `jdbc:postgresql://[user[:password]@]host[:port]/database[?name=value&…]` (and the
/// `postgresql://`, `postgres://` forms). Errors never quote a value: it may be a password.
fn parse_url(raw: &str) -> Result<UrlParts, String> {
    let rest = ["jdbc:postgresql://", "postgresql://", "postgres://"]
        .iter()
        .find_map(|scheme| raw.strip_prefix(scheme))
        .ok_or("the URL must start with jdbc:postgresql:// (or postgresql://)")?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, database) = rest
        .split_once('/')
        .ok_or("the URL names no database (…/<database>)")?;
    if database.is_empty() || database.contains('/') {
        return Err("the URL must end with /<database>".to_owned());
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (mut user, mut password) = match userinfo {
        None => (None, None),
        Some(info) => match info.split_once(':') {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (Some(info.to_owned()), None),
        },
    };
    // `[::1]:5432` for IPv6 literals, `host:5432` otherwise; the port is optional.
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6
                .split_once(']')
                .ok_or("the URL's host is not closed by ]")?;
            (host, rest.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        },
    };
    let port = match port {
        None => DEFAULT_POSTGRES_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("the URL's port is not a port number")?,
    };
    if host.is_empty() || host.contains(',') {
        return Err("the URL must name one host".to_owned());
    }
    let mut tls = TlsParams::default();
    for pair in query.unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Names are quoted back; values never are.
        let value = percent_decode(value).ok_or_else(|| {
            format!(
                "the value of the URL's parameter {} is not valid percent-encoding",
                shown(name)
            )
        })?;
        let slot = match name {
            "sslmode" => &mut tls.sslmode,
            "ssl" => &mut tls.ssl,
            "sslrootcert" => &mut tls.sslrootcert,
            "sslcert" => &mut tls.sslcert,
            "sslkey" => &mut tls.sslkey,
            "user" => &mut user,
            "password" => &mut password,
            _ => {
                return Err(format!(
                    "the URL's parameter {} is not one DPM reads (it reads {KNOWN_PARAMETERS}); \
                     ignoring it could change the connection unnoticed",
                    shown(name)
                ));
            }
        };
        *slot = Some(value);
    }
    Ok(UrlParts {
        host: host.to_owned(),
        port,
        database: database.to_owned(),
        user: user.filter(|u| !u.is_empty()),
        password: password.filter(|p| !p.is_empty()),
        tls,
    })
}

/// Binds `spring.datasource.*`; `None` (the registry in memory) when no URL is set, or when it is
/// broken (with the problems recorded).
pub(crate) fn bind_datasource(b: &mut Binder<'_>, home: &ModuleHome) -> Option<Datasource> {
    let (raw, value) = b.string(names::DATASOURCE_URL)?;
    if raw.is_empty() {
        return None;
    }
    let parts = match parse_url(&raw) {
        Ok(parts) => parts,
        Err(why) => {
            b.error_at(
                codes::DATASOURCE_URL_INVALID,
                value,
                why,
                "write it as jdbc:postgresql://host:5432/database, with TLS parameters if any \
                 (?sslmode=verify-full&sslrootcert=etc/db-ca.pem)",
            );
            return None;
        }
    };
    let tls = bind_tls(b, home, value, &parts.tls);
    let username = b
        .string(names::DATASOURCE_USERNAME)
        .map(|(u, _)| u)
        .filter(|u| !u.is_empty())
        .or(parts.user);
    // Not trimmed: a password is whatever the file holds after the separator.
    let password = b
        .props
        .get(names::DATASOURCE_PASSWORD)
        .map(|v| v.raw.clone())
        .filter(|p| !p.is_empty())
        .or(parts.password)
        .map(DatabasePassword);
    Some(Datasource {
        host: parts.host,
        port: parts.port,
        database: parts.database,
        username,
        password,
        tls: Box::new(tls?),
    })
}

/// The URL's TLS parameters, their files read and checked; `None` with problems recorded.
fn bind_tls(
    b: &mut Binder<'_>,
    home: &ModuleHome,
    url: &Value,
    params: &TlsParams,
) -> Option<DatasourceTls> {
    let errors_before = b.problems.len();
    let written = match (&params.sslmode, &params.ssl) {
        (Some(mode), _) => match SslMode::parse(mode) {
            Some(mode) => Some(mode),
            None => {
                b.error_at(
                    codes::DATASOURCE_SSLMODE_INVALID,
                    url,
                    format!("sslmode={} is not a TLS mode PostgreSQL knows", shown(mode)),
                    "use sslmode=disable, prefer, require, verify-ca or verify-full \
                     (verify-full with sslrootcert checks the server)",
                );
                None
            }
        },
        // The JDBC driver's switch: on means verify-full there; off leaves its default.
        (None, Some(ssl)) => match ssl.as_str() {
            "" | "true" => Some(SslMode::VerifyFull),
            "false" => None,
            other => {
                b.error_at(
                    codes::DATASOURCE_SSLMODE_INVALID,
                    url,
                    format!("ssl={} is not true or false", shown(other)),
                    "use ssl=true (the same as sslmode=verify-full) or an sslmode",
                );
                None
            }
        },
        (None, None) => None,
    };
    if written == Some(SslMode::Disable) {
        // Nothing of TLS is used: the files are not read, as PostgreSQL's client ignores them.
        return (b.problems.len() == errors_before).then(|| DatasourceTls {
            mode: SslMode::Disable,
            root: None,
            client: None,
        });
    }
    let root = match params.sslrootcert.as_deref() {
        None | Some("") => None,
        Some("system") => Some(RootCertificates::System),
        Some(path) => {
            read_certificates(b, home, url, path).map(|(pem, _)| RootCertificates::File {
                pem,
                file: resolve(home, path),
            })
        }
    };
    let root_given = params.sslrootcert.as_deref().is_some_and(|p| !p.is_empty());
    let system = root == Some(RootCertificates::System);
    let mode = written.unwrap_or(if system {
        SslMode::VerifyFull
    } else {
        SslMode::Prefer
    });
    if system && mode != SslMode::VerifyFull {
        b.error_at(
            codes::DATASOURCE_SSLMODE_INVALID,
            url,
            format!(
                "sslrootcert=system trusts every CA of the operating system, which certify \
                 anybody's host names, so sslmode={} would accept any server with a public \
                 certificate",
                mode.as_str()
            ),
            "use sslmode=verify-full with sslrootcert=system, or give sslrootcert the PEM file \
             of the CA that issued the server's certificate",
        );
    }
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && !root_given {
        b.error_at(
            codes::DATASOURCE_ROOT_CERT_MISSING,
            url,
            format!(
                "sslmode={} checks the server's certificate, but no sslrootcert says which CA \
                 issues it",
                mode.as_str()
            ),
            "add &sslrootcert=<PEM file of the database server's CA> (relative paths start at \
             the module home), or &sslrootcert=system for a certificate from a public CA",
        );
    }
    let client = match (params.sslcert.as_deref(), params.sslkey.as_deref()) {
        (None | Some(""), None | Some("")) => None,
        (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => {
            key_not_exposed(b, home, url, key);
            crate::tls::certified_key(b, home, (cert, url), (key, url), false)
        }
        (cert, _) => {
            let (given, missing) = if cert.is_some_and(|c| !c.is_empty()) {
                ("sslcert", "sslkey")
            } else {
                ("sslkey", "sslcert")
            };
            b.error_at(
                codes::DATASOURCE_CLIENT_CERT_INCOMPLETE,
                url,
                format!("{given} is given without {missing}: a client certificate needs both"),
                "give both sslcert (the certificate, PEM) and sslkey (its private key, PEM), or \
                 neither",
            );
            None
        }
    };
    (b.problems.len() == errors_before).then_some(DatasourceTls { mode, root, client })
}

/// Records an error when the private key file may be read by other users: PostgreSQL's own
/// client refuses such a key (0600 at most, or 0640 when root owns the file).
#[cfg(unix)]
fn key_not_exposed(b: &mut Binder<'_>, home: &ModuleHome, url: &Value, path: &str) {
    use std::os::unix::fs::MetadataExt;
    let full = resolve(home, path);
    // An unreadable file is reported when it is read.
    let Ok(meta) = std::fs::metadata(&full) else {
        return;
    };
    let mode = meta.mode() & 0o777;
    let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if mode & !allowed != 0 {
        b.error_at(
            codes::DATASOURCE_KEY_EXPOSED,
            url,
            format!(
                "the private key {} can be read by {} (mode {mode:04o}); PostgreSQL's own \
                 client refuses such a key",
                full.display(),
                if mode & 0o007 != 0 {
                    "every user of the machine"
                } else {
                    "the file's group"
                }
            ),
            format!(
                "chmod 600 {} (0640 is accepted when root owns the file)",
                full.display()
            ),
        );
    }
}

#[cfg(not(unix))]
fn key_not_exposed(_: &mut Binder<'_>, _: &ModuleHome, _: &Value, _: &str) {}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use openssl::asn1::{Asn1Integer, Asn1Time};
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::x509::extension::BasicConstraints;
    use openssl::x509::{X509, X509Builder, X509NameBuilder};
    use svcid_properties::{ProblemCode, PropertySet};

    use super::*;

    #[test]
    fn product_and_postgres_forms_parse() {
        let jdbc = parse_url("jdbc:postgresql://localhost:5431/dpm").expect("jdbc form");
        assert_eq!(
            (jdbc.host.as_str(), jdbc.port, jdbc.database.as_str()),
            ("localhost", 5431, "dpm")
        );
        assert_eq!(jdbc.tls, TlsParams::default());
        let plain = parse_url("postgresql://one:secret@db.example:6000/reg").expect("plain");
        assert_eq!(plain.user.as_deref(), Some("one"));
        assert_eq!(plain.password.as_deref(), Some("secret"));
        assert_eq!(plain.port, 6000);
        assert_eq!(
            parse_url("postgres://127.0.0.1/x").map(|p| p.port),
            Ok(DEFAULT_POSTGRES_PORT)
        );
    }

    #[test]
    fn every_tls_parameter_is_read_and_percent_decoded() {
        let url = parse_url(
            "jdbc:postgresql://db:5432/dpm?sslmode=verify-full&sslrootcert=etc/db%20ca.pem\
             &sslcert=/etc/dpm/client.pem&sslkey=etc/client.key&ssl=true",
        )
        .unwrap();
        assert_eq!(
            url.tls,
            TlsParams {
                sslmode: Some("verify-full".into()),
                ssl: Some("true".into()),
                sslrootcert: Some("etc/db ca.pem".into()),
                sslcert: Some("/etc/dpm/client.pem".into()),
                sslkey: Some("etc/client.key".into()),
            }
        );
        assert_eq!(url.database, "dpm");
        // The JDBC driver's bare `ssl` means on; `user` and `password` override the userinfo.
        let url = parse_url("postgresql://a:b@h/db?ssl&user=one&password=p%26w").unwrap();
        assert_eq!(url.tls.ssl.as_deref(), Some(""));
        assert_eq!(url.user.as_deref(), Some("one"));
        assert_eq!(url.password.as_deref(), Some("p&w"));
        // An empty query, or a trailing `&`, is nothing.
        assert_eq!(
            parse_url("postgres://h/db?").unwrap().tls,
            TlsParams::default()
        );
        assert_eq!(
            parse_url("postgres://h/db?sslmode=require&")
                .unwrap()
                .tls
                .sslmode
                .as_deref(),
            Some("require")
        );
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for bad in [
            "mysql://h/db",
            "jdbc:postgresql://h:99999/db",
            "jdbc:postgresql://h:5432",
            "jdbc:postgresql://u:hunter2@h:5432/db?sslfactory=hunter2",
            "jdbc:postgresql://h:5432/db?password=hunter2%zz",
            "jdbc:postgresql://h:5432/db?currentSchema=hunter2",
        ] {
            let why = parse_url(bad).expect_err(bad);
            assert!(!why.contains("hunter2"), "{why}");
        }
        let why = parse_url("jdbc:postgresql://h/db?connectTimeout=5").unwrap_err();
        assert!(why.contains("\"connectTimeout\""), "{why}");
    }

    #[test]
    fn the_password_is_never_shown() {
        let source = Datasource {
            host: "h".into(),
            port: 5432,
            database: "dpm".into(),
            username: Some("one".into()),
            password: Some(DatabasePassword("hunter2".into())),
            tls: Box::default(),
        };
        assert_eq!(
            source.shown_url(),
            "postgresql://one@h:5432/dpm?sslmode=prefer"
        );
        assert!(!format!("{source:?}").contains("hunter2"));
    }

    fn key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    fn cert(key: &PKey<Private>, cn: &str, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = Asn1Integer::from_bn(&BigNum::from_u32(3).unwrap()).unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(issuer.map_or(&*name, |(c, _)| c.subject_name()))
            .unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        if issuer.is_none() {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
        }
        b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
            .unwrap();
        b.build()
    }

    /// A home with `etc/ca.pem`, `etc/client.pem` with `etc/client.key` (0600), `etc/open.key`
    /// (the same key, 0644) and `etc/other.key` (another key, 0600).
    fn home() -> (tempfile::TempDir, ModuleHome) {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        let ca_key = key();
        let ca = cert(&ca_key, "db CA", None);
        let client_key = key();
        let client = cert(&client_key, "one", Some((&ca, &ca_key)));
        let write = |name: &str, bytes: &[u8], mode: u32| {
            let path = etc.join(name);
            std::fs::write(&path, bytes).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            #[cfg(not(unix))]
            let _ = mode;
        };
        write("ca.pem", &ca.to_pem().unwrap(), 0o644);
        write("client.pem", &client.to_pem().unwrap(), 0o644);
        let pem = client_key.private_key_to_pem_pkcs8().unwrap();
        write("client.key", &pem, 0o600);
        write("open.key", &pem, 0o644);
        write(
            "other.key",
            &key().private_key_to_pem_pkcs8().unwrap(),
            0o600,
        );
        let home = ModuleHome::new(dir.path());
        (dir, home)
    }

    /// Binds `spring.datasource.url=<url>` on line 1 in a fresh [`home`].
    fn bind(url: &str) -> (Option<Datasource>, Vec<(ProblemCode, String)>) {
        let (_dir, home) = home();
        let mut set = PropertySet::new();
        set.load_str(
            &format!("{}={url}\n", names::DATASOURCE_URL),
            Path::new("application.properties"),
        )
        .unwrap();
        let mut b = Binder::new(&set);
        let source = bind_datasource(&mut b, &home);
        let problems = b.problems.iter().map(|p| (p.code, p.to_string())).collect();
        (source, problems)
    }

    fn codes_of(problems: &[(ProblemCode, String)]) -> Vec<ProblemCode> {
        problems.iter().map(|(c, _)| *c).collect()
    }

    #[test]
    fn without_parameters_the_mode_is_prefer_as_in_postgresql_and_jdbc() {
        let (source, problems) = bind("jdbc:postgresql://h/db");
        assert!(problems.is_empty(), "{problems:?}");
        let tls = source.unwrap().tls;
        assert_eq!(*tls, DatasourceTls::default());
        assert_eq!(tls.server_check(), ServerCheck::None);
    }

    #[test]
    fn modes_and_the_checks_they_make() {
        for (query, mode, check) in [
            ("sslmode=disable", SslMode::Disable, ServerCheck::None),
            ("sslmode=allow", SslMode::Prefer, ServerCheck::None),
            ("sslmode=prefer", SslMode::Prefer, ServerCheck::None),
            ("sslmode=require", SslMode::Require, ServerCheck::None),
            (
                "sslmode=require&sslrootcert=etc/ca.pem",
                SslMode::Require,
                ServerCheck::Chain,
            ),
            (
                "sslmode=verify-ca&sslrootcert=etc/ca.pem",
                SslMode::VerifyCa,
                ServerCheck::Chain,
            ),
            (
                "sslmode=verify-full&sslrootcert=etc/ca.pem",
                SslMode::VerifyFull,
                ServerCheck::ChainAndHost,
            ),
            (
                "ssl=true&sslrootcert=etc/ca.pem",
                SslMode::VerifyFull,
                ServerCheck::ChainAndHost,
            ),
            ("ssl=false", SslMode::Prefer, ServerCheck::None),
            // sslmode wins over ssl, as in the JDBC driver.
            (
                "ssl=true&sslmode=require",
                SslMode::Require,
                ServerCheck::None,
            ),
            (
                "sslrootcert=system",
                SslMode::VerifyFull,
                ServerCheck::ChainAndHost,
            ),
            // Disabled: the files are not even read.
            (
                "sslmode=disable&sslrootcert=missing.pem&sslkey=open.key",
                SslMode::Disable,
                ServerCheck::None,
            ),
        ] {
            let (source, problems) = bind(&format!("jdbc:postgresql://h/db?{query}"));
            assert!(problems.is_empty(), "{query}: {problems:?}");
            let source = source.unwrap();
            assert_eq!(
                (source.tls.mode, source.tls.server_check()),
                (mode, check),
                "{query}"
            );
            assert!(
                source
                    .shown_url()
                    .ends_with(&format!("?sslmode={}", mode.as_str())),
                "{}",
                source.shown_url()
            );
        }
    }

    #[test]
    fn the_root_and_client_files_are_read_relative_to_the_home() {
        let (source, problems) = bind(
            "jdbc:postgresql://h/db?sslmode=verify-full&sslrootcert=etc/ca.pem\
             &sslcert=etc/client.pem&sslkey=etc/client.key",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let tls = source.unwrap().tls;
        let Some(RootCertificates::File { pem, file }) = &tls.root else {
            panic!("{tls:?}");
        };
        assert!(file.ends_with("etc/ca.pem"), "{file:?}");
        assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
        let client = tls.client.unwrap();
        assert_eq!(client.subject, "CN=one");
        assert!(client.private_key_file.is_absolute());
        // Neither the key nor its contents appear in Debug.
        assert!(!format!("{:?}", client.private_key_pem).contains("PRIVATE KEY"));
    }

    #[test]
    fn mistakes_are_named_with_their_line_and_fix() {
        for (query, code, says) in [
            (
                "sslmode=verify_full",
                codes::DATASOURCE_SSLMODE_INVALID,
                "sslmode=\"verify_full\" is not a TLS mode",
            ),
            (
                "ssl=yes",
                codes::DATASOURCE_SSLMODE_INVALID,
                "is not true or false",
            ),
            (
                "sslmode=verify-ca&sslrootcert=system",
                codes::DATASOURCE_SSLMODE_INVALID,
                "sslmode=verify-ca would accept any server",
            ),
            (
                "sslmode=verify-full",
                codes::DATASOURCE_ROOT_CERT_MISSING,
                "no sslrootcert says which CA",
            ),
            (
                "ssl=true",
                codes::DATASOURCE_ROOT_CERT_MISSING,
                "sslmode=verify-full checks",
            ),
            (
                "sslmode=verify-ca&sslrootcert=etc/none.pem",
                codes::TLS_FILE_UNREADABLE,
                "etc/none.pem",
            ),
            (
                "sslmode=verify-ca&sslrootcert=etc/client.key",
                codes::TLS_PEM_INVALID,
                "holds no PEM certificate",
            ),
            (
                "sslmode=require&sslcert=etc/client.pem",
                codes::DATASOURCE_CLIENT_CERT_INCOMPLETE,
                "sslcert is given without sslkey",
            ),
            (
                "sslmode=require&sslkey=etc/client.key",
                codes::DATASOURCE_CLIENT_CERT_INCOMPLETE,
                "sslkey is given without sslcert",
            ),
            (
                "sslmode=require&sslcert=etc/client.pem&sslkey=etc/other.key",
                codes::TLS_KEY_MISMATCH,
                "does not belong to the certificate",
            ),
        ] {
            let (source, problems) = bind(&format!("jdbc:postgresql://u:hunter2@h/db?{query}"));
            assert!(source.is_none(), "{query}");
            assert_eq!(codes_of(&problems), vec![code], "{query}: {problems:?}");
            let text = &problems[0].1;
            assert!(
                text.starts_with("application.properties:1: error:"),
                "{text}"
            );
            assert!(text.contains(says), "{query}: {text}");
            assert!(text.contains("fix:"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_client_key_others_may_read_is_refused_as_postgresql_refuses_it() {
        let (source, problems) = bind(
            "jdbc:postgresql://h/db?sslmode=require&sslcert=etc/client.pem&sslkey=etc/open.key",
        );
        assert!(source.is_none());
        assert_eq!(
            codes_of(&problems),
            vec![codes::DATASOURCE_KEY_EXPOSED],
            "{problems:?}"
        );
        let text = &problems[0].1;
        assert!(text.contains("mode 0644"), "{text}");
        assert!(text.contains("every user of the machine"), "{text}");
        assert!(text.contains("chmod 600"), "{text}");
    }
}
