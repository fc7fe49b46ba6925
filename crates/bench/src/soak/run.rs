//! A soak from start to verdict: the world built, the observers and the faults started, the
//! settled end checked, everything stopped, the history judged.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};

use super::faults::inject;
use super::history::What;
use super::observe::{call, check_gaps, check_rows, sample, watch_logs};
use super::plan::plan;
use super::samples::Slope;
use super::world::{DAEMONS, Options, Report, build, lock, sql};

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
