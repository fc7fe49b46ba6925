//! The registry in PostgreSQL (`spring.datasource.url`, docs/postgres.md): the fleet survives
//! restarts and several DPM replicas on one database are one registry.
//!
//! Every engine is a row of `dpm_engine`, written through on registration. Each replica holds a
//! lease row in `dpm_replica` and owns a share of the engines (`dpm_engine.owner`): only the owner
//! checks an engine, so its status changes are made and logged once. Every [`TICK`] a replica
//! renews its lease, writes back what its checker found, lets go of engines another replica took,
//! and claims engines nobody holds — new rows whose replica stopped, and the engines of a replica
//! whose lease ran out ([`LEASE`]) — in batches, `FOR UPDATE SKIP LOCKED`, so two replicas never
//! claim the same engine. A claimed engine keeps its recorded status ([`EngineRegistry::adopt`]):
//! a READY engine stays READY through a takeover or a restart.
//!
//! What the checker found is written back every [`WRITE_BACK_EVERY`], in one statement for every
//! engine that changed — and an engine's `last_seen` changes with every successful check — so
//! another replica's listing shows the time of an engine's last check within about two seconds.
//! The lease renewal, the write-back and the tick's read are one statement; a tick costs that and
//! a claim.
//!
//! A registration that changes nothing the database keeps is answered from the local registry
//! (the DPE re-asserts every few seconds), so the steady state costs a handful of statements a
//! second per replica, not one per engine. When the database is lost, the engines already owned
//! keep being checked, registrations that need the database are answered `UNAVAILABLE`, and the
//! `database` health component is DOWN until a tick succeeds again.
//!
//! Listings of the whole fleet (`ListEngines`, the operations console) are served from a
//! snapshot of the fleet, never a statement per request: while someone listed the fleet within
//! [`FLEET_WANTED_FOR`], every write-back also reads the fleet into the snapshot (the leases once a
//! [`TICK`]); the engines checked here are shown as the local checker knows them. A listing
//! finding no snapshot younger than [`FLEET_FRESH_FOR`] (nobody listed for a while) reads the
//! fleet itself, once for all the requests waiting. Nobody listing, no extra statement.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use svcid_actuator::health::Component;
use svcid_actuator::instruments::{
    REGISTRY_DB_CONNECTIONS, REGISTRY_DB_QUERIES, REGISTRY_DB_QUERY_DURATION,
    REGISTRY_LEASE_TAKEOVERS,
};
use svcid_actuator::metrics::{CounterVec, Exposition, Histogram, Kind, LATENCY_BOUNDS};
use svcid_config::{Datasource, SslMode};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::tls;
use super::{EngineStore, Fleet, FleetEngine, Replica, StatusCounts, StoreError, count_by_status};
use crate::engines::{
    Engine, EngineAddress, EngineRecord, EngineRegistry, EngineStatus, Observed, Registrant,
    Registration,
};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// How often a replica renews its lease, writes back statuses and claims engines.
pub const TICK: Duration = Duration::from_secs(1);
/// How long a lease holds unrenewed: a killed replica's engines are claimed within
/// `LEASE + TICK` (the product's ShedLock holds a task at most 5 s).
pub const LEASE: Duration = Duration::from_secs(3);
/// Most engines claimed by one statement.
const CLAIM_BATCH: i64 = 500;
/// Longest one database round trip (or waiting for a connection) may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// The advisory lock held while migrating, so replicas starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x7376_6369_6464_706d;
/// After the database comes back, claims wait this long: every replica's lease ran out during
/// the outage, and each needs a tick (which may first wait out a connection attempt) to renew
/// it before the others may take its engines.
const RECOVERY_GRACE: Duration = Duration::from_secs(LEASE.as_secs() + QUERY_TIMEOUT.as_secs());
/// How often a replica writes back what its checker found, every moved `last_seen` included
/// (and, while the fleet is listed, reads it): with engines checked every second, another
/// replica's listing shows an engine's last check at most about two seconds old.
pub const WRITE_BACK_EVERY: Duration = Duration::from_millis(500);
/// How often a replica deletes the lease rows of replicas that are gone.
const FORGET_EVERY: Duration = Duration::from_secs(10);
/// A lease row expired longer ago than this, owning no engine, belongs to a replica that is gone
/// (killed, or its host lost): it is deleted, so `dpm_replica` does not grow with every crash.
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// After the fleet was last listed, the write-backs keep its snapshot fresh this long.
pub const FLEET_WANTED_FOR: Duration = Duration::from_secs(30);
/// A listing of the fleet is served from a snapshot at most this old; an older one is read again.
pub const FLEET_FRESH_FOR: Duration = Duration::from_secs(1);

/// The columns of an engine row, in [`record`]'s order.
const COLUMNS: &str = "id, hostname, port, constraints, status, status_since, registered_by, \
                       registered_by_deployment, created, last_seen";

