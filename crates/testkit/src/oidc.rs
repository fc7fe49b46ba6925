//! A real OpenID Connect provider on 127.0.0.1 for the console's login tests: panva's certified
//! `oidc-provider` (the Node.js package in `tests/oidc/`), started by [`OidcProvider::start`] and
//! killed when dropped.
//!
//! The provider is mounted under `/realms/<realm>` with Keycloak's endpoint paths, so a module can
//! be configured either the Keycloak way (server URL and realm) or the generic way (issuer and
//! discovery):
//!
//! | what | path under `http://127.0.0.1:<port>` |
//! |---|---|
//! | issuer | `/realms/<realm>` |
//! | discovery | `/realms/<realm>/.well-known/openid-configuration` |
//! | authorization | `/realms/<realm>/protocol/openid-connect/auth` |
//! | token | `/realms/<realm>/protocol/openid-connect/token` |
//! | keys (JWKS) | `/realms/<realm>/protocol/openid-connect/certs` |
//! | end session | `/realms/<realm>/protocol/openid-connect/logout` |
//! | userinfo (see below) | `/realms/<realm>/protocol/openid-connect/userinfo` |
//! | login page | `/realms/<realm>/login-actions/<uid>` |
//!
//! Clients are public (no secret), must use PKCE S256, and get a refresh token with every access
//! token (refresh tokens rotate: each refresh answers a new one and consumes the old). Access
//! tokens are RS256 JWTs shaped like Keycloak's: header `typ` `JWT`, claims `iss`, `sub` (the
//! user's id), `aud` (`account` unless [`OidcConfig::audience`] says otherwise), `typ` `Bearer`,
//! `azp` and `client_id`, `scope`, `preferred_username`, `name`, `realm_access.roles` and
//! `groups` (both the user's roles). ID tokens are RS256 with `aud` the client id, `sub`,
//! `preferred_username`, `name`, `nonce` and `at_hash`. The signing key is a fresh RSA 2048 key
//! held by the provider process only. Unlike Keycloak's, the userinfo endpoint refuses these
//! access tokens (`invalid_token`): oidc-provider serves it only for tokens without an audience.
//! The user's claims are in the ID token and the access token.
//!
//! The login page is a plain form (`#username`, `#password`, `#login`); the password is checked,
//! and a wrong one shows the form again with an error (`#error`). Consent is granted without a
//! page. An end-session request (`GET …/logout?id_token_hint=…&post_logout_redirect_uri=…&state=…`)
//! answers a form that submits itself (no confirmation to click) and then redirects to the
//! `post_logout_redirect_uri` with `state`.
//!
//! [`OidcAgent`] drives that flow without a browser: it keeps the provider's cookies, follows its
//! redirects, fills the login form, submits self-submitting forms, and stops at the first URL
//! outside the provider (the client's redirect URI with `code` and `state`, or `error`).
//!
//! The Node.js packages are installed once with `npm ci --prefix tests/oidc`.

use std::collections::BTreeMap;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// The realm [`OidcConfig::default`] serves.
pub const REALM: &str = "svcid";

/// How long [`OidcProvider::start`] waits for the provider's `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one HTTP read from the provider may wait.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How many requests an [`OidcAgent`] makes for one call before giving up.
const MAX_STEPS: usize = 20;
/// At most this much of the provider's stderr is kept.
const LOG_LIMIT: usize = 1 << 20;

/// The provider's configuration: the JSON file `tests/oidc/provider.mjs` reads.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcConfig {
    /// The loopback port; `0` takes a free one.
    pub port: u16,
    /// The realm: the issuer is `http://127.0.0.1:<port>/realms/<realm>`.
    pub realm: String,
    /// The registered clients.
    pub clients: Vec<OidcClient>,
    /// The people who can sign in.
    pub users: Vec<OidcUser>,
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl: u64,
    /// Lifetime of ID tokens, in seconds; `None`: the access tokens' lifetime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_ttl: Option<u64>,
    /// Lifetime of refresh tokens, in seconds; `None`: 1800.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<u64>,
    /// The access tokens' `aud`; `None`: `account`, as Keycloak's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The access tokens' header `typ`; `None`: `JWT`, as Keycloak's (`at+jwt` is RFC 9068's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_typ: Option<String>,
}

