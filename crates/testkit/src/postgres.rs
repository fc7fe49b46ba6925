//! A real PostgreSQL server for DPM's registry tests and benchmarks: `initdb` and `pg_ctl` of the
//! installed `postgresql` package, on a free loopback port, in a temporary folder, stopped on drop.
//!
//! The server refuses to run as root, so under root it runs as the `postgres` user (`runuser`) in
//! a folder that user owns. Connections over 127.0.0.1 need the password (scram-sha-256), so
//! whoever uses it exercises `spring.datasource.password`. `fsync` is off: the data is thrown
//! away, and a benchmark then measures DPM, not the disk.
//!
//! [`Postgres::start_with`] can start it with `ssl=on` ([`ServerTls`]: a certificate and key made
//! at run time by [`crate::pki`], written into the data folder owned by the server's user, mode
//! 0600, as the server demands), and with a `pg_hba.conf` that takes TCP connections over TLS only
//! ([`Access::TlsOnly`]) or by client certificate only ([`Access::ClientCertificate`]).
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

/// The server's TLS: `ssl=on` with this certificate and key.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The server's certificate and key.
    pub identity: crate::pki::Issued,
    /// The CA certificate (PEM) that issues client certificates (`ssl_ca_file`), if any.
    pub client_ca_pem: Option<Vec<u8>>,
}

/// Who may connect over TCP (`pg_hba.conf`); the Unix socket is always trusted (the harness's
/// own `createdb` and [`Postgres::sql`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Access {
    /// With the password, with or without TLS (`host … scram-sha-256`, initdb's own).
    #[default]
    Password,
    /// With the password over TLS only (`hostssl … scram-sha-256`): plain connections are refused.
    TlsOnly,
    /// Over TLS with a client certificate whose CN is the user name (`hostssl … cert`).
    ClientCertificate,
}

/// How [`Postgres::start_with`] sets the server up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `ssl=on` with this identity; `None`: no TLS (the server answers `N` to a TLS request).
    pub tls: Option<ServerTls>,
    /// Who may connect over TCP.
    pub access: Access,
}

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
        Self::start_with(Options::default())
    }

    /// As [`Postgres::start`], with TLS and access as `options` say.
    pub fn start_with(options: Options) -> io::Result<Postgres> {
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
        pg.configure(&options)?;
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

    /// Writes the TLS files and settings and `pg_hba.conf` before the first start.
    fn configure(&self, options: &Options) -> io::Result<()> {
        let data = self.dir.path().join("data");
        if let Some(tls) = &options.tls {
            let mut settings =
                "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    .to_owned();
            self.write_private(&data.join("server.crt"), &tls.identity.cert_pem)?;
            self.write_private(&data.join("server.key"), &tls.identity.key_pem)?;
            if let Some(ca) = &tls.client_ca_pem {
                self.write_private(&data.join("client-ca.crt"), ca)?;
                settings.push_str("ssl_ca_file = 'client-ca.crt'\n");
            }
            let conf = data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf)?;
            text.push_str(&settings);
            std::fs::write(&conf, text)?;
        }
        let tcp = match options.access {
            Access::Password => return Ok(()),
            Access::TlsOnly => "hostssl all all 127.0.0.1/32 scram-sha-256",
            Access::ClientCertificate => "hostssl all all 127.0.0.1/32 cert",
        };
        std::fs::write(
            data.join("pg_hba.conf"),
            format!("local all all trust\nlocal replication all trust\n{tcp}\n"),
        )
    }

    /// Writes a file the server reads, owned by the server's user, mode 0600 (the server refuses
    /// a key others can read).
    fn write_private(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, bytes)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        if is_root() {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(path)
                .status()?;
            if !status.success() {
                return Err(io::Error::other(format!(
                    "chown postgres:postgres {} failed ({status})",
                    path.display()
                )));
            }
        }
        Ok(())
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

    /// The `spring.datasource.url` of this server's [`DATABASE`] at `host` (`127.0.0.1`,
    /// `localhost`) with the query `query` (`sslmode=…&…`; empty for none), JDBC form.
    pub fn url(&self, host: &str, query: &str) -> String {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("jdbc:postgresql://{host}:{}/{DATABASE}{query}", self.port)
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