/// The registry in PostgreSQL, this replica's share checked by the local registry.
pub struct PostgresStore {
    /// Connections to the database.
    pool: Pool,
    /// The engines this replica owns and checks.
    registry: Arc<EngineRegistry>,
    /// This replica's lease id (fresh per process).
    replica: String,
    /// The database, for people: no password.
    shown_url: String,
    /// The connection's TLS mode, for explaining a refused connection.
    sslmode: SslMode,
    /// Whether the last tick reached the database (the `database` health component).
    reachable: AtomicBool,
    /// The fleet by status, as of the last tick.
    counts: Mutex<StatusCounts>,
    /// What was last written back per owned engine, so unchanged engines cost no query.
    written: Mutex<HashMap<String, Observed>>,
    /// Statements by result (`ok`, `error`).
    queries: CounterVec,
    /// Statement latency.
    latency: Histogram,
    /// Engines claimed from a replica whose lease had expired.
    takeovers: AtomicU64,
    /// When the rows of dead replicas were last deleted.
    forgotten: Mutex<Option<Instant>>,
    /// The fleet as last read, and when: what listings are served from.
    fleet: Mutex<Option<(Instant, Arc<Fleet>)>>,
    /// The replicas' leases as last read (their engine counts come from the fleet).
    replicas: Mutex<Vec<Replica>>,
    /// When the fleet was last listed, Unix seconds (0: never).
    fleet_wanted: AtomicU64,
    /// Held while a listing reads the fleet itself, so listings waiting together read it once.
    reading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.shown_url)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

/// A database error as text: the server's own message when there is one (never the password,
/// which neither the client nor the server repeats).
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn time_or_now(row: &Row, column: &str) -> SystemTime {
    row.try_get::<_, SystemTime>(column)
        .unwrap_or_else(|_| SystemTime::now())
}

/// An engine row (selected as [`COLUMNS`]) as a record.
fn record(row: &Row) -> Result<EngineRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Unavailable(format!("an engine row has {what}"));
    let port: i32 = row.try_get("port").map_err(|_| corrupt("no port"))?;
    let status: String = row.try_get("status").map_err(|_| corrupt("no status"))?;
    Ok(EngineRecord {
        id: row.try_get("id").map_err(|_| corrupt("no id"))?,
        address: EngineAddress {
            hostname: row
                .try_get("hostname")
                .map_err(|_| corrupt("no hostname"))?,
            port: u16::try_from(port).map_err(|_| corrupt("a bad port"))?,
        },
        constraints: row
            .try_get("constraints")
            .map_err(|_| corrupt("no constraints"))?,
        status: EngineStatus::parse(&status).ok_or_else(|| corrupt("an unknown status"))?,
        status_since: time_or_now(row, "status_since"),
        registered_by: row.try_get("registered_by").unwrap_or_default(),
        registered_by_deployment: row.try_get("registered_by_deployment").unwrap_or_default(),
        registered_at: time_or_now(row, "created"),
        last_seen: row.try_get("last_seen").ok().flatten(),
    })
}

/// What an upkeep statement reads after its lease renewal and write-back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// Nothing (a write-back alone).
    Nothing,
    /// The ids of the engines this replica owns, then the fleet's counts by status.
    Owned,
    /// The whole fleet with each engine's owner.
    Fleet,
}

/// One upkeep statement: the lease renewed (when `lease`: every [`TICK`]), what the checker found
/// written back in one `UPDATE … FROM unnest(…)` for every engine that changed, and `read`.
/// Parameters: `$1`–`$4` the changed engines' ids, statuses, status times and last-seen times,
/// `$5` this replica, `$6` the lease in seconds (only with `lease`). Data-modifying `WITH`
/// clauses run to completion whatever the final `SELECT` reads, and that `SELECT` sees the rows
/// as they were before the statement.
fn upkeep_sql(lease: bool, read: Read) -> String {
    let mut sql = String::from("WITH ");
    if lease {
        sql.push_str(
            "lease AS (INSERT INTO dpm_replica (id, expires_at) \
             VALUES ($5, now() + make_interval(secs => $6)) \
             ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at RETURNING id), ",
        );
    }
    sql.push_str(
        "written AS (UPDATE dpm_engine AS e \
         SET status = u.status, status_since = u.since, last_seen = u.seen \
         FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
              AS u(id, status, since, seen) \
         WHERE e.id = u.id AND e.owner = $5 RETURNING e.id) ",
    );
    match read {
        Read::Nothing => sql.push_str("SELECT count(*) FROM written"),
        Read::Owned => sql.push_str(
            "SELECT id, NULL::text AS status, NULL::bigint AS engines \
             FROM dpm_engine WHERE owner = $5 \
             UNION ALL SELECT NULL, status, count(*) FROM dpm_engine GROUP BY status",
        ),
        Read::Fleet => {
            sql.push_str(&format!(
                "SELECT {COLUMNS}, owner FROM dpm_engine ORDER BY id"
            ));
        }
    }
    sql
}

