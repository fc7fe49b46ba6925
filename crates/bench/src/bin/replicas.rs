//! `replicas`: DPM's registry on a real PostgreSQL server — two replicas sharing one fleet of
//! simulated engines — beside one in-memory DPM with a fleet of the same size, in one run.
//!
//! Phases, each bounded in time:
//! 1. reference: one DPM in memory (the default), `--engines` simulated engines to READY, then its
//!    CPU and resident memory over the steady window; its engines and it are then stopped;
//! 2. the pair: a PostgreSQL server started for the run (`svcid-pgserver`, `fsync` off), two DPMs
//!    started at once on its empty database (the same keys, their own homes and ports); the same
//!    number of engines, half registering with each replica, released at once; the time from the
//!    last release until both logs together say every engine is READY;
//! 3. steady state: each replica's CPU and RSS, its database statements per second (its own
//!    `svcid_registry_db_queries_total`, with the statements the server logged beside it), its
//!    status checks per second, and how often each engine is checked (one replica per engine:
//!    about once per interval, never twice);
//! 4. takeover: replica A is SIGKILLed; the time until every engine has been checked again (A's
//!    by B), whether B logged any engine DISCONNECTED, and how many engines B took over;
//! 5. return: A starts again on its ports; the time until it owns a share of the fleet again
//!    (its engines re-register with it and move back).
//!
//! Everything is on 127.0.0.1; nothing outlives the run. The engines run in this process, so
//! raise the open-file limit for 1,000 of them (`ulimit -n 65536`; `run.sh` does).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use svcid_actuator::instruments::{REGISTRY_DB_QUERIES, STATUS_CHECKS};
use svcid_bench::daemon::{
    Dpm, LogTail, TrustedPeer, free_port, http_get, metric_sum, write_dpm_home,
};
use svcid_bench::engines::{SimEngine, dpm_trust, stamps_between, start_engine};
use svcid_bench::fleet::{DpmView, wait_until};
use svcid_bench::procfs::{CpuWindow, rss_kib, ticks_per_second};
use svcid_bench::report::{Row, Verdict, load_average};
use svcid_bench::stats::human;
use svcid_identity::{Deployments, GeneratorKey};
use svcid_pgserver::Postgres;
use tokio::sync::watch;

/// Two DPM replicas on PostgreSQL beside one in memory.
#[derive(Debug, Parser)]
struct Args {
    /// Number of simulated engines (in each fleet).
    #[arg(long, default_value_t = 1000)]
    engines: usize,
    /// Seconds of each steady-state window.
    #[arg(long, default_value_t = 20.0)]
    steady_seconds: f64,
    /// Longest wait for any phase to complete, in seconds.
    #[arg(long, default_value_t = 90)]
    patience: u64,
    /// Engines' registration interval in milliseconds (`dpe`'s default: 5000).
    #[arg(long, default_value_t = 5000)]
    register_interval_ms: u64,
    /// Skip the in-memory reference.
    #[arg(long)]
    no_reference: bool,
}

/// DPM's default `check-connected-interval`: how often each engine should be checked.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The takeover target of the issue, with the default intervals.
const TAKEOVER_TARGET: Duration = Duration::from_secs(5);

