//! Opening a module home the way its daemon would: which module it is (given with `--module` or
//! inferred, always with the reason said out loud) and its settings loaded with
//! `svcid_config::load` semantics from the file alone, since the environment and arguments of a
//! daemon started elsewhere are not ours to see. Shared by `svcid check` and `svcid token`.

use std::path::{Path, PathBuf};

use svcid_config::evidence::{self, Verdict};
use svcid_config::{Loaded, ModuleHome, ModuleKind, Overrides, Problem};
use svcid_properties::PropertySet;

/// How `--module` was given for one home.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModuleChoice {
    /// Data Processing Module.
    Dpm,
    /// Data Processing Engine.
    Dpe,
    /// Infer it from the evidence in the home (deployments, role-only properties, data/engine-id,
    /// its log, folder name).
    Auto,
}

/// A module type and why it was chosen, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    /// The module type the home is loaded as.
    pub kind: ModuleKind,
    /// Why, in words (`--module`, `its deployments trust a dpm peer`, …).
    pub reason: String,
    /// Whether it was a guess of last resort, worth a warning.
    pub guessed: bool,
    /// What in the home says it is not `kind` (or says both), in words; an error for `check`.
    pub against: Option<String>,
}

/// One home as its daemon would load it.
#[derive(Debug)]
pub struct OpenedHome {
    /// The home folder as the user gave it.
    pub root: PathBuf,
    /// Its `etc/application.properties`.
    pub file: PathBuf,
    /// The module type it is loaded as.
    pub decided: Decided,
    /// The file's properties; `None` when the file could not be read or parsed.
    pub props: Option<PropertySet>,
    /// The daemon's verdict: settings and warnings, or every problem.
    pub loaded: Result<Loaded, Vec<Problem>>,
}

impl OpenedHome {
    /// Reads and binds `root` as `decided.kind`, exactly as the daemon's start-up does (minus
    /// environment variables and arguments).
    pub fn open(root: &Path, decided: Decided) -> OpenedHome {
        let home = ModuleHome::new(root);
        let file = home.properties_file();
        let (props, loaded) = match svcid_config::read_sources(&home, &Overrides::default()) {
            Ok(props) => {
                let loaded = svcid_config::bind(decided.kind, home, &props);
                (Some(props), loaded)
            }
            Err(problems) => (None, Err(problems)),
        };
        OpenedHome {
            root: root.to_owned(),
            file,
            decided,
            props,
            loaded,
        }
    }
}

/// The module type of `root` from the evidence in it (`svcid_config::evidence`: its deployments'
/// peers, properties only one daemon reads, `data/engine-id`, what its log says ran there, and,
/// as a hint, the folder's name). `None` when nothing tells. Conflicting evidence gives the side
/// with more pieces (dpm on a tie), with the conflict in `against`.
pub fn infer(root: &Path) -> Option<Decided> {
    let verdict = evidence::judge(&evidence::gather(root));
    match &verdict {
        Verdict::Unknown => None,
        Verdict::Module { kind, because, .. } => Some(decided(*kind, &evidence::short(because))),
        Verdict::Conflict { dpm, dpe } => {
            let kind = if dpe.len() > dpm.len() {
                ModuleKind::Dpe
            } else {
                ModuleKind::Dpm
            };
            Some(Decided {
                kind,
                reason: "its evidence conflicts".to_owned(),
                guessed: false,
                against: evidence::mismatch_of(kind, root, &verdict),
            })
        }
    }
}

fn decided(kind: ModuleKind, reason: &str) -> Decided {
    Decided {
        kind,
        reason: reason.to_owned(),
        guessed: false,
        against: None,
    }
}

/// A `--module` choice, with what in the home says otherwise.
fn chosen(kind: ModuleKind, root: &Path) -> Decided {
    Decided {
        against: evidence::mismatch(kind, root),
        ..decided(kind, &format!("--module {kind}"))
    }
}

