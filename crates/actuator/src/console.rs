//! The operations console: one read-only web page on the actuator's HTTP port (`/console`) and
//! the JSON behind it (`/console/api`, `/console/api/<view>`), so ops staff see at a glance what
//! they otherwise piece together from logs, `svcid engines` and Prometheus text.
//!
//! The page is three embedded files (`console/index.html`, `console.js`, `console.css`,
//! compiled in with `include_str!`): no CDN, no framework, no build step, so it works on an
//! air-gapped host and its bytes are reviewed with the code. The script fetches the JSON every
//! few seconds and builds the page with DOM calls and `textContent` only, never `innerHTML`: an
//! engine id or a constraint holding `<script>` comes out as text. As a second wall every answer
//! carries a strict `Content-Security-Policy` (scripts and styles from this port only, no inline
//! code, no frames) and `X-Content-Type-Options: nosniff`, so even a rendering bug cannot run
//! injected script.
//!
//! Like the rest of this crate the console knows nothing of tokens or engines: a daemon hands it
//! *sections* (closures producing JSON, shown in `/console/api`) and *views* (closures answering
//! a parsed [`Query`], at `/console/api/<name>`), as it hands the actuator health checks and info
//! sections. The daemon decides what is shown and shows only public facts. A console turned off
//! (`svcid.console.enabled=false`) answers 404 on all of its paths.
//!
//! Like the actuator endpoints, the console needs no token unless a daemon puts a
//! [`crate::guard`] in front of it (see `http`); then `/console/api` names who is looking as
//! `viewer` (`name`, `roles`, and `logout` when a login session can be ended), and the page
//! shows it.

use std::fmt;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, LOCATION};
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::Actuator;

/// The page.
const PAGE: &str = include_str!("../console/index.html");
/// Its script: fetches the JSON and renders it with DOM calls.
const SCRIPT: &str = include_str!("../console/console.js");
/// Its style sheet.
const STYLE: &str = include_str!("../console/console.css");

/// Where the page is served.
pub const CONSOLE_PATH: &str = "/console";
/// Where its JSON is served; views are below it.
pub const API_PATH: &str = "/console/api";
/// The policy every console answer carries: this port's own scripts, styles and JSON only; no
/// inline script or style, no plugins, no frames, no form posts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
/// Longest query string a view accepts, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Most parameters one query may carry.
const MAX_QUERY_PAIRS: usize = 16;

/// A section of `/console/api`: a JSON value under its key.
pub type ConsoleSection = Box<dyn Fn() -> Value + Send + Sync>;
/// A view at `/console/api/<name>`: its JSON for a query, or why the query is wrong.
pub type ConsoleView = Box<dyn Fn(&Query) -> Result<Value, QueryError> + Send + Sync>;

/// What one daemon shows on its console.
pub struct Console {
    /// False: every console path answers 404 (`svcid.console.enabled=false`).
    enabled: bool,
    /// Sections of `/console/api`, in the order added.
    sections: Vec<(String, ConsoleSection)>,
    /// Views, in the order added.
    views: Vec<(String, ConsoleView)>,
}

