//! End-to-end: what ops staff get from running daemons. The actuator HTTP endpoints report the
//! real state (DPE health follows its registration with DPM), the Prometheus output parses with
//! a real text-format parser and its counters move with real calls, `svcid engines` lists a real
//! engine, the log files roll under load without losing a line, a changed `logging.level.*`
//! takes effect on a running daemon, and a taken actuator port stops the daemon with exit 69.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Daemon, PATIENCE, Pair, bin, free_port, get_json, http, http_port, read_events};
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{PrometheusType, PrometheusValue};
use serde_json::Value;

/// Polls `GET /actuator/health` until `expected` (code and status), returning the report.
fn wait_health(port: u16, expected: u16, what: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (code, report) = get_json(port, "/actuator/health");
        if code == expected {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "health never became {what} ({expected}); last {code}: {report}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every sample of a scrape, parsed by the Prometheus text-format grammar: `name{k=v,…}` (labels
/// sorted) → value; a histogram's value is its count.
fn scrape(port: u16) -> BTreeMap<String, f64> {
    let (code, text) = http(port, "GET", "/actuator/prometheus");
    assert_eq!(code, 200);
    let exposition = parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("not the Prometheus text format ({e:?}):\n{text}"));
    let mut samples = BTreeMap::new();
    for (name, family) in &exposition.families {
        for sample in family.iter_samples() {
            let mut labels: Vec<String> = sample
                .get_labelset()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            let key = if labels.is_empty() {
                name.clone()
            } else {
                format!("{name}{{{}}}", labels.join(","))
            };
            let value = match &sample.value {
                PrometheusValue::Counter(c) => c.value.as_f64(),
                PrometheusValue::Gauge(g) | PrometheusValue::Unknown(g) => g.as_f64(),
                PrometheusValue::Histogram(h) => {
                    let count = h.count.unwrap_or_default() as f64;
                    let inf = h
                        .buckets
                        .iter()
                        .find(|b| b.upper_bound.is_infinite())
                        .map(|b| b.count.as_f64());
                    assert_eq!(inf, Some(count), "+Inf bucket equals _count: {text}");
                    count
                }
                PrometheusValue::Summary(_) => panic!("no summaries are exported"),
            };
            samples.insert(key, value);
        }
        if name == "svcid_status_check_duration_seconds" {
            assert_eq!(family.family_type, PrometheusType::Histogram);
        }
    }
    samples
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

fn svcid(args: &[&str]) -> std::process::Output {
    Command::new(bin("svcid"))
        .args(args)
        .output()
        .expect("svcid runs")
}

fn engine_ready(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| {
        e["eventId"] == "setEngineStatus"
            && e["newStatus"] == "READY"
            && e["engine"].as_str().is_some_and(|s| s.contains(id))
    }
}

#[test]
fn dpe_health_is_down_without_dpm_and_follows_the_registration() {
    let pair = Pair::linked();
    let dpm_port = free_port();
    let dpe = pair.start_dpe(dpm_port, &[]);
    let dpe_http = http_port(&dpe);

    let down = wait_health(dpe_http, 503, "DOWN");
    assert_eq!(down["status"], "DOWN", "{down}");
    assert_eq!(down["components"]["registration"]["status"], "DOWN");
    assert_eq!(down["components"]["grpc"]["status"], "UP");
    assert_eq!(down["components"]["configuration"]["status"], "UP");
    let (code, component) = get_json(dpe_http, "/actuator/health/registration");
    assert_eq!((code, &component["status"]), (503, &Value::from("DOWN")));

    let mut dpm = pair.start_dpm(&[&format!("--ataccama.server.grpc.port={dpm_port}")]);
    let up = wait_health(dpe_http, 200, "UP");
    assert_eq!(up["status"], "UP", "{up}");
    let registration = &up["components"]["registration"];
    assert_eq!(registration["status"], "UP");
    assert_eq!(
        registration["details"]["dpmUrl"],
        format!("127.0.0.1:{dpm_port}")
    );

    // DPM's own health: UP, with the engine counted once it is READY.
    let dpm_http = http_port(&dpm);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (code, report) = get_json(dpm_http, "/actuator/health");
        assert_eq!(code, 200, "{report}");
        if report["components"]["engines"]["details"]["READY"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no READY engine in {report}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // And back: DPM gone, the engine is no longer registered.
    dpm.signal("KILL");
    dpm.wait_exit();
    let down = wait_health(dpe_http, 503, "DOWN again");
    assert!(
        down["components"]["registration"]["details"]["lastError"]
            .as_str()
            .is_some(),
        "{down}"
    );
}

#[test]
fn metrics_parse_and_move_with_real_calls_and_svcid_engines_lists_the_engine() {
    let pair = Pair::linked();
    let dpm = pair.start_dpm(&[]);
    let mut dpe = pair.start_dpe(dpm.port(), &[]);
    let registered = dpm.wait_for("registerEngine", |e| e["eventId"] == "registerEngine");
    let engine_id = registered["engineId"].as_str().unwrap().to_owned();
    dpm.wait_for("READY", engine_ready(&engine_id));
    let dpm_http = http_port(&dpm);
    let dpe_http = http_port(&dpe);
    let dpm_address = format!("127.0.0.1:{}", dpm.port());
    let dpe_home = pair.dpe.to_str().unwrap();
    let dpm_home = pair.dpm.to_str().unwrap();

    // svcid engines, as a table and as JSON, with the DPE's key (DPM trusts it).
    let listed = svcid(&["engines", "--dpm", &dpm_address, "--home", dpe_home]);
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&engine_id))
        .unwrap_or_else(|| panic!("engine {engine_id} not listed:\n{table}"));
    assert!(row.contains(" READY "), "{table}");
    assert!(
        row.contains("ServiceIdentity(module=dpe, id=dpe-dev"),
        "{table}"
    );
    assert!(row.contains("spark=\"true\""), "{table}");
    assert!(table.contains("1 engine(s) at DPM"), "{table}");
    let listed = svcid(&[
        "engines",
        "--dpm",
        &dpm_address,
        "--home",
        dpe_home,
        "--json",
    ]);
    assert!(listed.status.success());
    let document: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let engine = &document["engines"][0];
    assert_eq!(engine["engineId"], engine_id.as_str());
    assert_eq!(engine["status"], "READY");
    assert!(engine["lastSeen"].as_str().is_some(), "{document}");

    // While the pair runs: engines by status, status checks, registrations, tokens.
    let running = scrape(dpm_http);
    assert_eq!(value(&running, "svcid_engines{status=READY}"), 1.0);
    assert_eq!(value(&running, "svcid_engines{status=DISCONNECTED}"), 0.0);
    assert_eq!(
        value(&running, "svcid_engine_registrations_total{result=new}"),
        1.0
    );
    assert!(value(&running, "svcid_status_checks_total{result=ok}") >= 1.0);
    assert!(value(&running, "svcid_status_check_duration_seconds") >= 1.0);
    assert!(value(&running, "svcid_tokens_minted_total") >= 1.0);
    assert!(
        value(
            &running,
            "svcid_authentications_accepted_total{deployment=dpe-dev}"
        ) >= 1.0
    );
    assert_eq!(
        value(&running, "svcid_build_info{module=dpm,version=0.1.0}"),
        1.0,
        "{running:?}"
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        // DPM reuses its token for checks, so the engine's cache answers them.
        let engine = scrape(dpe_http);
        assert_eq!(value(&engine, "svcid_registered"), 1.0);
        if value(&engine, "svcid_token_cache_hits_total") >= 1.0 {
            assert!(value(&engine, "svcid_token_cache_misses_total") >= 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "no cache hit on DPE: {engine:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Quiet DPM (the engine's keep-alive stops), then exactly one accepted and one refused call.
    dpe.signal("TERM");
    assert!(dpe.wait_exit().success());
    let before = scrape(dpm_http);
    let accepted = svcid(&["engines", "--dpm", &dpm_address, "--home", dpe_home]);
    assert!(accepted.status.success());
    let refused = svcid(&["engines", "--dpm", &dpm_address, "--home", dpm_home]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("DPM does not trust its own key"), "{why}");
    let after = scrape(dpm_http);
    let delta = |key: &str| value(&after, key) - value(&before, key);
    assert_eq!(
        delta("svcid_authentications_accepted_total{deployment=dpe-dev}"),
        1.0
    );
    assert_eq!(
        delta("svcid_authentications_refused_total{deployment=-,reason=unknown_kid}"),
        1.0,
        "{after:?}"
    );
    assert_eq!(delta("svcid_token_cache_misses_total"), 2.0);
    assert_eq!(value(&after, "svcid_engines{status=READY}"), 0.0);
    assert_eq!(
        value(&after, "svcid_engine_unregistrations_total{result=success}"),
        1.0
    );

    // Info: the kid DPM signs with and the fingerprints it trusts; no private material.
    let (code, body) = http(dpm_http, "GET", "/actuator/info");
    assert_eq!(code, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    let started = dpm.wait_for("grpcServerStarted", |e| e["eventId"] == "grpcServerStarted");
    assert_eq!(info["keys"]["signing"]["kid"], started["kid"]);
    assert_eq!(info["build"]["name"], "dpm");
    let trusted = &info["keys"]["trusted"][0];
    assert_eq!(trusted["deployment"], "dpe-dev");
    let fingerprint = Pair::property(
        &pair.dpm,
        "ataccama.one.platform.deployments.dpe-dev.security.jwt-keys.key.fingerprint",
    );
    assert_eq!(trusted["keys"][0]["fingerprint"], fingerprint.as_str());
    let generator = Pair::property(
        &pair.dpm,
        "ataccama.authentication.internal.jwt.generator.key",
    );
    assert!(
        !body.contains(&generator) && !body.contains("\"d\""),
        "{body}"
    );

    // Read-only.
    assert_eq!(http(dpm_http, "POST", "/actuator/health").0, 405);
    assert_eq!(http(dpm_http, "GET", "/actuator/env").0, 404);
}

/// Every JSON line in a daemon's log folder: the live file and its archives.
fn all_events(home: &Path) -> (Vec<Value>, usize) {
    let log = home.join("log");
    let mut events = Vec::new();
    let mut archives = 0;
    if let Ok(entries) = std::fs::read_dir(log.join("archived")) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(".json.log") {
                archives += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(text.len() <= 64 * 1024, "{} is too big", path.display());
                events.extend(read_events(&path));
            }
        }
    }
    events.extend(read_events(&log.join("spring-boot-logger.json.log")));
    (events, archives)
}

#[test]
fn log_files_roll_at_the_size_threshold_without_losing_a_line() {
    const THREADS: usize = 4;
    const REQUESTS: usize = 150;
    let pair = Pair::linked();
    // No DPM: the engine keeps logging its failed registrations meanwhile.
    let dpe = pair.start_dpe(
        free_port(),
        &["--logging.logback.rollingpolicy.max-file-size=64KB"],
    );
    let port = http_port(&dpe);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..REQUESTS {
                    assert_eq!(http(port, "GET", "/actuator/health").0, 503);
                }
            });
        }
    });
    // Each request is logged before its answer is written, so all are in the files now.
    let (events, archives) = all_events(&pair.dpe);
    let requests = events
        .iter()
        .filter(|e| e["eventId"] == "actuatorRequest" && e["path"] == "/actuator/health")
        .count();
    assert_eq!(requests, THREADS * REQUESTS);
    assert!(archives >= 2, "only {archives} roll-overs");
    let archived: Vec<String> = std::fs::read_dir(pair.dpe.join("log/archived"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        archived
            .iter()
            .all(|name| { name.starts_with("spring-boot-logger-") && name.ends_with(".json.log") }),
        "{archived:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["eventId"] == "httpServerStarted")
            .count(),
        1
    );
}

