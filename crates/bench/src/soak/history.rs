//! What happened during a soak, in order, and the invariants checked over all of it.
//!
//! Entries are stamped with the soak's own clock when it saw them (a log line when its tail was
//! read, every 100 ms; a call when it was sent), so bounds below carry a second of slack.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::plan::{Fault, LONG_FREEZE, SHORT_FREEZE};

/// Checker interval + timeout (1 s + 2 s) + slack: a frozen engine whose owner is up is
/// DISCONNECTED this long after it froze, at the latest.
pub const DISCONNECTED_WITHIN: Duration = Duration::from_millis(4500);
/// After a thaw: the engine's next registration (every 5 s, jittered) or the checker's back-off
/// brings it back READY within this.
pub const READY_AGAIN_WITHIN: Duration = Duration::from_secs(10);
/// A revoked key is refused on every replica this long after the change (on a replica that was
/// running; one paused or killed meanwhile gets this long after it runs again).
pub const REVOKED_WITHIN: Duration = Duration::from_secs(2);

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Since the start of the faults.
    pub at: Duration,
    /// What.
    pub what: What,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered.
    Answered,
    /// `UNAUTHENTICATED` or `PERMISSION_DENIED`.
    Refused,
    /// Anything else (the replica down, paused, flooded, a deadline).
    Failed,
}

/// The kinds of entry.
#[derive(Debug, Clone)]
pub enum What {
    /// A fault began.
    FaultBegan(Fault),
    /// A fault ended (the replica restarted, the database up, engines thawed, keys switched).
    FaultEnded(String),
    /// Something the soak did or saw that is not a fault (a key switched, a restart refused).
    Note(String),
    /// A replica logged a status change of an engine.
    Status {
        replica: &'static str,
        engine: String,
        status: &'static str,
    },
    /// A daemon logged a refused call (`authenticationFailed`).
    Refusal {
        daemon: &'static str,
        kid: String,
        reason: String,
    },
    /// A daemon logged an ERROR line, or a panic.
    Error { daemon: &'static str, line: String },
    /// A daemon exited without being told to.
    Exited {
        daemon: &'static str,
        status: String,
    },
    /// The soak's caller called `WhoAmI` on a replica with a key.
    Call {
        replica: &'static str,
        kid: String,
        outcome: Outcome,
    },
    /// A replica ran again (started, restarted or continued after SIGSTOP).
    Running { replica: &'static str },
    /// A key was revoked on every replica's file.
    Revoked { kid: String },
    /// The database's rows were checked.
    Rows { missing: usize, engines: usize },
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>9.3}s  ", self.at.as_secs_f64())?;
        match &self.what {
            What::FaultBegan(fault) => write!(f, "FAULT  {fault}"),
            What::FaultEnded(text) => write!(f, "END    {text}"),
            What::Note(text) => write!(f, "NOTE   {text}"),
            What::Status {
                replica,
                engine,
                status,
            } => write!(f, "{replica}      {engine} {status}"),
            What::Refusal {
                daemon,
                kid,
                reason,
            } => {
                write!(f, "{daemon}      refused kid {kid}: {reason}")
            }
            What::Error { daemon, line } => write!(f, "{daemon}      ERROR {line}"),
            What::Exited { daemon, status } => write!(f, "{daemon}      exited: {status}"),
            What::Call {
                replica,
                kid,
                outcome,
            } => write!(f, "call   WhoAmI on {replica} with {kid}: {outcome:?}"),
            What::Running { replica } => write!(f, "{replica}      running"),
            What::Revoked { kid } => write!(f, "KEYS   revoked {kid} on every replica"),
            What::Rows { missing, engines } => {
                write!(f, "ROWS   {engines} engine rows, {missing} engines missing")
            }
        }
    }
}

/// The whole history of a run.
#[derive(Debug, Default)]
pub struct History {
    /// Oldest first (entries are pushed as seen; sorted before checking).
    pub entries: Vec<Entry>,
}

