//! svcid-bench: the measurements behind issue 6 and `BENCHMARKS.md`.
//!
//! Five binaries share this library: `micro` (mint, cold and cached verify, registry lookups,
//! each beside `openssl speed ecdsap256` run in the same process tree; people's RS256 tokens
//! beside `openssl speed rsa2048`), `loadgen` (authenticated `WhoAmI` against unauthenticated
//! `Health/Check` on one real `dpm`; a person's token against a module's, an unknown-`kid` storm,
//! `WhoAmIOnEngine` over a real `dpm` and `dpe`), `swarm` (many simulated
//! engines against one real `dpm`: storm, steady state, DPM restart, frozen engines),
//! `replicas` (two `dpm` replicas on a real PostgreSQL beside one in memory) and `soak` (an hour
//! of seeded, overlapping faults against two replicas, simulated engines and real `dpe`s, with
//! invariants checked over the whole history: [`soak`]). The library holds
//! what they have in common: module homes and the `dpm` process ([`daemon`]), a DPM replica
//! ([`replica`]), simulated engines
//! ([`engines`]), the fleet as DPM's logs tell it ([`fleet`]), reading `/proc` ([`procfs`]),
//! percentiles ([`stats`]), people's tokens signed by an independent implementation ([`people`]), the result lines `run.sh` collects ([`report`]) and the `main` of the
//! tools that run engines ([`engines_main`]); `swarm --console` also loads the operations console
//! in headless chromium ([`console`]). What the benchmarks share with the tests (processes, logs,
//! homes, HTTP, ports, the browser, PostgreSQL) is `svcid_testkit`. Everything runs on loopback;
//! every wait is bounded.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

pub mod console;
pub mod daemon;
pub mod engines;
pub mod fleet;
pub mod people;
pub mod procfs;
pub mod replica;
pub mod report;
pub mod soak;
pub mod stats;

/// The most simulated engines one process runs.
pub const MAX_ENGINES: usize = 20_000;

/// The `main` of the tools whose simulated engines run in this process (`swarm`, `replicas`):
/// checks the number of `engines`, runs `run` on a multi-threaded runtime, and gives the
/// runtime's tasks 5 s to end.
pub fn engines_main<T>(engines: usize, run: impl Future<Output = Result<T>>) -> Result<T> {
    if engines == 0 || engines > MAX_ENGINES {
        bail!("--engines must be 1 to 20000");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the engines' runtime")?;
    let result = runtime.block_on(run);
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}
