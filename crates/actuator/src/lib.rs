//! What the daemons serve on their HTTP port, in the conventions of Spring Boot Actuator that ops
//! staff already use with the product's other modules: `/actuator/health`, `/actuator/prometheus`
//! and `/actuator/info` on a plain HTTP port (`server.port`), and the operations console.
//!
//! Vocabulary, the same in every crate: the *HTTP port* is each daemon's second port, beside the
//! gRPC port (its settings, modules and functions are named `http`); the *actuator* is the
//! endpoints under `/actuator` (and this crate, which serves them); the *console* is the web page
//! under `/console` on the same port.
//!
//! - [`metrics`]: counters, histograms and the Prometheus text format; hot paths touch atomics only.
//! - [`health`]: components, their aggregation and the 503 rule.
//! - [`http`]: the small HTTP/1.1 server (hyper) that answers the endpoints, read-only.
//! - [`console`]: the operations console, a read-only web page and its JSON on the same port.
//! - [`guard`]: what may stand in front of the routes (who may see what), installed by a daemon.
//! - [`instruments`]: every metric family svcid exports, named once.
//! - [`events`]: the log event ids this crate emits.
//!
//! An [`Actuator`] is assembled by a daemon from closures: health checks, metric sources, info
//! sections and console sections that read the daemon's live state when asked, so nothing is
//! copied or goes stale. What the crate knows of the product is exactly [`instruments`]: the
//! names, help texts and labels of svcid's metric families (authentication verdicts, reloads,
//! connections, token counts, engines, registration, the engine registry's database) and the
//! atomic counters behind them, so that every name is written once. It holds no token, key,
//! gRPC type or engine: the daemons feed the counters and decide what else is shown, and they show
//! only public facts (key fingerprints, never keys). The server, the health rules, the metric
//! types and the console are generic and name no part of the product.

pub mod console;
pub mod events;
pub mod guard;
pub mod health;
pub mod http;
pub mod instruments;
pub mod metrics;
mod response;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::console::{Console, Query, QueryError};
use crate::guard::Guard;
use crate::health::{Component, Status};
use crate::metrics::{Exposition, Kind};

/// A health check: the component's state now.
pub type HealthCheck = Box<dyn Fn() -> Component + Send + Sync>;
/// A metric source: writes its families into the exposition.
pub type MetricSource = Box<dyn Fn(&mut Exposition) + Send + Sync>;
/// An info section: a JSON value under its key.
pub type InfoSection = Box<dyn Fn() -> Value + Send + Sync>;

/// What one daemon exposes on its HTTP port.
pub struct Actuator {
    /// `dpm` or `dpe`: in `svcid_build_info` and `/actuator/info`.
    module: String,
    /// The daemon's version, same uses.
    version: String,
    /// When the process started, for `process_start_time_seconds`.
    started: SystemTime,
    /// Health components in the order added.
    health: Vec<(String, HealthCheck)>,
    /// Metric sources in the order added.
    metrics: Vec<MetricSource>,
    /// Info sections in the order added.
    info: Vec<(String, InfoSection)>,
    /// The operations console's sections and views, and whether it is on.
    console: Console,
    /// Who may see what; `None`: every path is answered to anyone who reaches the port.
    guard: Option<Arc<dyn Guard>>,
}

impl fmt::Debug for Actuator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actuator")
            .field("module", &self.module)
            .field("version", &self.version)
            .field(
                "health",
                &self.health.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("metrics", &self.metrics.len())
            .field(
                "info",
                &self.info.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("console", &self.console)
            .field("guarded", &self.guard.is_some())
            .finish()
    }
}

/// `svcid_build_info{module,version}`.
pub const BUILD_INFO: &str = "svcid_build_info";
/// `process_start_time_seconds`, the standard name.
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";