/// A broken invariant: which, and the slice of history that shows it.
#[derive(Debug)]
pub struct Violation {
    /// The invariant.
    pub invariant: &'static str,
    /// What was wrong.
    pub detail: String,
    /// When it shows.
    pub at: Duration,
    /// The entries that matter, printed with it.
    pub subject: Option<String>,
}

/// Figures over the history beside the verdicts.
#[derive(Debug, Default)]
pub struct Findings {
    /// Broken invariants.
    pub violations: Vec<Violation>,
    /// Invariants checked, each with how many cases it covered.
    pub checked: Vec<(&'static str, usize)>,
    /// Longest from a long freeze to DISCONNECTED among undisturbed freezes.
    pub worst_disconnect: Duration,
    /// Longest from a thaw to READY.
    pub worst_ready_again: Duration,
    /// Long freezes whose bounds were not judged (an owner or the database was down nearby).
    pub freezes_disturbed: usize,
    /// Longest from a revocation to the last answered call with the revoked key, per replica.
    pub worst_revocation: Duration,
    /// Calls made, by outcome.
    pub calls: HashMap<&'static str, usize>,
}

impl History {
    /// Adds an entry.
    pub fn push(&mut self, at: Duration, what: What) {
        self.entries.push(Entry { at, what });
    }

