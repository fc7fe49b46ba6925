//! What may stand in front of the HTTP port's routes: a [`Guard`] sees each request's head before
//! the routes do, and either answers it itself (a login redirect, `401`, `403`) or lets the routes
//! answer, naming who is looking so the console can show it.
//!
//! The actuator knows nothing of tokens or sessions: a daemon with people configured installs a
//! guard ([`crate::Actuator::guarded`]); without one every path is answered as before.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Method, Response};
use serde_json::Value;

/// The parts of a request a guard decides on. Bodies are never read.
#[derive(Debug, Clone)]
pub struct Head {
    /// `GET`, `HEAD`, …
    pub method: Method,
    /// The path as the routes match it: without the query, one trailing `/` removed (`/` stays
    /// `""`).
    pub path: String,
    /// The query string without `?` (empty when none).
    pub query: String,
    /// The request's headers.
    pub headers: HeaderMap,
}

impl Head {
    /// The head of a request for `target` (`path?query`), matched as the routes match it.
    pub fn new(method: Method, target: &str, headers: HeaderMap) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Head {
            method,
            path: route_path(path).to_owned(),
            query: query.to_owned(),
            headers,
        }
    }
}

/// `path` as the routes match it: one trailing `/` removed.
pub fn route_path(path: &str) -> &str {
    path.strip_suffix('/').unwrap_or(path)
}

/// A guard's decision on one request.
#[derive(Debug)]
pub enum Admission {
    /// The routes answer. `viewer`: who is looking (a JSON object the console shows), if anyone
    /// proved who they are.
    Pass {
        /// Shown as `viewer` in `/console/api`.
        viewer: Option<Value>,
    },
    /// The guard's own answer; the routes are not asked.
    Answer(Response<Full<Bytes>>),
}

/// The future of [`Guard::admit`].
pub type Admitting<'a> = Pin<Box<dyn Future<Output = Admission> + Send + 'a>>;

/// Decides, per request, whether the routes answer.
pub trait Guard: Send + Sync + 'static {
    /// The decision on `head`. May wait (a token's keys, a token refresh), bounded by the guard.
    fn admit<'a>(&'a self, head: &'a Head) -> Admitting<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_split_the_query_and_match_paths_as_the_routes_do() {
        let head = Head::new(Method::GET, "/console/api/?x=1", HeaderMap::new());
        assert_eq!(head.path, "/console/api");
        assert_eq!(head.query, "x=1");
        assert_eq!(Head::new(Method::GET, "/", HeaderMap::new()).path, "");
    }
}
