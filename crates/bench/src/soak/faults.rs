//! The faults carried out on the world: processes killed and paused, the database stopped,
//! engines frozen, keys rotated and revoked with `svcid`, connections flooded in.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use svcid_testkit::process::send_signal;
use tokio::io::AsyncWriteExt;

use super::history::{Freeze, What};
use super::observe::check_rows;
use super::plan::{Fault, Planned, Side};
use super::world::{
    PATIENCE, Shared, State, TICK, blocking, generator_key, issuer, lock, path, svcid,
};
use crate::engines::Fleet;

/// Carries out one fault.
pub(super) async fn inject(shared: &Arc<Shared>, fleet: &Fleet, planned: &Planned) -> Result<()> {
    let fault = &planned.fault;
    *lock(&shared.faults).entry(fault.kind()).or_default() += 1;
    shared.push(What::FaultBegan(fault.clone()));
    let began = shared.now();
    match fault {
        Fault::KillReplica { down } => {
            lock(&shared.states)[0] = State::Killed;
            lock(shared.replica(Side::A)).dpm.kill()?;
            tokio::time::sleep(*down).await;
            restart_a(shared).await?;
            lock(&shared.facts)
                .owner_faults
                .push((0, began, shared.now()));
            shared.push(What::FaultEnded("replica A serves again".into()));
        }
        Fault::PauseReplica { side, paused } => {
            let pid = lock(shared.replica(*side)).dpm.pid()?;
            lock(&shared.states)[side.index()] = State::Paused;
            send_signal(pid, "STOP")?;
            tokio::time::sleep(*paused).await;
            send_signal(pid, "CONT")?;
            lock(&shared.states)[side.index()] = State::Up;
            let replica = ["A", "B"][side.index()];
            shared.push(What::Running { replica });
            lock(&shared.facts)
                .owner_faults
                .push((side.index(), began, shared.now()));
            shared.push(What::FaultEnded(format!("replica {replica} continued")));
        }
        Fault::StopDatabase { down } => {
            shared.database_down.store(true, Ordering::SeqCst);
            let stop = blocking(shared, |s| {
                s.pg.stop_server().context("stopping PostgreSQL")
            });
            stop.await?;
            tokio::time::sleep(*down).await;
            let start = blocking(shared, |s| {
                s.pg.start_server().context("starting PostgreSQL")
            });
            start.await?;
            shared.database_down.store(false, Ordering::SeqCst);
            shared.push(What::FaultEnded("PostgreSQL serves again".into()));
            // Once the replicas wrote back: every engine still has its one row.
            tokio::time::sleep(Duration::from_secs(12)).await;
            check_rows(shared).await;
        }
        Fault::FreezeEngines {
            first,
            count,
            frozen,
        } => {
            let engines = &fleet.engines[*first..first + count];
            for engine in engines {
                let _ = engine.frozen.send(true);
            }
            tokio::time::sleep(*frozen).await;
            for engine in engines {
                let _ = engine.frozen.send(false);
            }
            let thawed = shared.now();
            let mut facts = lock(&shared.facts);
            for engine in engines {
                facts.freezes.push(Freeze {
                    engine: engine.id.clone(),
                    frozen: began,
                    thawed,
                });
            }
            drop(facts);
            shared.push(What::FaultEnded(format!("{count} engines thawed")));
        }
        Fault::RotateCaller => rotate_caller(shared).await?,
        Fault::RotateEngine => rotate_engine(shared).await?,
        Fault::Flood {
            side,
            connections,
            held,
        } => {
            let port = lock(shared.replica(*side)).grpc_port;
            shared.floods.fetch_add(1, Ordering::SeqCst);
            let mut open = Vec::new();
            for i in 0..*connections {
                let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                else {
                    continue;
                };
                if i % 2 == 1 {
                    let _ = stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
                }
                open.push(stream);
            }
            let opened = open.len();
            tokio::time::sleep(*held).await;
            drop(open);
            tokio::time::sleep(Duration::from_secs(1)).await;
            shared.floods.fetch_sub(1, Ordering::SeqCst);
            shared.push(What::FaultEnded(format!(
                "{opened} flood connections closed"
            )));
        }
    }
    Ok(())
}

