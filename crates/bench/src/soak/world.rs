//! The soak's world (database, replicas, engines, callers), the faults carried out on it, and
//! what was seen, put together into the history.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use svcid_client::OutboundCredentials;
use svcid_config::names;
use svcid_identity::{GeneratorKey, SystemClock, TokenIssuer};
use svcid_proto::pb::identity::WhoAmIRequest;
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use svcid_testkit::homes::{TrustedPeer, properties_file};
use svcid_testkit::log::{LogTail, json_log};
use svcid_testkit::net::free_port;
use svcid_testkit::postgres::Postgres;
use svcid_testkit::process::{ChildGuard, send_signal, spawn_daemon, workspace_binary};
use tokio::io::AsyncWriteExt;

use super::history::{Facts, Findings, Freeze, History, Outcome, What};
use super::plan::{Fault, Planned, Side, plan};
use super::samples::{Sample, Slope};
use crate::engines::{Fleet, dpm_trust};
use crate::fleet::DpmView;
use crate::procfs::{open_fds, rss_kib};
use crate::replica::Replica;

/// What a soak is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long faults are injected (the run takes about a minute more: start and settle).
    pub length: Duration,
    /// The schedule's seed.
    pub seed: u64,
    /// Simulated engines.
    pub engines: usize,
    /// How often memory and descriptors are read.
    pub sample_every: Duration,
    /// Keep the run's folder (homes, logs, history) here instead of deleting it.
    pub keep: Option<PathBuf>,
}

/// What a soak found.
#[derive(Debug)]
pub struct Report {
    /// The faults carried out, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    /// The invariants' verdicts and figures.
    pub findings: Findings,
    /// Each daemon's memory and descriptor trend over the second half.
    pub slopes: Vec<Slope>,
    /// The longest time any engine went unchecked while it was not frozen.
    pub worst_check_gap: Duration,
    /// Each violation with its slice of history, ready to print.
    pub explained: Vec<String>,
    /// Where the history was written.
    pub history_file: Option<PathBuf>,
}

/// Longest wait for anything the soak waits on (a start, a reload, READY).
const PATIENCE: Duration = Duration::from_secs(90);
/// How often the logs are read and the callers call.
const TICK: Duration = Duration::from_millis(100);
/// The simulated engines' keys (engines share them, as deployments share keys).
const ENGINE_KEYS: usize = 4;
/// The engines' registration interval (`dpe`'s default).
const REGISTER_EVERY: Duration = Duration::from_secs(5);

/// The daemons whose logs and processes are watched, in sample order.
const DAEMONS: [&str; 4] = ["A", "B", "dpe-1", "dpe-2"];

/// A replica's state as the soak made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    Killed,
    Paused,
}

/// Everything the soak's tasks share.
struct Shared {
    started: Instant,
    history: Mutex<History>,
    facts: Mutex<Facts>,
    replicas: [Mutex<Replica>; 2],
    states: Mutex<[State; 2]>,
    /// Instance number per daemon (restarts).
    instances: Mutex<[u32; 4]>,
    dpes: [Mutex<ChildGuard>; 2],
    pg: Postgres,
    database_down: AtomicBool,
    /// The last reload each daemon logged.
    reloads: Mutex<[Option<Duration>; 4]>,
    /// When dpe-1 last logged `generatorKeyChanged`.
    dpe_key_changed: Mutex<Option<Duration>>,
    /// The caller's current issuer and kid; the revoked one it keeps trying.
    caller: Mutex<CallerKeys>,
    faults: Mutex<BTreeMap<&'static str, usize>>,
    samples: Mutex<[Vec<Sample>; 4]>,
    /// Serialises key changes.
    keys: tokio::sync::Mutex<KeyState>,
    homes: Homes,
    stopping: AtomicBool,
    /// Floods holding connections now.
    floods: std::sync::atomic::AtomicUsize,
    /// The logs of [`DAEMONS`], read into the history.
    tails: Mutex<Vec<LogTail>>,
}

struct CallerKeys {
    current: (Arc<TokenIssuer>, String),
    revoked: Option<(Arc<TokenIssuer>, String)>,
}

/// Key entries rotated so far (the next old entry is `key`, then `key-2`, …).
struct KeyState {
    caller_rotations: u32,
    engine_rotations: u32,
}

struct Homes {
    a: PathBuf,
    b: PathBuf,
    caller: PathBuf,
    dpe: [PathBuf; 2],
}

impl Shared {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn push(&self, what: What) {
        let at = self.now();
        lock(&self.history).push(at, what);
    }

