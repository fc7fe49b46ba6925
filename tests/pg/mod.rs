//! A real PostgreSQL server for the registry tests: `initdb` and `pg_ctl` of the installed
//! `postgresql` package, on a free loopback port, in a temporary folder, stopped on drop. The
//! server refuses to run as root, so under root it runs as the `postgres` user (`runuser`) in a
//! folder that user owns. Connections over 127.0.0.1 need the password (scram-sha-256), so the
//! tests exercise `spring.datasource.password`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The database user the tests' DPMs log in as.
pub const USER: &str = "one";
/// Its password: must never appear in a log, an error or `/actuator/*`.
pub const PASSWORD: &str = "pw-9f3c2e-never-logged";

/// A running PostgreSQL server; stopped (and its folder removed) on drop.
pub struct Postgres {
    /// Owns the folder (data, socket, server log).
    dir: tempfile::TempDir,
    /// The folder with `initdb`, `pg_ctl`, `createdb`.
    bin: PathBuf,
    /// The server's loopback port.
    pub port: u16,
}

/// The installed server's programs: `$PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql, or set PG_BIN",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// Initialises a cluster with user [`USER`] and database `dpm`, and starts it.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("svcid-pg-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("pwfile"), format!("{PASSWORD}\n")).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown to postgres failed");
        }
        let port = super::common::free_port();
        let pg = Postgres { dir, bin, port };
        pg.run_ok(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                &pg.path("pwfile"),
                "--no-sync",
            ],
        );
        pg.start_server();
        pg.run_ok(
            "createdb",
            &[
                "-h",
                &pg.path(""),
                "-p",
                &port.to_string(),
                "-U",
                USER,
                "dpm",
            ],
        );
        pg
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn data(&self) -> String {
        self.path("data")
    }

    /// Runs one of the server's programs (as `postgres` under root).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"))
    }

    fn run_ok(&self, program: &str, args: &[&str]) {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run_ok(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &self.path("server.log"),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server now (`immediate`: as if it crashed or the network dropped).
    pub fn stop_server(&self) {
        self.run_ok(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// The properties that point a DPM at this server's `dpm` database.
    pub fn dpm_properties(&self) -> String {
        format!(
            "spring.datasource.url=jdbc:postgresql://127.0.0.1:{}/dpm\nspring.datasource.username={USER}\nspring.datasource.password={PASSWORD}\n",
            self.port
        )
    }

    /// Runs SQL with `psql` over the socket; its output, unaligned, tuples only.
    pub fn sql(&self, sql: &str) -> String {
        let out = self.run(
            "psql",
            &[
                "-h",
                &self.path(""),
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                "dpm",
                "-At",
                "-c",
                sql,
            ],
        );
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

/// Whether `path` holds `text` anywhere (for secrets that must not be written).
pub fn file_contains(path: &Path, text: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(text))
}
