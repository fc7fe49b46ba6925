//! Tests of the whole pipeline: `tracing` macros in, lines out, with a frozen clock so the
//! product's sample lines can be compared byte for byte.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

/// The JSON and console lines one closure produced.
struct Captured {
    json: Vec<String>,
    plain: Vec<String>,
}

/// Runs `emit` on a thread named `thread` (or unnamed) under a fresh subscriber whose clock is
/// frozen at `at`, and returns what it wrote.
fn capture(
    settings: &LogSettings,
    thread: Option<&str>,
    at: OffsetDateTime,
    emit: impl FnOnce() + Send + 'static,
) -> Captured {
    let json = MemorySink::new();
    let plain = MemorySink::new();
    let sinks = Sinks::new().json(json.clone()).plain(plain.clone());
    let (subscriber, _output, _levels) = assemble(settings, sinks, Clock::Fixed(at));
    let mut builder = std::thread::Builder::new();
    if let Some(name) = thread {
        builder = builder.name(name.to_owned());
    }
    builder
        .spawn(move || tracing::subscriber::with_default(subscriber, emit))
        .unwrap()
        .join()
        .unwrap();
    let captured = Captured {
        json: json.lines(),
        plain: plain.lines(),
    };
    for line in &captured.json {
        assert_valid_json_with_unique_keys(line);
    }
    captured
}

/// The keys of a JSON object in the order written, duplicates kept (serde_json's `Value` would
/// silently keep one of them).
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyCollector;
        impl<'de> Visitor<'de> for KeyCollector {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_map(KeyCollector)
    }
}

fn keys(line: &str) -> Vec<String> {
    serde_json::from_str::<Keys>(line).unwrap().0
}

fn assert_valid_json_with_unique_keys(line: &str) {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(value.is_object(), "{line}");
    let keys = keys(line);
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "duplicate keys in {line}");
}

fn field(line: &str, name: &str) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    value[name].clone()
}

const DPE_IDENTITY: &str = "ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])";
const ENGINE_ID: &str = "0031debd-6130-4b4a-8eaf-7a834555cf33";

/// The product's line with its second `message` key removed: the one deliberate difference.
fn product_line_without_duplicate_message(product: &str, text: &str) -> String {
    let duplicate = format!(",\"message\":\"{text}\"");
    assert_eq!(product.matches(&duplicate).count(), 1);
    product.replace(&duplicate, "")
}

#[test]
fn golden_dpm_register_engine() {
    let product = r#"{"@timestamp":"2021-04-14T11:26:03.234+02:00","@version":"1","message":"eventId=registerEngine engineId=0031debd-6130-4b4a-8eaf-7a834555cf33, engine=EngineAddress(hostname=user-VirtualBox, port=8532), engineConstraints=(requirements: {} capabilities: { ... } priorities: []), message=New engine registered.","logger_name":"com.ataccama.dpm.registry.EngineRegistryServiceImpl","thread_name":"grpc-default-executor-0","severity":"INFO","level_value":20000,"authenticatedUser":"ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])","correlationId":"0031debd-6130-4b4a-8eaf-7a834555cf33","eventId":"registerEngine","engineId":"0031debd-6130-4b4a-8eaf-7a834555cf33","engine":"EngineAddress(hostname=user-VirtualBox, port=8532)","engineConstraints":"(requirements: {} capabilities: { ... } priorities: [])","message":"New engine registered.","application":"oneApplication"}"#;
    let out = capture(
        &LogSettings::default(),
        Some("grpc-default-executor-0"),
        datetime!(2021-04-14 11:26:03.234 +02:00),
        || {
            // The call span carries the token's jti; the event's own correlationId (the
            // engine id, as the product has it for registration events) must win.
            let call = tracing::info_span!(
                "call",
                authenticatedUser = %DPE_IDENTITY,
                correlationId = %"9c7e5f0e-jti-of-the-token"
            );
            let _entered = call.enter();
            let address = "EngineAddress(hostname=user-VirtualBox, port=8532)";
            let constraints = "(requirements: {} capabilities: { ... } priorities: [])";
            tracing::info!(
                target: "com.ataccama.dpm.registry.EngineRegistryServiceImpl",
                eventId = "registerEngine",
                engineId = %ENGINE_ID,
                engine = %address,
                engineConstraints = %constraints,
                correlationId = %ENGINE_ID,
                "New engine registered."
            );
        },
    );
    assert_eq!(
        out.json,
        vec![product_line_without_duplicate_message(
            product,
            "New engine registered."
        )]
    );
}

