//! A module home: the folder an installed module lives in, laid out as the product lays it out
//! (`etc/application.properties`, `log/`, `data/`).

use std::path::{Path, PathBuf};

/// Which daemon a home belongs to; decides defaults and the token audience peers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModuleKind {
    /// Data Processing Module: the engine registry.
    Dpm,
    /// Data Processing Engine: registers with DPM.
    Dpe,
}

impl ModuleKind {
    /// The module type as deployments, `aud` claims and logs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleKind::Dpm => "dpm",
            ModuleKind::Dpe => "dpe",
        }
    }

    /// Default `ataccama.server.grpc.port`.
    pub fn default_grpc_port(self) -> u16 {
        match self {
            ModuleKind::Dpm => 8531,
            ModuleKind::Dpe => 8532,
        }
    }
}

impl std::fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Paths inside a module home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleHome {
    /// The home folder itself, as the user gave it.
    root: PathBuf,
}

impl ModuleHome {
    /// Wraps a home folder; nothing is touched on disk.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The home folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `etc/application.properties`, the module's configuration file.
    pub fn properties_file(&self) -> PathBuf {
        self.root.join("etc").join("application.properties")
    }

    /// `log/`, the default `logging.file.path`.
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    /// `data/`, where a module keeps state across restarts.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `data/engine-id`, DPE's persisted engine UUID.
    pub fn engine_id_file(&self) -> PathBuf {
        self.data_dir().join("engine-id")
    }
}
