//! The registry in memory: one DPM, its [`EngineRegistry`] the whole registry (the default, and
//! the behaviour before PostgreSQL). Nothing survives a restart; engines re-register.

use std::sync::Arc;
use std::time::SystemTime;

use super::{EngineStore, Fleet, FleetEngine, StatusCounts, StoreError, count_by_status};
use crate::engines::{
    Engine, EngineAddress, EngineRecord, EngineRegistry, Registrant, Registration,
};

/// The local registry as the store.
#[derive(Debug)]
pub struct MemoryStore {
    /// Every engine there is.
    registry: Arc<EngineRegistry>,
}

impl MemoryStore {
    /// The store of `registry`.
    pub fn new(registry: Arc<EngineRegistry>) -> Self {
        Self { registry }
    }
}

#[tonic::async_trait]
impl EngineStore for MemoryStore {
    async fn register(
        &self,
        id: &str,
        address: EngineAddress,
        constraints: Vec<u8>,
        registrant: Registrant,
    ) -> Result<Registration, StoreError> {
        Ok(self.registry.register(id, address, constraints, registrant))
    }

    async fn unregister(&self, id: &str) -> Result<Option<EngineAddress>, StoreError> {
        Ok(self.registry.unregister(id).map(|e| e.record.address))
    }

    async fn engines(&self) -> Result<Vec<Engine>, StoreError> {
        Ok(self.registry.snapshot())
    }

    async fn engine(&self, id: &str) -> Result<Option<EngineRecord>, StoreError> {
        Ok(self.registry.record(id))
    }

    fn by_status(&self) -> StatusCounts {
        count_by_status(self.registry.observed().into_iter().map(|o| o.status))
    }

    fn fleet(&self) -> Option<Arc<Fleet>> {
        let mut engines: Vec<FleetEngine> = self
            .registry
            .snapshot()
            .into_iter()
            .map(|engine| FleetEngine {
                record: engine.record,
                checked_by: None,
            })
            .collect();
        engines.sort_by(|a, b| a.record.id.cmp(&b.record.id));
        Some(Arc::new(Fleet {
            engines,
            replicas: None,
            as_of: SystemTime::now(),
        }))
    }
}