#[test]
fn golden_dpm_set_engine_status_without_text() {
    let product = r#"{"@timestamp":"2021-04-14T11:26:03.804+02:00","@version":"1","message":"eventId=setEngineStatus engine=Engine(id=0031debd-6130-4b4a-8eaf-7a834555cf33, address=EngineAddress(hostname=user-VirtualBox, port=8532)), oldStatus=NEW, newStatus=READY","logger_name":"com.ataccama.dpm.registry.EngineRegistryServiceImpl","thread_name":"scheduling-1","severity":"INFO","level_value":20000,"correlationId":"0031debd-6130-4b4a-8eaf-7a834555cf33","eventId":"setEngineStatus","engine":"Engine(id=0031debd-6130-4b4a-8eaf-7a834555cf33, address=EngineAddress(hostname=user-VirtualBox, port=8532))","oldStatus":"NEW","newStatus":"READY","application":"oneApplication"}"#;
    let out = capture(
        &LogSettings::default(),
        Some("scheduling-1"),
        datetime!(2021-04-14 11:26:03.804 +02:00),
        || {
            let engine = format!(
                "Engine(id={ENGINE_ID}, address=EngineAddress(hostname=user-VirtualBox, port=8532))"
            );
            tracing::info!(
                target: "com.ataccama.dpm.registry.EngineRegistryServiceImpl",
                eventId = "setEngineStatus",
                engine = %engine,
                oldStatus = "NEW",
                newStatus = "READY",
                correlationId = %ENGINE_ID,
            );
        },
    );
    // This product line has no text, so no `message` key is repeated: it must match exactly.
    assert_eq!(out.json, vec![product.to_owned()]);
}

#[test]
fn golden_dpe_register() {
    let product = r#"{"@timestamp":"2021-04-14T11:14:37.280+02:00","@version":"1","message":"eventId=register dpmUrl=localhost:8531, message=Engine registered.","logger_name":"com.ataccama.dpe.service.StatusChecker","thread_name":"scheduling-1","severity":"INFO","level_value":20000,"correlationId":"7b87a034-536b-4650-979b-62a27c575430","eventId":"register","dpmUrl":"localhost:8531","message":"Engine registered.","application":"oneApplication"}"#;
    let out = capture(
        &LogSettings::default(),
        Some("scheduling-1"),
        datetime!(2021-04-14 11:14:37.280 +02:00),
        || {
            // Scheduled work: a span records its correlation id after creation.
            let work = tracing::info_span!("register", correlationId = tracing::field::Empty);
            work.record("correlationId", "7b87a034-536b-4650-979b-62a27c575430");
            let _entered = work.enter();
            tracing::info!(
                target: "com.ataccama.dpe.service.StatusChecker",
                eventId = "register",
                dpmUrl = "localhost:8531",
                "Engine registered."
            );
        },
    );
    assert_eq!(
        out.json,
        vec![product_line_without_duplicate_message(
            product,
            "Engine registered."
        )]
    );
}

#[test]
fn field_order_is_fixed_and_event_id_leads_the_parameters() {
    let out = capture(
        &LogSettings::default(),
        Some("t"),
        datetime!(2021-04-14 11:26:03.234 +02:00),
        || {
            let call = tracing::info_span!("call", authenticatedUser = "u", correlationId = "c");
            let _entered = call.enter();
            tracing::warn!(a = 1, eventId = "late", b = true, "text");
        },
    );
    assert_eq!(
        keys(&out.json[0]),
        [
            "@timestamp",
            "@version",
            "message",
            "logger_name",
            "thread_name",
            "severity",
            "level_value",
            "authenticatedUser",
            "correlationId",
            "eventId",
            "a",
            "b",
            "application",
        ]
    );
    assert_eq!(
        field(&out.json[0], "message"),
        "eventId=late a=1, b=true, message=text"
    );
    assert_eq!(field(&out.json[0], "a"), "1");
    assert_eq!(field(&out.json[0], "b"), "true");
}

