//! The engine registry: which engines DPM knows, where they are and in which status.
//!
//! Shared by the gRPC handlers (registration, on the request threads) and the status checker (on
//! `scheduling-1`); every operation is a short critical section on one mutex and never awaits.
//! It decides transitions and timing; the checker does the network calls and the logging of
//! checks, the handlers the logging of registrations.
//!
//! Due checks come from a queue ordered by due time, so the checker's frequent questions ("what
//! is due?", "when is the next one?") cost a few heap operations, not a pass over every engine:
//! with a thousand engines checked every second the passes alone were a sixth of the checker's
//! CPU (BENCHMARKS.md). Queue entries are hints: each is checked against the engine's current
//! state when it comes up, and a stale one is dropped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;

/// An engine's lifecycle status (docs/wire.md, the handshake).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineStatus {
    /// Registered, not yet checked.
    New,
    /// The last status check succeeded.
    Ready,
    /// The last status check failed; retried with back-off.
    Disconnected,
}

impl EngineStatus {
    /// The status as written: `NEW`, `READY`, `DISCONNECTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineStatus::New => "NEW",
            EngineStatus::Ready => "READY",
            EngineStatus::Disconnected => "DISCONNECTED",
        }
    }

    /// The status written as [`EngineStatus::as_str`] does.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "NEW" => Some(EngineStatus::New),
            "READY" => Some(EngineStatus::Ready),
            "DISCONNECTED" => Some(EngineStatus::Disconnected),
            _ => None,
        }
    }
}

impl fmt::Display for EngineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an engine said it can be reached. Prints as the product does:
/// `EngineAddress(hostname=h, port=8532)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EngineAddress {
    /// Advertised host name or address.
    pub hostname: String,
    /// Advertised gRPC port.
    pub port: u16,
}

impl fmt::Display for EngineAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EngineAddress(hostname={}, port={})",
            self.hostname, self.port
        )
    }
}

/// `Engine(id=…, address=EngineAddress(…))`, the product's rendering in status events.
#[derive(Clone, Debug)]
pub struct EngineRef<'a> {
    /// Engine id.
    pub id: &'a str,
    /// Its address.
    pub address: &'a EngineAddress,
}

impl fmt::Display for EngineRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Engine(id={}, address={})", self.id, self.address)
    }
}

/// Who registered an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registrant {
    /// The identity as logged: `ServiceIdentity(module=dpe, id=dpe-dev, roles=[…])`.
    pub identity: String,
    /// Its deployment name: the status checks of the engine use that deployment's token
    /// profile (docs/wire.md).
    pub deployment: String,
}

/// A status check the checker should start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueCheck {
    /// The engine.
    pub id: String,
    /// Where to call it.
    pub address: EngineAddress,
    /// The deployment that registered it (whose token profile the call uses).
    pub deployment: String,
}

/// One registered engine: what a store keeps of it, and when this registry checks it next.
/// Reads and writes of the record's fields go through `Deref` (`engine.status`).
#[derive(Clone, Debug)]
pub struct Engine {
    /// What is known of the engine (what a store keeps).
    pub record: EngineRecord,
    /// When the next status check is due.
    next_check: Instant,
    /// The delay before the next retry while DISCONNECTED (grows with back-off).
    retry_delay: Duration,
    /// A check is running; the checker must not start a second one.
    checking: bool,
}

impl std::ops::Deref for Engine {
    type Target = EngineRecord;

    fn deref(&self) -> &EngineRecord {
        &self.record
    }
}

impl std::ops::DerefMut for Engine {
    fn deref_mut(&mut self) -> &mut EngineRecord {
        &mut self.record
    }
}

