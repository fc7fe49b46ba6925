//! Live configuration: a running daemon notices a change to its `etc/application.properties`
//! (the file is polled every [`POLL_INTERVAL`]; SIGHUP forces a re-read), validates the whole
//! file again exactly as at start-up, and only then swaps in the new deployment registry and
//! generator key — atomically, so every call is verified against either the old or the new
//! registry, never a mix. What changed is logged; a file that fails validation changes nothing
//! and is logged as ERROR with the same diagnostics `svcid check` prints.
//!
//! Applied live: the deployments (keys added, revoked, reinstated, removed — cached verifications
//! are dropped with the old registry) and the generator key (key rotation). Everything else
//! (ports, hosts, intervals, token policy, logging) takes effect at the next start and is logged
//! as `restartRequired` rather than half-applied.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use svcid_config::{Loaded, ModuleKind, Overrides, Settings};
use svcid_identity::token::{TokenIssuer, TokenVerifier};
use tokio::sync::watch;

/// How often the properties file is looked at.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The settings that only take effect at start, compared to tell the operator a restart is due.
#[derive(Clone, Debug, PartialEq)]
struct StartOnly {
    grpc: svcid_config::GrpcSettings,
    role: svcid_config::RoleSettings,
    logging: String,
    token_expiration: Duration,
    clock_skew: Duration,
    max_token_lifetime: Duration,
    require_audience: bool,
    impersonation_role: String,
}

impl StartOnly {
    fn of(settings: &Settings) -> Self {
        Self {
            grpc: settings.grpc.clone(),
            role: settings.role.clone(),
            logging: format!("{:?}", settings.logging),
            token_expiration: settings.jwt.token_expiration,
            clock_skew: settings.jwt.clock_skew,
            max_token_lifetime: settings.jwt.max_token_lifetime,
            require_audience: settings.jwt.require_audience,
            impersonation_role: settings.jwt.impersonation_role.clone(),
        }
    }

    /// Names of the groups of properties that differ.
    fn changes(&self, new: &Self) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.grpc != new.grpc {
            changed.push("ataccama.server.grpc.*");
        }
        if self.role != new.role {
            changed.push(match new.role {
                svcid_config::RoleSettings::Dpm(_) => "ataccama.one.dpm.registry.*",
                svcid_config::RoleSettings::Dpe(_) => {
                    "ataccama.client.connection.dpm.*, ataccama.one.dpe.*, constraints.*"
                }
            });
        }
        if self.logging != new.logging {
            changed.push("logging.*, ataccama.logging.*");
        }
        if (
            self.token_expiration,
            self.clock_skew,
            self.max_token_lifetime,
        ) != (new.token_expiration, new.clock_skew, new.max_token_lifetime)
            || self.require_audience != new.require_audience
            || self.impersonation_role != new.impersonation_role
        {
            changed.push("ataccama.authentication.internal.jwt.* (other than generator.key)");
        }
        changed
    }
}

/// Re-reads a daemon's configuration and applies what can be applied live.
#[derive(Debug)]
pub struct LiveConfig {
    /// Which daemon this is.
    kind: ModuleKind,
    /// Its home.
    home: PathBuf,
    /// The environment and arguments it was started with; they still override the file.
    overrides: Overrides,
    /// The start-only settings in force.
    started_with: StartOnly,
}

/// Where a reload puts what it applies live.
#[derive(Clone, Debug)]
pub struct LiveTargets {
    /// Receives new deployment registries.
    pub verifier: Arc<TokenVerifier>,
    /// Receives a new generator key.
    pub issuer: Arc<TokenIssuer>,
}

impl LiveConfig {
    /// Watches the configuration of a daemon started with `settings` and `overrides`.
    /// Call before the settings are taken apart to build the daemon.
    pub fn new(settings: &Settings, overrides: Overrides) -> Self {
        Self {
            kind: settings.kind,
            home: settings.home.root().to_owned(),
            overrides,
            started_with: StartOnly::of(settings),
        }
    }