#[test]
fn event_without_event_id_is_its_text() {
    let out = capture(
        &LogSettings::default(),
        None,
        datetime!(2021-04-14 11:26:03.234 UTC),
        || {
            tracing::info!(target: "svcid_test", "gRPC server stopped.");
            tracing::info!(target: "svcid_test", port = 8531, "gRPC server listening.");
        },
    );
    let line = &out.json[0];
    assert_eq!(field(line, "message"), "gRPC server stopped.");
    assert_eq!(field(line, "eventId"), serde_json::Value::Null);
    assert_eq!(field(line, "thread_name"), "unnamed");
    assert_eq!(field(line, "logger_name"), "svcid_test");
    assert_eq!(field(line, "@timestamp"), "2021-04-14T11:26:03.234+00:00");
    // With parameters but no eventId the parameters stay visible in the message.
    assert_eq!(
        field(&out.json[1], "message"),
        "port=8531, message=gRPC server listening."
    );
    assert_eq!(field(&out.json[1], "port"), "8531");
}

#[test]
fn event_id_without_parameters() {
    let out = capture(
        &LogSettings::default(),
        None,
        datetime!(2021-04-14 11:26:03.234 UTC),
        || tracing::info!(eventId = "unregisterEngine", "Engine unregistered."),
    );
    assert_eq!(
        field(&out.json[0], "message"),
        "eventId=unregisterEngine message=Engine unregistered."
    );
}

#[test]
fn spans_pass_user_and_correlation_id_to_events_innermost_first() {
    let out = capture(
        &LogSettings::default(),
        None,
        datetime!(2021-04-14 11:26:03.234 UTC),
        || {
            let call = tracing::info_span!(
                "call",
                authenticatedUser = tracing::field::Empty,
                correlationId = tracing::field::Empty
            );
            let _call = call.enter();
            tracing::info!(eventId = "before");
            // Recorded after creation, as the interceptor does once the token is verified.
            call.record("authenticatedUser", DPE_IDENTITY);
            call.record("correlationId", "jti-1");
            tracing::info!(eventId = "outer");
            {
                let inner = tracing::info_span!("step", correlationId = "inner-id");
                let _inner = inner.enter();
                // A span without call context fields is transparent.
                let noise = tracing::info_span!("noise", detail = 5);
                let _noise = noise.enter();
                tracing::info!(eventId = "inner");
                tracing::info!(eventId = "own", correlationId = "event-id");
            }
            tracing::info!(eventId = "after");
        },
    );
    let seen: Vec<(String, serde_json::Value, serde_json::Value)> = out
        .json
        .iter()
        .map(|line| {
            (
                field(line, "eventId").as_str().unwrap().to_owned(),
                field(line, "authenticatedUser"),
                field(line, "correlationId"),
            )
        })
        .collect();
    let null = serde_json::Value::Null;
    let user = serde_json::Value::from(DPE_IDENTITY);
    assert_eq!(
        seen,
        vec![
            ("before".to_owned(), null.clone(), null.clone()),
            ("outer".to_owned(), user.clone(), "jti-1".into()),
            ("inner".to_owned(), user.clone(), "inner-id".into()),
            ("own".to_owned(), user.clone(), "event-id".into()),
            ("after".to_owned(), user, "jti-1".into()),
        ]
    );
    // Fields of spans never become parameters.
    assert!(!out.json[2].contains("detail"), "{}", out.json[2]);
    assert_eq!(field(&out.json[0], "message"), "eventId=before");
}

#[test]
fn explicit_parent_span_is_honoured() {
    let out = capture(
        &LogSettings::default(),
        None,
        datetime!(2021-04-14 11:26:03.234 UTC),
        || {
            let call = tracing::info_span!("call", correlationId = "parent-id");
            tracing::info!(parent: &call, eventId = "detached");
        },
    );
    assert_eq!(field(&out.json[0], "correlationId"), "parent-id");
}