/// The rows of a [`Read::Owned`] statement: the ids owned, and the fleet by status.
fn owned_and_counts(rows: &[Row]) -> (HashSet<String>, StatusCounts) {
    let mut owned = HashSet::new();
    let mut counts = count_by_status([]);
    for row in rows {
        if let Ok(Some(id)) = row.try_get::<_, Option<String>>("id") {
            owned.insert(id);
            continue;
        }
        let status: Option<String> = row.try_get("status").ok().flatten();
        let count: i64 = row
            .try_get::<_, Option<i64>>("engines")
            .ok()
            .flatten()
            .unwrap_or_default();
        if let Some(slot) = counts
            .iter_mut()
            .find(|(s, _)| Some(*s) == status.as_deref())
        {
            slot.1 = u64::try_from(count).unwrap_or_default();
        }
    }
    (owned, counts)
}

/// Whether what the checker found of an engine (`now`) differs from what was last written back
/// (`written`, `None`: nothing yet): a new status, or a successful check since — every moved
/// `last_seen` is written back, so the other replicas' listings show when the engine was last
/// seen, not when its status last changed.
fn needs_write_back(written: Option<&Observed>, now: &Observed) -> bool {
    match written {
        None => true,
        Some(w) => {
            w.status != now.status
                || w.status_since != now.status_since
                || (now.last_seen.is_some() && w.last_seen != now.last_seen)
        }
    }
}

/// `engines` (sorted by id) with the engines checked here (`local`) as the checker knows them —
/// fresher than any row read — and those registered here since the rows were read added, sorted
/// by id.
fn freshen(engines: &[FleetEngine], local: Vec<EngineRecord>, replica: &str) -> Vec<FleetEngine> {
    let mut local: HashMap<String, EngineRecord> = local
        .into_iter()
        .map(|record| (record.id.clone(), record))
        .collect();
    let mut out: Vec<FleetEngine> = engines
        .iter()
        .map(|engine| match local.remove(&engine.record.id) {
            Some(record) => FleetEngine {
                record,
                checked_by: engine
                    .checked_by
                    .clone()
                    .or_else(|| Some(replica.to_owned())),
            },
            None => engine.clone(),
        })
        .collect();
    if !local.is_empty() {
        out.extend(local.into_values().map(|record| FleetEngine {
            record,
            checked_by: Some(replica.to_owned()),
        }));
        out.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    }
    out
}

