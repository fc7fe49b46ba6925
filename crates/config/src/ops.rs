//! Binding of the operations properties: the actuator HTTP port (`server.port`,
//! `server.address`, Spring Boot's names) and its console switch (`svcid.console.enabled`) into
//! [`HttpSettings`], and the log files' rolling
//! policy (`logging.logback.rollingpolicy.*`) into [`RollingPolicy`].
//!
//! Only values are checked here; the daemons bind the port and the logging crate rolls the files.

use svcid_logging::RollingPolicy;

use crate::bind::{Binder, shown};
use crate::codes;
use crate::home::ModuleKind;
use crate::limits::{BoundNames, bind_bounds, parse_data_size};
use crate::names;
use crate::settings::{ConnectionBounds, HttpSettings};

/// DPM's default actuator port.
pub const DPM_HTTP_PORT: u16 = 8031;
/// DPE's default actuator port.
pub const DPE_HTTP_PORT: u16 = 8034;
/// The smallest `max-file-size` accepted: below it nearly every line would start a file.
const MIN_LOG_FILE_SIZE: u64 = 4 * 1024;

/// The default actuator port of a module.
pub fn default_http_port(kind: ModuleKind) -> u16 {
    match kind {
        ModuleKind::Dpm => DPM_HTTP_PORT,
        ModuleKind::Dpe => DPE_HTTP_PORT,
    }
}

/// Binds `server.port`, `server.address` and the port's connection bounds; the address defaults
/// to the gRPC host, so a daemon bound to loopback does not expose its endpoints on every
/// interface.
/// Binds `server.port`, `server.address` and `svcid.console.enabled`; the address defaults to the
/// gRPC host, so a daemon bound to loopback does not expose its endpoints on every interface.
pub(crate) fn bind_http(b: &mut Binder<'_>, kind: ModuleKind, grpc_host: &str) -> HttpSettings {
    let port = b.port(names::SERVER_PORT, default_http_port(kind));
    let connections = bind_bounds(
        b,
        &BoundNames {
            max_connections: names::SERVER_MAX_CONNECTIONS,
            max_connections_per_peer: names::SERVER_MAX_CONNECTIONS_PER_PEER,
            first_call_timeout: names::SERVER_CONNECTION_TIMEOUT,
            max_connection_idle: names::SERVER_IDLE_TIMEOUT,
            write_timeout: names::SERVER_WRITE_TIMEOUT,
        },
        ConnectionBounds::http(),
    );
    let address = b.string_or(names::SERVER_ADDRESS, grpc_host);
    let console = b.bool(names::CONSOLE_ENABLED, true);
    if address.parse::<std::net::IpAddr>().is_err()
        && address != "localhost"
        && let Some(v) = b.props.get(names::SERVER_ADDRESS)
    {
        b.error_at(
            codes::NOT_BIND_ADDRESS,
            v,
            format!("{} is not an IP address to bind", shown(&address)),
            "use an address such as 0.0.0.0, 127.0.0.1 or ::",
        );
        return HttpSettings {
            address: grpc_host.to_owned(),
            port,
            connections,
            console,
        };
    }
    HttpSettings {
        address,
        port,
        connections,
        console,
    }
}

