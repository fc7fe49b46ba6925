//! The registry in PostgreSQL (`spring.datasource.url`, docs/postgres.md): the fleet survives
//! restarts and several DPM replicas on one database are one registry.
//!
//! Every engine is a row of `dpm_engine`, written through on registration. Each replica holds a
//! lease row in `dpm_replica` and owns a share of the engines (`dpm_engine.owner`): only the owner
//! checks an engine, so its status changes are made and logged once. Every [`TICK`] a replica
//! renews its lease, writes back the statuses its checker found, lets go of engines another
//! replica took, and claims engines nobody holds — new rows whose replica stopped, and the
//! engines of a replica whose lease ran out ([`LEASE`]) — in batches, `FOR UPDATE SKIP LOCKED`,
//! so two replicas never claim the same engine. A claimed engine keeps its recorded status
//! ([`EngineRegistry::adopt`]): a READY engine stays READY through a takeover or a restart.
//!
//! A registration that changes nothing the database keeps is answered from the local registry
//! (the DPE re-asserts every few seconds), so the steady state costs a handful of queries per
//! tick per replica, not one per engine. When the database is lost, the engines already owned
//! keep being checked, registrations that need the database are answered `UNAVAILABLE`, and the
//! `database` health component is DOWN until a tick succeeds again.
//!
//! The operations console shows the whole fleet and which replica checks each engine. Its
//! handler cannot wait on the database (the console's HTTP port answers from memory), so the
//! tick also reads the fleet and the replicas' leases into a snapshot — but only while someone
//! looked at the console within [`FLEET_WANTED_FOR`]: nobody watching, no extra query.

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
/// A `last_seen` that moved without a status change is written back at most this often.
const LAST_SEEN_EVERY: Duration = Duration::from_secs(30);
/// How often a replica deletes the lease rows of replicas that are gone.
const FORGET_EVERY: Duration = Duration::from_secs(10);
/// A lease row expired longer ago than this, owning no engine, belongs to a replica that is gone
/// (killed, or its host lost): it is deleted, so `dpm_replica` does not grow with every crash.
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// After the console last asked for the fleet, the tick keeps its snapshot fresh this long.
pub const FLEET_WANTED_FOR: Duration = Duration::from_secs(30);

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
    /// The fleet as of the last tick that read it, for the console.
    fleet: Mutex<Option<Arc<Fleet>>>,
    /// When the console last asked for the fleet, Unix seconds (0: never).
    fleet_wanted: AtomicU64,
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
            fleet_wanted: AtomicU64::new(0),
        });
        store.migrate().await?;
        store.tick(true).await?;
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

    /// One round of upkeep; `claim` is false for [`RECOVERY_GRACE`] after the database came
    /// back, so every replica renews its lease before any takes another's engines.
    async fn tick(&self, claim: bool) -> Result<(), StoreError> {
        let client = self.client().await?;
        let lease = LEASE.as_secs_f64();
        self.query(
            &client,
            "INSERT INTO dpm_replica (id, expires_at) VALUES ($1, now() + make_interval(secs => $2)) \
             ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
            &[&self.replica, &lease],
        )
        .await?;
        self.write_back(&client).await?;

        // Engines another replica took (re-registered there) or unregistered: stop checking.
        let held: Vec<String> = self.registry.ids();
        let owned: HashSet<String> = self
            .query(
                &client,
                "SELECT id FROM dpm_engine WHERE owner = $1",
                &[&self.replica],
            )
            .await?
            .iter()
            .filter_map(|row| row.try_get::<_, String>(0).ok())
            .collect();
        for id in held.iter().filter(|id| !owned.contains(*id)) {
            self.registry.unregister(id);
            self.written_lock().remove(id);
            tracing::debug!(correlationId = %id, eventId = crate::events::ENGINE_RELEASED, engineId = %id, "Engine now checked by another DPM.");
        }

        if claim {
            self.claim(&client).await?;
            self.forget_dead_replicas(&client).await?;
        }

        let rows = self
            .query(
                &client,
                "SELECT status, count(*) FROM dpm_engine GROUP BY status",
                &[],
            )
            .await?;
        let mut counts = count_by_status([]);
        for row in rows {
            let status: String = row.try_get(0).unwrap_or_default();
            let count: i64 = row.try_get(1).unwrap_or_default();
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = u64::try_from(count).unwrap_or_default();
            }
        }
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner) = counts;
        let wanted = self.fleet_wanted.load(Ordering::Relaxed);
        if wanted > 0 && unix_seconds(SystemTime::now()) <= wanted + FLEET_WANTED_FOR.as_secs() {
            let fleet = self.read_fleet(&client).await?;
            *self.fleet.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(fleet));
        }
        Ok(())
    }

    /// Every engine with its owner, and every replica with its lease and share.
    async fn read_fleet(&self, client: &Object) -> Result<Fleet, StoreError> {
        let rows = self
            .query(
                client,
                &format!("SELECT {COLUMNS}, owner FROM dpm_engine ORDER BY id"),
                &[],
            )
            .await?;
        let engines = rows
            .iter()
            .map(|row| {
                Ok(FleetEngine {
                    record: record(row)?,
                    checked_by: row.try_get("owner").ok().flatten(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let replicas = self
            .query(
                client,
                "SELECT r.id, r.started, r.expires_at, \
                        (SELECT count(*) FROM dpm_engine e WHERE e.owner = r.id) AS engines \
                 FROM dpm_replica r ORDER BY r.started, r.id",
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
                    engines: row
                        .try_get::<_, i64>("engines")
                        .ok()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(Fleet {
            engines,
            replicas: Some(replicas),
            as_of: SystemTime::now(),
        })
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

    /// Writes back the statuses (and, now and then, the last-seen times) the checker found.
    async fn write_back(&self, client: &Object) -> Result<(), StoreError> {
        let changed: Vec<Observed> = {
            let written = self.written_lock();
            self.registry
                .observed()
                .into_iter()
                .filter(|o| match written.get(&o.id) {
                    None => true,
                    Some(w) => {
                        w.status != o.status
                            || w.status_since != o.status_since
                            || match (w.last_seen, o.last_seen) {
                                (_, None) => false,
                                (None, Some(_)) => true,
                                (Some(then), Some(now)) => {
                                    now.duration_since(then).is_ok_and(|d| d >= LAST_SEEN_EVERY)
                                }
                            }
                    }
                })
                .collect()
        };
        if changed.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = changed.iter().map(|o| o.id.as_str()).collect();
        let statuses: Vec<&str> = changed.iter().map(|o| o.status.as_str()).collect();
        let since: Vec<SystemTime> = changed.iter().map(|o| o.status_since).collect();
        let seen: Vec<Option<SystemTime>> = changed.iter().map(|o| o.last_seen).collect();
        self.query(
            client,
            "UPDATE dpm_engine AS e SET status = u.status, status_since = u.since, last_seen = u.seen \
             FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
                  AS u(id, status, since, seen) \
             WHERE e.id = u.id AND e.owner = $5",
            &[&ids, &statuses, &since, &seen, &self.replica],
        )
        .await?;
        let mut written = self.written_lock();
        for observed in changed {
            written.insert(observed.id.clone(), observed);
        }
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
        let client = self.client().await?;
        let rows = self
            .query(
                &client,
                &format!("SELECT {COLUMNS} FROM dpm_engine ORDER BY id"),
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| record(row).map(Engine::listed))
            .collect()
    }

    fn by_status(&self) -> StatusCounts {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fleet(&self) -> Option<Arc<Fleet>> {
        self.fleet_wanted
            .store(unix_seconds(SystemTime::now()), Ordering::Relaxed);
        self.fleet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
        loop {
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                _ = stop.changed() => break,
            }
            let claim = claims_from.is_none_or(|at| Instant::now() >= at);
            match self.tick(claim).await {
                Ok(()) => {
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
