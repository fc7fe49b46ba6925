//! CPU time and memory of processes and threads, read from `/proc` (Linux only).
//!
//! Process CPU is `utime + stime` from `/proc/<pid>/stat` in clock ticks; thread CPU comes from
//! `/proc/thread-self/schedstat` in nanoseconds, precise enough to time a batch of signatures.
//! `openssl speed` divides by its *user* CPU time (`times()`, unless given `-elapsed`): a thread's
//! user CPU time, for ratios against its figures, comes from `getrusage(RUSAGE_THREAD)`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};
pub use svcid_testkit::process::rss_kib;

/// `utime + stime` of process `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    cpu_ticks_of(&format!("/proc/{pid}/stat"))
}

/// `utime + stime` from a `stat` file of `/proc` (a process's or a thread's).
fn cpu_ticks_of(path: &str) -> Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    let Some(close) = text.rfind(')') else {
        bail!("{path}: no command name");
    };
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let tick = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("{path}: field {} unreadable", index + 3))
    };
    Ok(tick(11)? + tick(12)?)
}

/// `utime + stime` of every thread of process `pid`, summed by thread name (clock ticks).
pub fn ticks_by_thread_name(pid: u32) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut out = std::collections::BTreeMap::new();
    let dir = format!("/proc/{pid}/task");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = entry?.path();
        let Some(tid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A thread may end between the listing and the reads: skip it.
        let (Ok(name), Ok(ticks)) = (
            std::fs::read_to_string(path.join("comm")),
            cpu_ticks_of(&format!("/proc/{pid}/task/{tid}/stat")),
        ) else {
            continue;
        };
        *out.entry(name.trim().to_owned()).or_insert(0) += ticks;
    }
    Ok(out)
}

/// Open file descriptors of process `pid` (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&dir)
        .with_context(|| format!("reading {dir}"))?
        .count())
}
/// Clock ticks per second (`getconf CLK_TCK`; 100, the Linux value, if that cannot run).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// CPU time the calling thread has run, from `/proc/thread-self/schedstat` (nanoseconds).
pub fn thread_cpu() -> Result<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("reading /proc/thread-self/schedstat")?;
    let nanos = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .context("/proc/thread-self/schedstat unreadable")?;
    Ok(Duration::from_nanos(nanos))
}

/// User CPU time the calling thread has run (`getrusage(RUSAGE_THREAD)`, microseconds): the
/// kernel's split of [`thread_cpu`] into user and system time by its tick samples, the same split
/// `openssl speed` reads for itself through `times()`.
pub fn thread_user_cpu() -> Result<Duration> {
    let time = getrusage(UsageWho::RUSAGE_THREAD)
        .context("getrusage(RUSAGE_THREAD)")?
        .user_time();
    let seconds = u64::try_from(time.tv_sec()).context("negative user time")?;
    let micros = u64::try_from(time.tv_usec()).context("negative user time")?;
    Ok(Duration::from_secs(seconds) + Duration::from_micros(micros))
}

/// A process's CPU use over a window: start it, wait, then ask for the share of one core.
#[derive(Debug)]
pub struct CpuWindow {
    /// The process measured.
    pid: u32,
    /// Its ticks at the start.
    ticks: u64,
    /// When the window began.
    started: Instant,
}

impl CpuWindow {
    /// Starts a window on `pid`.
    pub fn start(pid: u32) -> Result<Self> {
        Ok(Self {
            pid,
            ticks: cpu_ticks(pid)?,
            started: Instant::now(),
        })
    }

    /// CPU used since the start as a fraction of one core (0.25 = 25 % of one core).
    pub fn share_of_one_core(&self, ticks_per_second: u64) -> Result<f64> {
        let used = cpu_ticks(self.pid)?.saturating_sub(self.ticks) as f64 / ticks_per_second as f64;
        Ok(used / self.started.elapsed().as_secs_f64().max(1e-9))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_readable() {
        let pid = std::process::id();
        cpu_ticks(pid).unwrap();
        assert!(!ticks_by_thread_name(pid).unwrap().is_empty());
        assert!(rss_kib(pid).unwrap() > 0);
        let before = thread_cpu().unwrap();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu().unwrap() > before);
    }
}