impl PostgresStore {
    /// Connects to `source`, migrates the schema (one replica at a time), takes this replica's
    /// lease and claims every engine nobody holds, so a restarted DPM knows its fleet at once.
    pub async fn open(
        source: &Datasource,
        registry: Arc<EngineRegistry>,
    ) -> Result<Arc<Self>, StoreError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&source.host)
            .port(source.port)
            .dbname(&source.database)
            .application_name("svcid-dpm")
            .connect_timeout(QUERY_TIMEOUT);
        if let Some(user) = &source.username {
            config.user(user);
        }
        if let Some(password) = &source.password {
            config.password(password.expose());
        }
        config.ssl_mode(tls::client_mode(source.tls.mode));
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls::connector(&source.tls).map_err(unavailable)? {
            None => Manager::from_config(config, NoTls, manager_config),
            Some(connector) => Manager::from_config(config, connector, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(8)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(QUERY_TIMEOUT))
            .create_timeout(Some(QUERY_TIMEOUT))
            .recycle_timeout(Some(QUERY_TIMEOUT))
            .build()
            .map_err(unavailable)?;
        let store = Arc::new(Self {
            pool,
            registry,
            replica: uuid::Uuid::new_v4().to_string(),
            shown_url: source.shown_url(),
            sslmode: source.tls.mode,
            reachable: AtomicBool::new(false),
            counts: Mutex::new(count_by_status([])),
            written: Mutex::new(HashMap::new()),
            queries: CounterVec::new(&["result"]),
            latency: Histogram::new(LATENCY_BOUNDS),
            takeovers: AtomicU64::new(0),
            forgotten: Mutex::new(None),
            fleet: Mutex::new(None),
            replicas: Mutex::new(Vec::new()),
            fleet_wanted: AtomicU64::new(0),
            reading: tokio::sync::Mutex::new(()),
        });
        store.migrate().await?;
        store.tick(true, true).await?;
        store.reachable.store(true, Ordering::Relaxed);
        tracing::info!(
            eventId = crate::events::REGISTRY_OPENED,
            url = %store.shown_url,
            replica = %store.replica,
            engines = store.registry.len() as u64,
            "Engine registry on PostgreSQL."
        );
        Ok(store)
    }

    /// The database as shown to people (no password).
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// This replica's lease id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    async fn client(&self) -> Result<Object, StoreError> {
        match tokio::time::timeout(QUERY_TIMEOUT, self.pool.get()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(error)) => {
                self.queries.inc("error");
                Err(unavailable(match &error {
                    deadpool_postgres::PoolError::Backend(e) => {
                        tls::explain(e, self.sslmode).unwrap_or_else(|| describe(e))
                    }
                    other => other.to_string(),
                }))
            }
            Err(_) => {
                self.queries.inc("error");
                Err(unavailable("no connection within 3s"))
            }
        }
    }

    /// Runs one statement on `client`, counted and timed, bounded by [`QUERY_TIMEOUT`].
    async fn query(
        &self,
        client: &Object,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let started = Instant::now();
        let result = tokio::time::timeout(QUERY_TIMEOUT, client.query(sql, params)).await;
        self.latency.observe(started.elapsed());
        let outcome = match result {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(error)) => Err(unavailable(describe(&error))),
            Err(_) => Err(unavailable("no answer within 3s")),
        };
        self.queries
            .inc(if outcome.is_ok() { "ok" } else { "error" });
        outcome
    }

    /// Applies the versioned migrations under an advisory lock: the first replica migrates, the
    /// others wait and then find nothing to do.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        self.query(&client, "SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let migrated = embedded::migrations::runner()
            .run_async(&mut **client)
            .await
            .map_err(|e| unavailable(format!("schema migration failed: {e}")));
        self.query(&client, "SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        migrated.map(|_| ())
    }

    /// One round of upkeep, every [`WRITE_BACK_EVERY`]: what the checker found written back and,
    /// while the fleet is listed, the fleet read. A `full` round (every [`TICK`]) also renews the
    /// lease, lets go of engines another replica took, counts the fleet by status and claims;
    /// `claim` is false for [`RECOVERY_GRACE`] after the database came back, so every replica
    /// renews its lease before any takes another's engines.
    /// False when there was nothing to do (no statement ran).
    async fn tick(&self, full: bool, claim: bool) -> Result<bool, StoreError> {
        let watched = self.fleet_watched();
        let read = match (full, watched) {
            (_, true) => Read::Fleet,
            (true, false) => Read::Owned,
            (false, false) => Read::Nothing,
        };
        let changed = self.changed();
        if !full && read == Read::Nothing && changed.is_empty() {
            return Ok(false);
        }
        let client = self.client().await?;
        // Taken before the statement: an engine registered here meanwhile is not let go.
        let held: Vec<String> = if full {
            self.registry.ids()
        } else {
            Vec::new()
        };
        let ids: Vec<&str> = changed.iter().map(|o| o.id.as_str()).collect();
        let statuses: Vec<&str> = changed.iter().map(|o| o.status.as_str()).collect();
        let since: Vec<SystemTime> = changed.iter().map(|o| o.status_since).collect();
        let seen: Vec<Option<SystemTime>> = changed.iter().map(|o| o.last_seen).collect();
        let lease = LEASE.as_secs_f64();
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&ids, &statuses, &since, &seen, &self.replica];
        if full {
            params.push(&lease);
        }
        let read_at = SystemTime::now();
        let rows = self
            .query(&client, &upkeep_sql(full, read), &params)
            .await?;
        self.remember_written(changed);

        // What the statement read: the engines this replica owns and the counts by status, or
        // the whole fleet (from which both follow). The rows are as they were before this
        // statement's own write-back; the local registry has the engines owned here anyway.
        let mut fleet = None;
        let (owned, db_counts): (HashSet<String>, StatusCounts) = match read {
            Read::Nothing => (HashSet::new(), count_by_status([])),
            Read::Owned => owned_and_counts(&rows),
            Read::Fleet => {
                let engines = rows
                    .iter()
                    .map(|row| {
                        Ok(FleetEngine {
                            record: record(row)?,
                            checked_by: row.try_get("owner").ok().flatten(),
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let owned = engines
                    .iter()
                    .filter(|e| e.checked_by.as_deref() == Some(self.replica.as_str()))
                    .map(|e| e.record.id.clone())
                    .collect();
                let counts = if full {
                    let shown = freshen(&engines, self.local(), &self.replica);
                    count_by_status(shown.iter().map(|e| e.record.status))
                } else {
                    count_by_status([])
                };
                fleet = Some(engines);
                (owned, counts)
            }
        };

        if full {
            // Engines another replica took (re-registered there) or unregistered: stop checking.
            for id in held.iter().filter(|id| !owned.contains(*id)) {
                self.registry.unregister(id);
                self.written_lock().remove(id);
                tracing::debug!(correlationId = %id, eventId = crate::events::ENGINE_RELEASED, engineId = %id, "Engine now checked by another DPM.");
            }
            *self.counts.lock().unwrap_or_else(PoisonError::into_inner) = db_counts;
            if claim {
                self.claim(&client).await?;
                self.forget_dead_replicas(&client).await?;
            }
            if fleet.is_some() {
                let replicas = self.read_replicas(&client).await?;
                *self.replicas.lock().unwrap_or_else(PoisonError::into_inner) = replicas;
            }
        }
        if let Some(engines) = fleet {
            self.keep_fleet(engines, read_at);
        }
        Ok(true)
    }

    /// Takes an engine unregistered here out of the fleet snapshot.
    fn forget_listed(&self, id: &str) {
        let mut kept = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, fleet)) = kept.as_ref()
            && fleet.engines.iter().any(|engine| engine.record.id == id)
        {
            let mut without = Fleet::clone(fleet);
            without.engines.retain(|engine| engine.record.id != id);
            *kept = Some((*at, Arc::new(without)));
        }
    }

    /// True while someone listed the fleet within [`FLEET_WANTED_FOR`].
    fn fleet_watched(&self) -> bool {
        let wanted = self.fleet_wanted.load(Ordering::Relaxed);
        wanted > 0 && unix_seconds(SystemTime::now()) <= wanted + FLEET_WANTED_FOR.as_secs()
    }

    /// Notes that the fleet was listed now; true when it had been listed within
    /// [`FLEET_WANTED_FOR`] before (the write-backs kept its snapshot fresh).
    fn want_fleet(&self) -> bool {
        let now = unix_seconds(SystemTime::now());
        let before = self.fleet_wanted.swap(now, Ordering::Relaxed);
        before > 0 && now <= before + FLEET_WANTED_FOR.as_secs()
    }

    /// The records of the engines checked here, as the checker knows them now.
    fn local(&self) -> Vec<EngineRecord> {
        self.registry
            .snapshot()
            .into_iter()
            .map(|engine| engine.record)
            .collect()
    }

    /// Keeps `engines`, read at `read_at`, as the fleet snapshot, with the replicas as last read.
    fn keep_fleet(&self, engines: Vec<FleetEngine>, read_at: SystemTime) {
        let mut replicas = self
            .replicas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for replica in &mut replicas {
            replica.engines = engines
                .iter()
                .filter(|e| e.checked_by.as_deref() == Some(replica.id.as_str()))
                .count() as u64;
        }
        let fleet = Fleet {
            engines,
            replicas: Some(replicas),
            as_of: read_at,
        };
        *self.fleet.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), Arc::new(fleet)));
    }

    /// The fleet snapshot when it is at most `age` old.
    fn snapshot_within(&self, age: Duration) -> Option<Arc<Fleet>> {
        self.fleet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() <= age)
            .map(|(_, fleet)| Arc::clone(fleet))
    }

    /// The fleet for a listing: the snapshot when it is fresh ([`FLEET_FRESH_FOR`]), else read
    /// now (once for every listing waiting); the engines checked here as the checker knows them.
    async fn listed_fleet(&self) -> Result<Fleet, StoreError> {
        self.want_fleet();
        let fleet = match self.snapshot_within(FLEET_FRESH_FOR) {
            Some(fleet) => fleet,
            None => {
                let _reading = self.reading.lock().await;
                match self.snapshot_within(FLEET_FRESH_FOR) {
                    Some(fleet) => fleet,
                    None => {
                        let client = self.client().await?;
                        let read_at = SystemTime::now();
                        let engines = self.read_engines(&client).await?;
                        let replicas = self.read_replicas(&client).await?;
                        *self.replicas.lock().unwrap_or_else(PoisonError::into_inner) = replicas;
                        self.keep_fleet(engines, read_at);
                        self.snapshot_within(Duration::MAX)
                            .ok_or_else(|| unavailable("the fleet was not read"))?
                    }
                }
            }
        };
        Ok(Fleet {
            engines: freshen(&fleet.engines, self.local(), &self.replica),
            replicas: fleet.replicas.clone(),
            as_of: fleet.as_of,
        })
    }

    /// Every engine with its owner.
    async fn read_engines(&self, client: &Object) -> Result<Vec<FleetEngine>, StoreError> {
        self.query(
            client,
            &format!("SELECT {COLUMNS}, owner FROM dpm_engine ORDER BY id"),
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(FleetEngine {
                record: record(row)?,
                checked_by: row.try_get("owner").ok().flatten(),
            })
        })
        .collect()
    }

    /// Every replica with its lease (engine counts are filled in from the fleet).
    async fn read_replicas(&self, client: &Object) -> Result<Vec<Replica>, StoreError> {
        Ok(self
            .query(
                client,
                "SELECT id, started, expires_at FROM dpm_replica ORDER BY started, id",
                &[],
            )
            .await?
            .iter()
            .map(|row| {
                let id: String = row.try_get("id").unwrap_or_default();
                Replica {
                    this: id == self.replica,
                    id,
                    started: time_or_now(row, "started"),
                    lease_until: time_or_now(row, "expires_at"),
                    engines: 0,
                }
            })
            .collect())
    }

    fn written_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Observed>> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims engines nobody holds, batch by batch, and hands them to the local checker.
    async fn claim(&self, client: &Object) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE dpm_engine AS e SET owner = $1 \
             FROM (SELECT c.id, c.owner FROM dpm_engine c LEFT JOIN dpm_replica r ON r.id = c.owner \
                   WHERE c.owner IS NULL OR r.id IS NULL OR r.expires_at < now() \
                   ORDER BY c.id LIMIT $2 FOR UPDATE OF c SKIP LOCKED) AS free \
             WHERE e.id = free.id \
             RETURNING {}, free.owner AS previous_owner",
            COLUMNS
                .split(", ")
                .map(|c| format!("e.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut taken_over = 0u64;
        loop {
            let rows = self
                .query(client, &sql, &[&self.replica, &CLAIM_BATCH])
                .await?;
            let claimed = rows.len();
            for row in &rows {
                let record = record(row)?;
                let previous: Option<String> = row.try_get("previous_owner").ok().flatten();
                if previous.is_some_and(|p| p != self.replica) {
                    taken_over += 1;
                }
                self.written_lock().insert(
                    record.id.clone(),
                    Observed {
                        id: record.id.clone(),
                        status: record.status,
                        status_since: record.status_since,
                        last_seen: record.last_seen,
                    },
                );
                self.registry.adopt(record);
            }
            if i64::try_from(claimed).unwrap_or(i64::MAX) < CLAIM_BATCH {
                break;
            }
        }
        if taken_over > 0 {
            self.takeovers.fetch_add(taken_over, Ordering::Relaxed);
            tracing::info!(
                eventId = crate::events::ENGINES_TAKEN_OVER,
                engines = taken_over,
                replica = %self.replica,
                "Engines taken over from a DPM whose lease expired."
            );
        }
        Ok(())
    }

    /// Every [`FORGET_EVERY`], deletes the lease rows of replicas gone for [`FORGET_AFTER`] whose
    /// engines have all been claimed.
    async fn forget_dead_replicas(&self, client: &Object) -> Result<(), StoreError> {
        {
            let mut forgotten = self
                .forgotten
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if forgotten.is_some_and(|at| at.elapsed() < FORGET_EVERY) {
                return Ok(());
            }
            *forgotten = Some(Instant::now());
        }
        let rows = self
            .query(
                client,
                "DELETE FROM dpm_replica AS r WHERE r.expires_at < now() - make_interval(secs => $1) \
                 AND NOT EXISTS (SELECT 1 FROM dpm_engine e WHERE e.owner = r.id) RETURNING r.id",
                &[&FORGET_AFTER.as_secs_f64()],
            )
            .await?;
        if !rows.is_empty() {
            tracing::debug!(
                eventId = crate::events::REPLICAS_FORGOTTEN,
                replicas = rows.len(),
                "Lease rows of DPMs gone for a minute deleted."
            );
        }
        Ok(())
    }

    /// What the checker found that the database does not have yet (see [`needs_write_back`]).
    fn changed(&self) -> Vec<Observed> {
        let written = self.written_lock();
        self.registry
            .observed()
            .into_iter()
            .filter(|o| needs_write_back(written.get(&o.id), o))
            .collect()
    }

    /// Notes `changed` as written back.
    fn remember_written(&self, changed: Vec<Observed>) {
        let mut written = self.written_lock();
        for observed in changed {
            written.insert(observed.id.clone(), observed);
        }
    }

    /// Writes back what the checker found, alone (on a graceful stop).
    async fn write_back(&self, client: &Object) -> Result<(), StoreError> {
        let changed = self.changed();
        if changed.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = changed.iter().map(|o| o.id.as_str()).collect();
        let statuses: Vec<&str> = changed.iter().map(|o| o.status.as_str()).collect();
        let since: Vec<SystemTime> = changed.iter().map(|o| o.status_since).collect();
        let seen: Vec<Option<SystemTime>> = changed.iter().map(|o| o.last_seen).collect();
        self.query(
            client,
            &upkeep_sql(false, Read::Nothing),
            &[&ids, &statuses, &since, &seen, &self.replica],
        )
        .await?;
        self.remember_written(changed);
        Ok(())
    }

    /// On a graceful stop: statuses written back, engines and lease let go, so the other
    /// replicas (or this one restarted) claim the engines at once.
    async fn release(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        self.write_back(&client).await?;
        self.query(
            &client,
            "UPDATE dpm_engine SET owner = NULL WHERE owner = $1",
            &[&self.replica],
        )
        .await?;
        self.query(
            &client,
            "DELETE FROM dpm_replica WHERE id = $1",
            &[&self.replica],
        )
        .await?;
        Ok(())
    }
}

