//! The lines `run.sh` collects. Each tool prints its figures as it measures them; the figures of
//! the table are also printed as one `RESULT` line each (tab-separated: figure, measured,
//! reference, target, verdict), so the script can gather them into one table at the end.

/// Whether a measured figure meets its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The target is met.
    Met,
    /// The target is not met.
    NotMet,
    /// Could not be measured in this run (the reason is in `measured`).
    Unmeasured,
    /// A figure reported beside its reference, with no target of its own.
    Reported,
}

impl Verdict {
    /// `Met` when `ok`, else `NotMet`.
    pub fn from_check(ok: bool) -> Self {
        if ok { Verdict::Met } else { Verdict::NotMet }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "NOT MET",
            Verdict::Unmeasured => "not measured",
            Verdict::Reported => "reported",
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row<'a> {
    /// What is measured (`ES256 verify, cold`).
    pub figure: &'a str,
    /// The measured figure, with its unit.
    pub measured: String,
    /// What it is compared with, measured in the same run (or `—`).
    pub reference: String,
    /// The target (`≥ 0.8 × reference`).
    pub target: &'a str,
    /// The verdict.
    pub verdict: Verdict,
}

impl Row<'_> {
    /// Prints the row as a readable line and as a `RESULT` line.
    pub fn print(&self) {
        println!(
            "  {:<44} {:<28} {:<40} {:<22} {}",
            self.figure,
            self.measured,
            self.reference,
            self.target,
            self.verdict.text()
        );
        println!(
            "RESULT\t{}\t{}\t{}\t{}\t{}",
            self.figure,
            self.measured,
            self.reference,
            self.target,
            self.verdict.text()
        );
    }
}

/// The machine's load average, as `uptime` prints it (`0.52, 0.61, 0.70`), for every report.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
