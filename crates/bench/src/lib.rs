//! svcid-bench: the measurements behind issue 6 and `BENCHMARKS.md`.
//!
//! Three binaries share this library: `micro` (mint, cold and cached verify, registry lookups,
//! each beside `openssl speed ecdsap256` run in the same process tree), `loadgen` (authenticated
//! `WhoAmI` against unauthenticated `Health/Check` on one real `dpm`) and `swarm` (many simulated
//! engines against one real `dpm`: storm, steady state, DPM restart, frozen engines). The library
//! holds what they have in common: module homes and the `dpm` process ([`daemon`]), simulated
//! engines ([`engines`]), the fleet as DPM's logs tell it ([`fleet`]), reading
//! `/proc` ([`procfs`]), percentiles ([`stats`]) and the result lines `run.sh` collects
//! ([`report`]); `swarm --console` also loads the operations console in headless chromium
//! ([`console`]). Everything runs on loopback; every wait is bounded.

pub mod console;
pub mod daemon;
pub mod engines;
pub mod fleet;
pub mod procfs;
pub mod report;
pub mod stats;
