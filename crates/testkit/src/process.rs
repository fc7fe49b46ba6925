//! The workspace's binaries as processes: found beside the running executable, started in a
//! module home, signalled, and killed when their guard is dropped so that a failing test or
//! benchmark never leaves a daemon behind.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often a wait for a process looks again.
const POLL: Duration = Duration::from_millis(10);

/// A binary of this workspace (`dpm`, `dpe`, `svcid`), built into the same `target/<profile>/`
/// folder as the running executable: a benchmark tool lies in that folder, a test executable in
/// its `deps/`.
pub fn workspace_binary(name: &str) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| io::Error::other("the running executable has no folder"))?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().unwrap_or(dir);
    }
    let path = dir.join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is missing: build the workspace's binaries first (`cargo test --workspace` \
                 builds them for the tests, `cargo build --release --workspace` for the benchmarks)",
                path.display()
            ),
        ))
    }
}

/// `<binary> --home <home> <args…>` (the binary under `wrapper` when one is given, e.g. a
/// profiler's command line), its standard streams closed; `configure` may change the command
/// before it is spawned.
pub fn spawn_daemon(
    name: &str,
    home: &Path,
    args: &[&str],
    wrapper: &[String],
    configure: impl FnOnce(&mut Command),
) -> io::Result<ChildGuard> {
    let binary = workspace_binary(name)?;
    let mut command = match wrapper.split_first() {
        Some((program, wrapper_args)) => {
            let mut command = Command::new(program);
            command.args(wrapper_args).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    command
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    configure(&mut command);
    let child = command
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
    Ok(ChildGuard(Some(child)))
}

/// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`, `HUP`) to process `pid`.
pub fn send_signal(pid: u32, signal: &str) -> io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -{signal} {pid} failed")))
    }
}

/// Resident memory of process `pid` (`VmRSS` of `/proc/<pid>/status`), in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path)?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: no VmRSS")))
}

/// A child process that is killed if still running when dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// The exit status once the process has exited (it is then no longer guarded); `None`
    /// while it runs or when it was already reaped.
    pub fn try_exit(&mut self) -> io::Result<Option<ExitStatus>> {
        let Some(child) = self.0.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait()?;
        if status.is_some() {
            self.0 = None;
        }
        Ok(status)
    }

    /// Whether the process still runs (it has not exited, crashed or been killed).
    pub fn is_running(&mut self) -> io::Result<bool> {
        match self.0.as_mut() {
            Some(child) => Ok(child.try_wait()?.is_none()),
            None => Ok(false),
        }
    }

    /// Waits at most `patience` for the process to exit by itself; its status.
    pub fn wait_exit(&mut self, patience: Duration) -> io::Result<ExitStatus> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.try_exit()? {
                return Ok(status);
            }
            if self.0.is_none() {
                return Err(io::Error::other("the process was already reaped"));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("process did not exit within {patience:?}"),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILL and reap; nothing when it already stopped.
    pub fn kill(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.0.take() {
            let killed = child.kill();
            child.wait()?;
            killed?;
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `patience`.
    pub fn terminate(&mut self, patience: Duration) -> io::Result<()> {
        let Some(mut child) = self.0.take() else {
            return Ok(());
        };
        let _ = send_signal(child.id(), "TERM");
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
        child.kill()?;
        child.wait()?;
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
