//! Real daemons for the load tools: a fleet DPM's module home (written the way `svcid link`
//! writes one, from the property names), a real `dpe`'s home, and the running `dpm` process with
//! its bound port.
//!
//! The binaries are found next to the running tool (`target/release/`), as the end-to-end tests
//! find theirs, so `cargo build --release --workspace` builds everything a run needs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use svcid_config::names;
use svcid_identity::jwk::GeneratorKey;
use svcid_testkit::homes::{Properties, TrustedPeer};
use svcid_testkit::log::{LogTail, event_port, json_log, wait_for_event};
use svcid_testkit::process::{ChildGuard, spawn_daemon};

/// Connections DPM admits in all and from one address: every simulated engine connects from
/// 127.0.0.1, one peer address, which the default per-peer cap (100) would refuse beyond its
/// hundredth engine.
const FLEET_CONNECTIONS: u32 = 20_000;

/// Writes `<home>/etc/application.properties` for a DPM on `127.0.0.1:<port>` signing with `key`
/// and trusting `peers`, its connection caps raised for a fleet on one address; `extra` lines
/// are appended (e.g. faster intervals).
pub fn write_dpm_home(
    home: &Path,
    port: u16,
    key: &GeneratorKey,
    peers: &[TrustedPeer],
    extra: &[String],
) -> Result<()> {
    let mut p = Properties::new();
    p.set(names::GRPC_HOST, "127.0.0.1")
        .set(names::GRPC_PORT, port)
        .set(names::PLAIN_CONSOLE, false)
        .set(names::GRPC_MAX_CONNECTIONS, FLEET_CONNECTIONS)
        .set(names::GRPC_MAX_CONNECTIONS_PER_PEER, FLEET_CONNECTIONS)
        .set(names::GENERATOR_KEY, key.to_base64());
    for peer in peers {
        p.trust(peer);
    }
    for line in extra {
        p.line(line);
    }
    p.write(home).context("writing the DPM home")
}

/// Writes the home of a real `dpe` on loopback, registering with the DPM on `dpm_port`, trusting
/// DPM's key and signing with `dpe_key`; `extra` lines are appended. Returns the home.
pub fn write_dpe_home(
    home: &Path,
    dpm_port: u16,
    dpm_key: &GeneratorKey,
    dpe_key: &GeneratorKey,
    extra: &[&str],
) -> Result<PathBuf> {
    let mut p = Properties::new();
    p.set(names::GRPC_HOST, "127.0.0.1")
        .set(names::GRPC_PORT, 0)
        .set(names::DPM_HOST, "127.0.0.1")
        .set(names::DPM_PORT, dpm_port)
        .set(names::SERVICE_HOSTNAME, "127.0.0.1")
        .set(names::PLAIN_CONSOLE, false)
        .set(names::GENERATOR_KEY, dpe_key.to_base64())
        .trust(&TrustedPeer::new("dpm-bench", "dpm", dpm_key));
    for line in extra {
        p.line(line);
    }
    p.write(home).context("writing the DPE home")?;
    Ok(home.to_owned())
}

/// A running `dpm` process; killed when dropped.
#[derive(Debug)]
pub struct DpmProcess {
    /// The process while it runs.
    child: ChildGuard,
    /// Its home.
    home: PathBuf,
}

impl DpmProcess {
    /// Starts `dpm --home <home>` with output discarded (the JSON log file is what is read).
    pub fn start(home: &Path) -> Result<Self> {
        Self::start_wrapped(home, &[])
    }

    /// Like [`DpmProcess::start`], run under `wrapper` (a profiler command line such as
    /// `["heaptrack", "-o", "/tmp/dpm"]`). The process measured is then the wrapper's.
    pub fn start_wrapped(home: &Path, wrapper: &[String]) -> Result<Self> {
        let child = spawn_daemon("dpm", home, &[], wrapper, |_| {}).context("starting dpm")?;
        Ok(Self {
            child,
            home: home.to_owned(),
        })
    }

