//! What the soak watches: the daemons' logs and processes, its own calls, memory and
//! descriptors, the engines' checks, the database's rows.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use svcid_client::OutboundCredentials;
use svcid_proto::pb::identity::WhoAmIRequest;
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;

use super::history::{Facts, Outcome, What};
use super::plan::Side;
use super::samples::Sample;
use super::world::{DAEMONS, Shared, State, TICK, lock, sql};
use crate::engines::Fleet;
use crate::procfs::{open_fds, rss_kib};

/// Reads every daemon's log into the history, and notices daemons that exited unasked.
pub(super) async fn watch_logs(shared: Arc<Shared>) {
    let mut sizes = [0u64; DAEMONS.len()];
    while !shared.stopping.load(Ordering::SeqCst) {
        let polled: Vec<Vec<Value>> = lock(&shared.tails)
            .iter_mut()
            .map(|tail| tail.poll().unwrap_or_default())
            .collect();
        let now = shared.now();
        // A log that rolled over (at midnight, or past its size) would leave the history
        // incomplete: that is reported, never passed over.
        for (i, tail) in lock(&shared.tails).iter().enumerate() {
            let size = std::fs::metadata(tail.path()).map_or(0, |m| m.len());
            if size < sizes[i] {
                shared.push(What::Error {
                    daemon: DAEMONS[i],
                    line: "its log rolled over: the history misses what the old file ended with"
                        .to_owned(),
                });
            }
            sizes[i] = size;
        }
        lock(&shared.facts).log_lines += polled.iter().map(Vec::len).sum::<usize>();
        for (i, events) in polled.into_iter().enumerate() {
            let daemon = DAEMONS[i];
            for event in events {
                take_in(&shared, daemon, i, now, &event);
            }
        }
        for (i, side) in [Side::A, Side::B].into_iter().enumerate() {
            if lock(&shared.states)[i] != State::Up {
                continue;
            }
            let exited = lock(shared.replica(side)).dpm.try_exit().ok().flatten();
            if let Some(status) = exited {
                shared.push(What::Exited {
                    daemon: DAEMONS[i],
                    status: status.to_string(),
                });
                lock(&shared.states)[i] = State::Killed;
            }
        }
        for (i, dpe) in shared.dpes.iter().enumerate() {
            if let Ok(Some(status)) = lock(dpe).try_exit() {
                shared.push(What::Exited {
                    daemon: DAEMONS[2 + i],
                    status: status.to_string(),
                });
            }
        }
        tokio::time::sleep(TICK).await;
    }
}

/// One log event of `daemon` into the history.
pub(super) fn take_in(
    shared: &Shared,
    daemon: &'static str,
    i: usize,
    now: Duration,
    event: &Value,
) {
    let text = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
    // The engine's id is the event's correlation id (its `engine` field is the product's
    // `Engine(id=…, address=…)` text).
    let engine = || text("correlationId");
    let mut history = lock(&shared.history);
    match event["eventId"].as_str().unwrap_or_default() {
        "setEngineStatus" if event["newStatus"] == "READY" => history.push(
            now,
            What::Status {
                replica: daemon,
                engine: engine(),
                status: "READY",
            },
        ),
        "engineDisconnected" => history.push(
            now,
            What::Status {
                replica: daemon,
                engine: engine(),
                status: "DISCONNECTED",
            },
        ),
        "authenticationFailed" => history.push(
            now,
            What::Refusal {
                daemon,
                kid: text("kid"),
                reason: text("reason"),
            },
        ),
        "configurationReloaded" | "deploymentsReloaded" => {
            lock(&shared.reloads)[i] = Some(now);
        }
        "generatorKeyChanged" if daemon == "dpe-1" => *lock(&shared.dpe_key_changed) = Some(now),
        _ => {}
    }
    let message = text("message");
    let id = text("eventId");
    if id == "stopped" && shared.database_down.load(Ordering::SeqCst) {
        // Documented: DPM exits 69 at start when its database is unreachable.
        history.push(
            now,
            What::Note(format!(
                "{daemon} stopped at start, the database down: {message}"
            )),
        );
    } else if event["severity"] == "ERROR" || message.contains("panicked") {
        history.push(
            now,
            What::Error {
                daemon,
                line: format!("{id}: {message}"),
            },
        );
    }
}