#[test]
fn a_level_changed_in_the_file_applies_to_the_running_daemon() {
    let pair = Pair::linked();
    let dpe = pair.start_dpe(free_port(), &[]);
    let port = http_port(&dpe);
    let requests = |dpe: &Daemon, skip: usize| {
        dpe.events()
            .into_iter()
            .skip(skip)
            .filter(|e| e["eventId"] == "actuatorRequest")
            .count()
    };
    http(port, "GET", "/actuator/info");
    dpe.wait_for("the DEBUG request line", |e| {
        e["eventId"] == "actuatorRequest"
    });

    // Silence the actuator's DEBUG lines by target; the root stays DEBUG.
    let mark = dpe.events().len();
    Pair::append(&pair.dpe, "logging.level.svcid_actuator=INFO");
    let changed = dpe.wait_for_after(mark, "logLevelsChanged", |e| {
        e["eventId"] == "logLevelsChanged"
    });
    assert_eq!(changed["levels"], "svcid_actuator=INFO", "{changed}");
    assert_eq!(changed["root"], "DEBUG");
    let quiet = dpe.events().len();
    http(port, "GET", "/actuator/info");

    // Back to DEBUG: the next change event proves the request above was handled in between.
    Pair::replace(
        &pair.dpe,
        "logging.level.svcid_actuator=INFO",
        "logging.level.svcid_actuator=DEBUG",
    );
    dpe.wait_for_after(quiet, "second logLevelsChanged", |e| {
        e["eventId"] == "logLevelsChanged"
    });
    assert_eq!(requests(&dpe, quiet), 0, "a DEBUG line under INFO");
    let loud = dpe.events().len();
    http(port, "GET", "/actuator/info");
    dpe.wait_for_after(loud, "the DEBUG request line again", |e| {
        e["eventId"] == "actuatorRequest"
    });
    assert!(
        !dpe.events()
            .iter()
            .skip(mark)
            .any(|e| e["eventId"] == "restartRequired"),
        "levels apply live: no restart is required"
    );
}

#[test]
fn an_actuator_port_in_use_stops_the_daemon_with_exit_69() {
    let pair = Pair::linked();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(bin("dpm"))
        .arg("--home")
        .arg(&pair.dpm)
        .arg(format!("--server.port={port}"))
        .output()
        .expect("dpm runs");
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot bind HTTP port 127.0.0.1:{port} (server.port)"
        )),
        "{stderr}"
    );
}