impl Default for OidcConfig {
    /// Realm [`REALM`] on a free port, no clients, no users, five-minute access tokens.
    fn default() -> Self {
        OidcConfig {
            port: 0,
            realm: REALM.to_owned(),
            clients: Vec::new(),
            users: Vec::new(),
            access_token_ttl: 300,
            id_token_ttl: None,
            refresh_token_ttl: None,
            audience: None,
            access_token_typ: None,
        }
    }
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("port", &self.port)
            .field("realm", &self.realm)
            .field("clients", &self.clients)
            .field("users", &self.users)
            .field("access_token_ttl", &self.access_token_ttl)
            .finish_non_exhaustive()
    }
}

/// A public client: no secret, PKCE S256, authorization code and refresh token grants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OidcClient {
    /// `client_id`.
    pub client_id: String,
    /// The exact redirect URIs it may use.
    pub redirect_uris: Vec<String>,
    /// The exact URIs an end-session request may send the browser back to.
    pub post_logout_redirect_uris: Vec<String>,
}

impl OidcClient {
    /// A client with one redirect URI and one post-logout redirect URI.
    pub fn new(client_id: &str, redirect_uri: &str, post_logout_redirect_uri: &str) -> OidcClient {
        OidcClient {
            client_id: client_id.to_owned(),
            redirect_uris: vec![redirect_uri.to_owned()],
            post_logout_redirect_uris: vec![post_logout_redirect_uri.to_owned()],
        }
    }
}

/// A person: `sub` is `id`, `preferred_username` is `username`, the roles go to both
/// `realm_access.roles` and `groups`.
#[derive(Clone, Serialize, Deserialize)]
pub struct OidcUser {
    /// `sub`.
    pub id: String,
    /// `preferred_username`, and what the login form asks for.
    pub username: String,
    /// What the login form checks.
    pub password: String,
    /// The realm roles.
    pub roles: Vec<String>,
    /// `name`.
    pub name: String,
}

impl OidcUser {
    /// A user whose `name` is the username.
    pub fn new(id: &str, username: &str, password: &str, roles: &[&str]) -> OidcUser {
        OidcUser {
            id: id.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
            roles: roles.iter().map(|&r| r.to_owned()).collect(),
            name: username.to_owned(),
        }
    }
}

