//! `swarm`: one real `dpm` and many simulated engines in this process.
//!
//! Each engine is what DPM sees of a `dpe`: a real tonic server on its own loopback port serving
//! `HeartbeatService` behind svcid's authentication layer (it verifies DPM's token), and a loop
//! that registers with DPM every `check-connection-interval` (5 s, jittered as `dpe` does) with
//! its own token — minted from its own key, or from one key all engines share (`--shared-key`).
//! DPM runs with its default settings (checks every second, 2 s timeout).
//!
//! Phases, each bounded in time:
//! 1. idle DPM: CPU and memory with no engine;
//! 2. a real `dpe` process, started alone: process start to READY (the product's own path);
//! 3. storm: all engines start at once; time from the last start to all READY (DPM's log);
//! 4. steady state: DPM's CPU over a window, its resident memory, and the interval between
//!    consecutive status checks as the engines see them;
//! 5. freeze: a slice of engines stops answering (their handlers hang, their registration pauses,
//!    as under SIGSTOP); they must go DISCONNECTED while the others are still checked on time, and
//!    come back READY once thawed;
//! 6. restart: DPM is killed (SIGKILL) and started again on the same port; all engines must be
//!    READY again, and how bunched their re-registrations were is reported.
//!
//! With `--console DIR`, right after the storm (every engine READY) a real `dpe` is started and
//! kept running, and both daemons' operations consoles are loaded in headless chromium: a
//! screenshot of each into `DIR` (`console-dpm.png`, `console-dpe.png`), the page and JSON sizes
//! and the time to the first complete render.
//!
//! Everything is on 127.0.0.1; nothing outlives the run.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use svcid_bench::console::ConsoleFigures;
use svcid_bench::daemon::{DpmProcess, wait_http_port, write_dpe_home, write_dpm_home};
use svcid_bench::engines::{Fleet, check_intervals, engines_verifier, stamps_between};
use svcid_bench::fleet::{DpmView, wait_until};
use svcid_bench::procfs::{CpuWindow, rss_kib, ticks_by_thread_name, ticks_per_second};
use svcid_bench::report::{Row, Verdict, load_average};
use svcid_bench::stats::{Spread, human};
use svcid_identity::GeneratorKey;
use svcid_testkit::homes::TrustedPeer;
use svcid_testkit::log::{LogTail, json_log};
use svcid_testkit::net::free_port;
use svcid_testkit::process::spawn_daemon;

/// Many engines against one real dpm.
#[derive(Debug, Parser)]
struct Args {
    /// Number of simulated engines.
    #[arg(long, default_value_t = 1000)]
    engines: usize,
    /// All engines sign with one key (one deployment in DPM) instead of one key each.
    #[arg(long)]
    shared_key: bool,
    /// Seconds of the steady-state window.
    #[arg(long, default_value_t = 10.0)]
    steady_seconds: f64,
    /// Fraction of engines frozen in the freeze phase (0 skips the phase).
    #[arg(long, default_value_t = 0.1)]
    freeze_fraction: f64,
    /// Skip the DPM restart phase.
    #[arg(long)]
    no_restart: bool,
    /// Skip the real-`dpe` start-to-READY phase.
    #[arg(long)]
    no_real_dpe: bool,
    /// Longest wait for any phase to complete, in seconds.
    #[arg(long, default_value_t = 60)]
    patience: u64,
    /// Only write DPM's home (with the engines' deployments) into this folder and exit: for
    /// profiling `dpm` start-up with `perf record -g target/release/dpm --home <folder>`.
    #[arg(long)]
    write_home: Option<std::path::PathBuf>,
    /// Run DPM under this command (e.g. `heaptrack -o /tmp/dpm`), for a profile. DPM's CPU and
    /// memory figures are then those of the wrapper and mean nothing.
    #[arg(long, num_args = 1.., value_delimiter = ' ')]
    dpm_wrapper: Vec<String>,
    /// Engines' registration interval in milliseconds (`dpe`'s default: 5000).
    #[arg(long, default_value_t = 5000)]
    register_interval_ms: u64,
    /// After the storm, screenshot and measure both daemons' operations consoles into this
    /// folder (needs Debian's chromium).
    #[arg(long)]
    console: Option<std::path::PathBuf>,
}

