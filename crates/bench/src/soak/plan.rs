//! The soak's fault schedule, made from a seed: the same seed gives the same faults at the same
//! moments (what they meet depends on timing, which no seed fixes).

use std::fmt;
use std::time::Duration;

/// A small deterministic generator (SplitMix64): the schedule must be reproducible from the
/// seed printed, and nothing here needs cryptographic randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`; `n` > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[low, high]` milliseconds.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let (low, high) = (low.as_millis() as u64, high.as_millis() as u64);
        Duration::from_millis(low + self.below(high.saturating_sub(low) + 1))
    }
}

/// One of the two DPM replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Replica A: the one that is SIGKILLed (B lives through the run, so its memory is measured
    /// over the whole second half).
    A,
    /// Replica B.
    B,
}

impl Side {
    /// 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// A fault and how long it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL replica A; start it again after `down` (retried while the database is down,
    /// which makes DPM exit 69 at start).
    KillReplica { down: Duration },
    /// SIGSTOP a replica for `paused`, then SIGCONT: a replica cut off from everything,
    /// database included, that comes back believing time did not pass.
    PauseReplica { side: Side, paused: Duration },
    /// The PostgreSQL server stopped (`immediate`, as a crash) for `down`, then started again.
    StopDatabase { down: Duration },
    /// `count` simulated engines from `first` stop answering (and registering) for `frozen`:
    /// longer than the checker's timeout they must go DISCONNECTED, shorter they must not.
    FreezeEngines {
        first: usize,
        count: usize,
        frozen: Duration,
    },
    /// The soak's caller gets a new key (`svcid link --rotate dpe` with replica A, then
    /// `svcid link` with B), switches to it once both replicas re-read their files, then its old
    /// key is revoked (`svcid revoke`) on both.
    RotateCaller,
    /// The real `dpe` registered with replica A rotates its key (`svcid link --rotate dpe`),
    /// then its old key is revoked.
    RotateEngine,
    /// `connections` TCP connections opened to a replica's gRPC port and held for `held`
    /// (half idle, half sending only the HTTP/2 preface), then closed.
    Flood {
        side: Side,
        connections: usize,
        held: Duration,
    },
}

impl Fault {
    /// The kind, as counted in the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::KillReplica { .. } => "replica SIGKILL + restart",
            Fault::PauseReplica { .. } => "replica SIGSTOP + SIGCONT",
            Fault::StopDatabase { .. } => "database stop + start",
            Fault::FreezeEngines { frozen, .. } if *frozen >= LONG_FREEZE => {
                "engines frozen (long)"
            }
            Fault::FreezeEngines { .. } => "engines stalled (short)",
            Fault::RotateCaller => "caller key rotated + revoked",
            Fault::RotateEngine => "dpe key rotated + revoked",
            Fault::Flood { .. } => "connection flood",
        }
    }

    /// How long the fault holds (0 for the key changes, which take their own time).
    pub fn length(&self) -> Duration {
        match self {
            Fault::KillReplica { down } | Fault::StopDatabase { down } => *down,
            Fault::PauseReplica { paused, .. } => *paused,
            Fault::FreezeEngines { frozen, .. } => *frozen,
            Fault::Flood { held, .. } => *held,
            Fault::RotateCaller | Fault::RotateEngine => Duration::ZERO,
        }
    }

    /// Whether it takes a replica or the database away (the faults that extend the bounds of
    /// engine status changes: a check needs a live owner).
    pub fn disturbs_owners(&self) -> bool {
        matches!(
            self,
            Fault::KillReplica { .. } | Fault::PauseReplica { .. } | Fault::StopDatabase { .. }
        )
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::KillReplica { down } => write!(f, "SIGKILL replica A, restart after {down:?}"),
            Fault::PauseReplica { side, paused } => {
                write!(f, "SIGSTOP replica {side:?} for {paused:?}")
            }
            Fault::StopDatabase { down } => write!(f, "stop PostgreSQL for {down:?}"),
            Fault::FreezeEngines {
                first,
                count,
                frozen,
            } => write!(
                f,
                "freeze engines sim-{first}..sim-{} for {frozen:?}",
                first + count - 1
            ),
            Fault::RotateCaller => f.write_str("rotate the caller's key, then revoke the old one"),
            Fault::RotateEngine => f.write_str("rotate dpe-1's key, then revoke the old one"),
            Fault::Flood {
                side,
                connections,
                held,
            } => write!(
                f,
                "flood replica {side:?} with {connections} connections for {held:?}"
            ),
        }
    }
}

/// A freeze at least this long must end in DISCONNECTED (check interval 1 s + timeout 2 s,
/// with room for the check in flight).
pub const LONG_FREEZE: Duration = Duration::from_secs(5);
/// A stall at most this long must not (shorter than the checker's 2 s timeout).
pub const SHORT_FREEZE: Duration = Duration::from_millis(1200);

/// A fault at a moment of the run.
#[derive(Debug, Clone)]
pub struct Planned {
    /// From the start of the faults.
    pub at: Duration,
    /// What happens.
    pub fault: Fault,
}

