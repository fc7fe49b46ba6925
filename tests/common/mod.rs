//! The end-to-end harness: real `dpm`, `dpe` and `svcid` processes on loopback ports, in module
//! homes made fresh for each test, observed only through what an operator sees (exit codes and
//! the JSON log files).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any awaited log event may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A binary built from this workspace, next to the test executable's `deps/` folder.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> folder");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (the dpm, dpe and cli crates' own integration tests make cargo build their binaries)",
        path.display()
    );
    path
}

/// A port that was free a moment ago (for a daemon that must be started on a known port).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `GET path` on `127.0.0.1:port` over a fresh connection: the status code, the header block
/// (lower case) and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    (code, head.to_ascii_lowercase(), body.to_owned())
}

/// A dpm home and a dpe home, linked by the real `svcid link`.
pub struct Pair {
    /// Owns the folder; removed on drop.
    _dir: tempfile::TempDir,
    /// DPM's home.
    pub dpm: PathBuf,
    /// DPE's home.
    pub dpe: PathBuf,
}

/// Fast intervals so tests observe transitions within a second or two; free ports for gRPC and
/// the actuator HTTP endpoints (`server.port`), so tests run in parallel.
const DPM_BASE: &str = "\
ataccama.server.grpc.host=127.0.0.1
ataccama.server.grpc.port=0
server.port=0
ataccama.one.dpm.registry.check-connected-interval=300ms
ataccama.one.dpm.registry.check-disconnected-interval=300ms
ataccama.one.dpm.registry.check-disconnected-interval-max=1s
ataccama.one.dpm.registry.grpc-checker-timeout=1s
ataccama.logging.plainTextConsoleAppender=false
logging.level.root=DEBUG
";

const DPE_BASE: &str = "\
ataccama.server.grpc.host=127.0.0.1
ataccama.server.grpc.port=0
server.port=0
ataccama.client.connection.dpm.host=127.0.0.1
ataccama.one.dpe.service.hostname=127.0.0.1
ataccama.one.dpe.service.dpm.check-connection-interval=300ms
constraints.spark=true
ataccama.logging.plainTextConsoleAppender=false
logging.level.root=DEBUG
";

impl Pair {
    /// Two homes with test settings, linked with fresh keys.
    pub fn linked() -> Pair {
        let dir = tempfile::tempdir().expect("temp dir");
        let dpm = dir.path().join("dpm");
        let dpe = dir.path().join("dpe");
        for (home, base) in [(&dpm, DPM_BASE), (&dpe, DPE_BASE)] {
            std::fs::create_dir_all(home.join("etc")).unwrap();
            std::fs::write(home.join("etc/application.properties"), base).unwrap();
        }
        let out = Command::new(bin("svcid"))
            .arg("link")
            .arg(&dpm)
            .arg(&dpe)
            .output()
            .expect("svcid runs");
        assert!(
            out.status.success(),
            "svcid link failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Pair {
            _dir: dir,
            dpm,
            dpe,
        }
    }

    /// Appends a line to a home's properties file (the daemons read it at start).
    pub fn append(home: &Path, line: &str) {
        let path = home.join("etc/application.properties");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(line);
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    /// Replaces text in a home's properties file.
    pub fn replace(home: &Path, from: &str, to: &str) {
        let path = home.join("etc/application.properties");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from:?} not in {}", path.display());
        std::fs::write(path, text.replace(from, to)).unwrap();
    }