#[tonic::async_trait]
impl EngineStore for PostgresStore {
    async fn register(
        &self,
        id: &str,
        address: EngineAddress,
        constraints: Vec<u8>,
        registrant: Registrant,
    ) -> Result<Registration, StoreError> {
        if self
            .registry
            .is_unchanged(id, &address, &constraints, &registrant)
        {
            return Ok(self.registry.register(id, address, constraints, registrant));
        }
        let client = self.client().await?;
        let port = i32::from(address.port);
        let rows = self
            .query(
                &client,
                "WITH old AS (SELECT hostname, port FROM dpm_engine WHERE id = $1) \
                 INSERT INTO dpm_engine AS e (id, hostname, port, constraints, status, status_since, \
                                              registered_by, registered_by_deployment, owner) \
                 VALUES ($1, $2, $3, $4, 'NEW', now(), $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname, port = EXCLUDED.port, \
                     constraints = EXCLUDED.constraints, registered_by = EXCLUDED.registered_by, \
                     registered_by_deployment = EXCLUDED.registered_by_deployment, \
                     last_registered = now(), owner = EXCLUDED.owner \
                 RETURNING (e.xmax = 0) AS inserted, (SELECT hostname FROM old) AS old_hostname, \
                     (SELECT port FROM old) AS old_port, e.status, e.status_since, e.created, e.last_seen",
                &[
                    &id,
                    &address.hostname,
                    &port,
                    &constraints,
                    &registrant.identity,
                    &registrant.deployment,
                    &self.replica,
                ],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| unavailable("the registration was not recorded"))?;
        let inserted: bool = row.try_get("inserted").unwrap_or(false);
        if !inserted {
            // Known to the registry, maybe checked by another replica until now: take it over
            // with its recorded status, then apply this registration as a re-assertion.
            let old_port: Option<i32> = row.try_get("old_port").ok().flatten();
            let old_address = match (
                row.try_get::<_, Option<String>>("old_hostname")
                    .ok()
                    .flatten(),
                old_port.and_then(|p| u16::try_from(p).ok()),
            ) {
                (Some(hostname), Some(port)) => EngineAddress { hostname, port },
                _ => address.clone(),
            };
            let status: String = row.try_get("status").unwrap_or_default();
            self.registry.adopt(EngineRecord {
                id: id.to_owned(),
                address: old_address,
                constraints: constraints.clone(),
                status: EngineStatus::parse(&status).unwrap_or(EngineStatus::New),
                status_since: time_or_now(row, "status_since"),
                registered_by: registrant.identity.clone(),
                registered_by_deployment: registrant.deployment.clone(),
                registered_at: time_or_now(row, "created"),
                last_seen: row.try_get("last_seen").ok().flatten(),
            });
        }
        Ok(self.registry.register(id, address, constraints, registrant))
    }

