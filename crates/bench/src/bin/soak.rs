//! `soak`: an hour (by default) of overlapping faults against two DPM replicas on a real
//! PostgreSQL server, a fleet of simulated engines and two real `dpe` processes, under a steady
//! stream of authenticated calls; then the invariants over the whole history. Exit 0 when every
//! invariant held, 1 when one broke (each printed with the seed and the slice of history that
//! breaks it), 2 when the soak itself could not run.
//!
//! `soak --minutes 3` is the short version the test suite runs; `soak --seed N` replays a
//! schedule. The engines run in this process: raise the open-file limit for many of them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use svcid_bench::report::{Row, Verdict};
use svcid_bench::soak::plan::plan;
use svcid_bench::soak::{Options, Report, run};
use svcid_bench::stats::human;

/// A soak under chaos.
#[derive(Debug, Parser)]
struct Args {
    /// Minutes of faults (the run takes about a minute more to start and settle).
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// The schedule's seed (default: from the clock; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated engines.
    #[arg(long, default_value_t = 200)]
    engines: usize,
    /// Seconds between memory and descriptor samples.
    #[arg(long, default_value_t = 5.0)]
    sample_seconds: f64,
    /// Keep the run's folder (homes, logs, the history as history.txt) here.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Print the schedule of faults and exit.
    #[arg(long)]
    print_plan: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let options = Options {
        length: Duration::from_secs_f64(args.minutes.clamp(0.5, 24.0 * 60.0) * 60.0),
        seed,
        engines: args.engines,
        sample_every: Duration::from_secs_f64(args.sample_seconds.clamp(0.5, 60.0)),
        keep: args.keep,
    };
    if args.print_plan {
        for planned in plan(seed, options.length, options.engines) {
            println!("{:>9.3}s  {}", planned.at.as_secs_f64(), planned.fault);
        }
        return ExitCode::SUCCESS;
    }
    let outcome = svcid_bench::engines_main(options.engines, run(&options));
    match outcome {
        Err(e) => {
            eprintln!("soak (seed {seed}) could not run: {e:#}");
            ExitCode::from(2)
        }
        Ok(report) => {
            print(&report, seed, &options);
            if report.findings.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn print(report: &Report, seed: u64, options: &Options) {
    let findings = &report.findings;
    println!("\nsoak: seed {seed}, {} of faults", human(options.length));
    println!("faults injected:");
    for (kind, count) in &report.faults {
        println!("  {count:>5}  {kind}");
    }
    println!("invariants checked (cases):");
    for (invariant, cases) in &findings.checked {
        println!("  {cases:>7}  {invariant}");
    }
    println!("calls:");
    for (outcome, count) in &findings.calls {
        println!("  {count:>7}  {outcome}");
    }
    println!(
        "bounds: frozen → DISCONNECTED at worst {}, thawed → READY at worst {} ({} freezes near \
         a replica or database fault not timed); revoked → last answer at worst {}; longest an \
         unfrozen engine went unchecked {}",
        human(findings.worst_disconnect),
        human(findings.worst_ready_again),
        findings.freezes_disturbed,
        human(findings.worst_revocation),
        human(report.worst_check_gap)
    );
    println!("memory and descriptors over the second half (fitted):");
    for slope in &report.slopes {
        if slope.samples == 0 {
            println!(
                "  {:>6}  not judged: its last process covers less than half of the second half",
                slope.daemon
            );
        } else {
            let verdict = if slope.judged() {
                ""
            } else {
                " (not judged: under 10 minutes)"
            };
            println!(
                "  {:>6}  RSS {:.1} MiB mean, {:+.2} MiB over {} ({:+.1} MiB/h); descriptors {:+.1}{verdict}",
                slope.daemon,
                slope.rss_mean_mib,
                slope.rss_growth_mib,
                human(slope.window),
                slope.rss_mib_per_hour,
                slope.fd_growth
            );
        }
    }
    if let Some(path) = &report.history_file {
        println!("history: {}", path.display());
    }
    let cases: usize = findings.checked.iter().map(|(_, n)| n).sum();
    let faults: usize = report.faults.values().sum();
    Row {
        figure: "soak: invariants over the whole history",
        measured: format!(
            "{} violations, {faults} faults, {cases} cases",
            findings.violations.len()
        ),
        reference: format!("seed {seed}, {}", human(options.length)),
        target: "0 violations",
        verdict: Verdict::from_check(findings.violations.is_empty()),
    }
    .print();
    if findings.violations.is_empty() {
        println!("soak: every invariant held (seed {seed})");
    } else {
        println!(
            "soak: {} violations (seed {seed}; replay with --seed {seed}):",
            findings.violations.len()
        );
        for text in &report.explained {
            println!("{text}");
        }
    }
}