    /// The JSON log file (appended to across restarts).
    pub fn log_path(&self) -> PathBuf {
        json_log(&self.home)
    }

    /// The process id.
    pub fn pid(&self) -> Result<u32> {
        self.child.pid().context("dpm is not running")
    }

    /// Waits (at most `patience`) for the `grpcServerStarted` event among what `tail` has not
    /// read yet; returns the bound port. Events logged after it stay in `tail` for the caller (an
    /// engine may register, and be READY, in the same read).
    pub fn wait_started(&mut self, tail: &mut LogTail, patience: Duration) -> Result<u16> {
        let deadline = Instant::now() + patience;
        loop {
            let mut events = tail.poll()?.into_iter();
            while let Some(event) = events.next() {
                if event["eventId"] == "grpcServerStarted" {
                    tail.put_back(events);
                    return event_port(&event).context("grpcServerStarted without a port");
                }
            }
            if let Some(status) = self.child.try_exit()? {
                bail!(
                    "dpm exited with {status} before serving; see {}",
                    self.log_path().display()
                );
            }
            if Instant::now() > deadline {
                bail!("dpm did not start within {patience:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its exit status, if it has exited (without waiting).
    pub fn try_exit(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.child.try_exit().context("waiting for dpm")
    }

    /// SIGKILL, as a crash: no unregistration, no goodbye.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill().context("killing dpm")
    }

    /// SIGTERM, then waits (at most `patience`) before SIGKILL.
    pub fn stop(&mut self, patience: Duration) -> Result<()> {
        self.child.terminate(patience).context("stopping dpm")
    }
}

/// The port of the first `httpServerStarted` in the JSON log of the daemon whose home is `home`,
/// waiting (at most `patience`, off the async threads) for it.
pub async fn wait_http_port(home: &Path, patience: Duration) -> Result<u16> {
    let log = json_log(home);
    let started = tokio::task::spawn_blocking(move || {
        wait_for_event(&log, 0, "httpServerStarted", patience, |e| {
            e["eventId"] == "httpServerStarted"
        })
    })
    .await
    .context("waiting for httpServerStarted")?
    .map_err(anyhow::Error::msg)?;
    event_port(&started).context("httpServerStarted without a port")
}

/// The sum of every sample of `family` (any labels) in Prometheus text; 0 when absent.
pub fn metric_sum(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(family)?;
            // `family{...} v` or `family v`, not `family_bucket…`.
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.rsplit_once('}')?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums_add_every_labelled_sample_of_one_family() {
        let text = "# TYPE q counter\nq{result=\"ok\"} 3\nq{result=\"error\"} 1\nq_bucket{le=\"1\"} 9\nqq 5\n";
        assert!((metric_sum(text, "q") - 4.0).abs() < f64::EPSILON);
        assert!((metric_sum(text, "qq") - 5.0).abs() < f64::EPSILON);
        assert!(metric_sum(text, "none").abs() < f64::EPSILON);
    }

    #[test]
    fn a_fleet_home_lists_every_peer_and_raises_the_caps() {
        let dir = tempfile::tempdir().unwrap();
        let key = GeneratorKey::generate();
        let peer = GeneratorKey::generate();
        write_dpm_home(
            dir.path(),
            1234,
            &key,
            &[TrustedPeer::dpe("dpe-1", &peer)],
            &["logging.level.root=INFO".into()],
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("etc/application.properties")).unwrap();
        assert!(text.contains("ataccama.server.grpc.port=1234\n"));
        assert!(text.contains("ataccama.server.grpc.max-connections-per-peer=20000\n"));
        assert!(text.contains(&format!(
            "deployments.dpe-1.security.jwt-keys.key.fingerprint={}\n",
            peer.kid()
        )));
        assert!(text.ends_with("logging.level.root=INFO\n"));
    }
}