#[test]
fn root_warn_hides_info_but_spans_still_give_context() {
    let settings = LogSettings {
        root_level: Level::Warn,
        ..LogSettings::default()
    };
    let out = capture(
        &settings,
        None,
        datetime!(2021-04-14 11:26:03.234 UTC),
        || {
            let call = tracing::info_span!("call", authenticatedUser = "caller");
            let _entered = call.enter();
            tracing::info!(eventId = "hidden");
            tracing::debug!(eventId = "hidden");
            tracing::warn!(eventId = "authenticationFailed", reason = "expired");
            tracing::error!(eventId = "broken");
        },
    );
    assert_eq!(out.json.len(), 2, "{:?}", out.json);
    assert_eq!(out.plain.len(), 2, "{:?}", out.plain);
    assert_eq!(field(&out.json[0], "severity"), "WARN");
    assert_eq!(field(&out.json[0], "level_value"), 30000);
    assert_eq!(field(&out.json[0], "authenticatedUser"), "caller");
    assert_eq!(field(&out.json[1], "severity"), "ERROR");
    assert_eq!(field(&out.json[1], "level_value"), 40000);
}

#[test]
fn per_target_levels_override_the_root() {
    let settings = LogSettings {
        levels: vec![
            ("svcid_dpm.registry".to_owned(), Level::Debug),
            ("com.ataccama.dpe".to_owned(), Level::Trace),
            ("h2".to_owned(), Level::Off),
        ],
        ..LogSettings::default()
    };
    let out = capture(
        &settings,
        None,
        datetime!(2021-04-14 11:26:03.234 UTC),
        || {
            tracing::debug!(target: "svcid_dpm::registry::checker", eventId = "shown1");
            tracing::trace!(target: "svcid_dpm::registry::checker", eventId = "hidden");
            tracing::debug!(target: "svcid_dpm::server", eventId = "hidden");
            tracing::trace!(target: "com.ataccama.dpe.service.StatusChecker", eventId = "shown2");
            tracing::error!(target: "h2::codec", eventId = "hidden");
            tracing::info!(target: "svcid_dpm::server", eventId = "shown3");
        },
    );
    let ids: Vec<_> = out.json.iter().map(|l| field(l, "eventId")).collect();
    assert_eq!(ids, ["shown1", "shown2", "shown3"]);
    assert_eq!(field(&out.json[0], "severity"), "DEBUG");
    assert_eq!(field(&out.json[0], "level_value"), 10000);
    assert_eq!(field(&out.json[1], "severity"), "TRACE");
    assert_eq!(field(&out.json[1], "level_value"), 5000);
}

#[test]
fn root_off_writes_nothing() {
    let settings = LogSettings {
        root_level: Level::Off,
        ..LogSettings::default()
    };
    let out = capture(
        &settings,
        None,
        datetime!(2021-04-14 11:26:03.234 UTC),
        || tracing::error!("nothing"),
    );
    assert!(out.json.is_empty() && out.plain.is_empty());
}

#[test]
fn quotes_newlines_and_control_characters_are_escaped() {
    let nasty = "say \"hi\"\nnext\r\tline \\ \u{0}\u{1b}[31m end\u{7f} \u{2028} é";
    let nasty_target = "svcid_test";
    let out = capture(
        &LogSettings {
            application: "app \"quoted\"".to_owned(),
            ..LogSettings::default()
        },
        Some("thread\n\"x\""),
        datetime!(2021-04-14 11:26:03.234 UTC),
        move || {
            tracing::error!(
                target: "svcid_test",
                eventId = "escape",
                value = %nasty,
                correlationId = %nasty,
                "{nasty}"
            );
        },
    );
    assert_eq!(out.json.len(), 1);
    let line = &out.json[0];
    assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
    assert_eq!(field(line, "value"), nasty);
    assert_eq!(field(line, "correlationId"), nasty);
    assert_eq!(field(line, "thread_name"), "thread\n\"x\"");
    assert_eq!(field(line, "application"), "app \"quoted\"");
    assert_eq!(field(line, "logger_name"), nasty_target);
    assert_eq!(
        field(line, "message"),
        format!("eventId=escape value={nasty}, message={nasty}").as_str()
    );
    // The console line stays one line too.
    assert_eq!(out.plain.len(), 1);
    assert!(
        out.plain[0].contains("value=say \"hi\"\\nnext\\r\\tline"),
        "{}",
        out.plain[0]
    );
}

