//! The end-to-end harness: real `dpm`, `dpe` and `svcid` processes on loopback ports, in module
//! homes made fresh for each test, observed only through what an operator sees (exit codes, the
//! JSON log files and the HTTP port). Built on `svcid_testkit`; failures panic, as a test
//! reports them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use svcid_testkit::homes::{self, properties_file};
use svcid_testkit::log::{event_port, json_log, wait_for_event};
use svcid_testkit::process::{ChildGuard, send_signal, spawn_daemon, workspace_binary};

/// How long any awaited log event may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Chromium if it is installed; `None` outside CI (the caller skips `what`, and this says so), a
/// failure under CI, whose `.ci/run` installs it.
pub fn chromium(what: &str) -> Option<&'static Path> {
    let path = Path::new(svcid_testkit::browser::CHROMIUM);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing under CI: .ci/run installs Debian's chromium package",
        path.display()
    );
    eprintln!(
        "SKIPPED: {} is not installed (apt-get install chromium); {what} did not run",
        path.display()
    );
    None
}

/// A binary built from this workspace, next to the test executable's `deps/` folder.
pub fn bin(name: &str) -> PathBuf {
    workspace_binary(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A port that was free a moment ago (for a daemon that must be started on a known port).
pub fn free_port() -> u16 {
    svcid_testkit::net::free_port().expect("a free loopback port")
}

/// `GET path` on `127.0.0.1:port` over a fresh connection: the status code, the header block
/// (lower case) and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String, String) {
    let answer = svcid_testkit::http::get(port, path).unwrap_or_else(|e| panic!("{e}"));
    (answer.code, answer.head, answer.body)
}

/// `METHOD path` over a fresh connection: the status code and the body.
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let answer = svcid_testkit::http::request(port, method, path).unwrap_or_else(|e| panic!("{e}"));
    (answer.code, answer.body)
}

/// `GET path` as JSON: the status code and the parsed body.
pub fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (code, _, body) = http_get(port, path);
    (code, serde_json::from_str(&body).unwrap())
}

/// The HTTP port a daemon logged in `httpServerStarted`.
pub fn http_port(daemon: &Daemon) -> u16 {
    http_port_after(daemon, 0)
}

/// The HTTP port of the daemon's run that logged after line `skip`.
pub fn http_port_after(daemon: &Daemon, skip: usize) -> u16 {
    let started = daemon.wait_for_after(skip, "httpServerStarted", |e| {
        e["eventId"] == "httpServerStarted"
    });
    event_port(&started).expect("port field")
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

impl Pair {
    /// Two homes with test settings (fast intervals, free ports: `svcid_testkit::homes`),
    /// linked with fresh keys.
    pub fn linked() -> Pair {
        let dir = tempfile::tempdir().expect("temp dir");
        let dpm = dir.path().join("dpm");
        let dpe = dir.path().join("dpe");
        homes::quick_dpm().write(&dpm).unwrap();
        homes::quick_dpe().write(&dpe).unwrap();
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
        let path = properties_file(home);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(line);
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    /// Replaces text in a home's properties file.
    pub fn replace(home: &Path, from: &str, to: &str) {
        let path = properties_file(home);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from:?} not in {}", path.display());
        std::fs::write(path, text.replace(from, to)).unwrap();
    }

    /// Sets a home's properties file's unix permission bits (e.g. `0o600`).
    #[cfg(unix)]
    pub fn set_mode(home: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(properties_file(home), std::fs::Permissions::from_mode(mode))
            .unwrap();
    }

    /// Like [`Pair::replace`], but atomically (a sibling file renamed over the original, with the
    /// same permissions), so a daemon polling the file never reads it half-written.
    pub fn replace_atomically(home: &Path, from: &str, to: &str) {
        let path = properties_file(home);
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
        homes::property(home, name)
            .unwrap()
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
    child: ChildGuard,
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
        let child = spawn_daemon(name, home, args, &[], |command| {
            command.stderr(Stdio::piped());
            configure(command);
        })
        .unwrap_or_else(|e| panic!("{e}"));
        Daemon {
            child,
            log: json_log(home),
            home: home.to_owned(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid().expect("running")
    }

    /// The bound gRPC port, from its `grpcServerStarted` event (the last one: restarts append).
    pub fn port(&self) -> u16 {
        let events = self.events();
        let started = events
            .iter()
            .rev()
            .find(|e| e["eventId"] == "grpcServerStarted")
            .expect("grpcServerStarted logged");
        event_port(started).expect("port field")
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
        wait_for_event(&self.log, skip, what, PATIENCE, matches).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Whether the process is still running (it has not exited, crashed or been killed).
    pub fn is_running(&mut self) -> bool {
        self.child.is_running().expect("wait")
    }

    /// Waits for the process to exit (at most [`PATIENCE`]) and returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        self.child
            .wait_exit(PATIENCE)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Parses a JSON log file; every line must be a JSON object.
pub fn read_events(path: &Path) -> Vec<Value> {
    svcid_testkit::log::read_events(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Makes a gRPC call, and makes it again (at most four more times) while the server refused its
/// HTTP/2 stream before processing it (`REFUSED_STREAM`), as grpc-java and grpc-go do
/// transparently. A client that keeps `max_concurrent_streams` calls in flight on one connection
/// meets this when it opens a stream the moment it saw the previous one end, before the server
/// released it; tonic hands the reset to the caller.
pub async fn retrying_refused_streams<T, F, Call>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Call,
    Call: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut attempts = 1;
    loop {
        match call().await {
            Err(status) if attempts < 5 && refused_stream(&status) => attempts += 1,
            outcome => return outcome,
        }
    }
}

/// Whether the server reset the call's stream with `REFUSED_STREAM` (nothing was processed).
fn refused_stream(status: &tonic::Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM);
        }
        cause = error.source();
    }
    false
}