    /// The entries from `from` to `to` about `subject` (an engine id, a kid) or faults.
    pub fn slice(&self, from: Duration, to: Duration, subject: Option<&str>) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.at >= from && e.at <= to)
            .filter(|e| match (&e.what, subject) {
                (What::FaultBegan(_) | What::FaultEnded(_) | What::Running { .. }, _) => true,
                (What::Call { .. }, None) => false,
                (_, None) => true,
                (What::Status { engine, .. }, Some(s)) => engine == s,
                (What::Refusal { kid, .. } | What::Call { kid, .. }, Some(s)) => kid == s,
                (What::Revoked { kid }, Some(s)) => kid == s,
                _ => false,
            })
            .collect()
    }

    /// Checks every invariant over the history. `long_freezes` are the freezes as they were
    /// carried out: engine id, frozen at, thawed at. `revoked` maps each revoked caller or
    /// engine kid to when it was revoked; `sim` names the simulated engines by id.
    pub fn check(&mut self, facts: &Facts) -> Findings {
        self.entries.sort_by_key(|e| e.at);
        let mut findings = Findings::default();
        self.answering_engines_stay(facts, &mut findings);
        self.frozen_engines_go_and_return(facts, &mut findings);
        self.revoked_keys_refused(facts, &mut findings);
        self.nothing_else_refused_or_failed(facts, &mut findings);
        findings
    }

    /// Every DISCONNECTED is of a simulated engine inside one of its long freezes.
    fn answering_engines_stay(&self, facts: &Facts, findings: &mut Findings) {
        let mut cases = 0;
        for entry in &self.entries {
            let What::Status {
                replica,
                engine,
                status: "DISCONNECTED",
            } = &entry.what
            else {
                continue;
            };
            cases += 1;
            let frozen = facts.freezes.iter().any(|f| {
                &f.engine == engine
                    && f.thawed - f.frozen >= SHORT_FREEZE
                    && entry.at + Duration::from_millis(500) >= f.frozen
                    && entry.at <= f.thawed + Duration::from_secs(1)
            });
            if !frozen {
                findings.violations.push(Violation {
                    invariant: "no engine that kept answering is marked DISCONNECTED",
                    detail: format!(
                        "replica {replica} marked {} DISCONNECTED though it was answering",
                        facts.name(engine)
                    ),
                    at: entry.at,
                    subject: Some(engine.clone()),
                });
            }
        }
        findings.checked.push((
            "no engine that kept answering is marked DISCONNECTED",
            cases,
        ));
    }

    /// Every long freeze ends in DISCONNECTED, and READY again after the thaw, within bounds
    /// when no owner or database fault was near.
    fn frozen_engines_go_and_return(&self, facts: &Facts, findings: &mut Findings) {
        let mut cases = 0;
        for freeze in facts
            .freezes
            .iter()
            .filter(|f| f.thawed - f.frozen >= LONG_FREEZE)
        {
            cases += 1;
            // Its owner killed or paused near the freeze: a takeover (about 4 s) and the move
            // back to its own replica after a restart (its next registrations) stretch the
            // bounds, so they are not timed. A database outage does not: owners keep checking.
            let home = facts.homes.get(&freeze.engine).copied();
            let disturbed = facts.owner_faults.iter().any(|(replica, from, to)| {
                Some(*replica) == home
                    && *from <= freeze.thawed + READY_AGAIN_WITHIN
                    && *to + Duration::from_secs(15) >= freeze.frozen
            });
            if disturbed {
                // Not timed; every engine must be READY once the faults are over (checked on
                // the database's rows at the end: a restarted owner that reads the row READY
                // logs no change).
                findings.freezes_disturbed += 1;
                continue;
            }
            let name = facts.name(&freeze.engine);
            let went =
                self.status_within(freeze, "DISCONNECTED", freeze.frozen, DISCONNECTED_WITHIN);
            match went {
                Ok(took) => findings.worst_disconnect = findings.worst_disconnect.max(took),
                Err(seen) => findings.violations.push(Violation {
                    invariant: "a frozen engine is DISCONNECTED within the bound",
                    detail: format!(
                        "{name} frozen at {:.1}s for {:.1}s: DISCONNECTED {seen}",
                        freeze.frozen.as_secs_f64(),
                        (freeze.thawed - freeze.frozen).as_secs_f64(),
                    ),
                    at: freeze.frozen,
                    subject: Some(freeze.engine.clone()),
                }),
            }
            match self.status_within(freeze, "READY", freeze.thawed, READY_AGAIN_WITHIN) {
                Ok(took) => findings.worst_ready_again = findings.worst_ready_again.max(took),
                Err(seen) => findings.violations.push(Violation {
                    invariant: "a thawed engine is READY again within the bound",
                    detail: format!(
                        "{name} thawed at {:.1}s: READY {seen}",
                        freeze.thawed.as_secs_f64()
                    ),
                    at: freeze.thawed,
                    subject: Some(freeze.engine.clone()),
                }),
            }
        }
        findings.checked.push((
            "a frozen engine goes DISCONNECTED and comes back READY",
            cases,
        ));
    }

    /// How long after `since` a replica first logged `status` for the frozen engine, if within
    /// `bound`; otherwise when it did (`at 12.3s`) or `never`.
    fn status_within(
        &self,
        freeze: &Freeze,
        status: &str,
        since: Duration,
        bound: Duration,
    ) -> Result<Duration, String> {
        let first = self.entries.iter().find_map(|e| match &e.what {
            What::Status {
                engine, status: s, ..
            } if engine == &freeze.engine && *s == status && e.at >= since => Some(e.at),
            _ => None,
        });
        match first {
            Some(at) if at <= since + bound => Ok(at - since),
            Some(at) => Err(format!("at {:.1}s", at.as_secs_f64())),
            None => Err("never".to_owned()),
        }
    }

    /// After a revocation, a call with the revoked key answered by a replica that had been
    /// running for [`REVOKED_WITHIN`] since is a violation.
    fn revoked_keys_refused(&self, facts: &Facts, findings: &mut Findings) {
        let mut cases = 0;
        let mut running_since: HashMap<&str, Duration> = HashMap::new();
        for entry in &self.entries {
            match &entry.what {
                What::Running { replica } => {
                    running_since.insert(replica, entry.at);
                }
                What::Call {
                    replica,
                    kid,
                    outcome,
                } => {
                    let Some(revoked) = facts.revoked.get(kid) else {
                        continue;
                    };
                    if entry.at < *revoked {
                        continue;
                    }
                    cases += 1;
                    let since = running_since
                        .get(replica)
                        .map_or(*revoked, |r| (*r).max(*revoked));
                    if *outcome == Outcome::Answered {
                        let late = entry.at.saturating_sub(*revoked);
                        if entry.at > since + REVOKED_WITHIN {
                            findings.violations.push(Violation {
                                invariant: "a revoked key is refused within 2 s on every replica",
                                detail: format!(
                                    "replica {replica} answered a call with revoked kid {kid} \
                                     {:.1}s after the revocation",
                                    late.as_secs_f64()
                                ),
                                at: entry.at,
                                subject: Some(kid.clone()),
                            });
                        } else {
                            findings.worst_revocation = findings.worst_revocation.max(late);
                        }
                    }
                }
                _ => {}
            }
        }
        findings.checked.push((
            "a revoked key is refused within 2 s on every replica",
            cases,
        ));
    }

    /// No valid key is ever refused, in a call or a log; no ERROR line, no panic, no exit.
    fn nothing_else_refused_or_failed(&self, facts: &Facts, findings: &mut Findings) {
        let mut refusals = 0;
        for entry in &self.entries {
            match &entry.what {
                What::Call {
                    replica,
                    kid,
                    outcome,
                } => {
                    let counted = match outcome {
                        Outcome::Answered => "answered",
                        Outcome::Refused => "refused",
                        Outcome::Failed => "failed (replica down or paused)",
                    };
                    *findings.calls.entry(counted).or_default() += 1;
                    if *outcome == Outcome::Refused && !facts.revoked.contains_key(kid) {
                        findings.violations.push(Violation {
                            invariant: "a rotated key never refuses a valid caller",
                            detail: format!("replica {replica} refused valid kid {kid}"),
                            at: entry.at,
                            subject: Some(kid.clone()),
                        });
                    }
                }
                What::Refusal {
                    daemon,
                    kid,
                    reason,
                } => {
                    refusals += 1;
                    if !facts.revoked.contains_key(kid) {
                        findings.violations.push(Violation {
                            invariant: "a rotated key never refuses a valid caller",
                            detail: format!("{daemon} refused kid {kid} ({reason})"),
                            at: entry.at,
                            subject: Some(kid.clone()),
                        });
                    }
                }
                What::Error { daemon, line } => {
                    findings.violations.push(Violation {
                        invariant: "no panic, no ERROR line",
                        detail: format!("{daemon}: {line}"),
                        at: entry.at,
                        subject: None,
                    });
                }
                What::Exited { daemon, status } => {
                    findings.violations.push(Violation {
                        invariant: "no daemon exits unasked",
                        detail: format!("{daemon} exited: {status}"),
                        at: entry.at,
                        subject: None,
                    });
                }
                What::Rows { missing, .. } if *missing > 0 => {
                    findings.violations.push(Violation {
                        invariant: "no engine row lost after a database restart",
                        detail: format!("{missing} engines have no row"),
                        at: entry.at,
                        subject: None,
                    });
                }
                _ => {}
            }
        }
        findings
            .checked
            .push(("every refusal logged names a revoked key", refusals));
        findings.checked.push((
            "no panic, no ERROR line, no exit unasked (log lines read)",
            facts.log_lines,
        ));
    }

    /// Prints a violation with its slice of history (10 s either side).
    pub fn explain(&self, violation: &Violation) -> String {
        let from = violation.at.saturating_sub(Duration::from_secs(10));
        let to = violation.at + Duration::from_secs(10);
        let mut text = format!(
            "VIOLATED: {} — {} (at {:.3}s)\n",
            violation.invariant,
            violation.detail,
            violation.at.as_secs_f64()
        );
        for entry in self.slice(from, to, violation.subject.as_deref()) {
            text.push_str(&format!("  {entry}\n"));
        }
        text
    }
}

