//! End-to-end: DPM's registry on a real PostgreSQL (docs/postgres.md), started by the harness of
//! `svcid-pgserver`. Restarts without re-registration, two replicas as one registry, a replica killed
//! while its engines stay READY, exactly one replica checking each engine, the database lost and
//! back under a running pair, two replicas migrating an empty database at once, an
//! unreachable database at start, and `lastSeen` in one replica's listings keeping up with the
//! checks of the other. Observed as an operator would: logs, `svcid engines`, the
//! actuator, exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::{Daemon, PATIENCE, Pair, bin, free_port, http_get, http_port_after};
use serde_json::Value;
use svcid_testkit::postgres::{PASSWORD, Postgres, file_contains};

/// A DPM home on `pg`, with the status checks logged (`engineChecked` is TRACE).
fn on_postgres(home: &Path, pg: &Postgres) {
    for line in pg.dpm_properties().lines() {
        Pair::append(home, line);
    }
    Pair::append(home, "logging.level.svcid_dpm=TRACE");
}

/// A second home beside `home` with the same configuration (same keys: docs/postgres.md) and
/// nothing else (no log, no data).
fn sibling(home: &Path, name: &str) -> PathBuf {
    let to = home.parent().unwrap().join(name);
    std::fs::create_dir_all(to.join("etc")).unwrap();
    std::fs::copy(
        home.join("etc/application.properties"),
        to.join("etc/application.properties"),
    )
    .unwrap();
    to
}

fn start_dpm(home: &Path) -> Daemon {
    let dpm = Daemon::start("dpm", home, &[]);
    dpm.wait_for("grpcServerStarted", |e| e["eventId"] == "grpcServerStarted");
    dpm
}

fn start_dpe(home: &Path, dpm: &Daemon, args: &[&str]) -> Daemon {
    let mut all = vec![format!(
        "--ataccama.client.connection.dpm.grpc.port={}",
        dpm.port()
    )];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    Daemon::start("dpe", home, &all)
}

