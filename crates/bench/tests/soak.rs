//! The soak's short version, in the test suite: two minutes of overlapping faults against the
//! real binaries (two DPM replicas on a real PostgreSQL server, simulated engines, two real
//! `dpe`), every invariant checked over the history. The seed is fixed so a failure replays
//! (`SVCID_SOAK_SEED` picks another); the run's folder, history included, is kept under
//! `target/tmp/soak-smoke` for reading after a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn two_minutes_of_faults_break_no_invariant() {
    let seed = std::env::var("SVCID_SOAK_SEED").unwrap_or_else(|_| "3".to_owned());
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak-smoke");
    let _ = std::fs::remove_dir_all(&keep);
    let out = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["--minutes", "2", "--engines", "30", "--sample-seconds", "2"])
        .args(["--seed", &seed])
        .arg("--keep")
        .arg(&keep)
        .output()
        .expect("running soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "soak --seed {seed} failed ({}); its folder: {}",
        out.status,
        keep.display()
    );
    assert!(stdout.contains("every invariant held"), "{stdout}");
    // The faults really happened.
    for kind in [
        "replica SIGKILL",
        "database stop",
        "engines frozen (long)",
        "caller key",
    ] {
        assert!(stdout.contains(kind), "no {kind} in this run:\n{stdout}");
    }
}