fn main() -> Result<()> {
    let args = Args::parse();
    if args.engines == 0 || args.engines > 20_000 {
        bail!("--engines must be 1 to 20000");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the engines' runtime")?;
    let result = runtime.block_on(run(&args));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// The keys of a run: DPM's (every DPM of the run signs with it) and one per engine.
struct Keys {
    /// DPM's generator key.
    dpm: GeneratorKey,
    /// One per engine.
    engines: Vec<GeneratorKey>,
    /// Every engine as a deployment DPM trusts.
    peers: Vec<TrustedPeer>,
    /// What the engines trust: DPM's key.
    dpm_trust: std::sync::Arc<Deployments>,
}

/// A fleet of simulated engines, engine `i` registering with DPM port `ports[i % ports.len()]`.
struct Fleet {
    /// The engines, born frozen.
    engines: Vec<SimEngine>,
    /// Their servers and registration loops.
    tasks: tokio::task::JoinSet<()>,
    /// Turns true to stop them all.
    stop: watch::Sender<bool>,
}

impl Fleet {
    async fn start(keys: &Keys, ports: &[u16], interval: Duration) -> Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let mut engines = Vec::with_capacity(keys.engines.len());
        for (i, key) in keys.engines.iter().enumerate() {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding an engine port")?;
            engines.push(start_engine(
                listener,
                key,
                &keys.dpm_trust,
                ports[i % ports.len()],
                stopped.clone(),
                &mut tasks,
                interval,
            )?);
        }
        Ok(Self {
            engines,
            tasks,
            stop,
        })
    }

    /// Releases every engine at once; returns when the last was released.
    fn release(&self) -> Instant {
        for engine in &self.engines {
            let _ = engine.frozen.send(false);
        }
        Instant::now()
    }

    fn ids(&self) -> HashSet<String> {
        self.engines.iter().map(|e| e.id.clone()).collect()
    }

    /// Checks each engine received in [from, to], per second, sorted.
    fn check_rates(&self, from: Instant, to: Instant) -> Vec<f64> {
        let seconds = to.saturating_duration_since(from).as_secs_f64().max(1e-3);
        let mut rates: Vec<f64> = self
            .engines
            .iter()
            .map(|e| stamps_between(&e.checks, from, to).len() as f64 / seconds)
            .collect();
        rates.sort_by(f64::total_cmp);
        rates
    }

    async fn stop(mut self) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

/// One DPM of the run: its process, ports and log.
struct Replica {
    /// `A`, `B` or `memory`.
    name: &'static str,
    /// Its home.
    home: std::path::PathBuf,
    dpm: Dpm,
    grpc_port: u16,
    http_port: u16,
    tail: LogTail,
}

impl Replica {
    /// Writes the home (on `pg` when given) and starts the DPM, without waiting.
    fn start(name: &'static str, dir: &Path, keys: &Keys, pg: Option<&Postgres>) -> Result<Self> {
        let home = dir.join(name);
        let (grpc_port, http_port) = (free_port()?, free_port()?);
        let mut extra = vec![format!("server.port={http_port}")];
        if let Some(pg) = pg {
            extra.extend(pg.dpm_properties().lines().map(str::to_owned));
        }
        write_dpm_home(&home, grpc_port, &keys.dpm, &keys.peers, &extra)?;
        let dpm = Dpm::start(&home)?;
        let tail = LogTail::from_end(dpm.log_path());
        Ok(Self {
            name,
            home,
            dpm,
            grpc_port,
            http_port,
            tail,
        })
    }

    /// Starts it again on the same home and ports (after a kill).
    fn restart(&mut self) -> Result<()> {
        self.dpm = Dpm::start(&self.home)?;
        Ok(())
    }

    fn wait_started(&mut self, patience: Duration) -> Result<()> {
        self.dpm
            .wait_started(&mut self.tail, patience)
            .with_context(|| format!("replica {}", self.name))
            .map(drop)
    }

    fn prometheus(&self) -> Result<String> {
        http_get(self.http_port, "/actuator/prometheus")
            .with_context(|| format!("scraping replica {}", self.name))
    }
}

/// What one DPM did over a steady window.
#[derive(Debug)]
struct Steady {
    /// Share of one core.
    cpu: f64,
    /// Resident memory at the end, KiB.
    rss_kib: u64,
    /// Database statements per second (0 in memory).
    queries: f64,
    /// Status checks per second.
    checks: f64,
}

/// Measures `replicas` over one window of `length` together.
async fn steady(replicas: &[&Replica], length: Duration) -> Result<Vec<Steady>> {
    let ticks = ticks_per_second();
    let mut before = Vec::new();
    for replica in replicas {
        let text = replica.prometheus()?;
        before.push((
            CpuWindow::start(replica.dpm.pid()?)?,
            metric_sum(&text, REGISTRY_DB_QUERIES),
            metric_sum(&text, STATUS_CHECKS),
        ));
    }
    let started = Instant::now();
    tokio::time::sleep(length).await;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for (replica, (window, queries, checks)) in replicas.iter().zip(before) {
        let text = replica.prometheus()?;
        out.push(Steady {
            cpu: window.share_of_one_core(ticks)?,
            rss_kib: rss_kib(replica.dpm.pid()?)?,
            queries: (metric_sum(&text, REGISTRY_DB_QUERIES) - queries) / seconds,
            checks: (metric_sum(&text, STATUS_CHECKS) - checks) / seconds,
        });
    }
    Ok(out)
}

/// The size of the server's log now.
fn log_size(pg: &Postgres) -> Result<u64> {
    Ok(std::fs::metadata(pg.log_path())
        .context("reading the server's log")?
        .len())
}

/// The statements the server logged (`log_statement = 'all'`) after byte `from` of its log.
fn statements_logged(pg: &Postgres, from: u64) -> Result<usize> {
    use std::io::{Read as _, Seek as _};
    let mut log = std::fs::File::open(pg.log_path()).context("opening the server's log")?;
    log.seek(std::io::SeekFrom::Start(from))?;
    let mut text = String::new();
    log.read_to_string(&mut text)?;
    Ok(text
        .lines()
        .filter(|line| line.contains("LOG:  execute ") || line.contains("LOG:  statement: "))
        .count())
}

fn describe(steady: &Steady) -> String {
    format!(
        "CPU {:.1} %, RSS {:.1} MiB, {:.0} checks/s, {:.1} queries/s",
        steady.cpu * 100.0,
        steady.rss_kib as f64 / 1024.0,
        steady.checks,
        steady.queries
    )
}

async fn run(args: &Args) -> Result<()> {
    let patience = Duration::from_secs(args.patience.clamp(5, 600));
    let window = Duration::from_secs_f64(args.steady_seconds.clamp(2.0, 600.0));
    let interval = Duration::from_millis(args.register_interval_ms.clamp(100, 60_000));
    let n = args.engines;
    println!("replicas: {n} engines, load average {}", load_average());
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let dpm = GeneratorKey::generate();
    let engines: Vec<GeneratorKey> = (0..n).map(|_| GeneratorKey::generate()).collect();
    let keys = Keys {
        peers: engines
            .iter()
            .enumerate()
            .map(|(i, key)| TrustedPeer::dpe(format!("dpe-{i}"), key))
            .collect(),
        dpm_trust: dpm_trust(&dpm)?,
        dpm,
        engines,
    };

    // 1. The in-memory reference.
    let mut reference = None;
    if !args.no_reference {
        let mut memory = Replica::start("memory", dir.path(), &keys, None)?;
        memory.wait_started(patience)?;
        let fleet = Fleet::start(&keys, &[memory.grpc_port], interval).await?;
        let ids = fleet.ids();
        let released = fleet.release();
        let mut view = DpmView::default();
        let ready = wait_until(&mut [&mut memory.tail], &mut view, patience, |v| {
            ids.iter().all(|id| v.ready.contains(id))
        })
        .await?
        .map(|at| at.saturating_duration_since(released));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let measured = steady(&[&memory], window).await?.remove(0);
        println!(
            "in memory: all {n} READY {} after the last release; steady ({}): {}",
            ready.map_or("never (timed out)".to_owned(), human),
            human(window),
            describe(&measured)
        );
        fleet.stop().await;
        memory.dpm.stop(Duration::from_secs(5))?;
        reference = Some((ready, measured));
    }

    // 2. Two replicas on one empty database, started at once.
    let pg = Postgres::start().context("starting PostgreSQL")?;
    // The server logs every statement it runs: the cross-check of the replicas' own counts.
    pg.sql("ALTER SYSTEM SET log_statement = 'all'")?;
    pg.sql("SELECT pg_reload_conf()")?;
    let mut a = Replica::start("A", dir.path(), &keys, Some(&pg))?;
    let mut b = Replica::start("B", dir.path(), &keys, Some(&pg))?;
    a.wait_started(patience)?;
    b.wait_started(patience)?;
    let fleet = Fleet::start(&keys, &[a.grpc_port, b.grpc_port], interval).await?;
    let ids = fleet.ids();
    let released = fleet.release();
    let mut view = DpmView::default();
    let ready = wait_until(&mut [&mut a.tail, &mut b.tail], &mut view, patience, |v| {
        ids.iter().all(|id| v.ready.contains(id))
    })
    .await?
    .map(|at| at.saturating_duration_since(released));
    println!(
        "pair: all {n} READY {} after the last release ({} registrations logged)",
        ready.map_or("never (timed out)".to_owned(), human),
        view.registrations
    );

    // 3. Steady state.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let window_start = Instant::now();
    let log_start = log_size(&pg)?;
    let measured = steady(&[&a, &b], window).await?;
    let window_end = Instant::now();
    let server_rate = statements_logged(&pg, log_start)? as f64
        / window_end
            .saturating_duration_since(window_start)
            .as_secs_f64();
    let rates = fleet.check_rates(window_start, window_end);
    let (slowest, median, fastest) = (
        rates.first().copied().unwrap_or(0.0),
        rates.get(rates.len() / 2).copied().unwrap_or(0.0),
        rates.last().copied().unwrap_or(0.0),
    );
    println!(
        "pair steady ({}): A {}; B {}; the server logged {:.1} statements/s; checks per engine per second: \
         min {slowest:.2} median {median:.2} max {fastest:.2}",
        human(window),
        describe(&measured[0]),
        describe(&measured[1]),
        server_rate
    );

    // 4. Takeover after SIGKILL.
    view.apply(b.tail.poll()?);
    let disconnections_before = view.disconnections;
    let taken_before = view.taken_over;
    a.dpm.kill()?;
    let killed = Instant::now();
    let deadline = killed + patience;
    let takeover = loop {
        let last = fleet
            .engines
            .iter()
            .map(|e| e.first_check_after(killed))
            .try_fold(killed, |latest, at| at.map(|at| latest.max(at)));
        if let Some(last) = last {
            break Some(last.saturating_duration_since(killed));
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Let a few more checks run: an engine left unchecked would go DISCONNECTED now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    view.apply(b.tail.poll()?);
    let lost = view.disconnections - disconnections_before;
    let taken = view.taken_over - taken_before;
    println!(
        "takeover: A killed; every engine checked again {} after (B took over {taken} engines; \
         {lost} engines went DISCONNECTED)",
        takeover.map_or("never (timed out)".to_owned(), human)
    );

    // 5. A comes back.
    let owned_by_newest = "SELECT count(*) FROM dpm_engine WHERE owner = \
                           (SELECT id FROM dpm_replica ORDER BY started DESC LIMIT 1)";
    a.restart()?;
    a.wait_started(patience)?;
    let back = Instant::now();
    let mut share = 0.0;
    let mut spread = None;
    while back.elapsed() < patience {
        let owned: f64 = pg.sql(owned_by_newest)?.parse().unwrap_or(0.0);
        share = owned / n as f64;
        if share >= 0.4 {
            spread = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "return: A serves again; it owns {:.0} % of the fleet {}",
        share * 100.0,
        spread.map_or(
            format!("after {} (never 40 %)", human(patience)),
            |at| format!("{} after it served", human(at))
        )
    );

    fleet.stop().await;
    a.dpm.stop(Duration::from_secs(5))?;
    b.dpm.stop(Duration::from_secs(5))?;

    // Report.
    println!();
    println!("replicas: load average {} (after)", load_average());
    let reference_text = |pick: &dyn Fn(&Steady) -> String| {
        reference.as_ref().map_or("—".to_owned(), |(_, memory)| {
            format!("in memory {}", pick(memory))
        })
    };
    Row {
        figure: &format!("{n} engines over 2 replicas: all READY"),
        measured: ready.map_or("timed out".to_owned(), human),
        reference: reference_text(&|_| {
            reference
                .as_ref()
                .and_then(|(ready, _)| *ready)
                .map_or("timed out".to_owned(), human)
        }),
        target: "≤ 5 s for 1,000",
        verdict: Verdict::from_check(ready.is_some_and(|d| d <= Duration::from_secs(5))),
    }
    .print();
    let budget = n as f64 / CHECK_INTERVAL.as_secs_f64();
    let worst = measured.iter().map(|m| m.queries).fold(0.0_f64, f64::max);
    Row {
        figure: "DB statements/s per replica, steady",
        measured: format!(
            "A {:.1}, B {:.1} (server log: {server_rate:.1} in all)",
            measured[0].queries, measured[1].queries
        ),
        reference: format!("1 per engine per interval: {budget:.0}/s"),
        target: "well under: ≤ 1/10 of it",
        verdict: Verdict::from_check(worst <= budget / 10.0),
    }
    .print();
    Row {
        figure: "checks per engine per second, steady",
        measured: format!("median {median:.2}, max {fastest:.2}"),
        reference: format!("one check per {}", human(CHECK_INTERVAL)),
        target: "one replica each: max < 1.5",
        verdict: Verdict::from_check(fastest < 1.5 && slowest > 0.5),
    }
    .print();
    Row {
        figure: "takeover after SIGKILL: all checked again",
        measured: format!(
            "{}, {lost} DISCONNECTED",
            takeover.map_or("timed out".to_owned(), human)
        ),
        reference: "lease 3 s, renewed every 1 s".to_owned(),
        target: "< 5 s, none DISCONNECTED",
        verdict: Verdict::from_check(takeover.is_some_and(|d| d < TAKEOVER_TARGET) && lost == 0),
    }
    .print();
    for (name, m) in ["A", "B"].iter().zip(&measured) {
        Row {
            figure: &format!("replica {name} at steady state"),
            measured: format!(
                "CPU {:.1} %, RSS {:.1} MiB",
                m.cpu * 100.0,
                m.rss_kib as f64 / 1024.0
            ),
            reference: reference_text(&|memory| {
                format!(
                    "CPU {:.1} %, RSS {:.1} MiB",
                    memory.cpu * 100.0,
                    memory.rss_kib as f64 / 1024.0
                )
            }),
            target: "—",
            verdict: Verdict::Reported,
        }
        .print();
    }
    Ok(())
}