/// DPM's default `check-connected-interval`: the expected time between two checks.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

fn main() -> Result<()> {
    let args = Args::parse();
    svcid_bench::engines_main(args.engines, run(&args))
}

/// The phases in order, then the report.
async fn run(args: &Args) -> Result<()> {
    let Some(mut swarm) = Swarm::set_up(args)? else {
        return Ok(());
    };
    let idle = swarm.idle().await?;
    let real_start = swarm.real_dpe().await?;
    let storm = swarm.storm().await?;
    let console = match &args.console {
        Some(shots) => swarm.console(shots).await?,
        None => Vec::new(),
    };
    let steady = swarm.steady(&storm).await?;
    let freeze = swarm.freeze(&storm).await?;
    let restart = swarm.restart(&storm).await?;
    swarm.stop(storm.fleet).await?;
    Report {
        args,
        idle,
        real_start,
        storm: storm.figures,
        console,
        steady,
        freeze,
        restart,
    }
    .print();
    Ok(())
}

/// DPM's CPU (share of one core) and resident memory over a window.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: f64,
    rss_kib: u64,
}

/// When the storm's engines were released and when DPM had them all READY.
#[derive(Debug, Clone, Copy)]
struct StormFigures {
    /// Before the first engine was released.
    first_start: Instant,
    /// After the last was.
    last_start: Instant,
    /// When DPM's log had every engine READY; `None` when that timed out.
    all_ready: Option<Instant>,
}

impl StormFigures {
    /// From the last release to all READY.
    fn ready(&self) -> Option<Duration> {
        self.all_ready
            .map(|at| at.saturating_duration_since(self.last_start))
    }
}

/// The engines of the storm, running until the end.
struct Storm {
    fleet: Fleet,
    ids: HashSet<String>,
    figures: StormFigures,
}

/// DPM and its engines' checks over the steady window.
#[derive(Debug)]
struct Steady {
    usage: Usage,
    intervals: Spread,
}

/// The freeze phase: how many engines froze, how long until DPM saw them all DISCONNECTED, how
/// many others it lost meanwhile and how the others were checked, and how long until the frozen
/// ones were READY again after thawing.
#[derive(Debug)]
struct Freeze {
    count: usize,
    down: Option<Duration>,
    others_down: usize,
    others: Spread,
    back: Option<Duration>,
}

/// The restart phase: from DPM serving again to all READY, the most re-registrations in any
/// 100 ms, and how long the re-registrations were spread over.
#[derive(Debug)]
struct Restart {
    back: Option<Duration>,
    burst: usize,
    spread: Duration,
}

/// One real DPM and what the phases share.
struct Swarm<'a> {
    args: &'a Args,
    /// Number of engines.
    n: usize,
    /// Longest wait of any phase.
    patience: Duration,
    /// Clock ticks per second.
    ticks: u64,
    /// Holds the homes; removed at the end.
    dir: tempfile::TempDir,
    dpm_home: PathBuf,
    dpm_key: GeneratorKey,
    /// The engines' keys (one when shared).
    keys: Vec<GeneratorKey>,
    /// The key of the real `dpe`.
    real_dpe_key: GeneratorKey,
    /// DPM's gRPC port (kept across the restart).
    port: u16,
    dpm: DpmProcess,
    /// DPM's process id (changes at the restart).
    pid: u32,
    /// DPM's log, as it grows.
    tail: LogTail,
    /// DPM's view of the fleet, from its log.
    view: DpmView,
}