/// The schedule for `length` of faults over `engines` simulated engines, from `seed`.
///
/// Faults overlap, with two rules a two-replica deployment is built for: at most one replica
/// is down (killed or paused) at a time, and at most one database outage; key changes are
/// sequential (each waits for the last). Faults start 3–10 s apart (scaled down for short runs);
/// none starts in the last 15 s, so the run ends settled.
pub fn plan(seed: u64, length: Duration, engines: usize) -> Vec<Planned> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let (min_gap, max_gap) = if length < Duration::from_secs(600) {
        (Duration::from_millis(1500), Duration::from_secs(5))
    } else {
        (Duration::from_secs(3), Duration::from_secs(10))
    };
    let end = length.saturating_sub(Duration::from_secs(15));
    let mut at = Duration::from_secs(2);
    let mut replica_free = Duration::ZERO;
    let mut database_free = Duration::ZERO;
    let mut keys_free = Duration::ZERO;
    let mut engine_free = vec![Duration::ZERO; engines];
    while at < end {
        let fault = match rng.below(100) {
            0..=11 if at >= replica_free => Some(Fault::KillReplica {
                down: rng.between(Duration::from_millis(500), Duration::from_secs(6)),
            }),
            12..=23 if at >= replica_free => Some(Fault::PauseReplica {
                side: if rng.below(2) == 0 { Side::A } else { Side::B },
                paused: rng.between(Duration::from_millis(500), Duration::from_secs(7)),
            }),
            24..=35 if at >= database_free => Some(Fault::StopDatabase {
                down: rng.between(Duration::from_secs(1), Duration::from_secs(12)),
            }),
            36..=69 => {
                let count = 1 + rng.below(3) as usize;
                let first = rng.below(engines.saturating_sub(count) as u64 + 1) as usize;
                let frozen = if rng.below(3) == 0 {
                    rng.between(Duration::from_millis(200), SHORT_FREEZE)
                } else {
                    rng.between(LONG_FREEZE, Duration::from_secs(14))
                };
                let free = engine_free[first..first + count].iter().all(|f| at >= *f);
                free.then_some(Fault::FreezeEngines {
                    first,
                    count,
                    frozen,
                })
            }
            70..=79 if at >= keys_free => Some(if rng.below(2) == 0 {
                Fault::RotateCaller
            } else {
                Fault::RotateEngine
            }),
            80..=99 => Some(Fault::Flood {
                side: if rng.below(2) == 0 { Side::A } else { Side::B },
                connections: 50 + rng.below(200) as usize,
                held: rng.between(Duration::from_secs(1), Duration::from_secs(8)),
            }),
            _ => None,
        };
        if let Some(fault) = fault {
            // Settle time after a fault before the same resource is faulted again: a replica
            // needs its restart and a takeover; key changes wait their reloads.
            let busy = at + fault.length();
            match &fault {
                Fault::KillReplica { .. } | Fault::PauseReplica { .. } => {
                    replica_free = busy + Duration::from_secs(8);
                }
                Fault::StopDatabase { .. } => database_free = busy + Duration::from_secs(10),
                Fault::RotateCaller | Fault::RotateEngine => {
                    keys_free = at + Duration::from_secs(25);
                }
                Fault::FreezeEngines { first, count, .. } => {
                    for free in &mut engine_free[*first..first + count] {
                        *free = busy + Duration::from_secs(12);
                    }
                }
                Fault::Flood { .. } => {}
            }
            out.push(Planned { at, fault });
        }
        at += rng.between(min_gap, max_gap);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_schedule() {
        let one = plan(7, Duration::from_secs(600), 50);
        let two = plan(7, Duration::from_secs(600), 50);
        assert!(!one.is_empty());
        assert_eq!(
            one.iter()
                .map(|p| (p.at, p.fault.clone()))
                .collect::<Vec<_>>(),
            two.iter()
                .map(|p| (p.at, p.fault.clone()))
                .collect::<Vec<_>>()
        );
        assert_ne!(
            format!("{:?}", plan(8, Duration::from_secs(600), 50)),
            format!("{one:?}")
        );
    }

    #[test]
    fn one_replica_down_at_a_time_and_one_database_outage() {
        for seed in 0..50 {
            let faults = plan(seed, Duration::from_secs(3600), 40);
            let mut replica_busy_until = Duration::ZERO;
            let mut database_busy_until = Duration::ZERO;
            for p in &faults {
                match p.fault {
                    Fault::KillReplica { .. } | Fault::PauseReplica { .. } => {
                        assert!(p.at >= replica_busy_until, "seed {seed}: {p:?}");
                        replica_busy_until = p.at + p.fault.length();
                    }
                    Fault::StopDatabase { .. } => {
                        assert!(p.at >= database_busy_until, "seed {seed}: {p:?}");
                        database_busy_until = p.at + p.fault.length();
                    }
                    _ => {}
                }
                assert!(p.at + Duration::from_secs(15) <= Duration::from_secs(3600));
            }
        }
    }
}