impl std::fmt::Debug for OidcUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("OidcUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// A running provider; killed when dropped (and it exits by itself when this process dies, as
/// its stdin closes).
pub struct OidcProvider {
    child: Child,
    /// Held open: the provider exits when it closes.
    _stdin: Option<ChildStdin>,
    /// The configuration file, removed on drop.
    _config: tempfile::NamedTempFile,
    port: u16,
    issuer: String,
    realm: String,
    log: Arc<Mutex<String>>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// `tests/oidc` of this repository.
fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc")
}

impl OidcProvider {
    /// Starts a provider and waits for it to serve; panics when it cannot (no Node.js, no
    /// `npm ci`, no `listening` line within 20 s), with the provider's stderr in the message.
    pub fn start(config: &OidcConfig) -> OidcProvider {
        match OidcProvider::try_start(config) {
            Ok(provider) => provider,
            Err(e) => panic!("the OpenID Connect provider did not start: {e:#}"),
        }
    }

    /// [`OidcProvider::start`], returning the failure instead of panicking.
    pub fn try_start(config: &OidcConfig) -> anyhow::Result<OidcProvider> {
        let dir = package_dir();
        if !dir.join("node_modules").is_dir() {
            bail!(
                "{} is missing: run `npm ci --prefix tests/oidc` first",
                dir.join("node_modules").display()
            );
        }
        let mut file = tempfile::Builder::new()
            .prefix("svcid-oidc-")
            .suffix(".json")
            .tempfile()
            .context("creating the provider's configuration file")?;
        serde_json::to_writer(&mut file, config).context("writing the provider's configuration")?;
        file.flush()
            .context("writing the provider's configuration")?;

        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .arg(file.path())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running `node` (install Node.js: apt-get install nodejs npm)")?;
        let stdin = child.stdin.take();

        let log = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    if log.len() < LOG_LIMIT {
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if !sent {
                        sent = true;
                        let _ = tx.send(line);
                    }
                }
            });
        }

        let line = rx.recv_timeout(START_TIMEOUT);
        let fail = |child: &mut Child, what: String| {
            let _ = child.kill();
            let _ = child.wait();
            // Let the stderr reader take the last lines.
            std::thread::sleep(Duration::from_millis(100));
            let log = log.lock().unwrap_or_else(PoisonError::into_inner).clone();
            anyhow::anyhow!("{what}; its stderr:\n{log}")
        };
        let line = match line {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(fail(
                    &mut child,
                    format!("no `listening` line within {}s", START_TIMEOUT.as_secs()),
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.try_wait().ok().flatten();
                return Err(fail(
                    &mut child,
                    format!("it exited before listening ({status:?})"),
                ));
            }
        };
        let mut words = line.split(' ');
        let (Some("listening"), Some(port), Some(issuer), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(fail(&mut child, format!("unexpected first line {line:?}")));
        };
        let Ok(port) = port.parse::<u16>() else {
            return Err(fail(&mut child, format!("unexpected first line {line:?}")));
        };
        Ok(OidcProvider {
            child,
            _stdin: stdin,
            _config: file,
            port,
            issuer: issuer.to_owned(),
            realm: config.realm.clone(),
            log,
        })
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/realms/<realm>`: the tokens' `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// `http://127.0.0.1:<port>`: Keycloak's server URL (the issuer is `<server-url>/realms/<realm>`).
    pub fn server_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// `<issuer>/protocol/openid-connect/<name>`: `auth`, `token`, `certs`, `logout`, `userinfo`.
    pub fn endpoint(&self, name: &str) -> String {
        format!("{}/protocol/openid-connect/{name}", self.issuer)
    }

    /// What the provider wrote on stderr so far: one line per request (method, path, status),
    /// and its warnings and errors.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A user agent with no cookies yet.
    pub fn agent(&self) -> OidcAgent {
        OidcAgent {
            origin: self.server_url(),
            port: self.port,
            cookies: BTreeMap::new(),
        }
    }

    /// Signs `username` in with a fresh [`OidcAgent`]: see [`OidcAgent::sign_in`].
    pub fn sign_in(
        &self,
        authorization_url: &str,
        username: &str,
        password: &str,
    ) -> Result<String, String> {
        self.agent().sign_in(authorization_url, username, password)
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser without a browser: the provider's cookies, its redirects, its forms.
#[derive(Debug, Clone)]
pub struct OidcAgent {
    /// `http://127.0.0.1:<port>`.
    origin: String,
    port: u16,
    /// (path, name) → value.
    cookies: BTreeMap<(String, String), String>,
}

/// The next request an agent makes.
enum Step {
    Get(String),
    Post(String, String),
}

impl OidcAgent {
    /// Opens `authorization_url`, signs in with `username` and `password` when the provider shows
    /// its login form, and returns the first URL outside the provider it is sent to (the client's
    /// `redirect_uri?code=…&state=…&iss=…`, or `?error=…`), without opening it. With a session
    /// from an earlier sign-in the provider answers at once, without the form. A wrong password
    /// (the form shown again) is an error saying what the page said.
    pub fn sign_in(
        &mut self,
        authorization_url: &str,
        username: &str,
        password: &str,
    ) -> Result<String, String> {
        self.browse(authorization_url, Some((username, password)))
    }

    /// Opens `url` (an authorization request with a session, an end-session request) and returns
    /// the first URL outside the provider it is sent to; the login form is an error here.
    /// Self-submitting forms (the end-session form) are submitted, as a browser's script would.
    pub fn follow(&mut self, url: &str) -> Result<String, String> {
        self.browse(url, None)
    }

    /// Whether any cookie of the provider is held (its session, after a sign-in).
    pub fn has_cookies(&self) -> bool {
        !self.cookies.is_empty()
    }

    fn browse(&mut self, url: &str, credentials: Option<(&str, &str)>) -> Result<String, String> {
        let mut step = Step::Get(url.to_owned());
        let mut login_posted = false;
        for _ in 0..MAX_STEPS {
            let (method, url, body) = match &step {
                Step::Get(url) => ("GET", url.clone(), None),
                Step::Post(url, body) => ("POST", url.clone(), Some(body.clone())),
            };
            let Some(path) = self.path_of(&url) else {
                return Ok(url);
            };
            let answer = self
                .exchange(method, &path, body.as_deref())
                .map_err(|e| format!("{method} {url}: {e}"))?;
            let here = |code: u16| format!("{method} {}: HTTP {code}", strip_query(&url));
            match answer.code {
                301 | 302 | 303 | 307 | 308 => {
                    let location = answer
                        .header("location")
                        .ok_or_else(|| format!("{}: no Location", here(answer.code)))?;
                    step = Step::Get(self.resolve(location));
                }
                200 => {
                    let form = Form::parse(&answer.body).ok_or_else(|| {
                        format!(
                            "{}: a page without a form: {}",
                            here(200),
                            excerpt(&answer.body)
                        )
                    })?;
                    let action = self.resolve(form.action.as_deref().unwrap_or(&url));
                    if form.has_input("password") {
                        if login_posted {
                            return Err(format!(
                                "the provider refused the login: it showed the form again ({})",
                                element_text(&answer.body, "error").unwrap_or_default()
                            ));
                        }
                        let Some((username, password)) = credentials else {
                            return Err(format!("{}: the provider asks for a login", here(200)));
                        };
                        login_posted = true;
                        step = Step::Post(
                            action,
                            form_encode(&[("username", username), ("password", password)]),
                        );
                    } else if form.all_hidden() && form.post {
                        let fields: Vec<(&str, &str)> = form
                            .inputs
                            .iter()
                            .map(|i| (i.name.as_str(), i.value.as_str()))
                            .collect();
                        step = Step::Post(action, form_encode(&fields));
                    } else {
                        return Err(format!(
                            "{}: a form the agent cannot fill: {}",
                            here(200),
                            excerpt(&answer.body)
                        ));
                    }
                }
                code => {
                    return Err(format!("{}: {}", here(code), excerpt(&answer.body)));
                }
            }
        }
        Err(format!(
            "{url}: still inside the provider after {MAX_STEPS} requests"
        ))
    }

    /// The path and query of `url` when it is the provider's; `None` outside it.
    fn path_of(&self, url: &str) -> Option<String> {
        let rest = url.strip_prefix(&self.origin)?;
        match rest.chars().next() {
            None => Some("/".to_owned()),
            Some('/') => Some(rest.to_owned()),
            Some('?') => Some(format!("/{rest}")),
            _ => None,
        }
    }

    /// `location` made absolute against the provider's origin (the provider answers absolute
    /// URLs and absolute paths).
    fn resolve(&self, location: &str) -> String {
        if location.starts_with('/') && !location.starts_with("//") {
            format!("{}{location}", self.origin)
        } else {
            location.to_owned()
        }
    }

    /// The cookies for `path`, longest paths first, as a browser sends them.
    fn cookie_header(&self, path: &str) -> String {
        let path = strip_query(path);
        let mut matching: Vec<(&String, &String, &String)> = self
            .cookies
            .iter()
            .filter(|((cookie_path, _), _)| {
                path == cookie_path.as_str()
                    || (path.starts_with(cookie_path.as_str())
                        && (cookie_path.ends_with('/')
                            || path[cookie_path.len()..].starts_with('/')))
            })
            .map(|((cookie_path, name), value)| (cookie_path, name, value))
            .collect();
        matching.sort_by_key(|(cookie_path, _, _)| std::cmp::Reverse(cookie_path.len()));
        matching
            .iter()
            .map(|(_, name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps (or drops) what one `Set-Cookie` says, for a request to `request_path`.
    fn keep_cookie(&mut self, request_path: &str, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let request_path = strip_query(request_path);
        let mut path = match request_path.rfind('/') {
            Some(0) | None => "/".to_owned(),
            Some(i) => request_path[..i].to_owned(),
        };
        let mut expired = value.trim().is_empty();
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            match key.trim().to_ascii_lowercase().as_str() {
                "path" if val.starts_with('/') => path = val.trim().to_owned(),
                "max-age" => expired |= val.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                "expires" => expired |= val.contains("1970"),
                _ => {}
            }
        }
        let key = (path, name.trim().to_owned());
        if expired {
            self.cookies.remove(&key);
        } else {
            self.cookies.insert(key, value.trim().to_owned());
        }
    }

    /// One request to the provider, its cookies sent and kept.
    fn exchange(&mut self, method: &str, path: &str, body: Option<&str>) -> io::Result<Answer> {
        let port = self.port;
        let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| {
            io::Error::new(e.kind(), format!("connecting to 127.0.0.1:{port}: {e}"))
        })?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: text/html\r\nUser-Agent: svcid-testkit\r\n"
        );
        let cookies = self.cookie_header(path);
        if !cookies.is_empty() {
            request.push_str(&format!("Cookie: {cookies}\r\n"));
        }
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body.unwrap_or_default());
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let answer = Answer::parse(&raw).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "not a complete HTTP answer: {}",
                    excerpt(&String::from_utf8_lossy(&raw))
                ),
            )
        })?;
        for set_cookie in answer.headers_named("set-cookie") {
            self.keep_cookie(path, set_cookie);
        }
        Ok(answer)
    }
}

