//! The soak: two DPM replicas on a real PostgreSQL server, a fleet of simulated engines and two
//! real `dpe` processes, a steady stream of authenticated calls, and overlapping faults from a
//! seeded schedule ([`plan`]) for a given time; then the invariants over the whole history
//! ([`history`]) and the memory and descriptor slopes of every daemon ([`samples`]).
//!
//! Keys change the way an operator changes them, with `svcid` on the live files: the soak's
//! caller (a `dpe`-module deployment `dpe-caller` on both replicas) and the real `dpe` of
//! replica A rotate with `svcid link --rotate dpe`, and their old keys are revoked with
//! `svcid revoke`.
//!
//! The [`run`] builds the world (`world`), starts what watches it (`observe`: logs, processes,
//! calls, memory, the engines' checks, the rows) and carries out the faults (`faults`).

mod faults;
pub mod history;
mod observe;
pub mod plan;
mod run;
pub mod samples;
mod world;

pub use run::run;
pub use world::{Options, Report};
