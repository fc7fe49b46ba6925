//! Which module a home belongs to, decided from everything the home holds, in one place for the
//! daemons, `svcid link` and `svcid check`.
//!
//! The evidence, each piece said in words with where it was found:
//!
//! - properties only one daemon reads, in the home's file (`ataccama.client.connection.dpm.*`,
//!   `ataccama.one.dpe.*` and `constraints.*` only a dpe; `ataccama.one.dpm.*` and
//!   `spring.datasource.*` only a dpm);
//! - `data/engine-id`, which only a dpe writes;
//! - the home's own JSON log: the module named by the last `grpcServerStarted` event there;
//! - the deployments: a home whose deployments trust only dpm peers is a dpe's, and the reverse;
//! - last, and only as a hint, a folder named `dpm` or `dpe`.
//!
//! [`judge`] turns the pieces into a [`Verdict`]: one module when every piece agrees, a
//! [`Verdict::Conflict`] naming both sides when they do not. Environment variables and arguments
//! are not evidence: they belong to one start, not to the home.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use svcid_printable::escaped;
use svcid_properties::{Origin, PropertySet};

use crate::home::{ModuleHome, ModuleKind};
use crate::names::{self, deployment as field};

/// The event a daemon logs once it serves; its `module` field names the daemon. The daemons log
/// it under this id (`svcid_grpc::events::GRPC_SERVER_STARTED` is this constant).
pub const STARTED_EVENT: &str = "grpcServerStarted";

/// Property groups only one daemon reads.
const ONLY: &[(ModuleKind, &str)] = &[
    (ModuleKind::Dpe, names::DPM_CONNECTION),
    (ModuleKind::Dpe, names::DPE),
    (ModuleKind::Dpe, names::CONSTRAINTS),
    (ModuleKind::Dpm, names::DPM),
    (ModuleKind::Dpm, names::DATASOURCE),
];

/// One piece of evidence: the module it points to and what it is, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clue {
    /// The module this piece points to.
    pub kind: ModuleKind,
    /// What was found and where (`it sets ataccama.one.dpe.service.hostname
    /// (etc/application.properties:7), which only a dpe reads`).
    pub what: String,
    /// The same in a few words, for a headline (`it sets dpe-only properties`).
    pub short: String,
    /// A hint only (the folder's name): decides nothing against real evidence, refuses nothing.
    pub hint: bool,
}

/// What the evidence says about a home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing in the home tells.
    Unknown,
    /// Every piece points to one module.
    Module {
        /// The module.
        kind: ModuleKind,
        /// Each piece.
        because: Vec<Clue>,
        /// Only the folder's name said so.
        hint_only: bool,
    },
    /// Pieces point to both modules.
    Conflict {
        /// What says dpm.
        dpm: Vec<Clue>,
        /// What says dpe.
        dpe: Vec<Clue>,
    },
}

impl Verdict {
    /// The module, when the evidence (not a mere hint) names exactly one.
    pub fn decided(&self) -> Option<ModuleKind> {
        match self {
            Verdict::Module {
                kind,
                hint_only: false,
                ..
            } => Some(*kind),
            _ => None,
        }
    }

    /// One line, each piece with where it was found: `it sets … (file:line), …; its log …` for a
    /// module, both sides for a conflict.
    pub fn reasons(&self) -> String {
        match self {
            Verdict::Unknown => "nothing in the home tells".to_owned(),
            Verdict::Module { because, .. } => long(because),
            Verdict::Conflict { dpm, dpe } => {
                format!("for dpm: {}; for dpe: {}", long(dpm), long(dpe))
            }
        }
    }
}

