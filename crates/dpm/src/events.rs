//! The log event ids DPM emits, defined once (docs/operations.md documents each). The events
//! both daemons emit are in `svcid_grpc::events`.

// Engines registering (service.rs), listed and called for a caller (admin.rs).

/// An engine registered, or a registration was refused.
pub const REGISTER_ENGINE: &str = "registerEngine";
/// An engine unregistered.
pub const UNREGISTER_ENGINE: &str = "unregisterEngine";
/// `svcid engines` listed the engines.
pub const LIST_ENGINES: &str = "listEngines";
/// DPM called an engine's `WhoAmI` on its caller's behalf (`svcid whoami --engine`).
pub const WHO_AM_I_ON_ENGINE: &str = "whoAmIOnEngine";

// Status checks (checker.rs).

/// A status check found the engine ready.
pub const ENGINE_CHECKED: &str = "engineChecked";
/// An engine's status changed.
pub const SET_ENGINE_STATUS: &str = "setEngineStatus";
/// A status check could not reach the engine.
pub const ENGINE_DISCONNECTED: &str = "engineDisconnected";

// The engine registry on PostgreSQL (store/postgres.rs).

/// The registry's database is open and migrated.
pub const REGISTRY_OPENED: &str = "registryOpened";
/// An engine is now checked by another DPM replica.
pub const ENGINE_RELEASED: &str = "engineReleased";
/// Engines claimed from a replica whose lease expired.
pub const ENGINES_TAKEN_OVER: &str = "enginesTakenOver";
/// Replicas long gone removed from the database.
pub const REPLICAS_FORGOTTEN: &str = "replicasForgotten";
/// The registry's database is reachable again.
pub const DATABASE_AVAILABLE: &str = "databaseAvailable";
/// The registry's database is unreachable.
pub const DATABASE_UNAVAILABLE: &str = "databaseUnavailable";
