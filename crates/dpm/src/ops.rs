//! DPM's part of the actuator: the `engines` health component and the engine metrics
//! (`svcid_engines{status}`, registrations, unregistrations, status checks and their latency).
//! The shared parts (configuration, gRPC, authentication, tokens, keys) come from
//! `svcid_grpc::ops`.

use std::sync::Arc;

use svcid_actuator::Actuator;
use svcid_actuator::health::Component;
use svcid_actuator::instruments::{EngineMetrics, render_engines};

use crate::engines::{EngineRegistry, EngineStatus};

/// Engines by status, every status present: `[("NEW", n), ("READY", n), ("DISCONNECTED", n)]`.
pub fn engines_by_status(registry: &EngineRegistry) -> [(&'static str, u64); 3] {
    let mut counts = [("NEW", 0), ("READY", 0), ("DISCONNECTED", 0)];
    for engine in registry.snapshot() {
        let slot = match engine.status {
            EngineStatus::New => 0,
            EngineStatus::Ready => 1,
            EngineStatus::Disconnected => 2,
        };
        counts[slot].1 += 1;
    }
    counts
}

/// Adds DPM's parts to the shared actuator.
///
/// The `engines` component is `UP` whatever the engines' states: an unreachable engine is the
/// engine's problem, and DPM keeps serving the others; its details give the counts by status.
pub fn actuator(
    shared: Actuator,
    registry: Arc<EngineRegistry>,
    metrics: Arc<EngineMetrics>,
) -> Actuator {
    let health_registry = Arc::clone(&registry);
    shared
        .health("engines", move || {
            let mut component = Component::up_if(true);
            for (status, count) in engines_by_status(&health_registry) {
                component = component.with(status, count);
            }
            component
        })
        .metrics(move |out| {
            render_engines(out, &engines_by_status(&registry));
            metrics.render(out);
        })
}
