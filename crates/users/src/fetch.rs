//! One bounded `GET` of an issuer's key URL.
//!
//! The bounds: the whole request (connect, TLS, headers, body) ends within
//! [`FetchOptions::timeout`] (5 s by default) and connecting within
//! [`FetchOptions::connect_timeout`] (3 s); a body over [`MAX_KEY_SET_BYTES`] is refused while it
//! is read (a declared `Content-Length` over it before reading anything); only a `2xx` answer is
//! read; a redirect is refused and not followed (its `Location` is named in the reason); no proxy
//! is taken from the environment (`HTTP_PROXY`, `HTTPS_PROXY` are ignored: a key URL is reached
//! directly); nothing is decompressed; HTTP/1.1 only.
//!
//! `https://` trusts what the module's client trust settings say ([`ServerTrust`]): the trust
//! store's certificates as the only roots, else the system's roots, or any certificate with
//! `trust-all`. Plain `http://` is accepted for development setups (a Keycloak on the same
//! machine); in production the keys that decide who a user is should come over `https://`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ACCEPT, CACHE_CONTROL, LOCATION};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use svcid_client::AcceptAnyServerCertificate;
use svcid_config::ServerTrust;
use svcid_identity::user::MAX_KEY_SET_BYTES;
use svcid_printable::excerpt;

/// Default of [`FetchOptions::timeout`]: how long the first user call may wait for keys.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of [`FetchOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest a `Cache-Control: max-age` answer may keep keys: a key removed from the issuer's
/// set (revoked) stops verifying within a day whatever the answer says.
pub const MAX_AGE_CAP: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest a URL or `Location` is shown in logs and reasons, in characters.
const SHOWN_URL_CHARS: usize = 200;

/// The time bounds of a key fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// The whole request: connecting, TLS, the answer's head and its body. A user call that needs
    /// the keys waits at most this long for them.
    pub timeout: Duration,
    /// Connecting (TCP) alone.
    pub connect_timeout: Duration,
}

impl Default for FetchOptions {
    /// 5 s for the whole request, 3 s to connect.
    fn default() -> Self {
        FetchOptions {
            timeout: DEFAULT_FETCH_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Why a fetch gave no keys. Reasons name what was wrong, never a credential of the URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be set up (e.g. no usable CA certificate in the trust).
    #[error("the HTTPS client cannot be set up: {0}")]
    Client(String),
    /// No connection, a reset, a TLS failure.
    #[error("{0}")]
    Unreachable(String),
    /// The whole request took longer than the timeout.
    #[error("no complete answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// A status other than 2xx or 3xx.
    #[error("the answer is HTTP {0}")]
    Status(u16),
    /// A 3xx: not followed.
    #[error("the answer is a redirect (HTTP {status}) to {location}; redirects are not followed")]
    Redirect {
        /// The status code.
        status: u16,
        /// Where it pointed, without credentials or query.
        location: String,
    },
    /// The body is larger than [`MAX_KEY_SET_BYTES`].
    #[error("the answer is larger than {MAX_KEY_SET_BYTES} bytes; reading stopped there")]
    TooLarge,
    /// The body is not a key set (not UTF-8, not JSON, too many keys, no usable key).
    #[error("the answer is not a usable key set: {0}")]
    Invalid(String),
}

impl FetchError {
    /// The `result` label of `svcid_user_key_fetches_total`.
    pub fn result(&self) -> &'static str {
        match self {
            Self::Client(_) => "client",
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Status(_) => "status",
            Self::Redirect { .. } => "redirect",
            Self::TooLarge => "too_large",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// A successful answer's body and its cache lifetime, when it gave one.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The body, UTF-8, at most [`MAX_KEY_SET_BYTES`].
    pub text: String,
    /// `Cache-Control: max-age=N` of the answer, capped at [`MAX_AGE_CAP`].
    pub max_age: Option<Duration>,
}

/// Gets one URL within the bounds. The HTTP client is built on the first fetch (reading the
/// system's roots then, not at start), once.
#[derive(Debug)]
pub(crate) struct Fetcher {
    /// What `https://` trusts.
    trust: ServerTrust,
    /// The time bounds.
    options: FetchOptions,
    /// The client, or why it could not be built.
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl Fetcher {
    pub(crate) fn new(trust: &ServerTrust, options: FetchOptions) -> Self {
        Fetcher {
            trust: trust.clone(),
            options,
            client: OnceLock::new(),
        }
    }

    /// The time bounds.
    pub(crate) fn options(&self) -> FetchOptions {
        self.options
    }

    /// Whether `https://` accepts any server certificate.
    pub(crate) fn trusts_all(&self) -> bool {
        self.trust == ServerTrust::TrustAll
    }

    fn client(&self) -> Result<&reqwest::Client, FetchError> {
        self.client
            .get_or_init(|| client(&self.trust, self.options))
            .as_ref()
            .map_err(|why| FetchError::Client(why.clone()))
    }

    /// `GET url`, bounded as the module docs say.
    pub(crate) async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let client = self.client()?;
        let timeout = self.options.timeout;
        match tokio::time::timeout(timeout, get(client, url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(timeout)),
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Fetched, FetchError> {
    let mut response = client
        .get(url)
        .header(ACCEPT, "application/jwk-set+json, application/json")
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    if status.is_redirection() {
        let location = match response.headers().get(LOCATION) {
            Some(value) => match value.to_str() {
                Ok(text) => match Url::parse(url).and_then(|base| base.join(text)) {
                    Ok(target) => shown_url(target.as_str()),
                    Err(_) => excerpt(text, SHOWN_URL_CHARS),
                },
                Err(_) => "a Location that is not text".to_owned(),
            },
            None => "no Location".to_owned(),
        };
        return Err(FetchError::Redirect {
            status: status.as_u16(),
            location,
        });
    }
    if !status.is_success() {
        return Err(FetchError::Status(status.as_u16()));
    }
    let limit = u64::try_from(MAX_KEY_SET_BYTES).unwrap_or(u64::MAX);
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(FetchError::TooLarge);
    }
    let max_age = max_age(
        response
            .headers()
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok()),
    );
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_KEY_SET_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body)
        .map_err(|_| FetchError::Invalid("the body is not UTF-8 text".to_owned()))?;
    Ok(Fetched { text, max_age })
}

/// A transport error with its causes, without the URL reqwest puts in its text.
fn transport(error: reqwest::Error) -> FetchError {
    let error = error.without_url();
    if error.is_timeout() && !error.is_connect() {
        return FetchError::Unreachable(format!("no answer in time ({error})"));
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    FetchError::Unreachable(excerpt(&text, 400))
}

/// The reqwest client: the trust's TLS on ring, no redirects, no proxy, the connect timeout.
/// An HTTP client for talking to an identity provider as this module does for keys: rustls on
/// ring trusting what `trust` says, redirects never followed, no proxy from the environment,
/// connecting within `options.connect_timeout` (each request bounds its own total time). The
/// console login's token requests use it too.
pub fn client(trust: &ServerTrust, options: FetchOptions) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(trust)?)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(options.connect_timeout)
        .user_agent(concat!("svcid/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// rustls on the ring provider, trusting what `trust` says.
fn tls_config(trust: &ServerTrust) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match trust {
        ServerTrust::Store { pem, file } => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert =
                    cert.map_err(|e| format!("{}: not a PEM certificate ({e})", file.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: a certificate is unusable ({e})", file.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{} holds no certificate", file.display()));
            }
            builder.with_root_certificates(roots)
        }
        ServerTrust::SystemRoots => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "no CA certificate was found among the system's roots{why}; set SSL_CERT_FILE or give the module a trust store"
                ));
            }
            builder.with_root_certificates(roots)
        }
        ServerTrust::TrustAll => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate::with_provider(
                &provider,
            ))),
    };
    Ok(config.with_no_client_auth())
}