impl Actuator {
    /// Endpoints of `module` at `version`, with nothing registered yet.
    pub fn new(module: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            module: module.into(),
            version: version.into(),
            started: SystemTime::now(),
            health: Vec::new(),
            metrics: Vec::new(),
            info: Vec::new(),
            console: Console::default(),
            guard: None,
        }
    }

    /// Puts `guard` in front of every route: it decides who may see what ([`guard`]).
    #[must_use]
    pub fn guarded(mut self, guard: Arc<dyn Guard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// The guard in front of the routes, if any.
    pub fn guard(&self) -> Option<&Arc<dyn Guard>> {
        self.guard.as_ref()
    }

    /// Adds a health component named `name`.
    #[must_use]
    pub fn health(
        mut self,
        name: &str,
        check: impl Fn() -> Component + Send + Sync + 'static,
    ) -> Self {
        self.health.push((name.to_owned(), Box::new(check)));
        self
    }

    /// Adds a metric source.
    #[must_use]
    pub fn metrics(mut self, source: impl Fn(&mut Exposition) + Send + Sync + 'static) -> Self {
        self.metrics.push(Box::new(source));
        self
    }

    /// Adds an info section under `key`.
    #[must_use]
    pub fn info(mut self, key: &str, section: impl Fn() -> Value + Send + Sync + 'static) -> Self {
        self.info.push((key.to_owned(), Box::new(section)));
        self
    }

    /// Turns the operations console on (the default) or off: off, its paths answer 404.
    #[must_use]
    pub fn console_enabled(mut self, enabled: bool) -> Self {
        self.console.set_enabled(enabled);
        self
    }

    /// Adds a section of the console's `/console/api` under `key`.
    #[must_use]
    pub fn console_section(
        mut self,
        key: &str,
        section: impl Fn() -> Value + Send + Sync + 'static,
    ) -> Self {
        self.console.add_section(key, Box::new(section));
        self
    }

    /// Adds the console view `/console/api/<name>`, answering a query.
    #[must_use]
    pub fn console_view(
        mut self,
        name: &str,
        view: impl Fn(&Query) -> Result<Value, QueryError> + Send + Sync + 'static,
    ) -> Self {
        self.console.add_view(name, Box::new(view));
        self
    }

    /// The console's parts, for [`console::respond`].
    pub(crate) fn console_parts(&self) -> &Console {
        &self.console
    }

    /// Whether the operations console (`/console`) is served on the HTTP port.
    pub fn serves_console(&self) -> bool {
        self.console.is_enabled()
    }

    /// The module name given at construction.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// The version given at construction.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// When this actuator (the process) started.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// The overall status and the `/actuator/health` report.
    pub fn health_report(&self) -> (Status, Value) {
        let components: Vec<(String, Component)> = self
            .health
            .iter()
            .map(|(name, check)| (name.clone(), check()))
            .collect();
        health::aggregate(&components)
    }

    /// One component's report, for `/actuator/health/<name>`.
    pub fn component(&self, name: &str) -> Option<Component> {
        self.health
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, check)| check())
    }

    /// The `/actuator/prometheus` text.
    pub fn prometheus(&self) -> String {
        let mut out = Exposition::new();
        out.family(
            BUILD_INFO,
            Kind::Gauge,
            "Always 1; the labels say which svcid module and version this is.",
        );
        out.sample(
            BUILD_INFO,
            &[("module", &self.module), ("version", &self.version)],
            1.0,
        );
        let started = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        out.single(
            PROCESS_START_TIME,
            Kind::Gauge,
            "Start time of the process since the Unix epoch, in seconds.",
            started,
        );
        for source in &self.metrics {
            source(&mut out);
        }
        out.into_text()
    }

    /// The `/actuator/info` document: `build` (module and version), then each section.
    pub fn info_report(&self) -> Value {
        let mut report = Map::new();
        report.insert(
            "build".to_owned(),
            serde_json::json!({
                "name": self.module,
                "version": self.version,
                "started": rfc3339(self.started),
            }),
        );
        for (key, section) in &self.info {
            report.insert(key.clone(), section());
        }
        Value::Object(report)
    }
}

/// A time as RFC 3339 in UTC with seconds (`2024-05-01T10:00:00Z`), for reports.
pub fn rfc3339(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at).replace_nanosecond(0);
    match at {
        Ok(at) => at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reports_gather_every_source() {
        let actuator = Actuator::new("dpe", "0.1.0")
            .health("grpc", || Component::up_if(true).with("port", 8532))
            .health("registration", || Component::up_if(false))
            .metrics(|out| out.single("svcid_test", Kind::Gauge, "A test.", 2.0))
            .info("keys", || serde_json::json!({"signing": {"kid": "abc"}}));
        let (status, report) = actuator.health_report();
        assert_eq!(status, Status::Down);
        assert_eq!(report["components"]["grpc"]["details"]["port"], 8532);
        assert_eq!(
            actuator.component("registration").unwrap().status,
            Status::Down
        );
        assert!(actuator.component("nothing").is_none());
        let text = actuator.prometheus();
        assert!(
            text.contains("svcid_build_info{module=\"dpe\",version=\"0.1.0\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("svcid_test 2\n"), "{text}");
        let info = actuator.info_report();
        assert_eq!(info["build"]["name"], "dpe");
        assert_eq!(info["keys"]["signing"]["kid"], "abc");
        assert!(info["build"]["started"].as_str().unwrap().ends_with('Z'));
    }
}
