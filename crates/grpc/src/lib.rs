//! gRPC glue shared by `dpm` and `dpe`.
//!
//! - [`auth`]: the server-side layer that authenticates every method but health and reflection,
//!   authorizes by module, and hands handlers the caller's identity.
//! - [`connections`]: bounds on a gRPC port's connections (in total, per peer, without a call).
//! - [`refusals`]: the `authenticationFailed` log, identical refusals folded into counts.
//! - [`reload`]: live re-reading of the properties file (deployments and generator key).
//! - [`status`]: the one mapping from authentication errors to gRPC statuses.
//! - [`daemon`]: the life cycle both daemons share ([`daemon::Module`] is what each adds):
//!   arguments, configuration and logging at start-up, serving, the stop sequence, exit codes.
//! - [`server`]: runtime, the router with the standard services, listening, signals.
//! - [`http`]: the HTTP port both daemons serve: the actuator (health, Prometheus, info) and the
//!   console sections they share.
//! - [`tls`]: server TLS (mutual TLS optional) from the checked settings, replaceable live.
//! - [`whoami`]: `IdentityService.WhoAmI`, served by both daemons.
//!
//! The identity rules themselves live in `svcid-identity`, which knows nothing of gRPC; every
//! outbound call (endpoint, token, failure reason) is `svcid-client`'s.

pub mod auth;
pub mod connections;
pub mod daemon;
pub mod events;
pub mod http;
pub mod refusals;
pub mod reload;
pub mod server;
pub mod status;
pub mod tls;
mod watched;
pub mod whoami;

pub use auth::{AuthLayer, caller, correlation_id};
pub use whoami::{WHOAMI_PREFIX, WhoAmI};