/// Binds `logging.logback.rollingpolicy.max-file-size`, `max-history` and `total-size-cap`.
pub(crate) fn bind_rolling(b: &mut Binder<'_>) -> RollingPolicy {
    let defaults = RollingPolicy::default();
    let max_file_size = b.parsed(
        names::LOG_MAX_FILE_SIZE,
        defaults.max_file_size,
        codes::INVALID_VALUE,
        "use a data size of at least 4KB such as 10MB or 64KB (a bare number is bytes)",
        |raw| match parse_data_size(raw) {
            Some(size) if size >= MIN_LOG_FILE_SIZE => Ok(size),
            Some(_) => Err(format!(
                "{} is smaller than {MIN_LOG_FILE_SIZE} bytes",
                shown(raw)
            )),
            None => Err(format!("{} is not a data size", shown(raw))),
        },
    );
    let max_history = b.parsed(
        names::LOG_MAX_HISTORY,
        defaults.max_history,
        codes::INVALID_VALUE,
        "use a whole number of days, e.g. 7 (0 keeps archives forever)",
        |raw| {
            raw.parse::<u32>()
                .map_err(|_| format!("{} is not a whole number of days", shown(raw)))
        },
    );
    let total_size_cap = b.parsed(
        names::LOG_TOTAL_SIZE_CAP,
        defaults.total_size_cap,
        codes::INVALID_VALUE,
        "use a data size such as 1GB (0B means no cap)",
        |raw| parse_data_size(raw).ok_or_else(|| format!("{} is not a data size", shown(raw))),
    );
    RollingPolicy {
        max_file_size,
        max_history,
        total_size_cap,
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use svcid_properties::PropertySet;

    use super::*;

    fn binder_for(text: &str) -> PropertySet {
        let mut set = PropertySet::new();
        set.load_str(text, Path::new("application.properties"))
            .unwrap();
        set
    }

    #[test]
    fn http_defaults_follow_the_module_and_the_grpc_host() {
        let set = binder_for("");
        let mut b = Binder::new(&set);
        assert_eq!(
            bind_http(&mut b, ModuleKind::Dpm, "127.0.0.1"),
            HttpSettings {
                address: "127.0.0.1".into(),
                port: 8031,
                connections: ConnectionBounds::http(),
                console: true,
            }
        );
        assert_eq!(bind_http(&mut b, ModuleKind::Dpe, "0.0.0.0").port, 8034);
        assert!(b.problems.is_empty());
    }

    #[test]
    fn http_connection_bounds_bind_and_bad_ones_name_the_property() {
        let set = binder_for(
            "server.max-connections=8\nserver.maxConnectionsPerPeer=2\nserver.connection-timeout=3s\n\
             server.idle-timeout=0\nserver.write-timeout=soon\n",
        );
        let mut b = Binder::new(&set);
        let http = bind_http(&mut b, ModuleKind::Dpe, "127.0.0.1");
        let defaults = ConnectionBounds::http();
        assert_eq!(
            http.connections,
            ConnectionBounds {
                max_connections: 8,
                max_connections_per_peer: 2,
                first_call_timeout: std::time::Duration::from_secs(3),
                max_connection_idle: defaults.max_connection_idle,
                write_timeout: defaults.write_timeout,
            }
        );
        let problems: Vec<String> = b.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].contains("server.idle-timeout"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].contains("server.write-timeout"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn the_console_switch_is_a_boolean() {
        let set = binder_for("svcid.console.enabled=false\n");
        let mut b = Binder::new(&set);
        assert!(!bind_http(&mut b, ModuleKind::Dpm, "127.0.0.1").console);
        assert!(b.problems.is_empty());

        let set = binder_for("svcid.console.enabled=maybe\n");
        let mut b = Binder::new(&set);
        assert!(bind_http(&mut b, ModuleKind::Dpe, "127.0.0.1").console);
        let problems: Vec<String> = b.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("svcid.console.enabled"),
            "{problems:?}"
        );
    }

    #[test]
    fn http_values_are_checked() {
        let set = binder_for("server.port=0\nserver.address=::1\n");
        let mut b = Binder::new(&set);
        let http = bind_http(&mut b, ModuleKind::Dpm, "0.0.0.0");
        assert_eq!((http.address.as_str(), http.port), ("::1", 0));

        let set = binder_for("server.port=99999\nserver.address=my host\n");
        let mut b = Binder::new(&set);
        let http = bind_http(&mut b, ModuleKind::Dpe, "0.0.0.0");
        assert_eq!((http.address.as_str(), http.port), ("0.0.0.0", 8034));
        let problems: Vec<String> = b.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("server.port"), "{problems:?}");
        assert!(problems[1].contains("server.address"), "{problems:?}");
    }

    #[test]
    fn rolling_policy_defaults_and_spring_forms() {
        let set = binder_for("");
        let mut b = Binder::new(&set);
        assert_eq!(bind_rolling(&mut b), RollingPolicy::default());

        let set = binder_for(
            "logging.logback.rollingpolicy.max-file-size=64KB\n\
             logging.logback.rollingpolicy.maxHistory=30\n\
             logging.logback.rollingpolicy.total-size-cap=1GB\n",
        );
        let mut b = Binder::new(&set);
        assert_eq!(
            bind_rolling(&mut b),
            RollingPolicy {
                max_file_size: 64 * 1024,
                max_history: 30,
                total_size_cap: 1 << 30,
            }
        );
        assert!(b.problems.is_empty());
    }

    #[test]
    fn bad_rolling_values_name_the_property() {
        let set = binder_for(
            "logging.logback.rollingpolicy.max-file-size=10\n\
             logging.logback.rollingpolicy.max-history=-1\n\
             logging.logback.rollingpolicy.total-size-cap=lots\n",
        );
        let mut b = Binder::new(&set);
        assert_eq!(bind_rolling(&mut b), RollingPolicy::default());
        let problems: Vec<String> = b.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("max-file-size"), "{problems:?}");
        assert!(problems[1].contains("max-history"), "{problems:?}");
        assert!(problems[2].contains("total-size-cap"), "{problems:?}");
    }
}