/// Each clue with where it was found, `; `-separated.
pub fn long(clues: &[Clue]) -> String {
    clues
        .iter()
        .map(|c| c.what.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Each clue in a few words, `, `-separated.
pub fn short(clues: &[Clue]) -> String {
    clues
        .iter()
        .map(|c| c.short.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every piece of evidence in the home at `root`, in this order: its deployments, the properties
/// only one daemon reads, `data/engine-id`, its log, its folder's name. A file that cannot be read
/// or parsed gives no property evidence.
pub fn gather(root: &Path) -> Vec<Clue> {
    gather_in(root, &file_properties(root))
}

/// The properties file of the home at `root`, read on its own; empty when it cannot be read or
/// parsed.
fn file_properties(root: &Path) -> PropertySet {
    let file = ModuleHome::new(root).properties_file();
    let mut props = PropertySet::new();
    if props.load_file(&file, &file).is_err() {
        props = PropertySet::new();
    }
    props
}

/// [`gather`] with the home's properties already read (a daemon reads them once at start, and a
/// properties file of 10,000 deployments takes a while to parse); only the values that come from
/// the properties file count as evidence.
pub fn gather_in(root: &Path, props: &PropertySet) -> Vec<Clue> {
    let home = ModuleHome::new(root);
    let mut clues: Vec<Clue> = deployment_clue(props).into_iter().collect();
    clues.extend(property_clues(props));
    let engine_id = home.engine_id_file();
    if engine_id.is_file() {
        clues.push(Clue {
            kind: ModuleKind::Dpe,
            what: format!("it has {}, which only a dpe writes", engine_id.display()),
            short: "it has data/engine-id".to_owned(),
            hint: false,
        });
    }
    let log = log_file(&home, props);
    if let Some((kind, line)) = last_started(&log) {
        clues.push(Clue {
            kind,
            what: format!(
                "its log {}:{line} says a {kind} last started here",
                log.display()
            ),
            short: format!("its log says a {kind} ran here"),
            hint: false,
        });
    }
    let folder = root
        .canonicalize()
        .unwrap_or_else(|_| root.to_owned())
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    for kind in [ModuleKind::Dpm, ModuleKind::Dpe] {
        if folder == kind.as_str() {
            clues.push(Clue {
                kind,
                what: format!("the folder is named {kind}"),
                short: format!("the folder is named {kind}"),
                hint: true,
            });
        }
    }
    clues
}

/// The first property of each module's groups only it reads, from the file only.
fn property_clues(props: &PropertySet) -> Vec<Clue> {
    let mut clues = Vec::new();
    for (kind, prefix) in ONLY {
        if clues.iter().any(|c: &Clue| c.kind == *kind) {
            continue;
        }
        let found = props
            .entries_under(prefix)
            .into_iter()
            .find(|v| from_file(v));
        if let Some(value) = found {
            clues.push(Clue {
                kind: *kind,
                what: format!(
                    "it sets {} ({}), which only a {kind} reads",
                    escaped(&value.key),
                    value.origin
                ),
                short: format!("it sets {kind}-only properties"),
                hint: false,
            });
        }
    }
    clues
}

/// Whether `value` comes from the properties file (not the environment or an argument).
fn from_file(value: &svcid_properties::Value) -> bool {
    matches!(value.origin, Origin::File { .. })
}

/// The deployments' peers: only dpm peers point to a dpe home, only dpe peers to a dpm home.
fn deployment_clue(props: &PropertySet) -> Option<Clue> {
    let mut peers: Vec<(String, ModuleKind)> = Vec::new();
    for name in props.map_keys(names::DEPLOYMENTS) {
        let module = format!("{}.{name}.{}", names::DEPLOYMENTS, field::MODULE);
        let Some(value) = props.get(&module).filter(|v| from_file(v)) else {
            continue;
        };
        let kind = match value.raw.trim().to_ascii_lowercase().as_str() {
            "dpm" => ModuleKind::Dpm,
            "dpe" => ModuleKind::Dpe,
            _ => continue,
        };
        peers.push((name, kind));
    }
    let first = peers.first()?.1;
    if peers.iter().any(|(_, k)| *k != first) {
        return None;
    }
    let home = other(first);
    let names: Vec<String> = peers.iter().map(|(n, _)| escaped(n).into_owned()).collect();
    Some(Clue {
        kind: home,
        what: format!(
            "its deployments trust only {first} peers ({}), as a {home}'s do",
            names.join(", ")
        ),
        short: format!("its deployments trust a {first} peer"),
        hint: false,
    })
}

/// The other module of the pair.
pub fn other(kind: ModuleKind) -> ModuleKind {
    match kind {
        ModuleKind::Dpm => ModuleKind::Dpe,
        ModuleKind::Dpe => ModuleKind::Dpm,
    }
}

/// The JSON log file the home's daemon writes: `logging.file.path` from the file (relative to
/// the home), else `log/`.
fn log_file(home: &ModuleHome, props: &PropertySet) -> PathBuf {
    let dir = match props.get(names::LOG_PATH) {
        Some(v) if !v.raw.trim().is_empty() => home.root().join(v.raw.trim()),
        _ => home.log_dir(),
    };
    dir.join(svcid_logging::JSON_LOG_FILE)
}

/// The module of the last start event in `log`, with its line number; `None` when the file is
/// missing or holds none. Lines that are not JSON are skipped.
fn last_started(log: &Path) -> Option<(ModuleKind, usize)> {
    let file = std::fs::File::open(log).ok()?;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0;
    let mut last = None;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => number += 1,
        }
        let text = String::from_utf8_lossy(&line);
        if !text.contains(STARTED_EVENT) {
            continue;
        }
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if event["eventId"] != STARTED_EVENT {
            continue;
        }
        match event["module"].as_str() {
            Some("dpm") => last = Some((ModuleKind::Dpm, number)),
            Some("dpe") => last = Some((ModuleKind::Dpe, number)),
            _ => {}
        }
    }
    last
}

/// The verdict of `clues`: hints count only when nothing else tells.
pub fn judge(clues: &[Clue]) -> Verdict {
    let said = |kind: ModuleKind, hint: bool| -> Vec<Clue> {
        clues
            .iter()
            .filter(|c| c.kind == kind && c.hint == hint)
            .cloned()
            .collect()
    };
    let (dpm, dpe) = (said(ModuleKind::Dpm, false), said(ModuleKind::Dpe, false));
    match (dpm.is_empty(), dpe.is_empty()) {
        (false, false) => Verdict::Conflict { dpm, dpe },
        (false, true) => Verdict::Module {
            kind: ModuleKind::Dpm,
            because: dpm,
            hint_only: false,
        },
        (true, false) => Verdict::Module {
            kind: ModuleKind::Dpe,
            because: dpe,
            hint_only: false,
        },
        (true, true) => {
            for kind in [ModuleKind::Dpm, ModuleKind::Dpe] {
                let hints = said(kind, true);
                if !hints.is_empty() {
                    return Verdict::Module {
                        kind,
                        because: hints,
                        hint_only: true,
                    };
                }
            }
            Verdict::Unknown
        }
    }
}

/// What is wrong with taking the home at `root` as a `kind` home, when its evidence says it is the
/// other module's or contradicts itself; `None` when it agrees or nothing tells. The message
/// names the evidence and the fix.
pub fn mismatch(kind: ModuleKind, root: &Path) -> Option<String> {
    mismatch_of(kind, root, &judge(&gather(root)))
}

/// [`mismatch`] for a verdict already reached.
pub fn mismatch_of(kind: ModuleKind, root: &Path, verdict: &Verdict) -> Option<String> {
    let home = root.display();
    match verdict {
        Verdict::Module {
            kind: found,
            because,
            hint_only: false,
        } if *found != kind => Some(format!(
            "{home} looks like a {found} home, not a {kind} one: {}",
            long(because)
        )),
        Verdict::Conflict { dpm, dpe } => Some(format!(
            "{home} holds evidence of both modules: for dpm: {}; for dpe: {}",
            long(dpm),
            long(dpe)
        )),
        _ => None,
    }
}

/// Why the `kind` daemon must not start on the home at `root` ([`mismatch`]), with the fix;
/// `props` are the home's properties as the daemon read them.
pub fn refusal(kind: ModuleKind, root: &Path, props: &PropertySet) -> Option<String> {
    let verdict = judge(&gather_in(root, props));
    let why = mismatch_of(kind, root, &verdict)?;
    let home = root.display();
    Some(match verdict {
        Verdict::Conflict { .. } => format!(
            "{why}; remove what does not belong to this {kind} home (a property only the other \
             module reads, a deployment of the wrong module type, or a data/engine-id or log left \
             by the other module), then start again (svcid check {home} lists it)"
        ),
        _ => format!(
            "{why}; start `{} --home {home}` instead, or give {kind} a home of its own (svcid link \
             DPM_HOME DPE_HOME writes a pair; docs/keys.md)",
            other(kind)
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn home(dir: &Path, name: &str, text: &str) -> PathBuf {
        let root = dir.join(name);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/application.properties"), text).unwrap();
        root
    }

    #[test]
    fn properties_deployments_engine_id_and_log_each_tell() {
        let dir = tempfile::tempdir().unwrap();
        let engine = home(dir.path(), "a", "x=1\nconstraints.spark=true\n");
        let verdict = judge(&gather(&engine));
        assert_eq!(verdict.decided(), Some(ModuleKind::Dpe));
        assert!(
            verdict.reasons().contains("constraints.spark"),
            "{verdict:?}"
        );
        assert!(verdict.reasons().contains(":2)"), "{verdict:?}");

        let registry = home(
            dir.path(),
            "b",
            "ataccama.one.platform.deployments.e.module=DPE\n",
        );
        assert_eq!(judge(&gather(&registry)).decided(), Some(ModuleKind::Dpm));

        let ran = home(dir.path(), "c", "");
        std::fs::create_dir_all(ran.join("log")).unwrap();
        std::fs::write(
            ran.join("log").join(svcid_logging::JSON_LOG_FILE),
            "not json\n{\"eventId\":\"grpcServerStarted\",\"module\":\"dpe\"}\n\
             {\"eventId\":\"grpcServerStarted\",\"module\":\"dpm\"}\n",
        )
        .unwrap();
        let verdict = judge(&gather(&ran));
        assert_eq!(verdict.decided(), Some(ModuleKind::Dpm));
        assert!(verdict.reasons().contains(".json.log:3"), "{verdict:?}");

        let id = home(dir.path(), "d", "");
        std::fs::create_dir_all(id.join("data")).unwrap();
        std::fs::write(id.join("data/engine-id"), "x").unwrap();
        assert_eq!(judge(&gather(&id)).decided(), Some(ModuleKind::Dpe));
        assert!(
            refusal(ModuleKind::Dpm, &id, &file_properties(&id))
                .unwrap()
                .contains("dpe --home")
        );
        assert!(refusal(ModuleKind::Dpe, &id, &file_properties(&id)).is_none());
    }

    #[test]
    fn conflicting_evidence_names_both_sides_and_folder_names_are_hints() {
        let dir = tempfile::tempdir().unwrap();
        let mixed = home(
            dir.path(),
            "dpe",
            "ataccama.client.connection.dpm.host=127.0.0.1\n\
             ataccama.one.platform.deployments.dpm-dev.module=dpe\n",
        );
        let verdict = judge(&gather(&mixed));
        let Verdict::Conflict { dpm, dpe } = &verdict else {
            panic!("{verdict:?}")
        };
        assert!(
            dpm[0].what.contains("trust only dpe peers (dpm-dev)"),
            "{dpm:?}"
        );
        assert!(
            dpe[0].what.contains("ataccama.client.connection.dpm.host"),
            "{dpe:?}"
        );
        let refused = refusal(ModuleKind::Dpe, &mixed, &file_properties(&mixed)).unwrap();
        assert!(refused.contains("both modules"), "{refused}");

        // Engine properties, and a log saying a dpm last started here.
        let ran_dpm = home(dir.path(), "f", "ataccama.one.dpe.service.hostname=x\n");
        std::fs::create_dir_all(ran_dpm.join("log")).unwrap();
        std::fs::write(
            ran_dpm.join("log").join(svcid_logging::JSON_LOG_FILE),
            "{\"eventId\":\"grpcServerStarted\",\"module\":\"dpm\"}\n",
        )
        .unwrap();
        let refused = refusal(ModuleKind::Dpe, &ran_dpm, &file_properties(&ran_dpm)).unwrap();
        assert!(
            refused.contains("for dpm: its log ")
                && refused.contains("says a dpm last started here")
                && refused.contains("for dpe: it sets ataccama.one.dpe.service.hostname"),
            "{refused}"
        );
        assert!(refusal(ModuleKind::Dpm, &ran_dpm, &file_properties(&ran_dpm)).is_some());

        let named = home(dir.path(), "dpm", "");
        let verdict = judge(&gather(&named));
        assert_eq!(verdict.decided(), None);
        assert!(matches!(
            verdict,
            Verdict::Module {
                kind: ModuleKind::Dpm,
                hint_only: true,
                ..
            }
        ));
        assert!(refusal(ModuleKind::Dpe, &named, &file_properties(&named)).is_none());
        assert_eq!(judge(&gather(&home(dir.path(), "e", ""))), Verdict::Unknown);
        assert_eq!(
            judge(&gather(&dir.path().join("missing"))),
            Verdict::Unknown
        );
    }
}