impl<'a> Swarm<'a> {
    /// Keys, DPM's home, DPM started and serving. With `--write-home`, only writes the home
    /// there (`None`).
    fn set_up(args: &'a Args) -> Result<Option<Self>> {
        let patience = Duration::from_secs(args.patience.clamp(5, 600));
        let n = args.engines;
        println!(
            "swarm: {n} engines ({}), load average {}",
            if args.shared_key {
                "one shared key"
            } else {
                "one key each"
            },
            load_average()
        );
        let ticks = ticks_per_second();

        let dir = tempfile::tempdir().context("creating a temporary folder")?;
        let dpm_home = dir.path().join("dpm");
        let dpm_key = GeneratorKey::generate();
        let key_count = if args.shared_key { 1 } else { n };
        let keys: Vec<GeneratorKey> = (0..key_count).map(|_| GeneratorKey::generate()).collect();
        let mut peers: Vec<TrustedPeer> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| TrustedPeer::dpe(format!("dpe-{i}"), key))
            .collect();
        let real_dpe_key = GeneratorKey::generate();
        peers.push(TrustedPeer::dpe("dpe-real", &real_dpe_key));
        let port = free_port()?;
        if let Some(home) = &args.write_home {
            write_dpm_home(home, port, &dpm_key, &peers, &[])?;
            println!("wrote {}", home.display());
            return Ok(None);
        }
        // The console phase reads DPM's HTTP port from its log; otherwise the default port
        // (write_dpm_home already raises the connection caps for a fleet on one address).
        let http_extra = if args.console.is_some() {
            vec!["server.port=0".to_owned()]
        } else {
            Vec::new()
        };
        write_dpm_home(&dpm_home, port, &dpm_key, &peers, &http_extra)?;
        let mut dpm = DpmProcess::start_wrapped(&dpm_home, &args.dpm_wrapper)?;
        let mut tail = LogTail::from_end(dpm.log_path());
        let started = Instant::now();
        dpm.wait_started(&mut tail, patience)?;
        let pid = dpm.pid()?;
        println!(
            "dpm pid {pid} on port {port} with {} deployments, serving after {}",
            peers.len(),
            human(started.elapsed())
        );
        Ok(Some(Self {
            args,
            n,
            patience,
            ticks,
            dir,
            dpm_home,
            dpm_key,
            keys,
            real_dpe_key,
            port,
            dpm,
            pid,
            tail,
            view: DpmView::default(),
        }))
    }

    /// Phase 1: Idle DPM: CPU and memory with no engine.
    async fn idle(&self) -> Result<Usage> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let window = CpuWindow::start(self.pid)?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cpu = window.share_of_one_core(self.ticks)?;
        let rss_kib = rss_kib(self.pid)?;
        println!(
            "idle dpm: CPU {:.2} % of one core, RSS {:.1} MiB",
            cpu * 100.0,
            rss_kib as f64 / 1024.0
        );
        Ok(Usage { cpu, rss_kib })
    }

    /// Phase 2: A real `dpe`, alone: process start to READY (unless `--no-real-dpe`).
    async fn real_dpe(&mut self) -> Result<Option<Duration>> {
        let real_start = if self.args.no_real_dpe {
            None
        } else {
            Some(
                real_dpe_to_ready(
                    self.dir.path(),
                    self.port,
                    &self.dpm_key,
                    &self.real_dpe_key,
                    &mut self.tail,
                    self.patience,
                )
                .await?,
            )
        };
        self.view.apply(self.tail.poll()?);
        self.view.ready.clear();
        self.view.disconnected.clear();
        Ok(real_start)
    }

    /// Phase 3: Storm: every engine released at once, until DPM has them all READY.
    async fn storm(&mut self) -> Result<Storm> {
        let n = self.n;
        let verifier = engines_verifier(&self.dpm_key)?;
        // Engines are built frozen (servers up, registration waiting), then all released at
        // once: a storm, not a trickle paced by how fast this process builds engines.
        let fleet = Fleet::start(
            n,
            &self.keys,
            &verifier,
            &[self.port],
            Duration::from_millis(self.args.register_interval_ms.clamp(100, 60_000)),
        )
        .await?;
        let first_start = Instant::now();
        let last_start = fleet.release();
        let ids = fleet.ids();
        let all_ready = wait_until(&mut [&mut self.tail], &mut self.view, self.patience, |v| {
            ids.iter().all(|id| v.ready.contains(id))
        })
        .await?;
        let figures = StormFigures {
            first_start,
            last_start,
            all_ready,
        };
        println!(
            "storm: engines released over {}; {} of {n} READY; all READY {} after the last engine \
             started ({} after the first); {} registrations logged",
            human(last_start.saturating_duration_since(first_start)),
            self.view.ready.intersection(&ids).count(),
            figures
                .ready()
                .map_or("never (timed out)".to_owned(), human),
            all_ready.map_or("never".to_owned(), |at| human(
                at.saturating_duration_since(first_start)
            )),
            self.view.registrations
        );
        Ok(Storm {
            fleet,
            ids,
            figures,
        })
    }

    /// The operations console at full load (`--console`): screenshots and figures of both
    /// daemons' consoles.
    async fn console(&self, shots: &Path) -> Result<Vec<ConsoleFigures>> {
        console_phase(
            shots,
            self.dir.path(),
            &self.dpm_home,
            self.port,
            &self.dpm_key,
            &self.real_dpe_key,
            self.n as u64,
            self.patience,
        )
        .await
    }

    /// Phase 4: Steady state: DPM's CPU (by thread too) and memory over the window, and the interval
    /// between consecutive checks as the engines see them.
    async fn steady(&mut self, storm: &Storm) -> Result<Steady> {
        let (n, pid, ticks) = (self.n, self.pid, self.ticks);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let steady = Duration::from_secs_f64(self.args.steady_seconds.clamp(2.0, 300.0));
        let window_start = Instant::now();
        let window = CpuWindow::start(pid)?;
        let threads_before = ticks_by_thread_name(pid)?;
        tokio::time::sleep(steady).await;
        let steady_cpu = window.share_of_one_core(ticks)?;
        let threads: Vec<String> = ticks_by_thread_name(pid)?
            .into_iter()
            .map(|(name, after)| {
                let used = after.saturating_sub(threads_before.get(&name).copied().unwrap_or(0));
                format!(
                    "{name} {:.1} %",
                    100.0 * used as f64 / ticks as f64 / steady.as_secs_f64()
                )
            })
            .collect();
        let steady_rss = rss_kib(pid)?;
        let window_end = Instant::now();
        let engines = &storm.fleet.engines;
        let mut intervals = check_intervals(engines, window_start, window_end, |_| true);
        let checks_in_window: usize = engines
            .iter()
            .map(|e| stamps_between(&e.checks, window_start, window_end).len())
            .sum();
        let steady_spread = Spread::of(&mut intervals);
        self.view.apply(self.tail.poll()?);
        println!("steady: dpm CPU by thread: {}", threads.join(", "));
        println!(
            "steady ({}): dpm CPU {:.1} % of one core, RSS {:.1} MiB; {} checks ({:.0}/s, expected {n}/s); \
             interval between checks p50 {} p99 {} max {}",
            human(steady),
            steady_cpu * 100.0,
            steady_rss as f64 / 1024.0,
            checks_in_window,
            checks_in_window as f64 / steady.as_secs_f64(),
            human(steady_spread.p50),
            human(steady_spread.p99),
            human(steady_spread.max)
        );
        Ok(Steady {
            usage: Usage {
                cpu: steady_cpu,
                rss_kib: steady_rss,
            },
            intervals: steady_spread,
        })
    }

    /// Phase 5: Freeze a slice (`--freeze-fraction`): the frozen engines must go DISCONNECTED while the
    /// others are still checked on time, and come back READY once thawed.
    async fn freeze(&mut self, storm: &Storm) -> Result<Option<Freeze>> {
        let frozen_count =
            ((self.n as f64) * self.args.freeze_fraction.clamp(0.0, 0.9)).round() as usize;
        if frozen_count == 0 {
            return Ok(None);
        }
        let fleet = &storm.fleet;
        let frozen: HashSet<String> = fleet.engines[..frozen_count]
            .iter()
            .map(|e| e.id.clone())
            .collect();
        self.view.apply(self.tail.poll()?);
        let freeze_at = Instant::now();
        fleet.freeze_first(frozen_count, true);
        let all_down = wait_until(&mut [&mut self.tail], &mut self.view, self.patience, |v| {
            frozen.iter().all(|id| v.disconnected.contains(id))
        })
        .await?;
        // Keep them frozen a little longer, so the others' checks are measured around the failures.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let thaw_at = Instant::now();
        let mut others = check_intervals(&fleet.engines, freeze_at, thaw_at, |e| {
            !frozen.contains(&e.id)
        });
        let others_spread = Spread::of(&mut others);
        let others_down = storm
            .ids
            .iter()
            .filter(|id| !frozen.contains(*id) && !self.view.ready.contains(*id))
            .count();
        fleet.freeze_first(frozen_count, false);
        let back = wait_until(&mut [&mut self.tail], &mut self.view, self.patience, |v| {
            frozen.iter().all(|id| v.ready.contains(id))
        })
        .await?;
        println!(
            "freeze: {frozen_count} engines frozen; all DISCONNECTED {} after freezing; others \
             not READY meanwhile: {others_down}; others' check interval p50 {} p99 {} max {}; \
             all back READY {} after thawing",
            all_down.map_or("never (timed out)".to_owned(), |at| human(
                at.saturating_duration_since(freeze_at)
            )),
            human(others_spread.p50),
            human(others_spread.p99),
            human(others_spread.max),
            back.map_or("never (timed out)".to_owned(), |at| human(
                at.saturating_duration_since(thaw_at)
            ))
        );
        Ok(Some(Freeze {
            count: frozen_count,
            down: all_down.map(|at| at.saturating_duration_since(freeze_at)),
            others_down,
            others: others_spread,
            back: back.map(|at| at.saturating_duration_since(thaw_at)),
        }))
    }

    /// Phase 6: Kill DPM (SIGKILL) under load and start it again on the same port (unless
    /// `--no-restart`): all engines must be READY again; how bunched their re-registrations were.
    async fn restart(&mut self, storm: &Storm) -> Result<Option<Restart>> {
        if self.args.no_restart {
            return Ok(None);
        }
        let n = self.n;
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.dpm.kill()?;
        let killed_at = Instant::now();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let spawned_at = Instant::now();
        let mut dpm2 = DpmProcess::start(&self.dpm_home)?;
        let mut view2 = DpmView::default();
        dpm2.wait_started(&mut self.tail, self.patience)?;
        let restarted_at = Instant::now();
        self.pid = dpm2.pid()?;
        let back = wait_until(&mut [&mut self.tail], &mut view2, self.patience, |v| {
            storm.ids.iter().all(|id| v.ready.contains(id))
        })
        .await?;
        // How bunched the re-registrations were: the most in any 100 ms.
        let mut stamps: Vec<Instant> = storm
            .fleet
            .engines
            .iter()
            .flat_map(|e| stamps_between(&e.registered, spawned_at, Instant::now()))
            .collect();
        stamps.sort_unstable();
        let burst = max_in_window(&stamps, Duration::from_millis(100));
        let spread = match (stamps.first(), stamps.last()) {
            (Some(first), Some(last)) => last.saturating_duration_since(*first),
            _ => Duration::ZERO,
        };
        let rss_after = rss_kib(self.pid)?;
        println!(
            "restart: dpm killed, restarted after {}; all {n} READY {} after it served; {} \
             re-registrations over {}, at most {burst} in any 100 ms; RSS {:.1} MiB",
            human(restarted_at.saturating_duration_since(killed_at)),
            back.map_or("never (timed out)".to_owned(), |at| human(
                at.saturating_duration_since(restarted_at)
            )),
            stamps.len(),
            human(spread),
            rss_after as f64 / 1024.0
        );
        self.dpm = dpm2;
        Ok(Some(Restart {
            back: back.map(|at| at.saturating_duration_since(restarted_at)),
            burst,
            spread,
        }))
    }

    /// Stops everything: engines first (they would log nothing; DPM would only mark them gone).
    async fn stop(mut self, fleet: Fleet) -> Result<()> {
        fleet.stop().await;
        self.dpm.stop(Duration::from_secs(5))
    }
}

