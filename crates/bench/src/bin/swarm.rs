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
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::Value;
use svcid_bench::daemon::{
    ChildGuard, Dpm, LogTail, TrustedPeer, free_port, log_path, sibling_binary, write_dpm_home,
};
use svcid_bench::engines::{check_intervals, dpm_trust, stamps_between, start_engine};
use svcid_bench::fleet::{DpmView, wait_until};
use svcid_bench::procfs::{CpuWindow, rss_kib, ticks_by_thread_name, ticks_per_second};
use svcid_bench::report::{Row, Verdict, load_average};
use svcid_bench::stats::{Spread, human};
use svcid_identity::GeneratorKey;
use tokio::sync::watch;

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

async fn run(args: &Args) -> Result<()> {
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

    // Keys and DPM's home.
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
    peers.push(TrustedPeer::dpe("dpe-real".into(), &real_dpe_key));
    let port = free_port()?;
    if let Some(home) = &args.write_home {
        write_dpm_home(home, port, &dpm_key, &peers, &[])?;
        println!("wrote {}", home.display());
        return Ok(());
    }
    // The console phase reads DPM's HTTP port from its log; otherwise the default port
    // (write_dpm_home already raises the connection caps for a fleet on one address).
    let http_extra = if args.console.is_some() {
        vec!["server.port=0".to_owned()]
    } else {
        Vec::new()
    };
    write_dpm_home(&dpm_home, port, &dpm_key, &peers, &http_extra)?;
    let mut dpm = Dpm::start_wrapped(&dpm_home, &args.dpm_wrapper)?;
    let mut tail = LogTail::from_end(dpm.log_path());
    let started = Instant::now();
    dpm.wait_started(&mut tail, patience)?;
    let mut pid = dpm.pid()?;
    println!(
        "dpm pid {pid} on port {port} with {} deployments, serving after {}",
        peers.len(),
        human(started.elapsed())
    );

    // 1. Idle DPM.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let window = CpuWindow::start(pid)?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_cpu = window.share_of_one_core(ticks)?;
    let idle_rss = rss_kib(pid)?;
    println!(
        "idle dpm: CPU {:.2} % of one core, RSS {:.1} MiB",
        idle_cpu * 100.0,
        idle_rss as f64 / 1024.0
    );

    // 2. A real dpe, alone.
    let mut view = DpmView::default();
    let real_start = if args.no_real_dpe {
        None
    } else {
        Some(
            real_dpe_to_ready(
                dir.path(),
                port,
                &dpm_key,
                &real_dpe_key,
                &mut tail,
                patience,
            )
            .await?,
        )
    };
    view.apply(tail.poll()?);
    view.ready.clear();
    view.disconnected.clear();

    // 3. Storm.
    let dpm_trust = dpm_trust(&dpm_key)?;
    let (stop_tx, stop) = watch::channel(false);
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding an engine port")?;
        listeners.push(listener);
    }
    let mut engines = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    // Engines are built frozen (servers up, registration waiting), then all released at once:
    // a storm, not a trickle paced by how fast this process builds engines.
    for (i, listener) in listeners.into_iter().enumerate() {
        let key = &keys[i % keys.len()];
        let engine = start_engine(
            listener,
            key,
            &dpm_trust,
            port,
            stop.clone(),
            &mut tasks,
            Duration::from_millis(args.register_interval_ms.clamp(100, 60_000)),
        )?;
        engines.push(engine);
    }
    let first_start = Instant::now();
    for engine in &engines {
        let _ = engine.frozen.send(false);
    }
    let last_start = Instant::now();
    let ids: HashSet<String> = engines.iter().map(|e| e.id.clone()).collect();
    let storm = wait_until(&mut [&mut tail], &mut view, patience, |v| {
        ids.iter().all(|id| v.ready.contains(id))
    })
    .await?;
    let storm_ready = storm.map(|at| at.saturating_duration_since(last_start));
    println!(
        "storm: engines released over {}; {} of {n} READY; all READY {} after the last engine \
         started ({} after the first); {} registrations logged",
        human(last_start.saturating_duration_since(first_start)),
        view.ready.intersection(&ids).count(),
        storm_ready.map_or("never (timed out)".to_owned(), human),
        storm.map_or("never".to_owned(), |at| human(
            at.saturating_duration_since(first_start)
        )),
        view.registrations
    );

    // The operations console at full load.
    let mut console_figures = Vec::new();
    if let Some(shots) = &args.console {
        console_figures = console_phase(
            shots,
            dir.path(),
            &dpm_home,
            port,
            &dpm_key,
            &real_dpe_key,
            n as u64,
            patience,
        )
        .await?;
    }

    // 4. Steady state.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let steady = Duration::from_secs_f64(args.steady_seconds.clamp(2.0, 300.0));
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
    let mut intervals = check_intervals(&engines, window_start, window_end, |_| true);
    let checks_in_window: usize = engines
        .iter()
        .map(|e| stamps_between(&e.checks, window_start, window_end).len())
        .sum();
    let steady_spread = Spread::of(&mut intervals);
    view.apply(tail.poll()?);
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

    // 5. Freeze a slice.
    let frozen_count = ((n as f64) * args.freeze_fraction.clamp(0.0, 0.9)).round() as usize;
    let mut freeze_summary = None;
    if frozen_count > 0 {
        let frozen: HashSet<String> = engines[..frozen_count]
            .iter()
            .map(|e| e.id.clone())
            .collect();
        view.apply(tail.poll()?);
        let freeze_at = Instant::now();
        for engine in &engines[..frozen_count] {
            let _ = engine.frozen.send(true);
        }
        let all_down = wait_until(&mut [&mut tail], &mut view, patience, |v| {
            frozen.iter().all(|id| v.disconnected.contains(id))
        })
        .await?;
        // Keep them frozen a little longer, so the others' checks are measured around the failures.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let thaw_at = Instant::now();
        let mut others = check_intervals(&engines, freeze_at, thaw_at, |e| !frozen.contains(&e.id));
        let others_spread = Spread::of(&mut others);
        let others_down = ids
            .iter()
            .filter(|id| !frozen.contains(*id) && !view.ready.contains(*id))
            .count();
        for engine in &engines[..frozen_count] {
            let _ = engine.frozen.send(false);
        }
        let back = wait_until(&mut [&mut tail], &mut view, patience, |v| {
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
        freeze_summary = Some((
            frozen_count,
            all_down.map(|at| at.saturating_duration_since(freeze_at)),
            others_down,
            others_spread,
            back.map(|at| at.saturating_duration_since(thaw_at)),
        ));
    }

    // 6. Kill and restart DPM under load.
    let mut restart_summary = None;
    if !args.no_restart {
        tokio::time::sleep(Duration::from_secs(2)).await;
        dpm.kill()?;
        let killed_at = Instant::now();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut dpm2 = Dpm::start(&dpm_home)?;
        let mut view2 = DpmView::default();
        dpm2.wait_started(&mut tail, patience)?;
        let restarted_at = Instant::now();
        pid = dpm2.pid()?;
        let back = wait_until(&mut [&mut tail], &mut view2, patience, |v| {
            ids.iter().all(|id| v.ready.contains(id))
        })
        .await?;
        // How bunched the re-registrations were: the most in any 100 ms.
        let mut stamps: Vec<Instant> = engines
            .iter()
            .flat_map(|e| stamps_between(&e.registered, restarted_at, Instant::now()))
            .collect();
        stamps.sort_unstable();
        let burst = max_in_window(&stamps, Duration::from_millis(100));
        let spread = match (stamps.first(), stamps.last()) {
            (Some(first), Some(last)) => last.saturating_duration_since(*first),
            _ => Duration::ZERO,
        };
        let rss_after = rss_kib(pid)?;
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
        restart_summary = Some((
            back.map(|at| at.saturating_duration_since(restarted_at)),
            burst,
            spread,
        ));
        dpm = dpm2;
    }

    // Stop everything: engines first (they would log nothing; DPM would only mark them gone).
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    dpm.stop(Duration::from_secs(5))?;

    // Report.
    println!();
    println!("swarm: load average {} (after)", load_average());
    let label = |what: &str| {
        if args.shared_key {
            format!("{what} ({n} engines, one shared key)")
        } else {
            format!("{what} ({n} engines)")
        }
    };
    let shared = if args.shared_key {
        ", one shared key"
    } else {
        ""
    };
    if n >= 1000 {
        Row {
            figure: &format!("registration storm: all READY after last start{shared}"),
            measured: format!(
                "{} for {n}",
                storm_ready.map_or("timed out".to_owned(), human)
            ),
            reference: "—".to_owned(),
            target: "≤ 5 s for 1,000",
            verdict: Verdict::from_check(storm_ready.is_some_and(|d| d <= Duration::from_secs(5))),
        }
        .print();
        Row {
            figure: &format!("DPM resident memory at {n} READY{shared}"),
            measured: format!("{:.1} MiB", steady_rss as f64 / 1024.0),
            reference: format!("idle DPM {:.1} MiB", idle_rss as f64 / 1024.0),
            target: "< 64 MiB",
            verdict: Verdict::from_check(steady_rss < 64 * 1024),
        }
        .print();
        Row {
            figure: &format!("DPM CPU at {n} READY, 1 s check interval{shared}"),
            measured: format!("{:.1} % of one core", steady_cpu * 100.0),
            reference: format!("idle DPM {:.2} %", idle_cpu * 100.0),
            target: "< 25 % of one core",
            verdict: Verdict::from_check(steady_cpu < 0.25),
        }
        .print();
    }
    if let Some(start) = real_start {
        Row {
            figure: "engine start to READY (real dpe, defaults)",
            measured: human(start),
            reference: "product log: ~0.6 s registration→READY".to_owned(),
            target: "< 1 s",
            verdict: Verdict::from_check(start < Duration::from_secs(1)),
        }
        .print();
    }
    for figures in &console_figures {
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
    let mut figures = String::new();
    let _ = writeln!(
        figures,
        "FIGURE\t{}\t{} (after the first: {}; releasing took {})",
        label("all READY after last start"),
        storm_ready.map_or("timed out".to_owned(), human),
        storm.map_or("timed out".to_owned(), |at| human(
            at.saturating_duration_since(first_start)
        )),
        human(last_start.saturating_duration_since(first_start))
    );
    let _ = writeln!(
        figures,
        "FIGURE\t{}\tCPU {:.1} % of one core, RSS {:.1} MiB (idle {:.2} %, {:.1} MiB)",
        label("DPM at steady state"),
        steady_cpu * 100.0,
        steady_rss as f64 / 1024.0,
        idle_cpu * 100.0,
        idle_rss as f64 / 1024.0
    );
    let _ = writeln!(
        figures,
        "FIGURE\t{}\tp50 {} p99 {} max {} (p99 late by {})",
        label("interval between status checks"),
        human(steady_spread.p50),
        human(steady_spread.p99),
        human(steady_spread.max),
        human(steady_spread.p99.saturating_sub(CHECK_INTERVAL))
    );
    if let Some((count, down, others_down, others, back)) = freeze_summary {
        let _ = writeln!(
            figures,
            "FIGURE\t{}\t{count} frozen: DISCONNECTED in {}, others' interval p99 {} max {} ({} others lost), READY {} after thaw",
            label("freeze"),
            down.map_or("timed out".to_owned(), human),
            human(others.p99),
            human(others.max),
            others_down,
            back.map_or("timed out".to_owned(), human)
        );
    }
    if let Some((back, burst, spread)) = restart_summary {
        let _ = writeln!(
            figures,
            "FIGURE\t{}\tall READY {} after restart; re-registrations spread over {}, peak {burst}/100 ms",
            label("DPM restart"),
            back.map_or("timed out".to_owned(), human),
            human(spread)
        );
    }
    print!("{figures}");
    Ok(())
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
    let home = write_real_dpe_home(&dir.join("dpe-real"), dpm_port, dpm_key, dpe_key, &[])?;
    let binary = sibling_binary("dpe")?;

    let mut times = Vec::new();
    for _ in 0..3 {
        let mut view = DpmView::default();
        view.apply(tail.poll()?);
        let spawned = Instant::now();
        let child = Command::new(&binary)
            .arg("--home")
            .arg(&home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting dpe")?;
        let mut child = ChildGuard(Some(child));
        let ready = wait_until(&mut [tail], &mut view, patience, |v| !v.ready.is_empty()).await?;
        let Some(ready) = ready else {
            bail!(
                "the real dpe never became READY; see {}",
                log_path(&home).display()
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

/// Writes the home of a real `dpe` on loopback, trusting DPM's key and signing with `dpe_key`;
/// `extra` lines are appended.
fn write_real_dpe_home(
    home: &Path,
    dpm_port: u16,
    dpm_key: &GeneratorKey,
    dpe_key: &GeneratorKey,
    extra: &[&str],
) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(home.join("etc"))?;
    let dpm_peer = TrustedPeer {
        name: "dpm-bench".into(),
        module: "dpm".into(),
        key_kid: dpm_key.kid().into(),
        key_content: dpm_key.public_key().content_json(),
    };
    let mut text = String::new();
    let _ = writeln!(text, "ataccama.server.grpc.host=127.0.0.1");
    let _ = writeln!(text, "ataccama.server.grpc.port=0");
    let _ = writeln!(text, "ataccama.client.connection.dpm.host=127.0.0.1");
    let _ = writeln!(text, "ataccama.client.connection.dpm.grpc.port={dpm_port}");
    let _ = writeln!(text, "ataccama.one.dpe.service.hostname=127.0.0.1");
    let _ = writeln!(text, "ataccama.logging.plainTextConsoleAppender=false");
    let _ = writeln!(
        text,
        "ataccama.authentication.internal.jwt.generator.key={}",
        dpe_key.to_base64()
    );
    let p = format!("ataccama.one.platform.deployments.{}", dpm_peer.name);
    let _ = writeln!(text, "{p}.module=dpm");
    let _ = writeln!(
        text,
        "{p}.security.jwt-keys.key.fingerprint={}",
        dpm_peer.key_kid
    );
    let _ = writeln!(
        text,
        "{p}.security.jwt-keys.key.content={}",
        dpm_peer.key_content
    );
    for line in extra {
        let _ = writeln!(text, "{line}");
    }
    std::fs::write(home.join("etc/application.properties"), text)?;
    Ok(home.to_owned())
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
) -> Result<Vec<svcid_bench::console::ConsoleFigures>> {
    std::fs::create_dir_all(shots)?;
    let home = write_real_dpe_home(
        &dir.join("dpe-console"),
        dpm_port,
        dpm_key,
        dpe_key,
        &["server.port=0"],
    )?;
    let child = Command::new(sibling_binary("dpe")?)
        .arg("--home")
        .arg(&home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting dpe")?;
    let mut child = ChildGuard(Some(child));
    let dpe_http = wait_http_port(&log_path(&home), patience).await?;
    let dpm_http = wait_http_port(&log_path(dpm_home), patience).await?;
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

/// The port of the last `httpServerStarted` in a JSON log, waiting for it.
async fn wait_http_port(log: &Path, patience: Duration) -> Result<u16> {
    let deadline = Instant::now() + patience;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let port = text
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| e["eventId"] == "httpServerStarted")
            .find_map(|e| e["port"].as_str().and_then(|p| p.parse().ok()));
        if let Some(port) = port {
            return Ok(port);
        }
        if Instant::now() > deadline {
            bail!("no httpServerStarted in {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
