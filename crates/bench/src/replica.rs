//! One DPM of a run in its own home: in memory, or a replica on a PostgreSQL server shared with
//! others. Its process, ports and log; restarted on the same home and ports after a kill.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use svcid_identity::GeneratorKey;
use svcid_testkit::homes::TrustedPeer;
use svcid_testkit::log::LogTail;
use svcid_testkit::net::free_port;
use svcid_testkit::postgres::Postgres;

use crate::daemon::{DpmProcess, write_dpm_home};

/// One DPM of the run: its process, ports and log.
#[derive(Debug)]
pub struct Replica {
    /// `A`, `B` or `memory`.
    pub name: &'static str,
    /// Its home.
    pub home: PathBuf,
    /// The process.
    pub dpm: DpmProcess,
    /// Its gRPC port (fixed across restarts).
    pub grpc_port: u16,
    /// Its HTTP port (fixed across restarts).
    pub http_port: u16,
    /// Its log, read by [`Replica::wait_started`].
    pub tail: LogTail,
}

impl Replica {
    /// Writes the home `dir/<name>` (DPM signing with `key`, trusting `peers`, on `pg` when
    /// given, then the `extra` lines) and starts the DPM, without waiting.
    pub fn start(
        name: &'static str,
        dir: &Path,
        key: &GeneratorKey,
        peers: &[TrustedPeer],
        pg: Option<&Postgres>,
        extra: &[String],
    ) -> Result<Self> {
        let home = dir.join(name);
        let (grpc_port, http_port) = (free_port()?, free_port()?);
        let mut lines = vec![format!("server.port={http_port}")];
        if let Some(pg) = pg {
            lines.extend(pg.dpm_properties().lines().map(str::to_owned));
        }
        lines.extend(extra.iter().cloned());
        write_dpm_home(&home, grpc_port, key, peers, &lines)?;
        let dpm = DpmProcess::start(&home)?;
        let tail = LogTail::from_end(dpm.log_path());
        Ok(Self {
            name,
            home,
            dpm,
            grpc_port,
            http_port,
            tail,
        })
    }

    /// Starts it again on the same home and ports (after a kill).
    pub fn restart(&mut self) -> Result<()> {
        self.dpm = DpmProcess::start(&self.home)?;
        Ok(())
    }

    /// Waits (at most `patience`) until it serves gRPC.
    pub fn wait_started(&mut self, patience: Duration) -> Result<()> {
        self.dpm
            .wait_started(&mut self.tail, patience)
            .with_context(|| format!("replica {}", self.name))
            .map(drop)
    }

    /// `/actuator/prometheus`.
    pub fn prometheus(&self) -> Result<String> {
        let path = "/actuator/prometheus";
        let scrape = svcid_testkit::http::get(self.http_port, path).and_then(|a| a.ok_body(path));
        scrape.with_context(|| format!("scraping replica {}", self.name))
    }
}