/// What a store keeps of an engine (docs/postgres.md): everything but the checker's own timing. A
/// registry [adopts](EngineRegistry::adopt) records it loads or takes over, and listings of the
/// whole fleet are built from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineRecord {
    /// The engine's id.
    pub id: String,
    /// Where it is checked.
    pub address: EngineAddress,
    /// The encoded constraints, as received.
    pub constraints: Vec<u8>,
    /// Its status when last recorded.
    pub status: EngineStatus,
    /// Since when.
    pub status_since: SystemTime,
    /// The identity that registered it, as logged.
    pub registered_by: String,
    /// The deployment that registered it.
    pub registered_by_deployment: String,
    /// When it first became known.
    pub registered_at: SystemTime,
    /// When a status check last succeeded.
    pub last_seen: Option<SystemTime>,
}

impl Engine {
    /// An engine as recorded, its next check due at once.
    fn from_record(record: EngineRecord, retry_delay: Duration) -> Self {
        Self {
            record,
            next_check: Instant::now(),
            retry_delay,
            checking: false,
        }
    }

    /// An engine for a listing of the whole fleet (not checked by this registry).
    pub fn listed(record: EngineRecord) -> Self {
        Self::from_record(record, Duration::ZERO)
    }
}

/// What the status checker last found of an engine: what a store writes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The engine.
    pub id: String,
    /// Its status.
    pub status: EngineStatus,
    /// Since when.
    pub status_since: SystemTime,
    /// Its last successful check.
    pub last_seen: Option<SystemTime>,
}

/// What a registration did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    /// The engine was not known: it is now `NEW`.
    New,
    /// The engine was known; its address may have changed.
    AlreadyRegistered {
        /// The previous address, when the engine now advertises another one.
        moved_from: Option<EngineAddress>,
    },
}

/// The outcome of a status check, applied by [`EngineRegistry::finish_check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Status before the check.
    pub old: EngineStatus,
    /// Status after the check.
    pub new: EngineStatus,
    /// The engine's address at check time.
    pub address: EngineAddress,
    /// For a failure: when the next retry is due.
    pub retry_in: Option<Duration>,
}

/// Back-off rules for unreachable engines, and the READY check interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckSchedule {
    /// Between checks of a READY engine.
    pub connected_interval: Duration,
    /// First retry delay after a failure.
    pub disconnected_interval: Duration,
    /// Factor applied to the retry delay after each further failure.
    pub multiplier: f64,
    /// Ceiling of the retry delay.
    pub disconnected_max: Duration,
}

/// When a READY engine whose check was due at `due` and ended at `now` is checked next: one
/// `interval` after `due`, so the engine is checked at the configured rate however long each check
/// takes (counting from the end would add every check's latency to every interval). A check that
/// ended after the next one was due makes that one wait a whole interval from `now`: a slow
/// engine, or a checker that fell behind, is never checked back to back.
fn next_on_rate(due: Instant, now: Instant, interval: Duration) -> Instant {
    let on_rate = due + interval;
    if on_rate > now {
        on_rate
    } else {
        now + interval
    }
}

/// All engines known to this DPM.
#[derive(Debug)]
pub struct EngineRegistry {
    /// Engines by id, with the queue of due checks.
    engines: Mutex<Engines>,
    /// Wakes the status checker when an engine needs checking sooner than it planned.
    changed: Notify,
    /// Timing of checks.
    schedule: CheckSchedule,
}

/// The engines and when each is due, under one lock.
#[derive(Debug, Default)]
struct Engines {
    /// Engines by id.
    by_id: HashMap<String, Engine>,
    /// (due time, engine id), earliest first. An entry is pushed whenever an engine's
    /// `next_check` is set; entries for gone, running or rescheduled engines are skipped.
    due: BinaryHeap<Reverse<(Instant, String)>>,
}

impl Engines {
    /// Queues `id` for a check at `at`.
    fn schedule(&mut self, id: &str, at: Instant) {
        self.due.push(Reverse((at, id.to_owned())));
        // Engines that stay unreachable re-register every few seconds while their retry waits
        // minutes, each time adding an entry: rebuild from the engines once stale ones dominate.
        if self.due.len() > 2 * self.by_id.len() + 64 {
            self.due = self
                .by_id
                .values()
                .filter(|e| !e.checking)
                .map(|e| Reverse((e.next_check, e.id.clone())))
                .collect();
        }
    }

