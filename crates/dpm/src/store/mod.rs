//! Where the engine registry is kept: the one interface between the registry's users (the
//! registration handlers, the listing, the actuator) and its storage.
//!
//! [`memory::MemoryStore`] is the default: the local [`EngineRegistry`] is the whole registry,
//! exactly as a single DPM has always worked. [`postgres::PostgresStore`] (with
//! `spring.datasource.url`) keeps the fleet in PostgreSQL, shared by every DPM replica on the
//! database; the local registry then holds the engines this replica checks (its leased share).
//! Either way the engine state machine ([`crate::engines`]) and the status checker
//! ([`crate::checker`]) never see SQL: a store feeds the registry engines to check
//! ([`EngineRegistry::adopt`]) and reads back what the checker found
//! ([`EngineRegistry::observed`]).

pub mod memory;
pub mod postgres;
mod tls;

use std::sync::Arc;
use std::time::SystemTime;

use svcid_actuator::health::Component;
use svcid_actuator::metrics::Exposition;
use tokio::sync::watch;

use crate::engines::{
    Engine, EngineAddress, EngineRecord, EngineRegistry, Registrant, Registration,
};

/// Why a store could not answer. Registration handlers turn it into `UNAVAILABLE` (the DPE
/// retries); the message never carries the database password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer, or refused the statement.
    #[error("the registry database is unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for tonic::Status {
    fn from(error: StoreError) -> Self {
        tonic::Status::unavailable(error.to_string())
    }
}

/// Engines by status, every status present: `[("NEW", n), ("READY", n), ("DISCONNECTED", n)]`.
pub type StatusCounts = [(&'static str, u64); 3];

/// The whole fleet as the operations console shows it: every engine and which DPM replica
/// checks it.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// Every engine, sorted by id.
    pub engines: Vec<FleetEngine>,
    /// The replicas sharing the registry database; `None` for a registry in memory (this DPM
    /// checks every engine).
    pub replicas: Option<Vec<Replica>>,
    /// When this snapshot was taken.
    pub as_of: SystemTime,
}

/// One engine of a [`Fleet`].
#[derive(Clone, Debug)]
pub struct FleetEngine {
    /// What is recorded of it.
    pub record: EngineRecord,
    /// The replica that checks it (`dpm_engine.owner`); `None` in memory, or while unowned.
    pub checked_by: Option<String>,
}

/// A DPM replica holding a lease on the registry database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    /// Its lease id (fresh per process, logged as `replica` in `registryOpened`).
    pub id: String,
    /// When it first took its lease.
    pub started: SystemTime,
    /// Until when its lease holds; past it, its engines are claimed by the others.
    pub lease_until: SystemTime,
    /// Engines it checks.
    pub engines: u64,
    /// Whether it is the replica answering.
    pub this: bool,
}

/// The engine registry's storage: the same calls whether it lives in memory or in PostgreSQL.
#[tonic::async_trait]
pub trait EngineStore: std::fmt::Debug + Send + Sync {
    /// Registers or re-asserts an engine (the registration handler logs what it did).
    async fn register(
        &self,
        id: &str,
        address: EngineAddress,
        constraints: Vec<u8>,
        registrant: Registrant,
    ) -> Result<Registration, StoreError>;

    /// Forgets an engine; its last address when it was known.
    async fn unregister(&self, id: &str) -> Result<Option<EngineAddress>, StoreError>;

    /// Every engine of the registry (the whole fleet, whichever replica checks it).
    async fn engines(&self) -> Result<Vec<Engine>, StoreError>;

    /// One engine of the registry, whichever replica checks it; `None` when it is not registered.
    async fn engine(&self, id: &str) -> Result<Option<EngineRecord>, StoreError> {
        Ok(self
            .engines()
            .await?
            .into_iter()
            .find(|engine| engine.id == id)
            .map(|engine| engine.record))
    }

    /// The fleet by status, as last known (for health and metrics; never waits on the database).
    fn by_status(&self) -> StatusCounts;

    /// The whole fleet for the operations console, as last known (never waits on the database);
    /// `None` until a first snapshot is there.
    fn fleet(&self) -> Option<Arc<Fleet>>;

    /// The `database` health component; `None` for a registry in memory.
    fn health(&self) -> Option<Component> {
        None
    }

    /// The store's own metrics (connections, queries, lease takeovers); nothing in memory.
    fn render_metrics(&self, _out: &mut Exposition) {}

    /// The store's upkeep until `stop` turns true (leases, claiming, writing back statuses);
    /// nothing to do in memory.
    async fn maintain(self: Arc<Self>, _stop: watch::Receiver<bool>) {}
}

/// Engines of `registry` by status.
pub fn count_by_status(
    engines: impl IntoIterator<Item = crate::engines::EngineStatus>,
) -> StatusCounts {
    use crate::engines::EngineStatus;
    let mut counts = [("NEW", 0), ("READY", 0), ("DISCONNECTED", 0)];
    for status in engines {
        let slot = match status {
            EngineStatus::New => 0,
            EngineStatus::Ready => 1,
            EngineStatus::Disconnected => 2,
        };
        counts[slot].1 += 1;
    }
    counts
}

/// The store of the local registry only (no datasource).
pub fn in_memory(registry: Arc<EngineRegistry>) -> Arc<dyn EngineStore> {
    Arc::new(memory::MemoryStore::new(registry))
}