/// Starts replica A again, retrying while it exits 69 because the database is down.
pub(super) async fn restart_a(shared: &Arc<Shared>) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        lock(shared.replica(Side::A)).restart()?;
        lock(&shared.instances)[0] += 1;
        // It either serves (grpcServerStarted) or exits.
        let serving = loop {
            tokio::time::sleep(TICK).await;
            let mut replica = lock(shared.replica(Side::A));
            let events = replica.tail.poll()?;
            if events.iter().any(|e| e["eventId"] == "grpcServerStarted") {
                break Ok(());
            }
            if let Some(status) = replica.dpm.try_exit()? {
                break Err(status);
            }
            if Instant::now() > deadline {
                bail!("replica A did not start within {PATIENCE:?}");
            }
        };
        match serving {
            Ok(()) => {
                lock(&shared.states)[0] = State::Up;
                shared.push(What::Running { replica: "A" });
                return Ok(());
            }
            Err(status)
                if status.code() == Some(69) && shared.database_down.load(Ordering::SeqCst) =>
            {
                shared.push(What::Note(format!(
                    "replica A exited {status} at start: the database is down; retrying in 1 s"
                )));
            }
            Err(status) => shared.push(What::Exited {
                daemon: "A",
                status: format!("{status} at start"),
            }),
        }
        if Instant::now() > deadline {
            bail!("replica A did not start within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The caller's new key on both replicas' files, then the caller switches to it once both
/// re-read them, then its old key is revoked on both.
pub(super) async fn rotate_caller(shared: &Arc<Shared>) -> Result<()> {
    let mut keys = shared.keys.lock().await;
    let homes = &shared.homes;
    let changed = shared.now();
    svcid(&[
        "link",
        path(&homes.a)?,
        path(&homes.caller)?,
        "--environment",
        "caller",
        "--rotate",
        "dpe",
        "--grace",
        "0",
    ])
    .await?;
    svcid(&[
        "link",
        path(&homes.b)?,
        path(&homes.caller)?,
        "--environment",
        "caller",
    ])
    .await?;
    // Verifiers first: both replicas must have re-read their files (a killed one reads it at
    // start; a paused one once it runs again).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reloads = *lock(&shared.reloads);
        let states = *lock(&shared.states);
        let current = (0..2).all(|i| {
            reloads[i].is_some_and(|at| at > changed)
                || (states[i] == State::Up && restarted_after(shared, i, changed))
        });
        if current {
            break;
        }
        if Instant::now() > deadline {
            bail!("the replicas did not re-read the caller's new key within {PATIENCE:?}");
        }
        tokio::time::sleep(TICK).await;
    }
    let key = generator_key(&homes.caller)?;
    let new = (issuer(&key)?, key.kid().to_owned());
    let old = {
        let mut caller = lock(&shared.caller);
        let old = std::mem::replace(&mut caller.current, new);
        shared.push(What::Note(format!(
            "the caller signs with {} instead of {}",
            caller.current.1, old.1
        )));
        old
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    keys.caller_rotations += 1;
    let entry = entry_name(keys.caller_rotations);
    svcid(&["revoke", path(&homes.a)?, "dpe-caller", &entry]).await?;
    svcid(&["revoke", path(&homes.b)?, "dpe-caller", &entry]).await?;
    let at = shared.now();
    lock(&shared.facts).revoked.insert(old.1.clone(), at);
    shared.push(What::Revoked { kid: old.1.clone() });
    lock(&shared.caller).revoked = Some(old);
    shared.push(What::FaultEnded(
        "caller key rotated and the old one revoked".into(),
    ));
    Ok(())
}

/// Whether replica `i` started (again) after `at`: it read its file at start.
pub(super) fn restarted_after(shared: &Shared, i: usize, at: Duration) -> bool {
    let history = lock(&shared.history);
    let name = ["A", "B"][i];
    history
        .entries
        .iter()
        .rev()
        .take_while(|e| e.at > at)
        .any(|e| matches!(&e.what, What::Running { replica } if *replica == name))
}

/// dpe-1's new key (`svcid link --rotate dpe` with replica A), then once dpe-1 signs with it,
/// its old key revoked on A.
pub(super) async fn rotate_engine(shared: &Arc<Shared>) -> Result<()> {
    let mut keys = shared.keys.lock().await;
    let homes = &shared.homes;
    let old = generator_key(&homes.dpe[0])?.kid().to_owned();
    let changed = shared.now();
    svcid(&[
        "link",
        path(&homes.a)?,
        path(&homes.dpe[0])?,
        "--environment",
        "one",
        "--rotate",
        "dpe",
        "--grace",
        "2",
    ])
    .await?;
    let deadline = Instant::now() + PATIENCE;
    while !lock(&shared.dpe_key_changed).is_some_and(|at| at > changed) {
        if Instant::now() > deadline {
            bail!("dpe-1 did not switch to its new key within {PATIENCE:?}");
        }
        tokio::time::sleep(TICK).await;
    }
    // Its tokens signed with the old key expire (15 s) before the old key is revoked, as the
    // operator's guide says to wait for generatorKeyChanged.
    tokio::time::sleep(Duration::from_secs(16)).await;
    keys.engine_rotations += 1;
    let entry = entry_name(keys.engine_rotations);
    svcid(&["revoke", path(&homes.a)?, "dpe-one", &entry]).await?;
    let at = shared.now();
    lock(&shared.facts).revoked.insert(old.clone(), at);
    shared.push(What::Revoked { kid: old });
    shared.push(What::FaultEnded(
        "dpe-1 key rotated and the old one revoked".into(),
    ));
    Ok(())
}

/// The entry `svcid link` gave the key replaced by rotation `n` (1-based): `key`, `key-2`, …
pub(super) fn entry_name(n: u32) -> String {
    if n <= 1 {
        "key".to_owned()
    } else {
        format!("key-{n}")
    }
}
