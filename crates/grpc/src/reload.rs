//! Live configuration: a running daemon notices a change to its `etc/application.properties`
//! (the file is polled every [`POLL_INTERVAL`]; SIGHUP forces a re-read), validates the whole
//! file again exactly as at start-up, and only then swaps in the new deployments and
//! generator key — atomically, so every call is verified against either the old or the new
//! deployments, never a mix. What changed is logged; a file that fails validation changes nothing
//! and is logged as ERROR with the same diagnostics `svcid check` prints. Every applied reload ends
//! with `configurationReloaded` (INFO), which says when it clears the failure of the reload
//! before it, so a log never ends on an ERROR that a saved fix has resolved.
//!
//! Applied live: the deployments (keys added, revoked, reinstated, removed, and each peer's token
//! profile — cached verifications are dropped with the old deployments), the generator key (key
//! rotation) and the log levels (`logging.level.*`, logged as `logLevelsChanged`). Everything
//! else (ports, hosts, intervals, token policy, user-token issuers and administrator roles, log
//! files and appenders) takes effect at the next
//! start and is logged as `restartRequired` rather than half-applied. Each reload is counted, by
//! result, in the [`ReloadMetrics`] given with [`LiveConfig::with_metrics`].
//!
//! The certificate and key files of the TLS settings are watched too: a replaced certificate is
//! validated like the rest and then served to new connections (`certificateReloaded`); the expiry
//! WARN is repeated on every reload. Client TLS and turning server TLS on or off need a restart.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use svcid_actuator::instruments::ReloadMetrics;
use svcid_config::{Loaded, ModuleKind, Overrides, Settings, names};
use svcid_identity::token::{TokenIssuer, TokenVerifier};
use svcid_logging::{Level, LogSettings};
use tokio::sync::{oneshot, watch};

use crate::watched::WatchedFiles;

/// How often the properties file is looked at.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The settings that only take effect at start, compared to tell the operator a restart is due.
#[derive(Clone, Debug, PartialEq)]
struct StartOnly {
    grpc: svcid_config::GrpcSettings,
    http: svcid_config::HttpSettings,
    role: svcid_config::RoleSettings,
    logging: LogSettings,
    token_expiration: Duration,
    clock_skew: Duration,
    max_token_lifetime: Duration,
    require_audience: bool,
    impersonation_role: String,
    admin_roles: Vec<String>,
    /// The user-token settings as text: compared only, never logged (the issuers are rebuilt
    /// only at start).
    users: String,
    /// Who may see the HTTP port and the console login (built only at start).
    access: svcid_config::HttpAccessSettings,
}

impl StartOnly {
    fn of(settings: &Settings) -> Self {
        Self {
            grpc: settings.grpc.clone(),
            http: settings.http.clone(),
            role: settings.role.clone(),
            // Levels apply live; the rest of the logging settings (files, appenders) do not.
            logging: LogSettings {
                root_level: Level::Info,
                levels: Vec::new(),
                ..settings.logging.clone()
            },
            token_expiration: settings.jwt.token_expiration,
            clock_skew: settings.jwt.clock_skew,
            max_token_lifetime: settings.jwt.max_token_lifetime,
            require_audience: settings.jwt.require_audience,
            impersonation_role: settings.jwt.impersonation_role.clone(),
            admin_roles: settings.jwt.admin_roles.clone(),
            users: format!("{:?}", settings.users),
            access: settings.access.clone(),
        }
    }