    fn replica(&self, side: Side) -> &Mutex<Replica> {
        &self.replicas[side.index()]
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a soak as `options` say.
pub async fn run(options: &Options) -> Result<Report> {
    let temp = tempfile::tempdir().context("creating the run's folder")?;
    let dir = options
        .keep
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let schedule = plan(options.seed, options.length, options.engines);
    println!(
        "soak: seed {}, {} of faults ({} planned), {} simulated engines + 2 real dpe, folder {}",
        options.seed,
        crate::stats::human(options.length),
        schedule.len(),
        options.engines,
        dir.display()
    );

    let (shared, fleet) = build(&dir, options).await?;
    let shared = Arc::new(shared);
    let tasks = vec![
        tokio::spawn(watch_logs(Arc::clone(&shared))),
        tokio::spawn(call(Arc::clone(&shared))),
        tokio::spawn(sample(Arc::clone(&shared), options.sample_every)),
    ];
    let fleet = Arc::new(fleet);
    let gaps = tokio::spawn(check_gaps(Arc::clone(&shared), Arc::clone(&fleet)));

    // The faults, each in its own task at its time (they overlap).
    let mut faults = tokio::task::JoinSet::new();
    for planned in schedule {
        let shared = Arc::clone(&shared);
        let fleet = Arc::clone(&fleet);
        let wait = planned.at.saturating_sub(shared.now());
        tokio::time::sleep(wait).await;
        faults.spawn(async move {
            let what = planned.fault.to_string();
            if let Err(e) = inject(&shared, &fleet, &planned).await {
                shared.push(What::Note(format!("fault \"{what}\" failed: {e:#}")));
            }
        });
    }
    tokio::time::sleep(options.length.saturating_sub(shared.now())).await;
    while faults.join_next().await.is_some() {}
    // Settled: every engine checked again, the rows and leases as they should be.
    tokio::time::sleep(Duration::from_secs(10)).await;
    check_rows(&shared).await;
    let not_ready = sql(
        &shared,
        "SELECT count(*) FROM dpm_engine WHERE status <> 'READY'",
    )
    .await
    .unwrap_or_else(|e| format!("? ({e})"));
    let stale_leases = sql(
        &shared,
        "SELECT count(*) FROM dpm_replica WHERE expires_at < now() - interval '80 seconds'",
    )
    .await
    .unwrap_or_else(|e| format!("? ({e})"));
    shared.stopping.store(true, Ordering::SeqCst);
    for task in tasks {
        let _ = task.await;
    }
    let worst_check_gap = gaps.await.unwrap_or_default();

    // Stop everything as an operator would, then the leases must all be gone.
    if let Ok(fleet) = Arc::try_unwrap(fleet) {
        fleet.stop().await;
    }
    for dpe in &shared.dpes {
        let _ = lock(dpe).terminate(Duration::from_secs(10));
    }
    for replica in &shared.replicas {
        let _ = lock(replica).dpm.stop(Duration::from_secs(10));
    }
    // Killed processes' rows go a minute after they died; the stopped replicas' at once.
    let leases_after_stop = sql(
        &shared,
        "SELECT count(*) FROM dpm_replica WHERE expires_at > now() - interval '5 seconds'",
    )
    .await
    .unwrap_or_else(|e| format!("? ({e})"));

    let mut history = std::mem::take(&mut *lock(&shared.history));
    let facts = std::mem::take(&mut *lock(&shared.facts));
    let mut findings = history.check(&facts);
    for (what, count) in [
        (
            "no lease row left behind (expired over 80 s ago)",
            &stale_leases,
        ),
        ("a stopped replica leaves no lease row", &leases_after_stop),
        ("every engine READY once the faults are over", &not_ready),
    ] {
        findings.checked.push((what, 1));
        if count.trim() != "0" {
            findings.violations.push(super::history::Violation {
                invariant: what,
                detail: format!("dpm_replica holds {} such rows", count.trim()),
                at: options.length,
                subject: None,
            });
        }
    }
    let end = shared.now();
    let samples = lock(&shared.samples).clone();
    let slopes: Vec<Slope> = DAEMONS
        .iter()
        .zip(samples.iter())
        .map(|(daemon, samples)| Slope::of(daemon, samples, end / 2, end))
        .collect();
    for slope in slopes.iter().filter(|s| s.leaks()) {
        findings.violations.push(super::history::Violation {
            invariant: "memory and descriptors flat over the second half",
            detail: format!(
                "{} grew {:.1} MiB and {:.1} descriptors over {}",
                slope.daemon,
                slope.rss_growth_mib,
                slope.fd_growth,
                crate::stats::human(slope.window)
            ),
            at: end,
            subject: None,
        });
    }
    findings.checked.push((
        "memory and descriptors flat over the second half",
        slopes.len(),
    ));
    let explained = findings
        .violations
        .iter()
        .take(20)
        .map(|v| history.explain(v))
        .collect();
    let history_file = options.keep.as_ref().map(|dir| dir.join("history.txt"));
    if let Some(path) = &history_file {
        let text: String = history.entries.iter().map(|e| format!("{e}\n")).collect();
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let faults = std::mem::take(&mut *lock(&shared.faults));
    Ok(Report {
        faults,
        findings,
        slopes,
        worst_check_gap,
        explained,
        history_file,
    })
}

/// The database, both replicas, the real engines, the caller and the fleet, all READY.
async fn build(dir: &Path, options: &Options) -> Result<(Shared, Fleet)> {
    let pg = Postgres::start().context("starting PostgreSQL")?;
    let dpm_key = GeneratorKey::generate();
    let engine_keys: Vec<GeneratorKey> =
        (0..ENGINE_KEYS).map(|_| GeneratorKey::generate()).collect();
    let peers: Vec<TrustedPeer> = engine_keys
        .iter()
        .enumerate()
        .map(|(i, key)| TrustedPeer::dpe(format!("sim-{i}"), key))
        .collect();
    // The history follows one log file per daemon: no roll-over during a run (about 6 MB an
    // hour per replica with 200 engines).
    let extra = [format!("{}=10GB", names::LOG_MAX_FILE_SIZE)];
    let mut a = Replica::start("A", dir, &dpm_key, &peers, Some(&pg), &extra)?;
    a.wait_started(PATIENCE)?;
    let mut b = Replica::start("B", dir, &dpm_key, &peers, Some(&pg), &extra)?;
    b.wait_started(PATIENCE)?;

    // The caller and the real engines, linked with svcid as an operator links them.
    let caller = dir.join("caller");
    svcid(&[
        "link",
        path(&a.home)?,
        path(&caller)?,
        "--environment",
        "caller",
    ])?;
    svcid(&[
        "link",
        path(&b.home)?,
        path(&caller)?,
        "--environment",
        "caller",
    ])?;
    let mut dpe_homes = Vec::new();
    for (i, replica) in [&a, &b].iter().enumerate() {
        let home = dir.join(format!("dpe-{}", i + 1));
        let (grpc, http) = (free_port()?.to_string(), free_port()?.to_string());
        let env = ["one", "two"][i];
        svcid(&[
            "link",
            path(&replica.home)?,
            path(&home)?,
            "--environment",
            env,
            "--dpe-grpc-port",
            &grpc,
            "--dpe-http-port",
            &http,
        ])?;
        dpe_homes.push(home);
    }
    let tails: Vec<LogTail> = [&a.home, &b.home, &dpe_homes[0], &dpe_homes[1]]
        .iter()
        .map(|home| LogTail::from_end(json_log(home)))
        .collect();
    let mut ready_tails = [
        LogTail::from_end(json_log(&a.home)),
        LogTail::from_end(json_log(&b.home)),
    ];
    // The replicas re-read their linked files before the engines call.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dpes = [
        Mutex::new(spawn_daemon("dpe", &dpe_homes[0], &[], &[], |_| {})?),
        Mutex::new(spawn_daemon("dpe", &dpe_homes[1], &[], &[], |_| {})?),
    ];

    let fleet = Fleet::start(
        options.engines,
        &engine_keys,
        &dpm_trust(&dpm_key)?,
        &[a.grpc_port, b.grpc_port],
        REGISTER_EVERY,
    )
    .await?;
    let mut names = std::collections::HashMap::new();
    let mut homes = std::collections::HashMap::new();
    for (i, engine) in fleet.engines.iter().enumerate() {
        names.insert(engine.id.clone(), format!("sim-{i}"));
        // Engine i registers with replica i % 2 (Fleet::start).
        homes.insert(engine.id.clone(), i % 2);
    }
    fleet.release();
    let mut view = DpmView::default();
    // The history's tails start before anything registered; the wait reads its own.
    let deadline = Instant::now() + PATIENCE;
    let ids = fleet.ids();
    loop {
        for tail in &mut ready_tails {
            view.apply(tail.poll()?);
        }
        if ids.iter().all(|id| view.ready.contains(id)) && view.ready.len() >= ids.len() + 2 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {} engines READY after {PATIENCE:?}; see {}",
                view.ready.len(),
                ids.len() + 2,
                dir.display()
            );
        }
        tokio::time::sleep(TICK).await;
    }
    for id in view.ready.iter().filter(|id| !ids.contains(*id)) {
        names.insert(id.clone(), "a real dpe".to_owned());
    }
    // The history starts with the faults: what the logs said while starting is not judged.
    let mut tails = tails;
    for tail in &mut tails {
        tail.poll()?;
    }
    let caller_key = generator_key(&caller)?;
    let current = (issuer(&caller_key)?, caller_key.kid().to_owned());
    let shared = Shared {
        started: Instant::now(),
        history: Mutex::new(History::default()),
        facts: Mutex::new(Facts {
            names,
            homes,
            ..Facts::default()
        }),
        homes: Homes {
            a: a.home.clone(),
            b: b.home.clone(),
            caller,
            dpe: [dpe_homes[0].clone(), dpe_homes[1].clone()],
        },
        replicas: [Mutex::new(a), Mutex::new(b)],
        states: Mutex::new([State::Up; 2]),
        instances: Mutex::new([0; 4]),
        dpes,
        pg,
        database_down: AtomicBool::new(false),
        reloads: Mutex::new([None; 4]),
        dpe_key_changed: Mutex::new(None),
        caller: Mutex::new(CallerKeys {
            current,
            revoked: None,
        }),
        faults: Mutex::new(BTreeMap::new()),
        samples: Mutex::new(Default::default()),
        keys: tokio::sync::Mutex::new(KeyState {
            caller_rotations: 0,
            engine_rotations: 0,
        }),
        stopping: AtomicBool::new(false),
        floods: std::sync::atomic::AtomicUsize::new(0),
        tails: Mutex::new(tails),
    };
    println!(
        "soak: {} engines and 2 real dpe READY on replicas A and B; faults begin",
        options.engines
    );
    Ok((shared, fleet))
}