#[test]
fn parameter_named_like_a_top_level_key_keeps_keys_unique() {
    let out = capture(
        &LogSettings::default(),
        None,
        datetime!(2021-04-14 11:26:03.234 UTC),
        || {
            tracing::info!(
                eventId = "clash",
                application = "x",
                severity = "y",
                logger_name = "z",
                "text"
            );
        },
    );
    let line = &out.json[0];
    assert_eq!(field(line, "application"), "oneApplication");
    assert_eq!(field(line, "severity"), "INFO");
    assert_eq!(
        field(line, "message"),
        "eventId=clash application=x, severity=y, logger_name=z, message=text"
    );
}

#[test]
fn values_render_with_display_debug_and_errors() {
    #[derive(Debug)]
    struct Status {
        _code: u8,
    }
    let out = capture(
        &LogSettings::default(),
        None,
        datetime!(2021-04-14 11:26:03.234 UTC),
        || {
            let error = std::io::Error::other("connection refused");
            let reason: &(dyn std::error::Error + 'static) = &error;
            tracing::warn!(
                eventId = "register",
                status = ?Status { _code: 14 },
                port = 8531_u16,
                ratio = 0.5,
                reason,
                "Unable to register."
            );
        },
    );
    let line = &out.json[0];
    assert_eq!(field(line, "status"), "Status { _code: 14 }");
    assert_eq!(field(line, "port"), "8531");
    assert_eq!(field(line, "ratio"), "0.5");
    assert_eq!(field(line, "reason"), "connection refused");
}

#[test]
fn console_line_matches_spring_boot_pattern() {
    let out = capture(
        &LogSettings::default(),
        Some("scheduling-1"),
        datetime!(2021-04-14 11:26:03.234 +02:00),
        || {
            tracing::info!(
                target: "com.ataccama.dpe.service.StatusChecker",
                eventId = "register",
                dpmUrl = "localhost:8531",
                correlationId = "c-1",
                "Engine registered."
            );
        },
    );
    let pid = std::process::id();
    assert_eq!(
        out.plain,
        vec![format!(
            "2021-04-14 11:26:03.234  INFO {pid} --- [   scheduling-1] com.ataccama.dpe.service.StatusChecker   \
             : eventId=register dpmUrl=localhost:8531, message=Engine registered."
        )]
    );
}

#[test]
fn many_threads_never_interleave_lines() {
    let json = MemorySink::new();
    let subscriber = build(&LogSettings::default(), Sinks::new().json(json.clone()));
    let dispatch = tracing::Dispatch::new(subscriber);
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..200 {
                        tracing::info!(eventId = "load", thread = n, i, "{}", "x".repeat(300));
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let lines = json.lines();
    assert_eq!(lines.len(), 800);
    for line in &lines {
        assert_valid_json_with_unique_keys(line);
    }
}

#[test]
fn init_errors_name_the_path() {
    let base = std::env::temp_dir().join(format!("svcid-logging-errors-{}", std::process::id()));
    fs::create_dir_all(&base).unwrap();
    // A file where the folder should be.
    let blocker = base.join("not-a-folder");
    fs::write(&blocker, b"").unwrap();
    let settings = LogSettings {
        dir: blocker.join("log"),
        plain_console: false,
        ..LogSettings::default()
    };
    let err = init(&settings).unwrap_err();
    assert!(matches!(err, LogError::CreateDir { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&*blocker.to_string_lossy()),
        "{err}"
    );

    // A folder where the JSON file should be.
    let dir = base.join("log");
    fs::create_dir_all(dir.join(JSON_LOG_FILE)).unwrap();
    let settings = LogSettings {
        dir: dir.clone(),
        plain_console: false,
        ..LogSettings::default()
    };
    let err = init(&settings).unwrap_err();
    assert!(matches!(err, LogError::OpenFile { .. }), "{err:?}");
    assert!(err.to_string().contains(JSON_LOG_FILE), "{err}");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn settings_default_to_the_product_defaults() {
    let settings = LogSettings::default();
    assert!(settings.plain_console && settings.json_file);
    assert!(!settings.json_console && !settings.plain_file);
    assert_eq!(settings.root_level, Level::Info);
    assert_eq!(settings.application, "oneApplication");
}
