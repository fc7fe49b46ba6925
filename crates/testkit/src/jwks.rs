//! An identity provider's key endpoint on 127.0.0.1: a JWK set served exactly as a Keycloak realm
//! serves it at `/realms/<realm>/protocol/openid-connect/certs`, with keys generated at run time
//! by OpenSSL, and every request counted.
//!
//! Keycloak publishes an RS256 signing key (`use` `sig`) and an RSA-OAEP encryption key (`use`
//! `enc`), each with its certificate (`x5c`) and thumbprints (`x5t`, `x5t#S256`), answers
//! `Content-Type: application/json` and `Cache-Control: no-cache`. [`JwksServer::start`] serves
//! that; the setters change what the next requests get (another key set, any body, a status, a
//! delay, a redirect, a header) so tests can play an identity provider that rotates, breaks,
//! stalls or misbehaves.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};
use serde_json::{Value, json};

/// The realm [`JwksServer::start`] serves.
pub const REALM: &str = "svcid";

/// One realm key: an RSA key pair with its public JWK as Keycloak publishes it.
#[derive(Clone)]
pub struct RealmKey {
    kid: String,
    private_pem: String,
    public_pem: String,
    jwk: Value,
}

impl std::fmt::Debug for RealmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("RealmKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RealmKey {
    /// A fresh 2048-bit RS256 signing key (`use` `sig`, `alg` `RS256`).
    pub fn signing() -> anyhow::Result<RealmKey> {
        Self::generate("sig", "RS256")
    }

    /// A fresh 2048-bit encryption key (`use` `enc`, `alg` `RSA-OAEP`), as Keycloak publishes
    /// beside its signing key.
    pub fn encryption() -> anyhow::Result<RealmKey> {
        Self::generate("enc", "RSA-OAEP")
    }

    fn generate(key_use: &str, alg: &str) -> anyhow::Result<RealmKey> {
        let rsa = Rsa::generate(2048).context("generating an RSA key")?;
        let n = URL_SAFE_NO_PAD.encode(rsa.n().to_vec());
        let e = URL_SAFE_NO_PAD.encode(rsa.e().to_vec());
        let key = PKey::from_rsa(rsa)?;
        let cert = self_signed(&key)?;
        let der = cert.to_der()?;
        let sha1 = openssl::hash::hash(MessageDigest::sha1(), &der)?;
        let sha256 = openssl::hash::hash(MessageDigest::sha256(), &der)?;
        // Keycloak's kids are 43 base64url characters (a SHA-256 of the key).
        let kid = URL_SAFE_NO_PAD.encode(openssl::hash::hash(
            MessageDigest::sha256(),
            &key.public_key_to_der()?,
        )?);
        let jwk = json!({
            "kid": kid,
            "kty": "RSA",
            "alg": alg,
            "use": key_use,
            "n": n,
            "e": e,
            "x5c": [STANDARD.encode(&der)],
            "x5t": URL_SAFE_NO_PAD.encode(sha1),
            "x5t#S256": URL_SAFE_NO_PAD.encode(sha256),
        });
        let private_pem = String::from_utf8(key.private_key_to_pem_pkcs8()?)?;
        let public_pem = String::from_utf8(key.public_key_to_pem()?)?;
        Ok(RealmKey {
            kid,
            private_pem,
            public_pem,
            jwk,
        })
    }

    /// The key's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key, PKCS#8 PEM (`BEGIN PRIVATE KEY`), for signing test tokens.
    pub fn private_pem(&self) -> &str {
        &self.private_pem
    }

    /// The public key, SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`), as a MicroProfile JWT
    /// issuer publishes it.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The public JWK as the realm publishes it.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The same public key under another `kid`.
    pub fn with_kid(&self, kid: &str) -> RealmKey {
        let mut key = self.clone();
        key.kid = kid.to_owned();
        key.jwk["kid"] = Value::String(kid.to_owned());
        key
    }
}

/// A self-signed certificate for the realm key, as Keycloak generates (`CN=<realm>`).
fn self_signed(key: &PKey<Private>) -> anyhow::Result<X509> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", REALM)?;
    let name = name.build();
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    let serial = BigNum::from_u32(1)?.to_asn1_integer()?;
    cert.set_serial_number(&serial)?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(key)?;
    cert.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    cert.set_not_after(&*Asn1Time::days_from_now(3650)?)?;
    cert.sign(key, MessageDigest::sha256())?;
    Ok(cert.build())
}