/// Everything measured, for the summary `run.sh` collects.
struct Report<'a> {
    args: &'a Args,
    idle: Usage,
    real_start: Option<Duration>,
    storm: StormFigures,
    console: Vec<ConsoleFigures>,
    steady: Steady,
    freeze: Option<Freeze>,
    restart: Option<Restart>,
}

impl Report<'_> {
    /// The load after the run, the verdict rows, then the figure lines.
    fn print(&self) {
        println!();
        println!("swarm: load average {} (after)", load_average());
        self.print_rows();
        self.print_console();
        print!("{}", self.figures());
    }

    /// The figures of issue 6's table, with their targets (the fleet ones from 1,000 engines).
    fn print_rows(&self) {
        let n = self.args.engines;
        let shared = if self.args.shared_key {
            ", one shared key"
        } else {
            ""
        };
        let (idle, steady) = (self.idle, self.steady.usage);
        if n >= 1000 {
            let targets = FleetTargets::for_engines(n);
            let storm_ready = self.storm.ready();
            Row {
                figure: &format!("registration storm: all READY after last start{shared}"),
                measured: format!(
                    "{} for {n}",
                    storm_ready.map_or("timed out".to_owned(), human)
                ),
                reference: "—".to_owned(),
                target: targets.ready_label,
                verdict: Verdict::from_check(storm_ready.is_some_and(|d| d <= targets.ready)),
            }
            .print();
            Row {
                figure: &format!("DPM resident memory at {n} READY{shared}"),
                measured: format!("{:.1} MiB", steady.rss_kib as f64 / 1024.0),
                reference: format!("idle DPM {:.1} MiB", idle.rss_kib as f64 / 1024.0),
                target: targets.rss_label,
                verdict: Verdict::from_check(steady.rss_kib < targets.rss_mib * 1024),
            }
            .print();
            Row {
                figure: &format!("DPM CPU at {n} READY, 1 s check interval{shared}"),
                measured: format!("{:.1} % of one core", steady.cpu * 100.0),
                reference: format!("idle DPM {:.2} %", idle.cpu * 100.0),
                target: targets.cpu_label,
                verdict: targets.cpu.map_or(Verdict::Reported, |cpu| {
                    Verdict::from_check(steady.cpu < cpu)
                }),
            }
            .print();
            Row {
                figure: &format!("interval between status checks, p99, at {n} READY{shared}"),
                measured: format!(
                    "{} (p50 {}, max {})",
                    human(self.steady.intervals.p99),
                    human(self.steady.intervals.p50),
                    human(self.steady.intervals.max)
                ),
                reference: format!("checks every {}", human(CHECK_INTERVAL)),
                target: "< 1.1 s",
                verdict: Verdict::from_check(
                    self.steady.intervals.p99 < Duration::from_millis(1100),
                ),
            }
            .print();
        }
        if let Some(start) = self.real_start {
            Row {
                figure: "engine start to READY (real dpe, defaults)",
                measured: human(start),
                reference: "product log: ~0.6 s registration→READY".to_owned(),
                target: "< 1 s",
                verdict: Verdict::from_check(start < Duration::from_secs(1)),
            }
            .print();
        }
    }

    /// The console's figures (`--console`).
    fn print_console(&self) {
        let n = self.args.engines;
        for figures in &self.console {
            let mut render = figures.render.clone();
            let spread = Spread::of(&mut render);
            println!(
                "FIGURE\t{} console at {n} engines: page (html+js+css)\t{:.1} KiB",
                figures.module,
                figures.page_bytes as f64 / 1024.0
            );
            println!(
                "FIGURE\t{} console at {n} engines: /console/api\t{:.1} KiB",
                figures.module,
                figures.overview_bytes as f64 / 1024.0
            );
            if let Some((page, all)) = figures.engines_bytes {
                println!(
                    "FIGURE\t{} console at {n} engines: /console/api/engines, limit=200 (as the page asks) and limit=1000\t{:.1} KiB and {:.1} KiB",
                    figures.module,
                    page as f64 / 1024.0,
                    all as f64 / 1024.0
                );
            }
            println!(
                "FIGURE\t{} console at {n} engines: navigation to first complete render ({} loads, {} rows shown)\tp50 {} max {}",
                figures.module,
                figures.render.len(),
                figures.rows,
                human(spread.p50),
                human(spread.max)
            );
        }
    }

    /// The figure lines of every phase that ran.
    fn figures(&self) -> String {
        let n = self.args.engines;
        let label = |what: &str| {
            if self.args.shared_key {
                format!("{what} ({n} engines, one shared key)")
            } else {
                format!("{what} ({n} engines)")
            }
        };
        let (storm, idle, steady) = (&self.storm, self.idle, &self.steady);
        let mut figures = String::new();
        let _ = writeln!(
            figures,
            "FIGURE\t{}\t{} (after the first: {}; releasing took {})",
            label("all READY after last start"),
            storm.ready().map_or("timed out".to_owned(), human),
            storm.all_ready.map_or("timed out".to_owned(), |at| human(
                at.saturating_duration_since(storm.first_start)
            )),
            human(
                storm
                    .last_start
                    .saturating_duration_since(storm.first_start)
            )
        );
        let _ = writeln!(
            figures,
            "FIGURE\t{}\tCPU {:.1} % of one core, RSS {:.1} MiB (idle {:.2} %, {:.1} MiB)",
            label("DPM at steady state"),
            steady.usage.cpu * 100.0,
            steady.usage.rss_kib as f64 / 1024.0,
            idle.cpu * 100.0,
            idle.rss_kib as f64 / 1024.0
        );
        let _ = writeln!(
            figures,
            "FIGURE\t{}\tp50 {} p99 {} max {} (p99 late by {})",
            label("interval between status checks"),
            human(steady.intervals.p50),
            human(steady.intervals.p99),
            human(steady.intervals.max),
            human(steady.intervals.p99.saturating_sub(CHECK_INTERVAL))
        );
        if let Some(freeze) = &self.freeze {
            let _ = writeln!(
                figures,
                "FIGURE\t{}\t{} frozen: DISCONNECTED in {}, others' interval p99 {} max {} ({} others lost), READY {} after thaw",
                label("freeze"),
                freeze.count,
                freeze.down.map_or("timed out".to_owned(), human),
                human(freeze.others.p99),
                human(freeze.others.max),
                freeze.others_down,
                freeze.back.map_or("timed out".to_owned(), human)
            );
        }
        if let Some(restart) = &self.restart {
            let _ = writeln!(
                figures,
                "FIGURE\t{}\tall READY {} after restart; re-registrations spread over {}, peak {}/100 ms",
                label("DPM restart"),
                restart.back.map_or("timed out".to_owned(), human),
                human(restart.spread),
                restart.burst
            );
        }
        figures
    }
}