    /// Names of the groups of properties that differ.
    fn changes(&self, new: &Self) -> Vec<String> {
        let mut changed = Vec::new();
        // New certificate files, key, trust store or mtls mode apply live (LiveServerTls);
        // turning TLS on or off changes what the port speaks and needs a restart.
        if self.grpc.tls.is_some() != new.grpc.tls.is_some() {
            changed.push(format!("{}.enabled", names::GRPC_TLS));
        }
        let without_tls = |g: &svcid_config::GrpcSettings| svcid_config::GrpcSettings {
            tls: None,
            ..g.clone()
        };
        if without_tls(&self.grpc) != without_tls(&new.grpc) {
            changed.push(format!("{}.*", names::GRPC));
        }
        // Where and how the HTTP port listens; the console switch is named on its own.
        if (&self.http.address, self.http.port, self.http.connections)
            != (&new.http.address, new.http.port, new.http.connections)
        {
            changed.push(format!("{}.*", names::SERVER));
        }
        if self.http.console != new.http.console {
            changed.push(names::CONSOLE_ENABLED.to_owned());
        }
        if self.role != new.role {
            changed.push(match new.role {
                svcid_config::RoleSettings::Dpm(_) => format!("{}.*", names::DPM_REGISTRY),
                svcid_config::RoleSettings::Dpe(_) => format!(
                    "{}.*, {}.*, {}.*",
                    names::DPM_CONNECTION,
                    names::DPE,
                    names::CONSTRAINTS
                ),
            });
        }
        if self.logging != new.logging {
            changed.push(format!(
                "{}.* (other than {}.*), {}.*",
                names::LOGGING,
                names::LOG_LEVEL,
                names::ATACCAMA_LOGGING
            ));
        }
        if (
            self.token_expiration,
            self.clock_skew,
            self.max_token_lifetime,
        ) != (new.token_expiration, new.clock_skew, new.max_token_lifetime)
            || self.require_audience != new.require_audience
            || self.impersonation_role != new.impersonation_role
        {
            changed.push(format!("{}.* (other than generator.key)", names::JWT));
        }
        if self.admin_roles != new.admin_roles {
            changed.push(names::ADMIN_ROLES.to_owned());
        }
        if self.users != new.users {
            changed.push(format!("{}.*, mp.jwt.*", names::KEYCLOAK));
        }
        if self.access != new.access {
            changed.push(format!(
                "{}.*, ataccama.one.webserver.*, svcid.console.* (the HTTP port's access and login)",
                names::HTTP_ACL
            ));
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
    /// The log levels in force (`logging.level.root` and the per-target entries).
    levels: Mutex<(Level, Vec<(String, Level)>)>,
    /// Counts reloads by result; shared with the actuator.
    metrics: Arc<ReloadMetrics>,
    /// The TLS files of the configuration at start, watched beside the properties file.
    tls_files: Vec<PathBuf>,
    /// Whether the last reload failed (its `configurationReloadFailed` not yet cleared).
    last_failed: AtomicBool,
}

/// Where a reload puts what it applies live.
#[derive(Clone, Debug)]
pub struct LiveTargets {
    /// Receives new deployment registries.
    pub verifier: Arc<TokenVerifier>,
    /// Receives a new generator key.
    pub issuer: Arc<TokenIssuer>,
    /// Receives new certificate files of the gRPC port, when it serves TLS.
    pub server_tls: Option<Arc<crate::tls::LiveServerTls>>,
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
            levels: Mutex::new((settings.logging.root_level, settings.logging.levels.clone())),
            metrics: Arc::default(),
            tls_files: tls_files(settings),
            last_failed: AtomicBool::new(false),
        }
    }