/// The engine id a DPE persisted.
fn engine_id(home: &Path) -> String {
    let path = home.join("data/engine-id");
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && text.ends_with('\n')
        {
            return text.trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn about(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["engineId"] == id || e["engine"].as_str().is_some_and(|s| s.contains(id))
}

fn became_ready(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["eventId"] == "setEngineStatus" && e["newStatus"] == "READY" && about(id)(e)
}

/// How many events of `daemon` after line `skip` are `event_id` about engine `id`.
fn count(daemon: &Daemon, skip: usize, event_id: &str, id: &str) -> usize {
    daemon
        .events()
        .into_iter()
        .skip(skip)
        .filter(|e| e["eventId"] == event_id && about(id)(e))
        .count()
}

/// The `engines` of `svcid engines --json` against `dpm`, run with the engine home's key.
fn engines_json(dpm: &Daemon, dpe_home: &Path) -> Vec<Value> {
    let out = Command::new(bin("svcid"))
        .args(["engines", "--json", "--dpm"])
        .arg(format!("127.0.0.1:{}", dpm.port()))
        .arg("--home")
        .arg(dpe_home)
        .output()
        .expect("svcid runs");
    assert!(
        out.status.success(),
        "svcid engines: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut document: Value = serde_json::from_slice(&out.stdout).unwrap();
    match document["engines"].take() {
        Value::Array(engines) => engines,
        other => panic!("svcid engines --json has no engines array: {other}"),
    }
}

/// `svcid engines --json` against `dpm`: engine id → status.
fn listing(dpm: &Daemon, dpe_home: &Path) -> Vec<(String, String)> {
    engines_json(dpm, dpe_home)
        .iter()
        .map(|e| {
            (
                e["engineId"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits until `dpm`'s listing shows exactly `ids`, all READY.
fn wait_listing_ready(dpm: &Daemon, dpe_home: &Path, ids: &[&str]) {
    let mut expected: Vec<(String, String)> = ids
        .iter()
        .map(|id| (id.to_string(), "READY".to_owned()))
        .collect();
    expected.sort();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let listed = listing(dpm, dpe_home);
        if listed == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "listing {listed:?}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `/actuator/health` shows the `database` component `status`.
fn wait_database(port: u16, status: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, _, body) = http_get(port, "/actuator/health");
        let report: Value = serde_json::from_str(&body).unwrap_or_default();
        if report["components"]["database"]["status"] == status {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "database never {status}: {report}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls the console's `engines` view until its fleet snapshot (read by the store's tick once
/// the console asked) holds `engines` engines.
fn wait_console_fleet(port: u16, engines: usize) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (code, _, body) = http_get(port, "/console/api/engines");
        let view: Value = serde_json::from_str(&body).unwrap_or_default();
        if code == 200 && view["pending"].is_null() && view["total"] == engines {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "the console never showed {engines} engines: {code} {view}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_no_password(daemon: &Daemon) {
    assert!(
        !file_contains(&daemon.log, PASSWORD),
        "the database password is in {}",
        daemon.log.display()
    );
}

#[test]
fn a_restarted_dpm_knows_its_engines_and_checks_them_without_reregistration() {
    let pg = Postgres::start().expect("a PostgreSQL server starts");
    let pair = Pair::linked();
    on_postgres(&pair.dpm, &pg);
    let mut dpm = start_dpm(&pair.dpm);
    // Registers once: it will not re-assert within this test.
    let mut dpe = start_dpe(
        &pair.dpe,
        &dpm,
        &["--ataccama.one.dpe.service.dpm.check-connection-interval=1h"],
    );
    let id = engine_id(&pair.dpe);
    dpm.wait_for("READY", became_ready(&id));
    wait_listing_ready(&dpm, &pair.dpe, &[&id]);

    dpm.signal("TERM");
    assert!(dpm.wait_exit().success());
    let skip = dpm.events().len();
    let dpm = Daemon::start("dpm", &pair.dpm, &[]);
    let opened = dpm.wait_for_after(skip, "registryOpened", |e| e["eventId"] == "registryOpened");
    assert_eq!(opened["engines"], "1", "{opened}");
    assert!(
        opened["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("postgresql://one@127.0.0.1:")),
        "{opened}"
    );
    // Known at once and still READY, and checked: the DPE never registered again.
    wait_listing_ready(&dpm, &pair.dpe, &[&id]);
    dpm.wait_for_after(skip, "engineChecked", |e| {
        e["eventId"] == "engineChecked" && about(&id)(e)
    });
    assert_eq!(count(&dpm, skip, "registerEngine", &id), 0);
    assert_eq!(count(&dpm, skip, "setEngineStatus", &id), 0);

    // The restarted DPM checks it: the engine gone is noticed.
    dpe.signal("KILL");
    dpe.wait_exit();
    dpm.wait_for_after(skip, "engineDisconnected", |e| {
        e["eventId"] == "engineDisconnected" && about(&id)(e)
    });

    // The password is nowhere an operator looks.
    let http = http_port_after(&dpm, skip);
    for path in [
        "/actuator/info",
        "/actuator/health",
        "/actuator/prometheus",
        "/console/api",
        "/console/api/engines",
    ] {
        let (_, _, body) = http_get(http, path);
        assert!(!body.contains(PASSWORD), "{path}: {body}");
    }
    let (code, _, body) = http_get(http, "/actuator/health/database");
    assert_eq!(code, 200, "{body}");
    assert_no_password(&dpm);
}

#[test]
fn two_replicas_are_one_registry_each_engine_checked_by_one_and_a_killed_one_is_taken_over() {
    let pg = Postgres::start().expect("a PostgreSQL server starts");
    let pair = Pair::linked();
    on_postgres(&pair.dpm, &pg);
    let home_b = sibling(&pair.dpm, "dpm-b");
    let dpe_home_2 = sibling(&pair.dpe, "dpe-2");
    let mut dpm_a = start_dpm(&pair.dpm);
    let dpm_b = start_dpm(&home_b);
    let _dpe_1 = start_dpe(&pair.dpe, &dpm_a, &[]);
    let _dpe_2 = start_dpe(&dpe_home_2, &dpm_b, &[]);
    let (e1, e2) = (engine_id(&pair.dpe), engine_id(&dpe_home_2));
    dpm_a.wait_for("e1 READY", became_ready(&e1));
    dpm_b.wait_for("e2 READY", became_ready(&e2));

    // One registry: either replica lists the whole fleet.
    wait_listing_ready(&dpm_a, &pair.dpe, &[&e1, &e2]);
    wait_listing_ready(&dpm_b, &pair.dpe, &[&e1, &e2]);

    // Exactly one replica checks each engine: over two seconds, every check of e1 is A's and
    // every check of e2 is B's.
    let (mark_a, mark_b) = (dpm_a.events().len(), dpm_b.events().len());
    std::thread::sleep(Duration::from_secs(2));
    assert!(count(&dpm_a, mark_a, "engineChecked", &e1) >= 3);
    assert_eq!(count(&dpm_b, mark_b, "engineChecked", &e1), 0);
    assert!(count(&dpm_b, mark_b, "engineChecked", &e2) >= 3);
    assert_eq!(count(&dpm_a, mark_a, "engineChecked", &e2), 0);
    assert_eq!(count(&dpm_a, 0, "setEngineStatus", &e1), 1, "logged once");
    assert_eq!(count(&dpm_b, 0, "setEngineStatus", &e1), 0, "logged once");

    // The console of either replica shows the whole fleet and which replica checks which engine.
    let replica_of = |dpm: &Daemon| -> String {
        dpm.wait_for("registryOpened", |e| e["eventId"] == "registryOpened")["replica"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (replica_a, replica_b) = (replica_of(&dpm_a), replica_of(&dpm_b));
    let console = wait_console_fleet(http_port_after(&dpm_a, 0), 2);
    let checked_by = |id: &str| {
        console["engines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .map(|e| e["checkedBy"].clone())
    };
    assert_eq!(
        checked_by(&e1),
        Some(Value::from(replica_a.clone())),
        "{console}"
    );
    assert_eq!(
        checked_by(&e2),
        Some(Value::from(replica_b.clone())),
        "{console}"
    );
    let replicas = console["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2, "{console}");
    let a = replicas
        .iter()
        .find(|r| r["id"] == replica_a.as_str())
        .unwrap();
    assert_eq!(
        (a["this"].clone(), a["engines"].clone()),
        (true.into(), 1.into()),
        "{console}"
    );
    assert!(!console.to_string().contains(PASSWORD));

    // A dies; B takes e1 over within a few seconds, and e1 never leaves READY.
    let mark_b = dpm_b.events().len();
    dpm_a.signal("KILL");
    let killed = Instant::now();
    dpm_a.wait_exit();
    dpm_b.wait_for_after(mark_b, "e1 checked by B", |e| {
        e["eventId"] == "engineChecked" && about(&e1)(e)
    });
    let takeover = killed.elapsed();
    assert!(takeover < Duration::from_secs(5), "took {takeover:?}");
    dpm_b.wait_for_after(mark_b, "enginesTakenOver", |e| {
        e["eventId"] == "enginesTakenOver"
    });
    std::thread::sleep(Duration::from_secs(1));
    for id in [&e1, &e2] {
        assert_eq!(count(&dpm_b, mark_b, "engineDisconnected", id), 0);
        assert_eq!(count(&dpm_b, mark_b, "setEngineStatus", id), 0);
    }
    wait_listing_ready(&dpm_b, &pair.dpe, &[&e1, &e2]);
    assert_no_password(&dpm_b);
}

#[test]
fn the_database_lost_and_back_under_a_running_pair_loses_nothing() {
    let pg = Postgres::start().expect("a PostgreSQL server starts");
    let pair = Pair::linked();
    on_postgres(&pair.dpm, &pg);
    let home_b = sibling(&pair.dpm, "dpm-b");
    let dpe_home_2 = sibling(&pair.dpe, "dpe-2");
    let dpe_home_3 = sibling(&pair.dpe, "dpe-3");
    let mut dpm_a = start_dpm(&pair.dpm);
    let mut dpm_b = start_dpm(&home_b);
    let _dpe_1 = start_dpe(&pair.dpe, &dpm_a, &[]);
    let _dpe_2 = start_dpe(&dpe_home_2, &dpm_b, &[]);
    let (e1, e2) = (engine_id(&pair.dpe), engine_id(&dpe_home_2));
    dpm_a.wait_for("e1 READY", became_ready(&e1));
    dpm_b.wait_for("e2 READY", became_ready(&e2));
    let http_a = http_port_after(&dpm_a, 0);

    pg.stop_server().expect("PostgreSQL stops");
    let down = wait_database(http_a, "DOWN");
    assert_eq!(down["status"], "DOWN", "{down}");
    // Engines already owned are still checked, and stay READY.
    let (mark_a, mark_b) = (dpm_a.events().len(), dpm_b.events().len());
    dpm_a.wait_for_after(mark_a, "e1 checked", |e| {
        e["eventId"] == "engineChecked" && about(&e1)(e)
    });
    dpm_b.wait_for_after(mark_b, "e2 checked", |e| {
        e["eventId"] == "engineChecked" && about(&e2)(e)
    });
    // A new engine is told UNAVAILABLE (and retries), not silently dropped.
    let dpe_3 = start_dpe(&dpe_home_3, &dpm_a, &[]);
    dpe_3.wait_for("Unable to register", |e| {
        e["eventId"] == "register"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("Unable to register"))
            && e.to_string().contains("Unavailable")
    });
    assert!(dpm_a.is_running() && dpm_b.is_running());

    pg.start_server().expect("PostgreSQL starts again");
    wait_database(http_a, "UP");
    let e3 = engine_id(&dpe_home_3);
    dpm_a.wait_for("e3 READY", became_ready(&e3));
    wait_listing_ready(&dpm_a, &pair.dpe, &[&e1, &e2, &e3]);
    wait_listing_ready(&dpm_b, &pair.dpe, &[&e1, &e2, &e3]);
    for id in [&e1, &e2] {
        assert_eq!(count(&dpm_a, mark_a, "engineDisconnected", id), 0);
        assert_eq!(count(&dpm_b, mark_b, "engineDisconnected", id), 0);
    }
    // Past the claim grace after the outage (6 s): each replica still checks its own engines.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        pg.sql("SELECT count(*), count(DISTINCT owner) FROM dpm_engine")
            .expect("psql runs"),
        "3|2"
    );
    for dpm in [&dpm_a, &dpm_b] {
        let taken = dpm
            .events()
            .into_iter()
            .filter(|e| e["eventId"] == "enginesTakenOver");
        assert_eq!(taken.count(), 0, "no replica took the other's engines");
    }
}

#[test]
fn two_replicas_starting_at_once_on_an_empty_database_migrate_it_once() {
    let pg = Postgres::start().expect("a PostgreSQL server starts");
    let pair = Pair::linked();
    on_postgres(&pair.dpm, &pg);
    let home_b = sibling(&pair.dpm, "dpm-b");
    let mut dpm_a = Daemon::start("dpm", &pair.dpm, &[]);
    let mut dpm_b = Daemon::start("dpm", &home_b, &[]);
    for dpm in [&dpm_a, &dpm_b] {
        dpm.wait_for("registryOpened", |e| e["eventId"] == "registryOpened");
    }
    assert!(dpm_a.is_running() && dpm_b.is_running());
    assert_eq!(
        pg.sql("SELECT count(*) FROM refinery_schema_history")
            .expect("psql runs"),
        "1"
    );
    assert_eq!(
        pg.sql("SELECT count(*) FROM dpm_replica")
            .expect("psql runs"),
        "2"
    );
    // The lease row of a replica gone for ten minutes, owning nothing, is deleted by a live one
    // (every 10 s); the live ones' rows stay.
    pg.sql(
        "INSERT INTO dpm_replica (id, expires_at) VALUES ('gone', now() - interval '10 minutes')",
    )
    .expect("psql runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg
        .sql("SELECT count(*) FROM dpm_replica WHERE id = 'gone'")
        .expect("psql runs")
        != "0"
    {
        assert!(
            Instant::now() < deadline,
            "the dead replica's row was never deleted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        pg.sql("SELECT count(*) FROM dpm_replica")
            .expect("psql runs"),
        "2"
    );
}

#[test]
fn an_unreachable_database_at_start_exits_69_naming_the_url_without_the_password() {
    let pair = Pair::linked();
    let port = free_port();
    let out = Command::new(bin("dpm"))
        .arg("--home")
        .arg(&pair.dpm)
        .arg(format!(
            "--spring.datasource.url=jdbc:postgresql://127.0.0.1:{port}/dpm"
        ))
        .arg("--spring.datasource.username=one")
        .arg(format!("--spring.datasource.password={PASSWORD}"))
        .output()
        .expect("dpm runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains(&format!("postgresql://one@127.0.0.1:{port}/dpm")),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    let log = pair.dpm.join("log/spring-boot-logger.json.log");
    assert!(!file_contains(&log, PASSWORD));
}

/// Unix seconds of an RFC 3339 UTC time with whole seconds (`2026-12-06T05:14:08Z`), as the
/// console and `svcid engines --json` print them.
fn unix_of(text: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| -> i64 {
        text.get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an RFC 3339 UTC time: {text}"))
    };
    assert!(text.len() == 20 && text.ends_with('Z'), "{text}");
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    // Days from 1970-01-01 of a proleptic Gregorian date (the civil calendar algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    days * 86_400 + number(11..13) * 3600 + number(14..16) * 60 + number(17..19)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `svcid engines --json` against `dpm`: engine id → `lastSeen`.
fn listed_last_seen(dpm: &Daemon, dpe_home: &Path) -> HashMap<String, Option<String>> {
    engines_json(dpm, dpe_home)
        .iter()
        .map(|e| {
            (
                e["engineId"].as_str().unwrap().to_owned(),
                e["lastSeen"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// How far behind a listing may show an engine's last check: the engines are checked every
/// second and the target is two seconds, with half a second for the poll itself; the listings
/// print whole seconds (rounded down), so one second more of resolution.
const MOST_BEHIND: f64 = 2.5 + 1.0;

/// Polls `dpm`'s listings for `length` — the console's `engines` view every 200 ms, and
/// `svcid engines --json` every fifth poll — and checks that every engine of `ids` is shown
/// READY, seen at most [`MOST_BEHIND`] before the poll answered, and that its `lastSeen` advances.
fn watch_last_seen(dpm: &Daemon, dpe_home: &Path, ids: &[&str], length: Duration) {
    let http = http_port_after(dpm, 0);
    wait_console_fleet(http, ids.len());
    let mut first: HashMap<String, i64> = HashMap::new();
    let mut latest: HashMap<String, i64> = HashMap::new();
    let mut worst = 0.0_f64;
    let until = Instant::now() + length;
    let mut polls = 0;
    while Instant::now() < until {
        let (code, _, body) = http_get(http, "/console/api/engines?limit=1000");
        let answered = unix_now();
        assert_eq!(code, 200, "{body}");
        let view: Value = serde_json::from_str(&body).unwrap();
        assert!(view["pending"].is_null(), "{view}");
        let mut shown: Vec<(String, i64, f64)> = Vec::new();
        for id in ids {
            let engine = view["engines"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["id"] == *id)
                .unwrap_or_else(|| panic!("{id} not in the console's listing: {view}"));
            assert_eq!(engine["status"], "READY", "{engine}");
            let seen = unix_of(engine["lastSeen"].as_str().expect("seen once"));
            shown.push((id.to_string(), seen, answered));
        }
        if polls % 5 == 0 {
            let listed = listed_last_seen(dpm, dpe_home);
            let answered = unix_now();
            for id in ids {
                let text = listed
                    .get(*id)
                    .unwrap_or_else(|| panic!("{id} not listed by svcid engines: {listed:?}"))
                    .as_deref()
                    .expect("seen once");
                shown.push((id.to_string(), unix_of(text), answered));
            }
        }
        for (id, seen, answered) in shown {
            let behind = answered - seen as f64;
            worst = worst.max(behind);
            assert!(
                behind <= MOST_BEHIND,
                "{id}: lastSeen {seen} is {behind:.1} s behind the listing"
            );
            first.entry(id.clone()).or_insert(seen);
            latest.insert(id, seen);
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    for id in ids {
        let advanced = latest[*id] - first[*id];
        assert!(
            advanced as f64 >= (length.as_secs_f64() - MOST_BEHIND).max(1.0),
            "{id}: lastSeen advanced {advanced} s in {length:?}"
        );
    }
    eprintln!(
        "{polls} polls of {}: lastSeen at most {worst:.2} s behind (whole seconds shown)",
        dpm.port()
    );
}

#[test]
fn either_replica_lists_last_seen_within_two_seconds_of_the_owners_last_check() {
    let pg = Postgres::start().expect("a PostgreSQL server starts");
    let pair = Pair::linked();
    on_postgres(&pair.dpm, &pg);
    let home_b = sibling(&pair.dpm, "dpm-b");
    let dpe_home_2 = sibling(&pair.dpe, "dpe-2");
    let mut dpm_a = start_dpm(&pair.dpm);
    let dpm_b = start_dpm(&home_b);
    // Both engines register with A: A checks them, B only lists them.
    let _dpe_1 = start_dpe(&pair.dpe, &dpm_a, &[]);
    let _dpe_2 = start_dpe(&dpe_home_2, &dpm_a, &[]);
    let (e1, e2) = (engine_id(&pair.dpe), engine_id(&dpe_home_2));
    dpm_a.wait_for("e1 READY", became_ready(&e1));
    dpm_a.wait_for("e2 READY", became_ready(&e2));

    // B's listings follow A's checks, second by second.
    watch_last_seen(&dpm_b, &pair.dpe, &[&e1, &e2], Duration::from_secs(5));
    assert_eq!(
        count(&dpm_b, 0, "engineChecked", &e1),
        0,
        "B never checked e1"
    );
    // A's own listings too.
    watch_last_seen(&dpm_a, &pair.dpe, &[&e1, &e2], Duration::from_secs(3));

    // A is killed: B takes the engines over, and its listings go on following the checks.
    let mark_b = dpm_b.events().len();
    dpm_a.signal("KILL");
    dpm_a.wait_exit();
    dpm_b.wait_for_after(mark_b, "enginesTakenOver", |e| {
        e["eventId"] == "enginesTakenOver"
    });
    watch_last_seen(&dpm_b, &pair.dpe, &[&e1, &e2], Duration::from_secs(5));
}