/// The most stamps (sorted) within any window of length `width`.
fn max_in_window(sorted: &[Instant], width: Duration) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end].saturating_duration_since(sorted[start]) > width {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// Starts a real `dpe` process against DPM and returns the time from spawning it to DPM logging it
/// READY; then stops it (it unregisters). Median of three starts.
async fn real_dpe_to_ready(
    dir: &Path,
    dpm_port: u16,
    dpm_key: &GeneratorKey,
    dpe_key: &GeneratorKey,
    tail: &mut LogTail,
    patience: Duration,
) -> Result<Duration> {
    let home = write_dpe_home(&dir.join("dpe-real"), dpm_port, dpm_key, dpe_key, &[])?;

    let mut times = Vec::new();
    for _ in 0..3 {
        let mut view = DpmView::default();
        view.apply(tail.poll()?);
        let spawned = Instant::now();
        let mut child = spawn_daemon("dpe", &home, &[], &[], |_| {}).context("starting dpe")?;
        let ready = wait_until(&mut [tail], &mut view, patience, |v| !v.ready.is_empty()).await?;
        let Some(ready) = ready else {
            bail!(
                "the real dpe never became READY; see {}",
                json_log(&home).display()
            );
        };
        times.push(ready.saturating_duration_since(spawned));
        child.terminate(Duration::from_secs(10))?;
        // Let DPM log the unregistration before the next start.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut sorted = times.clone();
    let median = Spread::of(&mut sorted).p50;
    println!(
        "real dpe: process start to READY {} (runs: {})",
        human(median),
        times
            .iter()
            .map(|t| human(*t))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(median)
}

/// Starts a real `dpe` (kept running meanwhile) with an HTTP port, then measures both consoles.
#[allow(clippy::too_many_arguments)]
async fn console_phase(
    shots: &Path,
    dir: &Path,
    dpm_home: &Path,
    dpm_port: u16,
    dpm_key: &GeneratorKey,
    dpe_key: &GeneratorKey,
    engines: u64,
    patience: Duration,
) -> Result<Vec<ConsoleFigures>> {
    std::fs::create_dir_all(shots)?;
    let home = write_dpe_home(
        &dir.join("dpe-console"),
        dpm_port,
        dpm_key,
        dpe_key,
        &["server.port=0"],
    )?;
    let mut child = spawn_daemon("dpe", &home, &[], &[], |_| {}).context("starting dpe")?;
    let dpe_http = wait_http_port(&home, patience).await?;
    let dpm_http = wait_http_port(dpm_home, patience).await?;
    let (dpm_png, dpe_png) = (shots.join("console-dpm.png"), shots.join("console-dpe.png"));
    let figures = tokio::task::spawn_blocking(move || {
        // The real dpe makes the fleet one larger.
        let dpm =
            svcid_bench::console::measure("dpm", dpm_http, Some(engines + 1), &dpm_png, patience)?;
        let dpe = svcid_bench::console::measure("dpe", dpe_http, None, &dpe_png, patience)?;
        anyhow::Ok(vec![dpm, dpe])
    })
    .await
    .context("the console measurement")??;
    for figure in &figures {
        println!(
            "console {}: page {} B, /console/api {} B, engines {:?} B, render {:?}, {} rows",
            figure.module,
            figure.page_bytes,
            figure.overview_bytes,
            figure.engines_bytes,
            figure.render,
            figure.rows
        );
    }
    child.terminate(Duration::from_secs(10))?;
    Ok(figures)
}

/// The targets a fleet of a given size is held to (BENCHMARKS.md): 1,000 engines READY within
/// 5 s of the storm, under 48 MiB and under a quarter of a core; 5,000 within 10 s and under
/// 160 MiB, with the CPU reported.
struct FleetTargets {
    /// All READY after the last engine started, at most.
    ready: Duration,
    ready_label: &'static str,
    /// Resident memory at steady state, under.
    rss_mib: u64,
    rss_label: &'static str,
    /// Share of one core at steady state, under (`None`: reported only).
    cpu: Option<f64>,
    cpu_label: &'static str,
}

impl FleetTargets {
    fn for_engines(engines: usize) -> Self {
        if engines >= 5000 {
            FleetTargets {
                ready: Duration::from_secs(10),
                ready_label: "≤ 10 s for 5,000",
                rss_mib: 160,
                rss_label: "< 160 MiB at 5,000",
                cpu: None,
                cpu_label: "— (reported)",
            }
        } else {
            FleetTargets {
                ready: Duration::from_secs(5),
                ready_label: "≤ 5 s for 1,000",
                rss_mib: 48,
                rss_label: "< 48 MiB at 1,000",
                cpu: Some(0.25),
                cpu_label: "< 25 % of one core",
            }
        }
    }
}