/// `max-age=N` of `Cache-Control` header values (the first one found), capped at
/// [`MAX_AGE_CAP`]. Other directives (`no-cache`, `s-maxage`, …) are not read.
pub(crate) fn max_age<'a>(values: impl Iterator<Item = &'a str>) -> Option<Duration> {
    for value in values {
        for directive in value.split(',') {
            let Some((name, seconds)) = directive.split_once('=') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("max-age") {
                continue;
            }
            let seconds = seconds.trim().trim_matches('"');
            if let Ok(seconds) = seconds.parse::<u64>() {
                return Some(Duration::from_secs(seconds).min(MAX_AGE_CAP));
            }
        }
    }
    None
}

/// `url` as logs and reasons show it: without user name, password, query and fragment (a query
/// is shown as `?…`), escaped and at most 200 characters.
pub fn shown_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        let cut = url.split(['?', '#']).next().unwrap_or_default();
        let cut = cut.rsplit_once('@').map_or(cut, |(_, host)| host);
        return excerpt(cut, SHOWN_URL_CHARS);
    };
    let had_query = parsed.query().is_some();
    // Setting these fails only for URLs without a host, which a key URL cannot be.
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_query(None);
    parsed.set_fragment(None);
    let mut shown = parsed.to_string();
    if had_query {
        shown.push_str("?…");
    }
    excerpt(&shown, SHOWN_URL_CHARS)
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_carry_no_credentials_or_query() {
        assert_eq!(
            shown_url("https://user:s3cret@sso.example.com:8443/realms/r/certs?token=abc#frag"),
            "https://sso.example.com:8443/realms/r/certs?…"
        );
        assert_eq!(
            shown_url(
                "http://localhost:8029/auth/realms/ataccamaone/protocol/openid-connect/certs"
            ),
            "http://localhost:8029/auth/realms/ataccamaone/protocol/openid-connect/certs"
        );
        let odd = shown_url("not a url\n?secret=1");
        assert!(!odd.contains("secret") && !odd.contains('\n'), "{odd}");
        let odd = shown_url("x://u:p@host/path");
        assert!(!odd.contains("u:p"), "{odd}");
    }

    #[test]
    fn max_age_is_read_from_cache_control_and_capped() {
        let read = |values: &[&str]| max_age(values.iter().copied());
        assert_eq!(read(&["max-age=60"]), Some(Duration::from_secs(60)));
        assert_eq!(
            read(&["public, Max-Age = \"30\" , must-revalidate"]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(read(&["no-cache", "max-age=0"]), Some(Duration::ZERO));
        assert_eq!(read(&["no-cache"]), None);
        assert_eq!(read(&["s-maxage=10", "max-age=-1"]), None);
        assert_eq!(read(&["max-age=99999999999"]), Some(MAX_AGE_CAP));
        assert_eq!(read(&[]), None);
    }
}
