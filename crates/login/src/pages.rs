//! The guard's own answers: `401` with RFC 6750's `WWW-Authenticate`, `403` naming the roles
//! needed, redirects that set or clear cookies, and the console's small HTML pages for a person
//! without a console role or a login that did not complete. Every page carries the console's
//! strict headers (no inline script or style).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::json;
use svcid_actuator::console::{answer, json_answer};

/// A `401`: no usable token (`why` says what was wrong with the one sent; `None`: none was sent).
pub fn unauthorized(realm: &str, why: Option<&str>) -> Response<Full<Bytes>> {
    let message = why.map_or_else(
        || "a token is needed: Authorization: Bearer <token>".to_owned(),
        |why| format!("the token was refused: {why}"),
    );
    let mut response = json_answer(
        StatusCode::UNAUTHORIZED,
        &json!({"status": 401, "error": "Unauthorized", "message": message}),
    );
    // RFC 6750 section 3: no error code when the request had no token.
    let challenge = match why {
        None => format!("Bearer realm=\"{}\"", quoted(realm)),
        Some(why) => format!(
            "Bearer realm=\"{}\", error=\"invalid_token\", error_description=\"{}\"",
            quoted(realm),
            quoted(why)
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// The product's words for a caller without the role an endpoint needs.
pub fn missing_role(roles: &[String]) -> String {
    if roles.is_empty() {
        "Nobody can access this endpoint".to_owned()
    } else {
        format!("Only [{}] roles can access this endpoint", roles.join(", "))
    }
}

/// A `403` in JSON: the caller is known but lacks every role of `roles`.
pub fn forbidden(roles: &[String]) -> Response<Full<Bytes>> {
    json_answer(
        StatusCode::FORBIDDEN,
        &json!({"status": 403, "error": "Forbidden", "message": missing_role(roles)}),
    )
}

/// The console's `403` page for `name`, who lacks every role of `roles`.
pub fn forbidden_page(name: &str, roles: &[String]) -> Response<Full<Bytes>> {
    let body = page(
        "Not allowed",
        &format!(
            "<p id=\"forbidden\">You are signed in as <strong id=\"who\">{}</strong>, but the \
             console needs one of the roles <strong id=\"needed\">{}</strong>.</p>\n\
             <p>Ask an administrator of the identity provider for one of them, then \
             <a id=\"logout\" href=\"/console/logout\">sign out</a> and sign in again.</p>",
            html(name),
            html(&roles.join(", "))
        ),
    );
    answer(StatusCode::FORBIDDEN, "text/html; charset=utf-8", body)
}

/// The page of a login that did not complete, with its reason code.
pub fn login_failed_page(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let body = page(
        "Login failed",
        &format!(
            "<p id=\"login-failed\">The login did not complete (<code id=\"reason\">{}</code>). \
             Nothing was kept.</p>\n<p><a href=\"/console/login\">Sign in again</a></p>",
            html(reason)
        ),
    );
    answer(status, "text/html; charset=utf-8", body)
}

/// A `302` to `location`, setting `cookies` (whole `Set-Cookie` values).
pub fn redirect(location: &str, cookies: &[String]) -> Response<Full<Bytes>> {
    let mut response = answer(StatusCode::FOUND, "text/plain; charset=utf-8", "");
    let headers = response.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            headers.insert(LOCATION, value);
        }
        Err(_) => return login_failed_page(StatusCode::BAD_GATEWAY, "endpoint"),
    }
    add_cookies(headers, cookies);
    response
}

/// Adds `Set-Cookie` values to `headers`.
pub fn add_cookies(headers: &mut HeaderMap, cookies: &[String]) {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
}

/// A minimal page with the console's style sheet.
fn page(title: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title} · svcid console</title>\n\
         <link rel=\"stylesheet\" href=\"/console/console.css\">\n</head>\n<body>\n\
         <header><h1>{title}</h1></header>\n<main>\n{content}\n</main>\n</body>\n</html>\n"
    )
}

/// `text` safe inside HTML text and attribute values.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if svcid_printable::needs_escape(c) => {
                out.push_str(&svcid_printable::escaped(&c.to_string()))
            }
            c => out.push(c),
        }
    }
    out
}

/// `text` inside an HTTP quoted string: printable ASCII only, `"` and `\` escaped.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_401_carries_the_rfc_6750_challenge() {
        let none = unauthorized("dpm", None);
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(none.headers()[WWW_AUTHENTICATE], "Bearer realm=\"dpm\"");
        let bad = unauthorized("dpm", Some("expired \"x\""));
        assert_eq!(
            bad.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"dpm\", error=\"invalid_token\", error_description=\"expired \\\"x\\\"\""
        );
    }

    #[test]
    fn pages_escape_what_a_token_says() {
        let page = forbidden_page("<script>x</script>", &["admin".into()]);
        assert_eq!(page.status(), StatusCode::FORBIDDEN);
        assert!(page.headers().contains_key("content-security-policy"));
        assert_eq!(html("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        assert_eq!(
            missing_role(&["A".into(), "B".into()]),
            "Only [A, B] roles can access this endpoint"
        );
        assert_eq!(missing_role(&[]), "Nobody can access this endpoint");
    }
}