    /// Counts reloads (applied, failed) in `metrics`, which the daemon also shows.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<ReloadMetrics>) -> Self {
        self.metrics = metrics;
        self
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
        // Reading the files and loading them (a second of CPU for 10,000 deployments) happen on
        // a thread of their own: the runtime's workers go on serving calls meanwhile, and every
        // reload reuses that thread's memory instead of spreading over the allocator's arenas.
        let (requests, inbox) = std::sync::mpsc::channel::<(&'static str, oneshot::Sender<()>)>();
        let file = svcid_config::ModuleHome::new(&self.home).properties_file();
        let worker = std::thread::Builder::new()
            .name("config-reload".to_owned())
            .spawn(move || {
                let mut watched = WatchedFiles::new(
                    std::iter::once(file)
                        .chain(self.tls_files.iter().cloned())
                        .collect(),
                );
                for (trigger, done) in inbox {
                    // Looked at on SIGHUP too, so a forced reload is not followed by another.
                    let changed = watched.changed();
                    if trigger == "SIGHUP" || changed {
                        self.reload(&targets, trigger);
                    }
                    // The watcher may be gone (stopping): nobody to tell.
                    let _ = done.send(());
                }
            });
        if let Err(error) = worker {
            tracing::error!(
                eventId = crate::events::CONFIGURATION_RELOAD_FAILED,
                "Cannot start the configuration watcher ({error}); changes take effect after a restart."
            );
            return;
        }
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = poll.tick() => "file change",
                Some(()) = recv(&mut hangup) => "SIGHUP",
                _ = stop.changed() => return,
            };
            let (done, checked) = oneshot::channel();
            if requests.send((trigger, done)).is_err() {
                return;
            }
            tokio::select! {
                _ = checked => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Validates the configuration again and applies it; returns whether it was applied.
    pub fn reload(&self, targets: &LiveTargets, trigger: &str) -> bool {
        // The parsed file is kept to the end, so freeing it comes after the reload is in force.
        let home = svcid_config::ModuleHome::new(&self.home);
        let read = svcid_config::read_sources(&home, &self.overrides).and_then(|props| {
            let loaded = svcid_config::bind(self.kind, home, &props)?;
            Ok((loaded, props))
        });
        let (loaded, _props) = match read {
            Ok(read) => read,
            Err(problems) => {
                let errors: Vec<&svcid_config::Problem> =
                    problems.iter().filter(|p| p.is_error()).collect();
                tracing::error!(
                    eventId = crate::events::CONFIGURATION_RELOAD_FAILED,
                    trigger = trigger,
                    errors = errors.len(),
                    "The changed configuration is not valid; the previous one stays in force."
                );
                for problem in errors {
                    tracing::error!(eventId = crate::events::CONFIGURATION_PROBLEM, code = %problem.code, problem = %problem, "{problem}");
                }
                self.metrics.failed();
                self.last_failed.store(true, Ordering::Relaxed);
                return false;
            }
        };
        let warnings = loaded.warnings.len();
        self.apply(targets, trigger, loaded);
        self.metrics.applied();
        let cleared = self.last_failed.swap(false, Ordering::Relaxed);
        if cleared {
            tracing::info!(
                eventId = crate::events::CONFIGURATION_RELOADED,
                trigger = trigger,
                warnings = warnings,
                clearedFailure = true,
                "Configuration reloaded; the previous reload's failure is cleared: the file on disk is in force again."
            );
        } else {
            tracing::info!(
                eventId = crate::events::CONFIGURATION_RELOADED,
                trigger = trigger,
                warnings = warnings,
                clearedFailure = false,
                "Configuration reloaded."
            );
        }
        true
    }

    /// Installs changed `logging.level.*` values in the running subscriber and says so.
    fn apply_levels(&self, logging: &LogSettings) {
        let mut in_force = self.levels.lock().unwrap_or_else(PoisonError::into_inner);
        let wanted = (logging.root_level, logging.levels.clone());
        if *in_force == wanted {
            return;
        }
        if !svcid_logging::set_levels(wanted.0, &wanted.1) {
            // No installed subscriber (an in-process test): nothing to change.
            return;
        }
        let shown: Vec<String> = wanted
            .1
            .iter()
            .map(|(target, level)| format!("{target}={level}"))
            .collect();
        // WARN, so the change is visible whatever the new levels are.
        tracing::warn!(
            eventId = crate::events::LOG_LEVELS_CHANGED,
            root = %wanted.0,
            levels = %shown.join(" "),
            "Log levels changed."
        );
        *in_force = wanted;
    }

    fn apply(&self, targets: &LiveTargets, trigger: &str, loaded: Loaded) {
        let Loaded { settings, warnings } = loaded;
        for problem in &warnings {
            tracing::warn!(eventId = crate::events::CONFIGURATION_WARNING, code = %problem.code, problem = %problem, "Configuration warning.");
        }
        let new_kid = settings.jwt.generator_key.kid().to_owned();
        if new_kid != targets.issuer.kid() {
            match targets.issuer.replace_key(&settings.jwt.generator_key) {
                Ok(old_kid) => tracing::info!(
                    eventId = crate::events::GENERATOR_KEY_CHANGED,
                    oldKid = %old_kid,
                    newKid = %new_kid,
                    "This module now signs with a new key."
                ),
                Err(error) => tracing::error!(
                    eventId = crate::events::GENERATOR_KEY_CHANGED,
                    newKid = %new_kid,
                    "The new generator key cannot sign ({error}); the previous key stays in use."
                ),
            }
        }
        self.apply_levels(&settings.logging);
        if let (Some(live), Some(tls)) = (&targets.server_tls, settings.grpc.tls.as_ref()) {
            match live.replace(tls) {
                Ok(true) => tracing::info!(
                    eventId = crate::events::CERTIFICATE_RELOADED,
                    subject = %tls.identity.subject,
                    notAfter = %tls.identity.not_after,
                    clientAuth = ?tls.client_auth,
                    "New connections to the gRPC port get the new TLS configuration."
                ),
                Ok(false) => {}
                Err(error) => tracing::error!(
                    eventId = crate::events::CERTIFICATE_RELOADED,
                    "The new TLS configuration cannot be used ({error}); the previous one stays in force."
                ),
            }
        }
        crate::tls::warn_if_expiring(settings.grpc.tls.as_ref());
        let changed = StartOnly::of(&settings).changes(&self.started_with);
        let diff = targets.verifier.replace_deployments(settings.deployments);
        if diff.is_empty() {
            tracing::debug!(
                eventId = crate::events::DEPLOYMENTS_RELOADED,
                trigger = trigger,
                "Deployments unchanged."
            );
        } else {
            tracing::info!(
                eventId = crate::events::DEPLOYMENTS_RELOADED,
                trigger = trigger,
                added = %diff.added.join(" "),
                removed = %diff.removed.join(" "),
                revoked = %diff.revoked.join(" "),
                reinstated = %diff.reinstated.join(" "),
                tokenProfiles = %diff.token_profiles.join(" "),
                "Deployments reloaded."
            );
        }
        if !changed.is_empty() {
            tracing::warn!(
                eventId = crate::events::RESTART_REQUIRED,
                properties = %changed.join("; "),
                "Changed properties take effect after a restart."
            );
        }
    }
}

/// The certificate, key and trust-store files of the server's and the client's TLS settings.
fn tls_files(settings: &Settings) -> Vec<PathBuf> {
    let client = match &settings.role {
        svcid_config::RoleSettings::Dpm(dpm) => dpm.engine_tls.as_ref(),
        svcid_config::RoleSettings::Dpe(dpe) => dpe.dpm_tls.as_ref(),
    };
    let trust_stores = settings
        .grpc
        .tls
        .as_ref()
        .and_then(|tls| tls.trust_store_file.clone())
        .into_iter()
        .chain(client.and_then(|tls| tls.trust.file().map(std::path::Path::to_path_buf)));
    settings
        .grpc
        .tls
        .as_ref()
        .map(|tls| &tls.identity)
        .into_iter()
        .chain(client.and_then(|tls| tls.identity.as_ref()))
        .flat_map(|identity| {
            [
                identity.cert_chain_file.clone(),
                identity.private_key_file.clone(),
            ]
        })
        .chain(trust_stores)
        .collect()
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