    async fn unregister(&self, id: &str) -> Result<Option<EngineAddress>, StoreError> {
        let client = self.client().await?;
        let rows = self
            .query(
                &client,
                "DELETE FROM dpm_engine WHERE id = $1 RETURNING hostname, port",
                &[&id],
            )
            .await?;
        let local = self.registry.unregister(id).map(|e| e.record.address);
        self.written_lock().remove(id);
        self.forget_listed(id);
        let stored = rows.first().and_then(|row| {
            let port: i32 = row.try_get("port").ok()?;
            Some(EngineAddress {
                hostname: row.try_get("hostname").ok()?,
                port: u16::try_from(port).ok()?,
            })
        });
        Ok(stored.or(local))
    }

    async fn engines(&self) -> Result<Vec<Engine>, StoreError> {
        Ok(self
            .listed_fleet()
            .await?
            .engines
            .into_iter()
            .map(|engine| Engine::listed(engine.record))
            .collect())
    }

    async fn engine(&self, id: &str) -> Result<Option<EngineRecord>, StoreError> {
        if let Some(record) = self.registry.record(id) {
            return Ok(Some(record));
        }
        if let Some(found) = self.snapshot_within(FLEET_FRESH_FOR).and_then(|fleet| {
            fleet
                .engines
                .iter()
                .find(|engine| engine.record.id == id)
                .map(|engine| engine.record.clone())
        }) {
            return Ok(Some(found));
        }
        let client = self.client().await?;
        let rows = self
            .query(
                &client,
                &format!("SELECT {COLUMNS} FROM dpm_engine WHERE id = $1"),
                &[&id],
            )
            .await?;
        rows.first().map(record).transpose()
    }

