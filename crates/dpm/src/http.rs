//! DPM's part of what its HTTP port serves (the port is named `http` in every crate; it serves the
//! actuator under `/actuator` and the console under `/console`).
//!
//! The actuator gets the `engines` health component (and `database` when the registry
//! is kept in PostgreSQL), the engine metrics (`svcid_engines{status}`, registrations,
//! unregistrations, status checks and their latency) and the store's own (connections, queries,
//! lease takeovers). The shared parts (configuration, gRPC, authentication, tokens, keys) come
//! from `svcid_grpc::http`.
//!
//! The console gets the `engines` view (`/console/api/engines`, [`engines_view`]):
//! the fleet filtered, sorted and cut to a page, so the page and its JSON stay small with
//! thousands of engines, with the counts by status of the whole fleet and, on PostgreSQL,
//! which replica checks each engine. Constraints are shown in the product's text form
//! ([`svcid_proto::text`]), the same as in `registerEngine` events.

use std::sync::Arc;

use prost::Message as _;
use serde_json::{Value, json};
use svcid_actuator::console::{Query, QueryError, shown};
use svcid_actuator::health::Component;
use svcid_actuator::instruments::{EngineMetrics, render_engines};
use svcid_actuator::{Actuator, rfc3339};
use svcid_proto::pb::constraint::Constraints;

use crate::engines::EngineStatus;
use crate::store::{EngineStore, FleetEngine, count_by_status};

/// Engines in one answer of the `engines` view unless `limit` says otherwise.
pub const DEFAULT_ENGINE_LIMIT: usize = 200;
/// Most engines one answer of the `engines` view holds (`limit`).
pub const MAX_ENGINE_LIMIT: usize = 1000;
/// Longest `q` (engine id substring) accepted, in characters.
const MAX_ID_FILTER_CHARS: usize = 128;
/// The query parameters of the `engines` view.
const ENGINE_QUERY: &[&str] = &["status", "q", "sort", "limit", "offset"];

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
    let view_store = Arc::clone(&store);
    actuator
        .metrics(move |out| {
            render_engines(out, &store.by_status());
            metrics.render(out);
            store.render_metrics(out);
        })
        .console_view("engines", move |query| engines_view(&*view_store, query))
}

/// How the `engines` view orders the fleet (`sort`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// By id (the default).
    Id,
    /// DISCONNECTED first, then NEW, then READY; by id within a status.
    Status,
    /// The latest status change first.
    Since,
    /// The engine heard from longest ago first (never first of all).
    Seen,
}

/// `/console/api/engines?status=READY&q=abc&sort=id&limit=200&offset=0`: the engines matching
/// `status` (`NEW`, `READY`, `DISCONNECTED`) and whose id contains `q` (any case), sorted, from
/// `offset`, at most `limit` (default [`DEFAULT_ENGINE_LIMIT`], at most [`MAX_ENGINE_LIMIT`]);
/// with `total`, `counts` (by status, whole fleet) and `matched`. A wrong parameter is an error
/// naming it, never an empty answer.
pub fn engines_view(store: &dyn EngineStore, query: &Query) -> Result<Value, QueryError> {
    query.only(ENGINE_QUERY)?;
    let status = match query.get("status") {
        None | Some("") => None,
        Some(raw) => Some(
            EngineStatus::parse(&raw.to_ascii_uppercase()).ok_or_else(|| {
                QueryError(format!(
                    "status must be NEW, READY or DISCONNECTED, not {}",
                    shown(raw)
                ))
            })?,
        ),
    };
    let needle = query.get("q").unwrap_or_default().to_lowercase();
    if needle.chars().count() > MAX_ID_FILTER_CHARS {
        return Err(QueryError(format!(
            "q is longer than {MAX_ID_FILTER_CHARS} characters"
        )));
    }
    let order = match query.get("sort").unwrap_or_default() {
        "" | "id" => Order::Id,
        "status" => Order::Status,
        "since" => Order::Since,
        "seen" => Order::Seen,
        other => {
            return Err(QueryError(format!(
                "sort must be id, status, since or seen, not {}",
                shown(other)
            )));
        }
    };
    let limit = query.number("limit", DEFAULT_ENGINE_LIMIT, MAX_ENGINE_LIMIT)?;
    let offset = query.number("offset", 0, u32::MAX as usize)?;

    let Some(fleet) = store.fleet() else {
        // PostgreSQL: the first snapshot comes with the next tick.
        let counts = store.by_status();
        return Ok(json!({
            "pending": true,
            "total": counts.iter().map(|(_, n)| n).sum::<u64>(),
            "counts": counts_json(&counts),
            "matched": 0,
            "offset": offset,
            "limit": limit,
            "engines": [],
        }));
    };
    let counts = count_by_status(fleet.engines.iter().map(|e| e.record.status));
    let mut matching: Vec<&FleetEngine> = fleet
        .engines
        .iter()
        .filter(|e| status.is_none_or(|s| e.record.status == s))
        .filter(|e| needle.is_empty() || e.record.id.to_lowercase().contains(&needle))
        .collect();
    match order {
        // The fleet comes sorted by id.
        Order::Id => {}
        Order::Status => matching.sort_by_key(|e| match e.record.status {
            EngineStatus::Disconnected => 0,
            EngineStatus::New => 1,
            EngineStatus::Ready => 2,
        }),
        Order::Since => matching.sort_by_key(|e| std::cmp::Reverse(e.record.status_since)),
        Order::Seen => matching.sort_by_key(|e| e.record.last_seen),
    }
    let replicated = fleet.replicas.is_some();
    let engines: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|engine| engine_json(engine, replicated))
        .collect();
    let mut view = json!({
        "total": fleet.engines.len(),
        "counts": counts_json(&counts),
        "matched": matching.len(),
        "offset": offset,
        "limit": limit,
        "asOf": rfc3339(fleet.as_of),
        "engines": engines,
    });
    if let Some(replicas) = &fleet.replicas {
        view["replicas"] = replicas
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "started": rfc3339(r.started),
                    "leaseUntil": rfc3339(r.lease_until),
                    "engines": r.engines,
                    "this": r.this,
                })
            })
            .collect::<Vec<_>>()
            .into();
    }
    Ok(view)
}

fn counts_json(counts: &crate::store::StatusCounts) -> Value {
    let mut out = serde_json::Map::new();
    for (status, count) in counts {
        out.insert((*status).to_owned(), (*count).into());
    }
    Value::Object(out)
}

/// One engine as the console shows it; `checkedBy` only when replicas share the registry.
fn engine_json(engine: &FleetEngine, replicated: bool) -> Value {
    let record = &engine.record;
    let constraints = match Constraints::decode(record.constraints.as_slice()) {
        Ok(decoded) => svcid_proto::text::constraints(&decoded),
        Err(_) => format!("(not decodable: {} bytes)", record.constraints.len()),
    };
    let mut out = json!({
        "id": record.id,
        "address": format!("{}:{}", record.address.hostname, record.address.port),
        "status": record.status.as_str(),
        "statusSince": rfc3339(record.status_since),
        "lastSeen": record.last_seen.map(rfc3339),
        "registeredAt": rfc3339(record.registered_at),
        "registeredBy": record.registered_by,
        "deployment": record.registered_by_deployment,
        "constraints": constraints,
    });
    if replicated {
        out["checkedBy"] = engine.checked_by.clone().into();
    }
    out
}
