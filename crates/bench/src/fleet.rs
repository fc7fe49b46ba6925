//! The fleet as DPM's JSON log tells it: which engines the latest status events say are READY
//! or DISCONNECTED, and how many registrations were logged, over the logs of one DPM or several
//! replicas (each status change is logged once, by the replica that made it).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;

use svcid_testkit::log::LogTail;

/// DPM's view, from its JSON log.
#[derive(Debug, Default)]
pub struct DpmView {
    /// Engines whose latest status event says READY.
    pub ready: HashSet<String>,
    /// Engines whose latest status event says DISCONNECTED.
    pub disconnected: HashSet<String>,
    /// `registerEngine` events seen.
    pub registrations: u64,
    /// `engineDisconnected` events seen (an engine may go and come back).
    pub disconnections: u64,
    /// Engines taken over from dead replicas, by the `enginesTakenOver` events seen.
    pub taken_over: u64,
}

impl DpmView {
    /// Takes in `events`, oldest first.
    pub fn apply(&mut self, events: Vec<Value>) {
        for event in events {
            let id = event["correlationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match event["eventId"].as_str() {
                Some("setEngineStatus") if event["newStatus"] == "READY" => {
                    self.disconnected.remove(&id);
                    self.ready.insert(id);
                }
                Some("engineDisconnected") => {
                    self.disconnections += 1;
                    self.ready.remove(&id);
                    self.disconnected.insert(id);
                }
                Some("registerEngine") => self.registrations += 1,
                Some("enginesTakenOver") => {
                    self.taken_over += event["engines"]
                        .as_u64()
                        .or_else(|| event["engines"].as_str().and_then(|n| n.parse().ok()))
                        .unwrap_or(0);
                }
                _ => {}
            }
        }
    }
}

/// Polls DPM's logs until `done` holds (returns when) or `patience` passes (returns `None`).
pub async fn wait_until(
    tails: &mut [&mut LogTail],
    view: &mut DpmView,
    patience: Duration,
    done: impl Fn(&DpmView) -> bool,
) -> Result<Option<Instant>> {
    let deadline = Instant::now() + patience;
    loop {
        for tail in tails.iter_mut() {
            view.apply(tail.poll()?);
        }
        if done(view) {
            return Ok(Some(Instant::now()));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