    fn by_status(&self) -> StatusCounts {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fleet(&self) -> Option<Arc<Fleet>> {
        let kept_fresh = self.want_fleet();
        // Nobody listed the fleet for a while: the snapshot is as old as that; the next
        // write-back reads the fleet again, so say "pending" rather than show old times.
        let fleet = if kept_fresh {
            self.snapshot_within(Duration::MAX)?
        } else {
            self.snapshot_within(FLEET_FRESH_FOR)?
        };
        Some(Arc::new(Fleet {
            engines: freshen(&fleet.engines, self.local(), &self.replica),
            replicas: fleet.replicas.clone(),
            as_of: fleet.as_of,
        }))
    }

    fn health(&self) -> Option<Component> {
        Some(
            Component::up_if(self.reachable.load(Ordering::Relaxed))
                .with("url", self.shown_url.clone())
                .with("replica", self.replica.clone())
                .with("checkedHere", self.registry.len() as u64),
        )
    }

    fn render_metrics(&self, out: &mut Exposition) {
        let status = self.pool.status();
        let in_use = status.size.saturating_sub(status.available);
        out.family(
            REGISTRY_DB_CONNECTIONS,
            Kind::Gauge,
            "Connections to the registry database, in use and idle.",
        );
        out.sample(
            REGISTRY_DB_CONNECTIONS,
            &[("state", "in_use")],
            in_use as f64,
        );
        out.sample(
            REGISTRY_DB_CONNECTIONS,
            &[("state", "idle")],
            status.available as f64,
        );
        out.family(
            REGISTRY_DB_QUERIES,
            Kind::Counter,
            "Statements run on the registry database, by result.",
        );
        self.queries.render(out, REGISTRY_DB_QUERIES);
        self.latency.render(
            out,
            REGISTRY_DB_QUERY_DURATION,
            "Duration of statements on the registry database.",
        );
        out.single(
            REGISTRY_LEASE_TAKEOVERS,
            Kind::Counter,
            "Engines this DPM claimed from a replica whose lease had expired.",
            self.takeovers.load(Ordering::Relaxed) as f64,
        );
    }

    async fn maintain(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        // While the database is away, and for RECOVERY_GRACE after: no claims.
        let mut claims_from: Option<Instant> = None;
        let rounds_per_tick = (TICK.as_millis() / WRITE_BACK_EVERY.as_millis()).max(1);
        let mut every =
            tokio::time::interval_at(Instant::now() + WRITE_BACK_EVERY, WRITE_BACK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round: u128 = 0;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => break,
            }
            round += 1;
            let full = round.is_multiple_of(rounds_per_tick);
            let claim = claims_from.is_none_or(|at| Instant::now() >= at);
            match self.tick(full, claim).await {
                Ok(false) => {}
                Ok(true) => {
                    if !self.reachable.swap(true, Ordering::Relaxed) {
                        tracing::info!(eventId = crate::events::DATABASE_AVAILABLE, url = %self.shown_url, "Registry database reachable again.");
                        claims_from = Some(Instant::now() + RECOVERY_GRACE);
                    }
                }
                Err(error) => {
                    if self.reachable.swap(false, Ordering::Relaxed) {
                        tracing::warn!(eventId = crate::events::DATABASE_UNAVAILABLE, url = %self.shown_url, reason = %error, "Registry database unreachable; engines already owned are still checked.");
                    }
                    claims_from = Some(Instant::now() + Duration::from_secs(3600));
                }
            }
        }
        if let Err(error) = self.release().await {
            tracing::warn!(eventId = crate::events::DATABASE_UNAVAILABLE, url = %self.shown_url, reason = %error, "Engines not released; other DPMs take them over when the lease expires.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(status: EngineStatus, since: u64, seen: Option<u64>) -> Observed {
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        Observed {
            id: "e1".into(),
            status,
            status_since: at(since),
            last_seen: seen.map(at),
        }
    }

    fn engine(id: &str, seen: u64, owner: Option<&str>) -> FleetEngine {
        FleetEngine {
            record: EngineRecord {
                id: id.into(),
                address: EngineAddress {
                    hostname: "h".into(),
                    port: 1,
                },
                constraints: Vec::new(),
                status: EngineStatus::Ready,
                status_since: SystemTime::UNIX_EPOCH,
                registered_by: "r".into(),
                registered_by_deployment: "d".into(),
                registered_at: SystemTime::UNIX_EPOCH,
                last_seen: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seen)),
            },
            checked_by: owner.map(str::to_owned),
        }
    }

