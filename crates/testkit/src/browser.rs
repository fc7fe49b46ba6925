//! Debian's headless Chromium, driven over the DevTools protocol, launched the same way by the
//! console's browser test and by the benchmark's console screenshots: no sandbox (they run as
//! root), no GPU, nothing that phones home, a fresh profile, a 1280×900 window.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use headless_chrome::{Browser, LaunchOptions};

/// Debian's chromium (`apt-get install chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The window, and so the screenshot, size.
pub const WINDOW: (u32, u32) = (1280, 900);
/// How long the browser may sit idle before it gives up on its driver.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The flags of every launch.
const FLAGS: [&str; 6] = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Starts the headless browser at `path` with its profile in `profile` (an empty folder), the
/// `extra` flags after the usual ones.
pub fn launch(path: &Path, profile: &Path, extra: &[&str]) -> Result<Browser> {
    let args: Vec<&OsStr> = FLAGS.iter().chain(extra).map(OsStr::new).collect();
    let options = LaunchOptions::default_builder()
        .path(Some(path.to_owned()))
        .headless(true)
        .sandbox(false)
        .user_data_dir(Some(profile.to_owned()))
        .window_size(Some(WINDOW))
        .idle_browser_timeout(IDLE_TIMEOUT)
        .args(args)
        .build()
        .map_err(|e| anyhow!("chromium options: {e}"))?;
    Browser::new(options).context("starting chromium")
}