/// Carries out one fault.
async fn inject(shared: &Arc<Shared>, fleet: &Fleet, planned: &Planned) -> Result<()> {
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
async fn restart_a(shared: &Arc<Shared>) -> Result<()> {
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
async fn rotate_caller(shared: &Arc<Shared>) -> Result<()> {
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
    ])?;
    svcid(&[
        "link",
        path(&homes.b)?,
        path(&homes.caller)?,
        "--environment",
        "caller",
    ])?;
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
    svcid(&["revoke", path(&homes.a)?, "dpe-caller", &entry])?;
    svcid(&["revoke", path(&homes.b)?, "dpe-caller", &entry])?;
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
fn restarted_after(shared: &Shared, i: usize, at: Duration) -> bool {
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
async fn rotate_engine(shared: &Arc<Shared>) -> Result<()> {
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
    ])?;
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
    svcid(&["revoke", path(&homes.a)?, "dpe-one", &entry])?;
    let at = shared.now();
    lock(&shared.facts).revoked.insert(old.clone(), at);
    shared.push(What::Revoked { kid: old });
    shared.push(What::FaultEnded(
        "dpe-1 key rotated and the old one revoked".into(),
    ));
    Ok(())
}

/// The entry `svcid link` gave the key replaced by rotation `n` (1-based): `key`, `key-2`, …
fn entry_name(n: u32) -> String {
    if n <= 1 {
        "key".to_owned()
    } else {
        format!("key-{n}")
    }
}