    #[test]
    fn every_successful_check_is_written_back_not_only_status_changes() {
        let ready = |seen| observed(EngineStatus::Ready, 10, Some(seen));
        // Never written: written.
        assert!(needs_write_back(None, &ready(11)));
        // Checked again one second later, status unchanged: written (it was every 30 s before).
        assert!(needs_write_back(Some(&ready(11)), &ready(12)));
        // Nothing new since the last write-back: nothing to write.
        assert!(!needs_write_back(Some(&ready(12)), &ready(12)));
        // A status change is written, a failed check keeping the last-seen time too.
        let down = observed(EngineStatus::Disconnected, 13, Some(12));
        assert!(needs_write_back(Some(&ready(12)), &down));
        assert!(!needs_write_back(Some(&down), &down));
        // Never checked successfully, written once: nothing more to write.
        let new = observed(EngineStatus::New, 10, None);
        assert!(needs_write_back(None, &new));
        assert!(!needs_write_back(Some(&new), &new));
    }

    #[test]
    fn a_listing_shows_the_engines_checked_here_as_the_checker_knows_them() {
        let read = vec![
            engine("a", 100, Some("other")),
            engine("c", 100, Some("me")),
        ];
        // "c" was checked since the rows were read; "b" registered here since.
        let local = vec![engine("c", 103, None).record, engine("b", 102, None).record];
        let shown = freshen(&read, local, "me");
        let seen: Vec<(&str, u64, Option<&str>)> = shown
            .iter()
            .map(|e| {
                (
                    e.record.id.as_str(),
                    e.record
                        .last_seen
                        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs()),
                    e.checked_by.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("a", 100, Some("other")),
                ("b", 102, Some("me")),
                ("c", 103, Some("me"))
            ]
        );
    }

    #[test]
    fn one_statement_renews_the_lease_writes_back_and_reads() {
        let full = upkeep_sql(true, Read::Owned);
        assert!(full.starts_with("WITH lease AS (INSERT INTO dpm_replica"));
        assert!(full.contains("unnest($1::text[]"));
        assert!(full.contains("$6") && full.contains("UNION ALL"));
        let half = upkeep_sql(false, Read::Fleet);
        assert!(!half.contains("lease") && !half.contains("$6"));
        assert!(half.ends_with("FROM dpm_engine ORDER BY id"));
        let alone = upkeep_sql(false, Read::Nothing);
        assert!(alone.ends_with("SELECT count(*) FROM written"));
        // Two write-backs per lease renewal.
        assert_eq!(TICK.as_millis() / WRITE_BACK_EVERY.as_millis(), 2);
    }
}