impl Default for Console {
    fn default() -> Self {
        Self {
            enabled: true,
            sections: Vec::new(),
            views: Vec::new(),
        }
    }
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("enabled", &self.enabled)
            .field(
                "sections",
                &self.sections.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field(
                "views",
                &self.views.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Console {
    /// Turns the console on or off.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// Whether the console answers.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Adds a section of `/console/api` under `key`.
    pub fn add_section(&mut self, key: &str, section: ConsoleSection) {
        self.sections.push((key.to_owned(), section));
    }

    /// Adds the view `/console/api/<name>`.
    pub fn add_view(&mut self, name: &str, view: ConsoleView) {
        self.views.push((name.to_owned(), view));
    }
}

/// Why a query was refused: a message for the person or script that sent it (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError(pub String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}

/// A view's query string, percent-decoded: `?status=READY&q=abc&limit=200`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Name → value, in the order given; a repeated name keeps its first value.
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string (without `?`). At most [`MAX_QUERY_BYTES`] bytes and
    /// [`MAX_QUERY_PAIRS`] parameters; `+` is a space; bad escapes and non-UTF-8 are refused.
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        if raw.len() > MAX_QUERY_BYTES {
            return Err(QueryError(format!(
                "the query string is longer than {MAX_QUERY_BYTES} bytes"
            )));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            if pairs.len() == MAX_QUERY_PAIRS {
                return Err(QueryError(format!(
                    "more than {MAX_QUERY_PAIRS} query parameters"
                )));
            }
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let (name, value) = (decode(name)?, decode(value)?);
            if !pairs.iter().any(|(known, _)| *known == name) {
                pairs.push((name, value));
            }
        }
        Ok(Self { pairs })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name` as a whole number in `0..=max`, `default` when absent or empty.
    pub fn number(&self, name: &str, default: usize, max: usize) -> Result<usize, QueryError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(QueryError(format!(
                    "{name} must be a whole number from 0 to {max}, not {}",
                    shown(raw)
                ))),
            },
        }
    }

    /// Refuses parameters not in `known` (a typo must not silently show everything).
    pub fn only(&self, known: &[&str]) -> Result<(), QueryError> {
        match self
            .pairs
            .iter()
            .find(|(name, _)| !known.contains(&&**name))
        {
            Some((name, _)) => Err(QueryError(format!(
                "unknown query parameter {}; known: {}",
                shown(name),
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// A value quoted for an error message: at most 64 characters, escaped.
pub fn shown(raw: &str) -> String {
    let mut out: String = raw.chars().take(64).collect();
    if out.len() < raw.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Percent-decodes one query component (`+` is a space).
fn decode(raw: &str) -> Result<String, QueryError> {
    let bad = || QueryError(format!("{} is not a valid query component", shown(raw)));
    let mut bytes = Vec::with_capacity(raw.len());
    let mut input = raw.bytes();
    while let Some(b) = input.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = input.next().and_then(|h| (h as char).to_digit(16));
                let lo = input.next().and_then(|l| (l as char).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => bytes.push((hi * 16 + lo) as u8),
                    _ => return Err(bad()),
                }
            }
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

/// The console's answer to `path?query`, or `None` when `path` is not the console's (or the
/// console is off): the caller answers 404 then.
pub fn respond(actuator: &Actuator, path: &str, query: &str) -> Option<Response<Full<Bytes>>> {
    respond_to(actuator, path, query, None)
}

/// [`respond`] for a request whose guard named who is looking: `/console/api` then carries
/// `viewer` (the page shows who is logged in).
pub fn respond_to(
    actuator: &Actuator,
    path: &str,
    query: &str,
    viewer: Option<&Value>,
) -> Option<Response<Full<Bytes>>> {
    let console = actuator.console_parts();
    if !console.enabled {
        return None;
    }
    let response = match path {
        // The port's front door leads to the console.
        "" | "/" => {
            let mut response = answer(StatusCode::FOUND, "text/plain; charset=utf-8", "");
            response
                .headers_mut()
                .insert(LOCATION, HeaderValue::from_static(CONSOLE_PATH));
            response
        }
        CONSOLE_PATH => answer(StatusCode::OK, "text/html; charset=utf-8", PAGE),
        "/console/console.js" => answer(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT),
        "/console/console.css" => answer(StatusCode::OK, "text/css; charset=utf-8", STYLE),
        API_PATH => json_answer(StatusCode::OK, &overview(actuator, viewer)),
        _ => {
            let name = path.strip_prefix("/console/api/")?;
            let (_, view) = console.views.iter().find(|(known, _)| known == name)?;
            match Query::parse(query).and_then(|query| view(&query)) {
                Ok(value) => json_answer(StatusCode::OK, &value),
                Err(error) => json_answer(
                    StatusCode::BAD_REQUEST,
                    &json!({"status": 400, "error": "Bad Request", "message": error.0}),
                ),
            }
        }
    };
    Some(response)
}

/// `/console/api`: who this is, since when, every section, the views there are, and who is
/// looking (`viewer`, only when a guard named them).
pub fn overview(actuator: &Actuator, viewer: Option<&Value>) -> Value {
    let console = actuator.console_parts();
    let mut sections = Map::new();
    for (key, section) in &console.sections {
        sections.insert(key.clone(), section());
    }
    let now = std::time::SystemTime::now();
    let uptime = now
        .duration_since(actuator.started())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut overview = json!({
        "module": actuator.module(),
        "version": actuator.version(),
        "started": crate::rfc3339(actuator.started()),
        "now": crate::rfc3339(now),
        "uptimeSeconds": uptime,
        "sections": Value::Object(sections),
        "views": console.views.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
    });
    if let (Some(viewer), Some(fields)) = (viewer, overview.as_object_mut()) {
        fields.insert("viewer".to_owned(), viewer.clone());
    }
    overview
}

/// A JSON answer with the console's headers ([`answer`]).
pub fn json_answer(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    answer(status, "application/json", body.to_string())
}

/// An answer with the console's headers: the actuator's (`no-store`) plus the content policy.
/// A guard's pages on the console's paths are built with it, so they are as locked down.
pub fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<String>,
) -> Response<Full<Bytes>> {
    let mut response = crate::response::text(status, content_type, body.into());
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use http_body_util::BodyExt as _;
    use hyper::header::CONTENT_TYPE;

    use super::*;

    fn actuator(enabled: bool) -> Actuator {
        Actuator::new("dpm", "0.1.0")
            .console_enabled(enabled)
            .console_section("trust", || json!({"signing": {"kid": "k"}}))
            .console_view("engines", |query| {
                query.only(&["limit", "q"])?;
                let limit = query.number("limit", 200, 1000)?;
                Ok(json!({"limit": limit, "q": query.get("q")}))
            })
    }

    async fn body(response: Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn serves_the_page_its_assets_and_json_with_a_strict_policy() {
        let actuator = actuator(true);
        for (path, kind) in [
            ("/console", "text/html; charset=utf-8"),
            ("/console/console.js", "text/javascript; charset=utf-8"),
            ("/console/console.css", "text/css; charset=utf-8"),
            ("/console/api", "application/json"),
        ] {
            let response = respond(&actuator, path, "").unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let headers = response.headers();
            assert_eq!(headers[CONTENT_TYPE], kind, "{path}");
            assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
            assert_eq!(headers["x-content-type-options"], "nosniff");
        }
        let page = body(respond(&actuator, "/console", "").unwrap()).await;
        // No external asset, no inline script or style: everything from this port.
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "{page}"
        );
        assert!(
            !page.contains("<script>") && !page.contains("style="),
            "{page}"
        );
        let script = body(respond(&actuator, "/console/console.js", "").unwrap()).await;
        assert!(!script.contains("innerHTML") && !script.contains("eval("));
        let overview: Value =
            serde_json::from_str(&body(respond(&actuator, "/console/api", "").unwrap()).await)
                .unwrap();
        assert_eq!(overview["module"], "dpm");
        assert_eq!(overview["sections"]["trust"]["signing"]["kid"], "k");
        assert_eq!(overview["views"], json!(["engines"]));
        let front = respond(&actuator, "/", "").unwrap();
        assert_eq!(front.status(), 302);
        assert_eq!(front.headers()[LOCATION], "/console");
    }

    #[tokio::test]
    async fn views_take_queries_and_refuse_bad_ones_with_400() {
        let actuator = actuator(true);
        let answer = |query: &str| respond(&actuator, "/console/api/engines", query).unwrap();
        let ok: Value = serde_json::from_str(&body(answer("limit=5&q=a%3Cb+c")).await).unwrap();
        assert_eq!(ok, json!({"limit": 5, "q": "a<b c"}));
        for bad in [
            "limit=1001",
            "limit=-1",
            "limit=x",
            "colour=red",
            "q=%zz",
            "q=%ff",
        ] {
            let response = answer(bad);
            assert_eq!(response.status(), 400, "{bad}");
            let error: Value = serde_json::from_str(&body(response).await).unwrap();
            assert!(error["message"].as_str().unwrap().len() > 5, "{bad}");
        }
        let long = format!("q={}", "a".repeat(MAX_QUERY_BYTES));
        assert_eq!(answer(&long).status(), 400);
        let many = (0..20)
            .map(|i| format!("p{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(answer(&many).status(), 400);
        assert!(respond(&actuator, "/console/api/nothing", "").is_none());
    }

    #[test]
    fn a_console_turned_off_answers_nothing() {
        let actuator = actuator(false);
        for path in ["/", "/console", "/console/api", "/console/api/engines"] {
            assert!(respond(&actuator, path, "").is_none(), "{path}");
        }
    }
}