/// Reads every daemon's log into the history, and notices daemons that exited unasked.
async fn watch_logs(shared: Arc<Shared>) {
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
fn take_in(shared: &Shared, daemon: &'static str, i: usize, now: Duration, event: &Value) {
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
async fn call(shared: Arc<Shared>) {
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
async fn sample(shared: Arc<Shared>, every: Duration) {
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
async fn check_gaps(shared: Arc<Shared>, fleet: Arc<Fleet>) -> Duration {
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
async fn check_rows(shared: &Arc<Shared>) {
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

/// SQL over psql, off the async threads.
async fn sql(shared: &Arc<Shared>, query: &'static str) -> Result<String> {
    blocking(shared, move |s| s.pg.sql(query).context("psql")).await
}

/// `work` on a blocking thread.
async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&Shared) -> Result<T> + Send + 'static,
) -> Result<T> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || work(&shared))
        .await
        .context("a blocking task")?
}

/// Runs `svcid` with `args`; fails with its output when it fails.
fn svcid(args: &[&str]) -> Result<()> {
    let binary = workspace_binary("svcid")?;
    let out = Command::new(binary)
        .args(args)
        .output()
        .context("running svcid")?;
    if !out.status.success() {
        bail!(
            "svcid {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn path(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The generator key in a module home's file.
fn generator_key(home: &Path) -> Result<GeneratorKey> {
    let file = properties_file(home);
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(names::GENERATOR_KEY)?.strip_prefix('='))
        .with_context(|| format!("{} has no generator key", file.display()))?;
    GeneratorKey::from_base64(value.trim())
        .map_err(|e| anyhow::anyhow!("{}: the generator key: {e:?}", file.display()))
}

/// An issuer of module tokens signed with `key`.
fn issuer(key: &GeneratorKey) -> Result<Arc<TokenIssuer>> {
    let key = GeneratorKey::from_base64(&key.to_base64())
        .map_err(|e| anyhow::anyhow!("the caller's key: {e:?}"))?;
    Ok(Arc::new(TokenIssuer::new(
        key,
        Duration::from_secs(15 * 60),
        Arc::new(SystemClock),
    )?))
}