/// `{"keys":[…]}` of `keys`, in order.
pub fn jwks(keys: &[&RealmKey]) -> String {
    json!({ "keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// What the next requests are answered with.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    delay: Duration,
    /// Extra headers, replacing defaults of the same name.
    headers: Vec<(String, String)>,
    /// No `Content-Length`: the body ends when the connection closes.
    close_delimited: bool,
}

#[derive(Debug)]
struct Shared {
    answer: Mutex<Answer>,
    requests: AtomicUsize,
    stop: AtomicBool,
    /// Every connection accepted, to close them all when the server is dropped (a provider that
    /// goes away takes its keep-alive connections with it).
    connections: Mutex<Vec<TcpStream>>,
}

/// A realm's key endpoint on a free loopback port; stopped when dropped.
#[derive(Debug)]
pub struct JwksServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    signing: RealmKey,
    encryption: RealmKey,
    accept: Option<JoinHandle<()>>,
}

impl JwksServer {
    /// Serves realm [`REALM`] with a fresh signing and encryption key, as Keycloak does.
    pub fn start() -> anyhow::Result<JwksServer> {
        Self::start_on(0)
    }

    /// [`JwksServer::start`] on `127.0.0.1:port` (`0`: a free port), for a provider that comes
    /// up late on the port a module was configured with.
    pub fn start_on(port: u16) -> anyhow::Result<JwksServer> {
        let signing = RealmKey::signing()?;
        let encryption = RealmKey::encryption()?;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            answer: Mutex::new(Answer {
                status: 200,
                body: jwks(&[&signing, &encryption]).into_bytes(),
                delay: Duration::ZERO,
                headers: Vec::new(),
                close_delimited: false,
            }),
            requests: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("jwks-server".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(JwksServer {
            addr,
            shared,
            signing,
            encryption,
            accept: Some(accept),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Keycloak's base URL (`…keycloak.server-url`): `http://127.0.0.1:<port>`.
    pub fn server_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The realm's issuer: `<server-url>/realms/svcid`.
    pub fn issuer(&self) -> String {
        format!("{}/realms/{REALM}", self.server_url())
    }

    /// The key URL: `<issuer>/protocol/openid-connect/certs`. Every path is answered the same
    /// way, so any URL of this server can stand for a MicroProfile JWT key location.
    pub fn certs_url(&self) -> String {
        format!("{}/protocol/openid-connect/certs", self.issuer())
    }

    /// The realm's signing key (RS256, `use` `sig`).
    pub fn signing_key(&self) -> &RealmKey {
        &self.signing
    }

    /// The realm's encryption key (`use` `enc`).
    pub fn encryption_key(&self) -> &RealmKey {
        &self.encryption
    }

    fn change(&self, change: impl FnOnce(&mut Answer)) {
        change(
            &mut self
                .shared
                .answer
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// Serves these keys from now on (status 200).
    pub fn set_keys(&self, keys: &[&RealmKey]) {
        self.set_body(jwks(keys));
        self.set_status(200);
    }

    /// Serves this body from now on (with the status set).
    pub fn set_body(&self, body: impl Into<Vec<u8>>) {
        let body = body.into();
        self.change(|answer| answer.body = body);
    }

    /// Answers with this status from now on (the body stays).
    pub fn set_status(&self, status: u16) {
        self.change(|answer| answer.status = status);
    }

    /// Waits this long before answering (after reading the request).
    pub fn set_delay(&self, delay: Duration) {
        self.change(|answer| answer.delay = delay);
    }

    /// Answers `302 Found` with `Location: url` from now on; `None` returns to 200.
    pub fn set_redirect(&self, url: Option<&str>) {
        match url {
            Some(url) => {
                self.set_header("Location", url);
                self.set_status(302);
            }
            None => {
                self.change(|answer| {
                    answer
                        .headers
                        .retain(|(name, _)| !name.eq_ignore_ascii_case("location"));
                });
                self.set_status(200);
            }
        }
    }

    /// Sends this header from now on, replacing a default (`Content-Type`, `Cache-Control`) or an
    /// earlier value of the same name.
    pub fn set_header(&self, name: &str, value: &str) {
        self.change(|answer| {
            answer
                .headers
                .retain(|(known, _)| !known.eq_ignore_ascii_case(name));
            answer.headers.push((name.to_owned(), value.to_owned()));
        });
    }

    /// Sends bodies without `Content-Length`, ending each by closing the connection (the
    /// client learns the size only by reading); `false` returns to `Content-Length`.
    pub fn set_close_delimited(&self, on: bool) {
        self.change(|answer| answer.close_delimited = on);
    }

    /// Requests received so far (any path).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let connections = self
            .shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for connection in connections.iter() {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if let Ok(clone) = stream.try_clone() {
            shared
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(clone);
        }
        let shared = Arc::clone(shared);
        let _ = std::thread::Builder::new()
            .name("jwks-conn".into())
            .spawn(move || serve(stream, &shared));
    }
}

/// Serves requests on one connection (keep-alive) until the client closes it.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        // The request line and headers; a GET has no body.
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.trim().is_empty() {
            continue;
        }
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => return,
                Ok(_) if header.trim().is_empty() => break,
                Ok(_) => {}
            }
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let answer = shared
            .answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // Sleep in small steps so a dropped server does not keep threads for the whole delay.
        let until = Instant::now() + answer.delay;
        while Instant::now() < until {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Cache-Control".to_owned(), "no-cache".to_owned()),
        ];
        for (name, value) in &answer.headers {
            headers.retain(|(known, _)| !known.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.clone()));
        }
        let mut head = format!("HTTP/1.1 {} {}\r\n", answer.status, reason(answer.status));
        if answer.close_delimited {
            head.push_str("Connection: close\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(&answer.body).is_err()
            || writer.flush().is_err()
            || answer.close_delimited
        {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