/// A complete HTTP answer.
struct Answer {
    code: u16,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn parse(raw: &[u8]) -> Option<Answer> {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..split]).ok()?;
        let mut lines = head.split("\r\n");
        let code = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        if chunked {
            body = dechunk(&body)?;
        }
        Some(Answer {
            code,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers_named(name).next()
    }

    fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A chunked body's data; `None` when it is cut short.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// The first form of a page: enough of HTML for the provider's own pages.
struct Form {
    action: Option<String>,
    post: bool,
    inputs: Vec<Input>,
}

struct Input {
    name: String,
    kind: String,
    value: String,
}

impl Form {
    fn parse(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let end = html[start..]
            .find("</form>")
            .map_or(html.len(), |e| start + e);
        let tag_end = start + html[start..].find('>')?;
        let tag = &html[start..tag_end];
        let action = attribute(tag, "action").filter(|a| !a.is_empty());
        let post = attribute(tag, "method").is_some_and(|m| m.eq_ignore_ascii_case("post"));
        let inputs = html[tag_end..end]
            .split("<input")
            .skip(1)
            .filter_map(|rest| {
                let tag = &rest[..rest.find('>')?];
                Some(Input {
                    name: attribute(tag, "name")?,
                    kind: attribute(tag, "type").unwrap_or_else(|| "text".to_owned()),
                    value: attribute(tag, "value").unwrap_or_default(),
                })
            })
            .collect();
        Some(Form {
            action,
            post,
            inputs,
        })
    }

    fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|i| i.name == name)
    }

    fn all_hidden(&self) -> bool {
        self.inputs.iter().all(|i| i.kind == "hidden")
    }
}