    /// Sets a home's properties file's unix permission bits (e.g. `0o600`).
    #[cfg(unix)]
    pub fn set_mode(home: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = home.join("etc/application.properties");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Like [`Pair::replace`], but atomically (a sibling file renamed over the original, with the
    /// same permissions), so a daemon polling the file never reads it half-written.
    pub fn replace_atomically(home: &Path, from: &str, to: &str) {
        let path = home.join("etc/application.properties");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from:?} not in {}", path.display());
        let staged = home.join("etc/application.properties.new");
        std::fs::write(&staged, text.replace(from, to)).unwrap();
        let permissions = std::fs::metadata(&path).unwrap().permissions();
        std::fs::set_permissions(&staged, permissions).unwrap();
        std::fs::rename(staged, path).unwrap();
    }

    /// The value of a property as `svcid link` wrote it.
    pub fn property(home: &Path, name: &str) -> String {
        let text = std::fs::read_to_string(home.join("etc/application.properties")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
            .unwrap_or_else(|| panic!("{name} not in {}", home.display()))
    }

    /// Starts DPM and waits until it serves; returns it with its bound port.
    pub fn start_dpm(&self, args: &[&str]) -> Daemon {
        let dpm = Daemon::start("dpm", &self.dpm, args);
        dpm.wait_for("grpcServerStarted", |e| e["eventId"] == "grpcServerStarted");
        dpm
    }

    /// Starts DPE pointed at DPM's port.
    pub fn start_dpe(&self, dpm_port: u16, args: &[&str]) -> Daemon {
        self.start_dpe_with(dpm_port, args, |_| {})
    }

    /// Starts DPE pointed at DPM's port, its command set up by `configure` (e.g. environment
    /// variables) before it is spawned.
    pub fn start_dpe_with(
        &self,
        dpm_port: u16,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Daemon {
        let mut all = vec![format!(
            "--ataccama.client.connection.dpm.grpc.port={dpm_port}"
        )];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Daemon::start_with("dpe", &self.dpe, &all, configure)
    }
}

/// A running daemon process.
pub struct Daemon {
    /// The process; killed on drop.
    child: Option<Child>,
    /// Its JSON log file.
    pub log: PathBuf,
    /// Its home.
    pub home: PathBuf,
}

impl Daemon {
    /// Starts `name --home home args…`.
    pub fn start(name: &str, home: &Path, args: &[&str]) -> Daemon {
        Daemon::start_with(name, home, args, |_| {})
    }

    /// Starts `name --home home args…`, the command set up by `configure` first.
    pub fn start_with(
        name: &str,
        home: &Path,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Daemon {
        let mut command = Command::new(bin(name));
        command
            .arg("--home")
            .arg(home)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        configure(&mut command);
        let child = command.spawn().expect("daemon starts");
        Daemon {
            child: Some(child),
            log: home.join("log/spring-boot-logger.json.log"),
            home: home.to_owned(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The bound gRPC port, from its `grpcServerStarted` event (the last one: restarts append).
    pub fn port(&self) -> u16 {
        let events = self.events();
        let started = events
            .iter()
            .rev()
            .find(|e| e["eventId"] == "grpcServerStarted")
            .expect("grpcServerStarted logged");
        started["port"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .expect("port field")
    }

    /// Every line of the JSON log, parsed; a line that is not a JSON object fails the test.
    pub fn events(&self) -> Vec<Value> {
        read_events(&self.log)
    }

    /// Waits until an event matches, returning it; fails with the log after [`PATIENCE`].
    pub fn wait_for(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_after(0, what, matches)
    }

    /// Like [`Daemon::wait_for`], ignoring the first `skip` lines.
    pub fn wait_for_after(
        &self,
        skip: usize,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = self.events().into_iter().skip(skip).find(|e| matches(e)) {
                return found;
            }
            if Instant::now() > deadline {
                panic!(
                    "no {what} in {} within {PATIENCE:?}; log:\n{}",
                    self.log.display(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Whether the process is still running (it has not exited, crashed or been killed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("wait").is_none(),
            None => false,
        }
    }

    /// Waits for the process to exit (at most [`PATIENCE`]) and returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parses a JSON log file; every line must be a JSON object.
pub fn read_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // A line being written right now may be incomplete; only whole lines count.
    let whole = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    whole
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            assert!(value.is_object(), "log line is not a JSON object: {line}");
            value
        })
        .collect()
}