/// The module type of each home: `choices[i]` applies to `roots[i]` (missing ones are `auto`).
/// A home nothing tells about is taken as the opposite of the other homes when they all agree,
/// and as dpm otherwise; both are marked `guessed`.
pub fn decide_all(roots: &[PathBuf], choices: &[ModuleChoice]) -> Vec<Decided> {
    let mut decided_so_far: Vec<Option<Decided>> = roots
        .iter()
        .enumerate()
        .map(
            |(i, root)| match choices.get(i).copied().unwrap_or(ModuleChoice::Auto) {
                ModuleChoice::Dpm => Some(chosen(ModuleKind::Dpm, root)),
                ModuleChoice::Dpe => Some(chosen(ModuleKind::Dpe, root)),
                ModuleChoice::Auto => infer(root),
            },
        )
        .collect();
    let known: Vec<ModuleKind> = decided_so_far.iter().flatten().map(|d| d.kind).collect();
    let others = match known.as_slice() {
        [first, rest @ ..] if rest.iter().all(|k| k == first) => Some(*first),
        _ => None,
    };
    for slot in &mut decided_so_far {
        if slot.is_none() {
            *slot = Some(match others {
                Some(ModuleKind::Dpm) => Decided {
                    kind: ModuleKind::Dpe,
                    reason: "guessed: the other home is a dpm (pass --module to be sure)".into(),
                    guessed: true,
                    against: None,
                },
                Some(ModuleKind::Dpe) => Decided {
                    kind: ModuleKind::Dpm,
                    reason: "guessed: the other home is a dpe (pass --module to be sure)".into(),
                    guessed: true,
                    against: None,
                },
                None => Decided {
                    kind: ModuleKind::Dpm,
                    reason: "guessed: nothing in the home tells (pass --module dpm|dpe)".into(),
                    guessed: true,
                    against: None,
                },
            });
        }
    }
    decided_so_far.into_iter().flatten().collect()
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
    fn peers_then_role_properties_then_folder_name() {
        let dir = tempfile::tempdir().unwrap();
        let trusts_dpm = home(
            dir.path(),
            "a",
            "ataccama.one.platform.deployments.x.module=dpm\n",
        );
        assert_eq!(infer(&trusts_dpm).unwrap().kind, ModuleKind::Dpe);
        let trusts_dpe = home(
            dir.path(),
            "dpe",
            "ataccama.one.platform.deployments.x.module=DPE\n",
        );
        assert_eq!(infer(&trusts_dpe).unwrap().kind, ModuleKind::Dpm);
        let engine = home(dir.path(), "b", "constraints.spark=true\n");
        assert_eq!(infer(&engine).unwrap().kind, ModuleKind::Dpe);
        let registry = home(
            dir.path(),
            "c",
            "ataccama.one.dpm.registry.check-connected-interval=1s\n",
        );
        assert_eq!(infer(&registry).unwrap().kind, ModuleKind::Dpm);
        let named = home(dir.path(), "dpm", "");
        let found = infer(&named).unwrap();
        assert_eq!(found.kind, ModuleKind::Dpm);
        assert_eq!(found.reason, "the folder is named dpm");
        assert!(found.against.is_none());
        assert!(infer(&home(dir.path(), "d", "")).is_none());
    }

    #[test]
    fn explicit_choices_win_and_unknowns_are_guessed_from_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let a = home(dir.path(), "a", "");
        let b = home(dir.path(), "b", "");
        let all = decide_all(&[a.clone(), b.clone()], &[ModuleChoice::Dpe]);
        assert_eq!(all[0].kind, ModuleKind::Dpe);
        assert!(!all[0].guessed);
        assert_eq!(all[1].kind, ModuleKind::Dpm);
        assert!(all[1].guessed);
        let alone = decide_all(&[a], &[]);
        assert_eq!(alone[0].kind, ModuleKind::Dpm);
        assert!(alone[0].guessed);
    }
}
