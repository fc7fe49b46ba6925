//! The soak's world: the database, both replicas, the real engines, the caller and the fleet,
//! what its tasks share, and the small tools they use (`svcid`, `psql`, a home's key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use svcid_config::names;
use svcid_identity::{GeneratorKey, SystemClock, TokenIssuer};
use svcid_testkit::homes::{self, TrustedPeer, properties_file};
use svcid_testkit::log::{LogTail, json_log};
use svcid_testkit::net::free_port;
use svcid_testkit::postgres::Postgres;
use svcid_testkit::process::{ChildGuard, spawn_daemon, workspace_binary};

use crate::replica::Replica;

use super::history::{Facts, Findings, History, What};
use super::plan::Side;
use super::samples::{Sample, Slope};
use crate::engines::{Fleet, engines_verifier};
use crate::fleet::DpmView;

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
pub(super) const PATIENCE: Duration = Duration::from_secs(90);
/// How often the logs are read and the callers call.
pub(super) const TICK: Duration = Duration::from_millis(100);
/// The simulated engines' keys (engines share them, as deployments share keys).
pub(super) const ENGINE_KEYS: usize = 4;
/// The engines' registration interval (`dpe`'s default).
pub(super) const REGISTER_EVERY: Duration = Duration::from_secs(5);

/// The daemons whose logs and processes are watched, in sample order.
pub(super) const DAEMONS: [&str; 4] = ["A", "B", "dpe-1", "dpe-2"];

/// A replica's state as the soak made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Up,
    Killed,
    Paused,
}

/// Everything the soak's tasks share.
pub(super) struct Shared {
    pub(super) started: Instant,
    pub(super) history: Mutex<History>,
    pub(super) facts: Mutex<Facts>,
    pub(super) replicas: [Mutex<Replica>; 2],
    pub(super) states: Mutex<[State; 2]>,
    /// Instance number per daemon (restarts).
    pub(super) instances: Mutex<[u32; 4]>,
    pub(super) dpes: [Mutex<ChildGuard>; 2],
    pub(super) pg: Postgres,
    pub(super) database_down: AtomicBool,
    /// The last reload each daemon logged.
    pub(super) reloads: Mutex<[Option<Duration>; 4]>,
    /// When dpe-1 last logged `generatorKeyChanged`.
    pub(super) dpe_key_changed: Mutex<Option<Duration>>,
    /// The caller's current issuer and kid; the revoked one it keeps trying.
    pub(super) caller: Mutex<CallerKeys>,
    pub(super) faults: Mutex<BTreeMap<&'static str, usize>>,
    pub(super) samples: Mutex<[Vec<Sample>; 4]>,
    /// Serialises key changes.
    pub(super) keys: tokio::sync::Mutex<KeyState>,
    pub(super) homes: Homes,
    pub(super) stopping: AtomicBool,
    /// Floods holding connections now.
    pub(super) floods: std::sync::atomic::AtomicUsize,
    /// The logs of [`DAEMONS`], read into the history.
    pub(super) tails: Mutex<Vec<LogTail>>,
}

pub(super) struct CallerKeys {
    pub(super) current: (Arc<TokenIssuer>, String),
    pub(super) revoked: Option<(Arc<TokenIssuer>, String)>,
}

/// Key entries rotated so far (the next old entry is `key`, then `key-2`, …).
pub(super) struct KeyState {
    pub(super) caller_rotations: u32,
    pub(super) engine_rotations: u32,
}

pub(super) struct Homes {
    pub(super) a: PathBuf,
    pub(super) b: PathBuf,
    pub(super) caller: PathBuf,
    pub(super) dpe: [PathBuf; 2],
}

impl Shared {
    pub(super) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub(super) fn push(&self, what: What) {
        let at = self.now();
        lock(&self.history).push(at, what);
    }

    pub(super) fn replica(&self, side: Side) -> &Mutex<Replica> {
        &self.replicas[side.index()]
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The database, both replicas, the real engines, the caller and the fleet, all READY.
pub(super) async fn build(dir: &Path, options: &Options) -> Result<(Shared, Fleet)> {
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
    ])
    .await?;
    svcid(&[
        "link",
        path(&b.home)?,
        path(&caller)?,
        "--environment",
        "caller",
    ])
    .await?;
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
        ])
        .await?;
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
        &engines_verifier(&dpm_key)?,
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

/// SQL over psql, off the async threads.
pub(super) async fn sql(shared: &Arc<Shared>, query: &'static str) -> Result<String> {
    blocking(shared, move |s| s.pg.sql(query).context("psql")).await
}

/// `work` on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&Shared) -> Result<T> + Send + 'static,
) -> Result<T> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || work(&shared))
        .await
        .context("a blocking task")?
}

/// Runs `svcid` with `args` on a blocking thread (`--rotate` waits its grace period there, not
/// on one of the two workers the simulated engines share); fails with its output when it fails.
pub(super) async fn svcid(args: &[&str]) -> Result<()> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let binary = workspace_binary("svcid")?;
        let out = Command::new(binary)
            .args(&args)
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
    })
    .await
    .context("running svcid")?
}

pub(super) fn path(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The generator key in a module home's file.
pub(super) fn generator_key(home: &Path) -> Result<GeneratorKey> {
    let file = properties_file(home);
    let value = homes::property(home, names::GENERATOR_KEY)
        .with_context(|| format!("reading {}", file.display()))?
        .with_context(|| format!("{} has no generator key", file.display()))?;
    GeneratorKey::from_base64(value.trim())
        .map_err(|e| anyhow::anyhow!("{}: the generator key: {e:?}", file.display()))
}

/// An issuer of module tokens signed with `key`.
pub(super) fn issuer(key: &GeneratorKey) -> Result<Arc<TokenIssuer>> {
    let key = GeneratorKey::from_base64(&key.to_base64())
        .map_err(|e| anyhow::anyhow!("the caller's key: {e:?}"))?;
    Ok(Arc::new(TokenIssuer::new(
        key,
        Duration::from_secs(15 * 60),
        Arc::new(SystemClock),
    )?))
}
