//! The operations console under load (`swarm --console DIR`): each daemon's `/console` loaded in
//! Debian's headless `chromium`, a PNG screenshot of it, the bytes of the page and of its JSON,
//! and the time until the page first rendered everything (the page's `console-rendered`
//! performance mark: from navigation start to the first complete render, engines table
//! included).
//!
//! The browser runs as the tests run it (`svcid_testkit::browser`), scroll bars hidden.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use serde_json::Value;
use svcid_testkit::browser::{CHROMIUM, launch};

/// Loads measured per page (the median is reported).
const LOADS: usize = 3;

/// What was measured of one daemon's console.
#[derive(Debug)]
pub struct ConsoleFigures {
    /// `dpm` or `dpe`.
    pub module: String,
    /// Bytes of `/console`, its script and its style sheet.
    pub page_bytes: usize,
    /// Bytes of `/console/api`.
    pub overview_bytes: usize,
    /// Bytes of `/console/api/engines` as the page asks for it (`limit=200`), and with
    /// `limit=1000`; `None` for DPE.
    pub engines_bytes: Option<(usize, usize)>,
    /// Navigation start to the first complete render, per load.
    pub render: Vec<Duration>,
    /// Rows the engines table showed.
    pub rows: u64,
}

/// `GET path` on `127.0.0.1:port`: the body, failing on a status other than 200.
fn ok_body(port: u16, path: &str) -> Result<String> {
    Ok(svcid_testkit::http::get(port, path)?.ok_body(path)?)
}

/// Loads `http://127.0.0.1:<port>/console` [`LOADS`] times in a fresh headless chromium,
/// measures, and writes the last load's screenshot to `png`. With `engines`, waits until the
/// table shows rows and the counts add up to `engines`.
pub fn measure(
    module: &str,
    port: u16,
    engines: Option<u64>,
    png: &Path,
    patience: Duration,
) -> Result<ConsoleFigures> {
    if !Path::new(CHROMIUM).exists() {
        bail!("{CHROMIUM} is missing: apt-get install chromium");
    }
    let page_bytes = ["/console", "/console/console.js", "/console/console.css"]
        .iter()
        .map(|path| ok_body(port, path).map(|body| body.len()))
        .sum::<Result<usize>>()?;
    let overview_bytes = ok_body(port, "/console/api")?.len();
    let engines_bytes = match engines {
        Some(_) => Some((
            ok_body(port, "/console/api/engines?sort=id&limit=200")?.len(),
            ok_body(port, "/console/api/engines?limit=1000")?.len(),
        )),
        None => None,
    };

    let profile = tempfile::tempdir()?;
    let browser = launch(Path::new(CHROMIUM), profile.path(), &["--hide-scrollbars"])?;
    let mut render = Vec::new();
    let mut rows = 0;
    let mut last_png = Vec::new();
    for _ in 0..LOADS {
        let tab = browser.new_tab().context("opening a tab")?;
        tab.set_default_timeout(patience);
        tab.navigate_to(&format!("http://127.0.0.1:{port}/console"))?
            .wait_until_navigated()?;
        let deadline = Instant::now() + patience;
        let state = loop {
            let state = page_state(&tab)?;
            let rendered = state["rendered"].as_f64().is_some();
            let complete = match engines {
                None => rendered,
                Some(n) => rendered && state["rows"].as_u64() > Some(0) && state["total"] == n,
            };
            if complete {
                break state;
            }
            if Instant::now() > deadline {
                bail!("the {module} console did not render within {patience:?}: {state}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let ms = state["rendered"].as_f64().unwrap_or_default();
        render.push(Duration::from_secs_f64(ms / 1000.0));
        rows = state["rows"].as_u64().unwrap_or_default();
        last_png = tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)?;
        let _ = tab.close(true);
    }
    std::fs::write(png, last_png).with_context(|| format!("writing {}", png.display()))?;
    Ok(ConsoleFigures {
        module: module.to_owned(),
        page_bytes,
        overview_bytes,
        engines_bytes,
        render,
        rows,
    })
}

/// The `console-rendered` mark (ms since navigation start), the rows shown and the fleet total.
fn page_state(tab: &headless_chrome::Tab) -> Result<Value> {
    let expression = "JSON.stringify({\
        rendered: (performance.getEntriesByName('console-rendered')[0] || {}).startTime,\
        rows: document.querySelectorAll('#engines tbody tr[data-status]').length,\
        total: Number((document.querySelector('#engine-counts button') || {dataset: {}})\
            .textContent?.replace(/\\D+/g, '') || -1)})";
    let result = tab.evaluate(expression, false)?;
    match result.value {
        Some(Value::String(text)) => Ok(serde_json::from_str(&text)?),
        other => bail!("the page answered {other:?}"),
    }
}
