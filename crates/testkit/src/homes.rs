//! Module homes: `<home>/etc/application.properties` written line by line from the property
//! names of [`svcid_config::names`], as `svcid link` and an operator would write them.

use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};

use svcid_config::names::{self, deployment};
use svcid_identity::jwk::GeneratorKey;

/// The properties file of the module whose home is `home`.
pub fn properties_file(home: &Path) -> PathBuf {
    home.join("etc").join("application.properties")
}

/// The value of `name` in the properties file of `home`, as `svcid link` writes it (one
/// `name=value` line); `None` when no line sets it.
pub fn property(home: &Path, name: &str) -> io::Result<Option<String>> {
    let text = std::fs::read_to_string(properties_file(home))?;
    Ok(text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix('=')
            .map(str::to_owned)
    }))
}

/// The text of a properties file, one `name=value` line after another.
#[derive(Debug, Clone, Default)]
pub struct Properties {
    /// The lines so far, each ending in a newline.
    text: String,
}

impl Properties {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `name=value`.
    pub fn set(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.line(format_args!("{name}={value}"))
    }

    /// Appends `<prefix>.<field>=value` (a map entry such as `logging.level.root`).
    pub fn set_under(&mut self, prefix: &str, field: &str, value: impl Display) -> &mut Self {
        self.line(format_args!("{prefix}.{field}={value}"))
    }

    /// Appends a line as it is (`extra` lines a caller was given).
    pub fn line(&mut self, line: impl Display) -> &mut Self {
        self.text.push_str(&line.to_string());
        self.text.push('\n');
        self
    }

    /// Appends the deployment of a trusted peer: its module type, its key (`key`) and its roles.
    pub fn trust(&mut self, peer: &TrustedPeer) -> &mut Self {
        let prefix = format!("{}.{}", names::DEPLOYMENTS, peer.name);
        let key = format!("{prefix}.{}.key", deployment::JWT_KEYS);
        self.set_under(&prefix, deployment::MODULE, &peer.module)
            .set_under(&key, deployment::FINGERPRINT, &peer.key_kid)
            .set_under(&key, deployment::CONTENT, &peer.key_content);
        for (i, role) in peer.roles.iter().enumerate() {
            self.line(format_args!("{prefix}.{}[{i}]={role}", deployment::ROLES));
        }
        self
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Writes the file into `home` (creating `home/etc`).
    pub fn write(&self, home: &Path) -> io::Result<()> {
        std::fs::create_dir_all(home.join("etc"))?;
        std::fs::write(properties_file(home), &self.text)
    }
}

/// A peer a module trusts: a `…deployments.<name>` entry with one key (`key`).
#[derive(Debug, Clone)]
pub struct TrustedPeer {
    /// Deployment name (`dpe-17`).
    pub name: String,
    /// Module type (`dpe`).
    pub module: String,
    /// The key the peer signs with (only its public half is written).
    pub key_kid: String,
    /// The public JWK, as `content`.
    pub key_content: String,
    /// The roles granted to the peer.
    pub roles: Vec<String>,
}

impl TrustedPeer {
    /// A `module` peer signing with `key`, without roles.
    pub fn new(name: impl Into<String>, module: &str, key: &GeneratorKey) -> Self {
        Self {
            name: name.into(),
            module: module.to_owned(),
            key_kid: key.kid().to_owned(),
            key_content: key.public_key().content_json(),
            roles: Vec::new(),
        }
    }

    /// A `dpe`-module peer signing with `key`, holding the `IMPERSONATION` role like `svcid link`
    /// grants.
    pub fn dpe(name: impl Into<String>, key: &GeneratorKey) -> Self {
        Self {
            roles: vec!["IMPERSONATION".to_owned()],
            ..Self::new(name, "dpe", key)
        }
    }
}

/// A DPM for the end-to-end tests, before `svcid link` adds keys: gRPC and HTTP on free loopback
/// ports (so tests run in parallel), checks fast enough to see a transition within a second or
/// two, the JSON log only, at `DEBUG`.
pub fn quick_dpm() -> Properties {
    let mut p = Properties::new();
    p.set(names::GRPC_HOST, "127.0.0.1")
        .set(names::GRPC_PORT, 0)
        .set(names::SERVER_PORT, 0)
        .set(names::CHECK_CONNECTED_INTERVAL, "300ms")
        .set(names::CHECK_DISCONNECTED_INTERVAL, "300ms")
        .set(names::CHECK_DISCONNECTED_MAX, "1s")
        .set(names::CHECKER_TIMEOUT, "1s")
        .set(names::PLAIN_CONSOLE, false)
        .set_under(names::LOG_LEVEL, "root", "DEBUG");
    p
}

/// A DPE for the end-to-end tests, before `svcid link` adds keys: as [`quick_dpm`], registering
/// with a DPM on 127.0.0.1 every 300 ms and advertising `constraints.spark=true`.
pub fn quick_dpe() -> Properties {
    let mut p = Properties::new();
    p.set(names::GRPC_HOST, "127.0.0.1")
        .set(names::GRPC_PORT, 0)
        .set(names::SERVER_PORT, 0)
        .set(names::DPM_HOST, "127.0.0.1")
        .set(names::SERVICE_HOSTNAME, "127.0.0.1")
        .set(names::CHECK_CONNECTION_INTERVAL, "300ms")
        .set_under(names::CONSTRAINTS, "spark", true)
        .set(names::PLAIN_CONSOLE, false)
        .set_under(names::LOG_LEVEL, "root", "DEBUG");
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_home_lists_every_peer_with_its_key_and_roles() {
        let dir = tempfile::tempdir().unwrap();
        let peer = GeneratorKey::generate();
        let mut p = Properties::new();
        p.set(names::GRPC_PORT, 1234)
            .trust(&TrustedPeer::dpe("dpe-1", &peer))
            .line("logging.level.root=INFO");
        p.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(properties_file(dir.path())).unwrap();
        assert!(text.starts_with("ataccama.server.grpc.port=1234\n"));
        let prefix = "ataccama.one.platform.deployments.dpe-1";
        assert!(text.contains(&format!("{prefix}.module=dpe\n")));
        assert!(text.contains(&format!(
            "{prefix}.security.jwt-keys.key.fingerprint={}\n",
            peer.kid()
        )));
        assert!(text.contains(&format!("{prefix}.security.roles[0]=IMPERSONATION\n")));
        assert!(text.ends_with("logging.level.root=INFO\n"));
    }
}
