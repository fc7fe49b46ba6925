//! A real PostgreSQL server for DPM's registry tests and benchmarks: `initdb` and `pg_ctl` of the
//! installed `postgresql` package, on a free loopback port, in a temporary folder, stopped on drop.
//!
//! The server refuses to run as root, so under root it runs as the `postgres` user (`runuser`) in
//! a folder that user owns. Connections over 127.0.0.1 need the password (scram-sha-256), so
//! whoever uses it exercises `spring.datasource.password`. `fsync` is off: the data is thrown
//! away, and a benchmark then measures DPM, not the disk.
//!
//! Every failure is an [`std::io::Error`] naming the program and what it printed.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use svcid_config::names;

use crate::net::free_port;

/// The database user DPM logs in as.
pub const USER: &str = "one";
/// Its password: must never appear in a log, an error or `/actuator/*`.
pub const PASSWORD: &str = "pw-9f3c2e-never-logged";
/// The database created for DPM.
pub const DATABASE: &str = "dpm";

/// A running PostgreSQL server; stopped (and its folder removed) on drop.
#[derive(Debug)]
pub struct Postgres {
    /// Owns the folder (data, socket, server log).
    dir: tempfile::TempDir,
    /// The folder with `initdb`, `pg_ctl`, `createdb`, `psql`.
    bin: PathBuf,
    /// The server's loopback port.
    pub port: u16,
}

/// The installed server's programs: `$PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
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
    found.pop().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql, or set PG_BIN",
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// Initialises a cluster with user [`USER`] and database [`DATABASE`], and starts it.
    pub fn start() -> io::Result<Postgres> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("svcid-pg-").tempdir()?;
        std::fs::write(dir.path().join("pwfile"), format!("{PASSWORD}\n"))?;
        if is_root() {
            let status = Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()?;
            if !status.success() {
                return Err(io::Error::other(format!(
                    "chown -R postgres:postgres {} failed ({status})",
                    dir.path().display()
                )));
            }
        }
        let pg = Postgres {
            dir,
            bin,
            port: free_port()?,
        };
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
        )?;
        pg.start_server()?;
        pg.run_ok(
            "createdb",
            &[
                "-h",
                &pg.path(""),
                "-p",
                &pg.port.to_string(),
                "-U",
                USER,
                DATABASE,
            ],
        )?;
        Ok(pg)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn data(&self) -> String {
        self.path("data")
    }

    /// Runs one of the server's programs (as `postgres` under root).
    fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
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
            .map_err(|e| io::Error::new(e.kind(), format!("running {}: {e}", exe.display())))
    }

    /// Runs `program`; its standard output, or an error with what it printed.
    fn run_ok(&self, program: &str, args: &[&str]) -> io::Result<String> {
        let out = self.run(program, args)?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{program} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The server's own log (what it refused, what it ran with `log_statement`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn start_server(&self) -> io::Result<()> {
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
        )
        .map(drop)
    }

    /// Stops the server now (`immediate`: as if it crashed or the network dropped).
    pub fn stop_server(&self) -> io::Result<()> {
        self.run_ok(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        )
        .map(drop)
    }

    /// The properties that point a DPM at this server's [`DATABASE`].
    pub fn dpm_properties(&self) -> String {
        format!(
            "{}=jdbc:postgresql://127.0.0.1:{}/{DATABASE}\n{}={USER}\n{}={PASSWORD}\n",
            names::DATASOURCE_URL,
            self.port,
            names::DATASOURCE_USERNAME,
            names::DATASOURCE_PASSWORD
        )
    }

    /// Runs SQL with `psql` over the socket; its output, unaligned, tuples only.
    pub fn sql(&self, sql: &str) -> io::Result<String> {
        self.run_ok(
            "psql",
            &[
                "-h",
                &self.path(""),
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                DATABASE,
                "-At",
                "-c",
                sql,
            ],
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop_server();
    }
}

/// Whether `path` holds `text` anywhere (for secrets that must not be written).
pub fn file_contains(path: &Path, text: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(text))
}
