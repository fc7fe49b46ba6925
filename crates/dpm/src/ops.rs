//! DPM's part of the actuator: the `engines` health component (and `database` when the registry
//! is kept in PostgreSQL), the engine metrics (`svcid_engines{status}`, registrations,
//! unregistrations, status checks and their latency) and the store's own (connections, queries,
//! lease takeovers). The shared parts (configuration, gRPC, authentication, tokens, keys) come
//! from `svcid_grpc::ops`.

use std::sync::Arc;

use svcid_actuator::Actuator;
use svcid_actuator::health::Component;
use svcid_actuator::instruments::{EngineMetrics, render_engines};

use crate::store::EngineStore;

/// Adds DPM's parts to the shared actuator.
///
/// The `engines` component is `UP` whatever the engines' states: an unreachable engine is the
/// engine's problem, and DPM keeps serving the others; its details give the counts by status
/// (the whole fleet). The `database` component is DOWN while the registry database is
/// unreachable.
pub fn actuator(
    shared: Actuator,
    store: Arc<dyn EngineStore>,
    metrics: Arc<EngineMetrics>,
) -> Actuator {
    let health_store = Arc::clone(&store);
    let mut actuator = shared.health("engines", move || {
        let mut component = Component::up_if(true);
        for (status, count) in health_store.by_status() {
            component = component.with(status, count);
        }
        component
    });
    if store.health().is_some() {
        let database = Arc::clone(&store);
        actuator = actuator.health("database", move || {
            database.health().unwrap_or_else(|| Component::up_if(true))
        });
    }
    actuator.metrics(move |out| {
        render_engines(out, &store.by_status());
        metrics.render(out);
        store.render_metrics(out);
    })
}