/// The value of `name="…"` in one tag, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(html_unescape(&tag[start..start + len]))
}

/// The text of the element with `id="<id>"`, unescaped.
fn element_text(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = at + html[at..].find('>')? + 1;
    let len = html[start..].find('<')?;
    Some(html_unescape(html[start..start + len].trim()))
}

fn html_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

/// At most 300 characters of a page, on one line.
fn excerpt(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// `application/x-www-form-urlencoded` of `pairs` (also a URL's query).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The decoded value of parameter `name` in `url`'s query; `None` when absent or not UTF-8.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name).then(|| percent_decode(v))?
    })
}

/// Decodes `%XX` and `+`; `None` when the result is not UTF-8 or an escape is broken.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips() {
        let url = format!(
            "http://x/cb?{}",
            form_encode(&[("code", "a+b/c=="), ("state", "ä &x")])
        );
        assert_eq!(query_param(&url, "code").unwrap(), "a+b/c==");
        assert_eq!(query_param(&url, "state").unwrap(), "ä &x");
        assert_eq!(query_param(&url, "nonce"), None);
    }

    #[test]
    fn cookies_follow_their_paths() {
        let mut agent = OidcAgent {
            origin: "http://127.0.0.1:1".to_owned(),
            port: 1,
            cookies: BTreeMap::new(),
        };
        agent.keep_cookie("/r/auth", "_session=s1; path=/; httponly");
        agent.keep_cookie(
            "/r/auth",
            "_interaction=i1; path=/r/login-actions/u1; httponly",
        );
        agent.keep_cookie(
            "/r/auth",
            "_interaction=i2; path=/r/login-actions/u2; httponly",
        );
        assert_eq!(
            agent.cookie_header("/r/login-actions/u2?x=1"),
            "_interaction=i2; _session=s1"
        );
        assert_eq!(agent.cookie_header("/r/login-actions/u10"), "_session=s1");
        agent.keep_cookie(
            "/r/x",
            "_interaction=; path=/r/login-actions/u2; expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert_eq!(agent.cookie_header("/r/login-actions/u2"), "_session=s1");
    }

    #[test]
    fn a_chunked_body_is_joined() {
        let answer =
            Answer::parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(answer.body, "abcde");
        assert!(
            Answer::parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nab")
                .is_none()
        );
    }

    #[test]
    fn a_self_submitting_form_is_read() {
        let form = Form::parse(
            r#"<form id="op.logoutForm" method="post" action="http://h/r/logout/confirm"><input type="hidden" name="xsrf" value="a&amp;b"/><input type="hidden" name="logout" value="yes"/></form>"#,
        )
        .unwrap();
        assert!(form.post && form.all_hidden());
        assert_eq!(form.action.as_deref(), Some("http://h/r/logout/confirm"));
        assert_eq!(form.inputs[0].value, "a&b");
    }
}
