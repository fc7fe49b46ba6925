//! Binding of the HTTP port's properties (`server.port`, `server.address` and the `server.*`
//! connection bounds, Spring Boot's names) and its console switch (`svcid.console.enabled`) into
//! [`HttpSettings`].
//!
//! Vocabulary, the same in every crate: the *HTTP port* is each daemon's second port, beside the
//! gRPC port; its settings, modules and functions are named `http`. It serves the *actuator* (the
//! endpoints under `/actuator`: health, Prometheus, info) and the *console* (the operations web
//! page under `/console`).
//!
//! Only values are checked here; the daemons bind the port.

use crate::bind::{Binder, shown};
use crate::codes;
use crate::home::ModuleKind;
use crate::limits::{BoundNames, bind_bounds};
use crate::names;
use crate::settings::{ConnectionBounds, HttpSettings};

/// DPM's default HTTP port.
pub const DPM_HTTP_PORT: u16 = 8031;
/// DPE's default HTTP port.
pub const DPE_HTTP_PORT: u16 = 8034;

/// The default HTTP port of a module.
pub fn default_http_port(kind: ModuleKind) -> u16 {
    match kind {
        ModuleKind::Dpm => DPM_HTTP_PORT,
        ModuleKind::Dpe => DPE_HTTP_PORT,
    }
}

/// Binds `server.port`, `server.address`, the port's connection bounds and
/// `svcid.console.enabled`; the address defaults to the gRPC host, so a daemon bound to loopback
/// does not expose its endpoints on every interface.
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

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tests::props;

    #[test]
    fn http_defaults_follow_the_module_and_the_grpc_host() {
        let set = props("");
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
        let set = props(
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
        let set = props("svcid.console.enabled=false\n");
        let mut b = Binder::new(&set);
        assert!(!bind_http(&mut b, ModuleKind::Dpm, "127.0.0.1").console);
        assert!(b.problems.is_empty());

        let set = props("svcid.console.enabled=maybe\n");
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
        let set = props("server.port=0\nserver.address=::1\n");
        let mut b = Binder::new(&set);
        let http = bind_http(&mut b, ModuleKind::Dpm, "0.0.0.0");
        assert_eq!((http.address.as_str(), http.port), ("::1", 0));

        let set = props("server.port=99999\nserver.address=my host\n");
        let mut b = Binder::new(&set);
        let http = bind_http(&mut b, ModuleKind::Dpe, "0.0.0.0");
        assert_eq!((http.address.as_str(), http.port), ("0.0.0.0", 8034));
        let problems: Vec<String> = b.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("server.port"), "{problems:?}");
        assert!(problems[1].contains("server.address"), "{problems:?}");
    }
}