/// What the soak did, for the invariants.
#[derive(Debug, Default)]
pub struct Facts {
    /// Every freeze as carried out.
    pub freezes: Vec<Freeze>,
    /// Every span a replica (0: A, 1: B) was killed or paused, until it ran again.
    pub owner_faults: Vec<(usize, Duration, Duration)>,
    /// The replica each simulated engine registers with (0: A, 1: B).
    pub homes: HashMap<String, usize>,
    /// Revoked kids and when they were revoked on every replica's file.
    pub revoked: HashMap<String, Duration>,
    /// Log lines read from the daemons.
    pub log_lines: usize,
    /// Simulated engines' ids to their names (`sim-7`), for reports.
    pub names: HashMap<String, String>,
}

impl Facts {
    /// An engine's name for people.
    pub fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .map_or_else(|| id.to_owned(), |name| format!("{name} ({id})"))
    }
}

/// One engine's freeze.
#[derive(Debug, Clone)]
pub struct Freeze {
    /// The engine id.
    pub engine: String,
    /// When it stopped answering.
    pub frozen: Duration,
    /// When it answered again.
    pub thawed: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds)
    }

    fn status(h: &mut History, t: f64, engine: &str, status: &'static str) {
        h.push(
            at(t),
            What::Status {
                replica: "A",
                engine: engine.to_owned(),
                status,
            },
        );
    }

    #[test]
    fn a_disconnected_engine_that_was_answering_is_a_violation_with_its_history() {
        let mut h = History::default();
        status(&mut h, 3.0, "e1", "DISCONNECTED");
        status(&mut h, 9.0, "e2", "DISCONNECTED");
        let facts = Facts {
            freezes: vec![Freeze {
                engine: "e2".into(),
                frozen: at(7.0),
                thawed: at(15.0),
            }],
            ..Facts::default()
        };
        status(&mut h, 18.0, "e2", "READY");
        let findings = h.check(&facts);
        assert_eq!(findings.violations.len(), 1, "{:?}", findings.violations);
        let text = h.explain(&findings.violations[0]);
        assert!(text.contains("e1 DISCONNECTED"), "{text}");
        assert!(!text.contains("e2"), "{text}");
    }

    #[test]
    fn a_frozen_engine_must_go_and_come_back_in_time_unless_an_owner_was_down() {
        let mut h = History::default();
        status(&mut h, 10.0, "e1", "DISCONNECTED");
        status(&mut h, 40.0, "e1", "READY");
        let mut facts = Facts {
            freezes: vec![Freeze {
                engine: "e1".into(),
                frozen: at(8.0),
                thawed: at(16.0),
            }],
            ..Facts::default()
        };
        let late = h.check(&facts);
        assert_eq!(late.violations.len(), 1, "{:?}", late.violations);
        assert!(late.violations[0].detail.contains("READY at 40.0s"));
        facts.homes.insert("e1".into(), 1);
        facts.owner_faults.push((0, at(15.0), at(30.0)));
        assert_eq!(
            h.check(&facts).violations.len(),
            1,
            "a fault of the other replica"
        );
        facts.owner_faults.push((1, at(15.0), at(30.0)));
        assert!(h.check(&facts).violations.is_empty());
    }

    #[test]
    fn a_revoked_key_answered_after_two_seconds_of_running_is_a_violation() {
        let mut h = History::default();
        let call = |replica, outcome| What::Call {
            replica,
            kid: "old".into(),
            outcome,
        };
        h.push(at(11.5), call("A", Outcome::Answered));
        h.push(at(12.5), call("A", Outcome::Answered));
        // B was paused through the revocation and ran again at 14 s.
        h.push(at(14.0), What::Running { replica: "B" });
        h.push(at(15.5), call("B", Outcome::Answered));
        h.push(at(16.5), call("B", Outcome::Answered));
        let facts = Facts {
            revoked: HashMap::from([("old".to_owned(), at(10.0))]),
            ..Facts::default()
        };
        let findings = h.check(&facts);
        let details: Vec<_> = findings.violations.iter().map(|v| &v.detail).collect();
        assert_eq!(details.len(), 2, "{details:?}");
        assert!(details[0].contains("replica A") && details[0].contains("2.5s"));
        assert!(details[1].contains("replica B") && details[1].contains("6.5s"));
    }
}