    /// Polls the file and listens for SIGHUP until `stop` turns true. The SIGHUP handler is
    /// installed before this returns (SIGHUP's default action would end the process), so call it
    /// before announcing that the daemon serves. Needs a tokio runtime context.
    pub fn watch(
        self,
        targets: LiveTargets,
        stop: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + Send {
        let hangup = hangup_signal();
        self.poll(targets, stop, hangup)
    }

    async fn poll(self, targets: LiveTargets, mut stop: watch::Receiver<bool>, mut hangup: Hangup) {
        let file = svcid_config::ModuleHome::new(&self.home).properties_file();
        let mut seen = std::fs::read(&file).ok();
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = poll.tick() => "file change",
                Some(()) = recv(&mut hangup) => "SIGHUP",
                _ = stop.changed() => return,
            };
            let content = std::fs::read(&file).ok();
            if trigger == "file change" && content == seen {
                continue;
            }
            seen = content;
            self.reload(&targets, trigger);
        }
    }

    /// Validates the configuration again and applies it; returns whether it was applied.
    pub fn reload(&self, targets: &LiveTargets, trigger: &str) -> bool {
        let loaded = match svcid_config::load(self.kind, &self.home, &self.overrides) {
            Ok(loaded) => loaded,
            Err(problems) => {
                let errors: Vec<String> = problems
                    .iter()
                    .filter(|p| p.is_error())
                    .map(ToString::to_string)
                    .collect();
                tracing::error!(
                    eventId = "configurationReloadFailed",
                    trigger = trigger,
                    errors = errors.len(),
                    "The changed configuration is not valid; the previous one stays in force."
                );
                for problem in errors {
                    tracing::error!(eventId = "configurationProblem", problem = %problem, "{problem}");
                }
                return false;
            }
        };
        self.apply(targets, trigger, loaded);
        true
    }

    fn apply(&self, targets: &LiveTargets, trigger: &str, loaded: Loaded) {
        let Loaded { settings, warnings } = loaded;
        for problem in &warnings {
            tracing::warn!(eventId = "configurationWarning", problem = %problem, "Configuration warning.");
        }
        let new_kid = settings.jwt.generator_key.kid().to_owned();
        if new_kid != targets.issuer.kid() {
            match targets.issuer.replace_key(&settings.jwt.generator_key) {
                Ok(old_kid) => tracing::info!(
                    eventId = "generatorKeyChanged",
                    oldKid = %old_kid,
                    newKid = %new_kid,
                    "This module now signs with a new key."
                ),
                Err(error) => tracing::error!(
                    eventId = "generatorKeyChanged",
                    newKid = %new_kid,
                    "The new generator key cannot sign ({error}); the previous key stays in use."
                ),
            }
        }
        let changed = StartOnly::of(&settings).changes(&self.started_with);
        let diff = targets.verifier.replace_registry(settings.deployments);
        if diff.is_empty() {
            tracing::debug!(
                eventId = "deploymentsReloaded",
                trigger = trigger,
                "Deployments unchanged."
            );
        } else {
            tracing::info!(
                eventId = "deploymentsReloaded",
                trigger = trigger,
                added = %diff.added.join(" "),
                removed = %diff.removed.join(" "),
                revoked = %diff.revoked.join(" "),
                reinstated = %diff.reinstated.join(" "),
                "Deployments reloaded."
            );
        }
        if !changed.is_empty() {
            tracing::warn!(
                eventId = "restartRequired",
                properties = %changed.join("; "),
                "Changed properties take effect after a restart."
            );
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

/// The next SIGHUP; pending forever when signals are unavailable.
#[cfg(unix)]
async fn recv(hangup: &mut Hangup) -> Option<()> {
    match hangup {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}
#[cfg(not(unix))]
async fn recv(_hangup: &mut Hangup) -> Option<()> {
    std::future::pending().await
}