    /// Drops queue entries that can no longer start a check, so the head is a real due time.
    fn drop_stale_head(&mut self) {
        while let Some(Reverse((at, id))) = self.due.peek() {
            let live = self
                .by_id
                .get(id)
                .is_some_and(|e| !e.checking && e.next_check <= *at);
            if live {
                return;
            }
            self.due.pop();
        }
    }
}

impl std::ops::Deref for Engines {
    type Target = HashMap<String, Engine>;

    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl std::ops::DerefMut for Engines {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.by_id
    }
}

impl EngineRegistry {
    /// An empty registry.
    pub fn new(schedule: CheckSchedule) -> Self {
        Self {
            engines: Mutex::new(Engines::default()),
            changed: Notify::new(),
            schedule,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Engines> {
        // A panic while holding the lock cannot leave an engine half-updated (every update is a
        // plain field assignment), so a poisoned lock is still safe to use.
        self.engines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers or re-asserts an engine. A known engine that is not READY, or that moved, is
    /// checked at once.
    pub fn register(
        &self,
        id: &str,
        address: EngineAddress,
        constraints: Vec<u8>,
        registrant: Registrant,
    ) -> Registration {
        let now = Instant::now();
        let outcome = {
            let mut engines = self.lock();
            match engines.get_mut(id) {
                Some(engine) => {
                    let moved_from = (engine.address != address).then(|| engine.address.clone());
                    let recheck = moved_from.is_some() || engine.status != EngineStatus::Ready;
                    if recheck {
                        engine.next_check = now;
                        engine.retry_delay = self.schedule.disconnected_interval;
                    }
                    engine.address = address;
                    engine.constraints = constraints;
                    engine.registered_by = registrant.identity;
                    engine.registered_by_deployment = registrant.deployment;
                    if recheck {
                        engines.schedule(id, now);
                    }
                    Registration::AlreadyRegistered { moved_from }
                }
                None => {
                    engines.insert(
                        id.to_owned(),
                        Engine {
                            record: EngineRecord {
                                id: id.to_owned(),
                                address,
                                constraints,
                                status: EngineStatus::New,
                                status_since: SystemTime::now(),
                                registered_by: registrant.identity,
                                registered_by_deployment: registrant.deployment,
                                registered_at: SystemTime::now(),
                                last_seen: None,
                            },
                            next_check: now,
                            retry_delay: self.schedule.disconnected_interval,
                            checking: false,
                        },
                    );
                    engines.schedule(id, now);
                    Registration::New
                }
            }
        };
        self.changed.notify_one();
        outcome
    }

    /// Takes over an engine another DPM registered or checked (a store loaded it): it keeps its
    /// recorded status, so a READY engine is not "new" again, and is checked at once. False (and
    /// nothing changes) when the engine is already known here.
    pub fn adopt(&self, record: EngineRecord) -> bool {
        let adopted = {
            let mut engines = self.lock();
            if engines.contains_key(&record.id) {
                false
            } else {
                let id = record.id.clone();
                let engine = Engine::from_record(record, self.schedule.disconnected_interval);
                let at = engine.next_check;
                engines.insert(id.clone(), engine);
                engines.schedule(&id, at);
                true
            }
        };
        if adopted {
            self.changed.notify_one();
        }
        adopted
    }

    /// True when `id` is known here with this address, constraints and registrant: a
    /// registration that changes nothing a store keeps.
    pub fn is_unchanged(
        &self,
        id: &str,
        address: &EngineAddress,
        constraints: &[u8],
        registrant: &Registrant,
    ) -> bool {
        self.lock().get(id).is_some_and(|e| {
            &e.address == address
                && e.constraints == constraints
                && e.registered_by == registrant.identity
                && e.registered_by_deployment == registrant.deployment
        })
    }

    /// The status of every engine here, for a store to write back.
    pub fn observed(&self) -> Vec<Observed> {
        self.lock()
            .values()
            .map(|e| Observed {
                id: e.id.clone(),
                status: e.status,
                status_since: e.status_since,
                last_seen: e.last_seen,
            })
            .collect()
    }

    /// The ids of every engine here.
    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Forgets an engine; returns it when it was known.
    pub fn unregister(&self, id: &str) -> Option<Engine> {
        self.lock().remove(id)
    }

    /// How many engines are known.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no engine is known.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// What is known of engine `id`, when it is here.
    pub fn record(&self, id: &str) -> Option<EngineRecord> {
        self.lock().get(id).map(|engine| engine.record.clone())
    }

    /// A copy of every engine, for listings and tests.
    pub fn snapshot(&self) -> Vec<Engine> {
        self.lock().values().cloned().collect()
    }

    /// The engines whose check is due, marked as being checked.
    pub fn start_due_checks(&self, now: Instant) -> Vec<DueCheck> {
        let mut engines = self.lock();
        let mut due = Vec::new();
        // Bounded: every pass pops an entry, and there are finitely many.
        while let Some(Reverse((at, _))) = engines.due.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id))) = engines.due.pop() else {
                break;
            };
            if let Some(engine) = engines.by_id.get_mut(&id)
                && !engine.checking
                && engine.next_check <= now
            {
                engine.checking = true;
                due.push(DueCheck {
                    address: engine.address.clone(),
                    deployment: engine.registered_by_deployment.clone(),
                    id,
                });
            }
        }
        due
    }

    /// When the next check is due (None: no engine waits for one).
    pub fn next_due(&self) -> Option<Instant> {
        let mut engines = self.lock();
        engines.drop_stale_head();
        engines.due.peek().map(|Reverse((at, _))| *at)
    }

    /// Records a check's outcome. `None` when the engine is gone (unregistered meanwhile) or was
    /// checked at an address it no longer has; otherwise the status change (old may equal new).
    pub fn finish_check(&self, id: &str, checked: &EngineAddress, ok: bool) -> Option<Transition> {
        let now = Instant::now();
        let mut guard = self.lock();
        let engines = &mut *guard;
        let engine = engines.by_id.get_mut(id)?;
        engine.checking = false;
        if &engine.address != checked {
            // It moved while we were checking; the registration already asked for a new check
            // (its queue entry was skipped while this check ran, so queue it again).
            let at = engine.next_check;
            engines.schedule(id, at);
            return None;
        }
        let old = engine.status;
        let new = if ok {
            EngineStatus::Ready
        } else {
            EngineStatus::Disconnected
        };
        if new != old {
            engine.status_since = SystemTime::now();
        }
        let transition = if ok {
            engine.status = EngineStatus::Ready;
            engine.last_seen = Some(SystemTime::now());
            engine.retry_delay = self.schedule.disconnected_interval;
            engine.next_check =
                next_on_rate(engine.next_check, now, self.schedule.connected_interval);
            Transition {
                old,
                new: EngineStatus::Ready,
                address: engine.address.clone(),
                retry_in: None,
            }
        } else {
            let delay = engine.retry_delay;
            engine.status = EngineStatus::Disconnected;
            engine.next_check = now + delay;
            engine.retry_delay = delay
                .mul_f64(self.schedule.multiplier)
                .min(self.schedule.disconnected_max);
            Transition {
                old,
                new: EngineStatus::Disconnected,
                address: engine.address.clone(),
                retry_in: Some(delay),
            }
        };
        let at = engine.next_check;
        engines.schedule(id, at);
        Some(transition)
    }

    /// Resolves when a registration changed what the checker should do.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> CheckSchedule {
        CheckSchedule {
            connected_interval: Duration::from_secs(1),
            disconnected_interval: Duration::from_secs(1),
            multiplier: 2.0,
            disconnected_max: Duration::from_secs(5),
        }
    }

    fn by(deployment: &str) -> Registrant {
        Registrant {
            identity: format!("ServiceIdentity(module=dpe, id={deployment}, roles=[])"),
            deployment: deployment.to_owned(),
        }
    }

    fn address(port: u16) -> EngineAddress {
        EngineAddress {
            hostname: "h".into(),
            port,
        }
    }

    #[tokio::test]
    async fn new_engine_is_due_at_once_and_becomes_ready() {
        let registry = EngineRegistry::new(schedule());
        let outcome = registry.register("e1", address(1), Vec::new(), by("x"));
        assert_eq!(outcome, Registration::New);
        let due = registry.start_due_checks(Instant::now());
        assert_eq!(
            due,
            vec![DueCheck {
                id: "e1".to_owned(),
                address: address(1),
                deployment: "x".to_owned()
            }]
        );
        assert!(
            registry.start_due_checks(Instant::now()).is_empty(),
            "no second check while one runs"
        );
        let t = registry
            .finish_check("e1", &address(1), true)
            .expect("known engine");
        assert_eq!((t.old, t.new), (EngineStatus::New, EngineStatus::Ready));
    }

    #[tokio::test]
    async fn failures_back_off_up_to_the_ceiling_and_success_resets() {
        let registry = EngineRegistry::new(schedule());
        registry.register("e1", address(1), Vec::new(), by("x"));
        let mut delays = Vec::new();
        for _ in 0..5 {
            registry.start_due_checks(Instant::now() + Duration::from_secs(3600));
            let t = registry
                .finish_check("e1", &address(1), false)
                .expect("known");
            delays.push(t.retry_in.expect("failure has a retry").as_secs());
        }
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
        registry.start_due_checks(Instant::now() + Duration::from_secs(3600));
        let t = registry
            .finish_check("e1", &address(1), true)
            .expect("known");
        assert_eq!(
            (t.old, t.new),
            (EngineStatus::Disconnected, EngineStatus::Ready)
        );
    }

    #[tokio::test]
    async fn ready_engines_are_checked_at_the_rate_not_after_each_check() {
        let interval = Duration::from_millis(200);
        let registry = EngineRegistry::new(CheckSchedule {
            connected_interval: interval,
            ..schedule()
        });
        registry.register("e1", address(1), Vec::new(), by("x"));
        let due = registry.next_due().expect("a new engine is due");
        assert_eq!(registry.start_due_checks(due).len(), 1);
        // A check that takes a while: the next one is still one interval after this one was due.
        std::thread::sleep(Duration::from_millis(50));
        registry.finish_check("e1", &address(1), true);
        let next = registry.next_due().expect("scheduled again");
        assert_eq!(next, due + interval);
        // A check that ends after the next one was due: that one waits a whole interval.
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        assert_eq!(registry.start_due_checks(Instant::now()).len(), 1);
        std::thread::sleep(interval + Duration::from_millis(50));
        let ended = Instant::now();
        registry.finish_check("e1", &address(1), true);
        let after_slow = registry.next_due().expect("scheduled again");
        assert!(
            after_slow >= ended + interval,
            "no check straight after a slow one"
        );
    }

    #[tokio::test]
    async fn reregistration_is_idempotent_and_notices_a_move() {
        let registry = EngineRegistry::new(schedule());
        registry.register("e1", address(1), Vec::new(), by("x"));
        assert_eq!(
            registry.register("e1", address(1), Vec::new(), by("x")),
            Registration::AlreadyRegistered { moved_from: None }
        );
        assert_eq!(
            registry.register("e1", address(2), Vec::new(), by("x")),
            Registration::AlreadyRegistered {
                moved_from: Some(address(1))
            }
        );
        assert!(registry.unregister("e1").is_some());
        assert!(registry.unregister("e1").is_none());
    }

    #[tokio::test]
    async fn only_due_engines_are_started_earliest_first() {
        let registry = EngineRegistry::new(schedule());
        for port in 1..=100 {
            registry.register(&format!("e{port}"), address(port), Vec::new(), by("x"));
        }
        let now = Instant::now();
        assert_eq!(registry.start_due_checks(now).len(), 100);
        assert_eq!(registry.next_due(), None, "every engine is being checked");
        // Half succeed (due again in 1 s), half fail (due again in 1 s, then 2 s).
        for port in 1..=100 {
            registry.finish_check(&format!("e{port}"), &address(port), port % 2 == 0);
        }
        let next = registry.next_due().expect("all are scheduled");
        assert!(next > now && next <= Instant::now() + Duration::from_secs(1));
        assert!(registry.start_due_checks(Instant::now()).is_empty());
        let later = Instant::now() + Duration::from_millis(1500);
        assert_eq!(registry.start_due_checks(later).len(), 100);
    }

    #[tokio::test]
    async fn a_move_during_a_check_is_checked_again_and_stale_entries_do_not_pile_up() {
        let registry = EngineRegistry::new(schedule());
        registry.register("e1", address(1), Vec::new(), by("x"));
        assert_eq!(registry.start_due_checks(Instant::now()).len(), 1);
        // Moves while its check runs: that check's result is dropped, a new one is due at once.
        registry.register("e1", address(2), Vec::new(), by("x"));
        assert!(registry.finish_check("e1", &address(1), true).is_none());
        assert_eq!(
            registry.start_due_checks(Instant::now()),
            vec![DueCheck {
                id: "e1".to_owned(),
                address: address(2),
                deployment: "x".to_owned()
            }]
        );
        registry.finish_check("e1", &address(2), false);
        // An unreachable engine re-registering often leaves stale entries; they stay bounded.
        for _ in 0..1000 {
            registry.register("e1", address(2), Vec::new(), by("x"));
        }
        assert!(registry.lock().due.len() <= 2 + 64 + 1);
        assert_eq!(registry.start_due_checks(Instant::now()).len(), 1);
    }

    #[tokio::test]
    async fn an_adopted_ready_engine_stays_ready_is_checked_at_once_and_is_not_new() {
        let registry = EngineRegistry::new(schedule());
        let record = EngineRecord {
            id: "e1".into(),
            address: address(1),
            constraints: vec![1, 2, 3],
            status: EngineStatus::Ready,
            status_since: SystemTime::UNIX_EPOCH,
            registered_by: "ServiceIdentity(module=dpe, id=x, roles=[])".into(),
            registered_by_deployment: "x".into(),
            registered_at: SystemTime::UNIX_EPOCH,
            last_seen: Some(SystemTime::UNIX_EPOCH),
        };
        assert!(registry.adopt(record.clone()));
        assert!(!registry.adopt(record), "adopted once");
        assert_eq!(registry.start_due_checks(Instant::now()).len(), 1);
        let t = registry
            .finish_check("e1", &address(1), true)
            .expect("known");
        assert_eq!((t.old, t.new), (EngineStatus::Ready, EngineStatus::Ready));
        // A re-assertion that changes nothing a store keeps; then one that does.
        assert!(registry.is_unchanged("e1", &address(1), &[1, 2, 3], &by("x")));
        assert!(!registry.is_unchanged("e1", &address(2), &[1, 2, 3], &by("x")));
        assert!(!registry.is_unchanged("e1", &address(1), &[], &by("x")));
        assert!(!registry.is_unchanged("e2", &address(1), &[1, 2, 3], &by("x")));
        assert_eq!(
            registry.register("e1", address(1), vec![1, 2, 3], by("x")),
            Registration::AlreadyRegistered { moved_from: None }
        );
    }

    #[test]
    fn statuses_are_written_as_they_parse() {
        for status in [
            EngineStatus::New,
            EngineStatus::Ready,
            EngineStatus::Disconnected,
        ] {
            assert_eq!(EngineStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(EngineStatus::parse("ready"), None);
    }

    #[test]
    fn engine_references_render_like_the_product() {
        assert_eq!(
            EngineRef {
                id: "e",
                address: &address(8532)
            }
            .to_string(),
            "Engine(id=e, address=EngineAddress(hostname=h, port=8532))"
        );
    }
}
