//! A real `dpm` process for the load tools: its module home (written the way `svcid link` writes
//! one), starting and stopping it, its bound port and the events of its JSON log.
//!
//! The binaries are found next to the running tool (`target/release/`), as the end-to-end tests
//! find theirs, so `cargo build --release --workspace` builds everything a run needs.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use svcid_identity::jwk::GeneratorKey;

/// A workspace binary built beside the running tool.
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running binary")?;
    let dir = exe.parent().context("binary has no folder")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release --workspace`",
            path.display()
        );
    }
    Ok(path)
}

/// A free loopback port (free a moment ago), so a restarted DPM can listen where engines look.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a probe port")?;
    Ok(listener.local_addr()?.port())
}

/// A peer DPM trusts: a `…deployments.<name>` entry with one key.
#[derive(Debug)]
pub struct TrustedPeer {
    /// Deployment name (`dpe-17`).
    pub name: String,
    /// Module type (`dpe`).
    pub module: String,
    /// The key the peer signs with (only its public half is written).
    pub key_kid: String,
    /// The public JWK, as `content`.
    pub key_content: String,
}

impl TrustedPeer {
    /// A `dpe`-module peer signing with `key`, holding the `IMPERSONATION` role like `svcid link`
    /// grants.
    pub fn dpe(name: String, key: &GeneratorKey) -> Self {
        Self {
            name,
            module: "dpe".to_owned(),
            key_kid: key.kid().to_owned(),
            key_content: key.public_key().content_json(),
        }
    }
}

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
    std::fs::create_dir_all(home.join("etc")).context("creating the DPM home")?;
    let mut text = String::with_capacity(512 + peers.len() * 512);
    text.push_str("ataccama.server.grpc.host=127.0.0.1\n");
    let _ = writeln!(text, "ataccama.server.grpc.port={port}");
    text.push_str("ataccama.logging.plainTextConsoleAppender=false\n");
    // Every simulated engine connects from 127.0.0.1: one peer address, which the default
    // per-peer cap (100) would refuse beyond its hundredth engine.
    text.push_str("ataccama.server.grpc.max-connections=20000\n");
    text.push_str("ataccama.server.grpc.max-connections-per-peer=20000\n");
    let _ = writeln!(
        text,
        "ataccama.authentication.internal.jwt.generator.key={}",
        key.to_base64()
    );
    for peer in peers {
        let p = format!("ataccama.one.platform.deployments.{}", peer.name);
        let _ = writeln!(text, "{p}.module={}", peer.module);
        let _ = writeln!(
            text,
            "{p}.security.jwt-keys.key.fingerprint={}",
            peer.key_kid
        );
        let _ = writeln!(
            text,
            "{p}.security.jwt-keys.key.content={}",
            peer.key_content
        );
        let _ = writeln!(text, "{p}.security.roles[0]=IMPERSONATION");
    }
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(home.join("etc/application.properties"), text)
        .context("writing the DPM properties")
}

/// A running `dpm`; killed when dropped.
#[derive(Debug)]
pub struct Dpm {
    /// The process while it runs.
    child: ChildGuard,
    /// Its home.
    home: PathBuf,
}

impl Dpm {
    /// Starts `dpm --home <home>` with output discarded (the JSON log file is what is read).
    pub fn start(home: &Path) -> Result<Self> {
        Self::start_wrapped(home, &[])
    }

    /// Like [`Dpm::start`], run under `wrapper` (a profiler command line such as
    /// `["heaptrack", "-o", "/tmp/dpm"]`). The process measured is then the wrapper's.
    pub fn start_wrapped(home: &Path, wrapper: &[String]) -> Result<Self> {
        let dpm = sibling_binary("dpm")?;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(dpm);
                command
            }
            None => Command::new(dpm),
        };
        let child = command
            .arg("--home")
            .arg(home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting dpm")?;
        Ok(Self {
            child: ChildGuard(Some(child)),
            home: home.to_owned(),
        })
    }

    /// The JSON log file (appended to across restarts).
    pub fn log_path(&self) -> PathBuf {
        log_path(&self.home)
    }

    /// The process id.
    pub fn pid(&self) -> Result<u32> {
        self.child
            .0
            .as_ref()
            .map(Child::id)
            .context("dpm is not running")
    }

    /// Waits (at most `patience`) for the `grpcServerStarted` event after log offset `from`;
    /// returns the bound port.
    pub fn wait_started(&mut self, tail: &mut LogTail, patience: Duration) -> Result<u16> {
        let deadline = Instant::now() + patience;
        loop {
            for event in tail.poll()? {
                if event["eventId"] == "grpcServerStarted" {
                    return event["port"]
                        .as_str()
                        .and_then(|p| p.parse().ok())
                        .or_else(|| event["port"].as_u64().and_then(|p| u16::try_from(p).ok()))
                        .context("grpcServerStarted without a port");
                }
            }
            if let Some(child) = self.child.0.as_mut()
                && let Some(status) = child.try_wait()?
            {
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

    /// SIGKILL, as a crash: no unregistration, no goodbye.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill().context("killing dpm")
    }

    /// SIGTERM, then waits (at most `patience`) before SIGKILL.
    pub fn stop(&mut self, patience: Duration) -> Result<()> {
        self.child.terminate(patience).context("stopping dpm")
    }
}

/// `GET path` of the HTTP port on 127.0.0.1:`port` (the actuator); the body of a 200 answer.
pub fn http_get(port: u16, path: &str) -> Result<String> {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        bail!("GET {path}: no complete HTTP answer");
    };
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_owned())
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

/// A child process that is killed if still running when dropped, so a failing bench never
/// leaves a daemon behind.
#[derive(Debug)]
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// SIGKILL and reap; nothing when it already stopped.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.0.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `patience`.
    pub fn terminate(&mut self, patience: Duration) -> Result<()> {
        let Some(mut child) = self.0.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
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

/// The JSON log file of the daemon whose home is `home`.
pub fn log_path(home: &Path) -> PathBuf {
    home.join("log/spring-boot-logger.json.log")
}

/// Reads a JSON log file as it grows: each [`LogTail::poll`] returns the whole lines added since
/// the last one, parsed (a line that is not JSON is skipped).
#[derive(Debug)]
pub struct LogTail {
    /// The file.
    path: PathBuf,
    /// Bytes consumed so far.
    offset: u64,
    /// An incomplete last line, kept until its newline arrives.
    partial: Vec<u8>,
}

impl LogTail {
    /// Tails `path` from its current end (or from the start when it does not exist yet).
    pub fn from_end(path: PathBuf) -> Self {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Self {
            path,
            offset,
            partial: Vec::new(),
        }
    }

    /// The events appended since the last call.
    pub fn poll(&mut self) -> Result<Vec<Value>> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("opening {}", self.path.display())),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = std::mem::take(&mut self.partial);
        let read = file.read_to_end(&mut bytes)?;
        self.offset += read as u64;
        let whole = match bytes.iter().rposition(|b| *b == b'\n') {
            Some(end) => end + 1,
            None => 0,
        };
        self.partial = bytes.split_off(whole);
        Ok(bytes
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn the_tail_returns_whole_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut tail = LogTail::from_end(path.clone());
        assert!(tail.poll().unwrap().is_empty());
        let mut file = File::create(&path).unwrap();
        write!(file, "{{\"a\":1}}\n{{\"b\":").unwrap();
        let first = tail.poll().unwrap();
        assert_eq!(first.len(), 1);
        writeln!(file, "2}}").unwrap();
        let second = tail.poll().unwrap();
        assert_eq!(second, vec![serde_json::json!({"b": 2})]);
        assert!(tail.poll().unwrap().is_empty());
    }

    #[test]
    fn metric_sums_add_every_labelled_sample_of_one_family() {
        let text = "# TYPE q counter\nq{result=\"ok\"} 3\nq{result=\"error\"} 1\nq_bucket{le=\"1\"} 9\nqq 5\n";
        assert!((metric_sum(text, "q") - 4.0).abs() < f64::EPSILON);
        assert!((metric_sum(text, "qq") - 5.0).abs() < f64::EPSILON);
        assert!(metric_sum(text, "none").abs() < f64::EPSILON);
    }

    #[test]
    fn a_home_lists_every_peer() {
        let dir = tempfile::tempdir().unwrap();
        let key = GeneratorKey::generate();
        let peer = GeneratorKey::generate();
        write_dpm_home(
            dir.path(),
            1234,
            &key,
            &[TrustedPeer::dpe("dpe-1".into(), &peer)],
            &["logging.level.root=INFO".into()],
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("etc/application.properties")).unwrap();
        assert!(text.contains("ataccama.server.grpc.port=1234\n"));
        assert!(text.contains(&format!(
            "deployments.dpe-1.security.jwt-keys.key.fingerprint={}\n",
            peer.kid()
        )));
        assert!(text.ends_with("logging.level.root=INFO\n"));
    }
}