/// `WhoAmI` on each replica every tick with the caller's current key, and with its revoked key
/// when there is one.
pub(super) async fn call(shared: Arc<Shared>) {
    let mut channels = Vec::new();
    for side in [Side::A, Side::B] {
        let port = lock(shared.replica(side)).grpc_port;
        match svcid_client::endpoint("127.0.0.1", port, None) {
            Ok(endpoint) => channels.push(
                endpoint
                    .connect_timeout(Duration::from_secs(1))
                    .timeout(Duration::from_secs(2))
                    .connect_lazy(),
            ),
            Err(e) => {
                shared.push(What::Note(format!("no channel to a replica: {e}")));
                return;
            }
        }
    }
    let mut calls = tokio::task::JoinSet::new();
    while !shared.stopping.load(Ordering::SeqCst) {
        let (current, revoked) = {
            let caller = lock(&shared.caller);
            (caller.current.clone(), caller.revoked.clone())
        };
        for (replica, channel) in ["A", "B"].into_iter().zip(&channels) {
            for (issuer, kid) in std::iter::once(&current).chain(revoked.as_ref()) {
                let mut client = IdentityServiceClient::with_interceptor(
                    channel.clone(),
                    OutboundCredentials::new(Arc::clone(issuer), "dpm"),
                );
                let kid = kid.clone();
                let shared = Arc::clone(&shared);
                let sent = shared.now();
                calls.spawn(async move {
                    let outcome = match client.who_am_i(WhoAmIRequest {}).await {
                        Ok(_) => Outcome::Answered,
                        Err(status)
                            if matches!(
                                status.code(),
                                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                            ) =>
                        {
                            Outcome::Refused
                        }
                        Err(_) => Outcome::Failed,
                    };
                    lock(&shared.history).push(
                        sent,
                        What::Call {
                            replica,
                            kid,
                            outcome,
                        },
                    );
                });
            }
        }
        while calls.try_join_next().is_some() {}
        tokio::time::sleep(TICK).await;
    }
    while calls.join_next().await.is_some() {}
}

/// Memory and descriptors of every daemon, every `every`.
pub(super) async fn sample(shared: Arc<Shared>, every: Duration) {
    while !shared.stopping.load(Ordering::SeqCst) {
        let mut pids: Vec<Option<u32>> = Vec::new();
        for side in [Side::A, Side::B] {
            pids.push(lock(shared.replica(side)).dpm.pid().ok());
        }
        for dpe in &shared.dpes {
            pids.push(lock(dpe).pid());
        }
        let at = shared.now();
        if shared.floods.load(Ordering::SeqCst) > 0 {
            // A flood's connections are not the daemon's own.
            tokio::time::sleep(every).await;
            continue;
        }
        let instances = *lock(&shared.instances);
        for (i, pid) in pids.into_iter().enumerate() {
            let Some(pid) = pid else { continue };
            if let (Ok(rss_kib), Ok(fds)) = (rss_kib(pid), open_fds(pid)) {
                lock(&shared.samples)[i].push(Sample {
                    at,
                    instance: instances[i],
                    rss_kib,
                    fds,
                });
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// The longest an engine went unchecked while not frozen (gaps that overlap one of its freezes
/// are left out), read every few seconds from the engines' own records.
pub(super) async fn check_gaps(shared: Arc<Shared>, fleet: Arc<Fleet>) -> Duration {
    let mut last: Vec<Option<Instant>> = vec![None; fleet.engines.len()];
    let mut worst = Duration::ZERO;
    let frozen_between = |facts: &Facts, id: &str, from: Duration, to: Duration| {
        facts
            .freezes
            .iter()
            .any(|f| f.engine == id && f.frozen <= to && f.thawed + Duration::from_secs(1) >= from)
    };
    loop {
        let stopping = shared.stopping.load(Ordering::SeqCst);
        for (i, engine) in fleet.engines.iter().enumerate() {
            let stamps: Vec<Instant> = lock(&engine.checks)
                .iter()
                .copied()
                .filter(|at| last[i].is_none_or(|l| *at > l))
                .collect();
            let frozen_now = *engine.frozen.borrow();
            for at in stamps {
                if let Some(previous) = last[i] {
                    let gap = at.saturating_duration_since(previous);
                    let from = previous.saturating_duration_since(shared.started);
                    let to = at.saturating_duration_since(shared.started);
                    let facts = lock(&shared.facts);
                    if !frozen_now && !frozen_between(&facts, &engine.id, from, to) {
                        worst = worst.max(gap);
                    }
                }
                last[i] = Some(at);
            }
        }
        if stopping {
            return worst;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Every engine that became READY has exactly one row (the table's key rules out two).
pub(super) async fn check_rows(shared: &Arc<Shared>) {
    let rows = match sql(shared, "SELECT id FROM dpm_engine").await {
        Ok(rows) => rows,
        Err(e) => {
            shared.push(What::Note(format!("rows not checked: {e:#}")));
            return;
        }
    };
    let rows: HashSet<&str> = rows.lines().map(str::trim).collect();
    let known: Vec<String> = lock(&shared.facts).names.keys().cloned().collect();
    let missing = known
        .iter()
        .filter(|id| !rows.contains(id.as_str()))
        .count();
    shared.push(What::Rows {
        missing,
        engines: rows.len(),
    });
}
