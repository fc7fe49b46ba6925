//! Binding of the gRPC transport limits (`ataccama.server.grpc.max-message-size` and friends) into
//! [`GrpcLimits`], with Spring's data-size syntax (`4MB`, `512KB`, a bare number of bytes).
//!
//! Only the values are checked here; the daemons apply them to the tonic server (see
//! `svcid_grpc::server::limited`).

use svcid_properties::DurationUnit;

use crate::bind::{Binder, shown};
use crate::codes;
use crate::names;
use crate::settings::{ConnectionBounds, GrpcLimits};

/// The smallest message or metadata limit accepted: below it not even a token fits.
const MIN_SIZE: u64 = 1024;
/// The largest message limit accepted: gRPC frames a message with a 32-bit length.
const MAX_MESSAGE_SIZE: u64 = u32::MAX as u64;

/// Binds the limits, recording a problem (and keeping the default) for each bad value.
pub(crate) fn bind(b: &mut Binder<'_>) -> GrpcLimits {
    let defaults = GrpcLimits::default();
    let max_message_size = b.parsed(
        names::GRPC_MAX_MESSAGE_SIZE,
        defaults.max_message_size,
        codes::INVALID_VALUE,
        "use a data size from 1KB to 4GB such as 4MB or 512KB (a bare number is bytes)",
        |raw| {
            let size = size_between(raw, MIN_SIZE, MAX_MESSAGE_SIZE)?;
            usize::try_from(size).map_err(|_| format!("{} is too large here", shown(raw)))
        },
    );
    let max_metadata_size = b.parsed(
        names::GRPC_MAX_METADATA_SIZE,
        defaults.max_metadata_size,
        codes::INVALID_VALUE,
        "use a data size from 1KB to 4GB such as 16KB (tokens alone may take 8KB)",
        |raw| {
            let size = size_between(raw, MIN_SIZE, u64::from(u32::MAX))?;
            u32::try_from(size).map_err(|_| format!("{} is too large", shown(raw)))
        },
    );
    let max_concurrent_streams = b.parsed(
        names::GRPC_MAX_CONCURRENT_STREAMS,
        defaults.max_concurrent_streams,
        codes::INVALID_VALUE,
        "use a whole number of at least 1, e.g. 100",
        |raw| match raw.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!(
                "{} is not a whole number of at least 1",
                shown(raw)
            )),
        },
    );
    let request_timeout =
        b.positive_duration(names::GRPC_REQUEST_TIMEOUT, defaults.request_timeout);
    let keep_alive_time = b.duration(
        names::GRPC_KEEP_ALIVE_TIME,
        defaults.keep_alive_time.unwrap_or_default(),
        DurationUnit::Millis,
    );
    let keep_alive_timeout =
        b.positive_duration(names::GRPC_KEEP_ALIVE_TIMEOUT, defaults.keep_alive_timeout);
    let connections = bind_bounds(
        b,
        &BoundNames {
            max_connections: names::GRPC_MAX_CONNECTIONS,
            max_connections_per_peer: names::GRPC_MAX_CONNECTIONS_PER_PEER,
            first_call_timeout: names::GRPC_FIRST_CALL_TIMEOUT,
            max_connection_idle: names::GRPC_MAX_CONNECTION_IDLE,
            write_timeout: names::GRPC_WRITE_TIMEOUT,
        },
        defaults.connections,
    );
    GrpcLimits {
        connections,
        max_message_size,
        max_concurrent_streams,
        max_metadata_size,
        request_timeout,
        // Zero is how an operator turns the pings off.
        keep_alive_time: (!keep_alive_time.is_zero()).then_some(keep_alive_time),
        keep_alive_timeout,
    }
}

/// The property names of one port's [`ConnectionBounds`].
pub(crate) struct BoundNames {
    pub(crate) max_connections: &'static str,
    pub(crate) max_connections_per_peer: &'static str,
    pub(crate) first_call_timeout: &'static str,
    pub(crate) max_connection_idle: &'static str,
    pub(crate) write_timeout: &'static str,
}

/// Binds one port's connection bounds, recording a problem (and keeping the default) for each
/// bad value.
pub(crate) fn bind_bounds(
    b: &mut Binder<'_>,
    names: &BoundNames,
    defaults: ConnectionBounds,
) -> ConnectionBounds {
    let count = |b: &mut Binder<'_>, name: &str, default: usize| {
        b.parsed(
            name,
            default,
            codes::INVALID_VALUE,
            "use a whole number of at least 1, e.g. 1000",
            |raw| match raw.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!(
                    "{} is not a whole number of at least 1",
                    shown(raw)
                )),
            },
        )
    };
    ConnectionBounds {
        max_connections: count(b, names.max_connections, defaults.max_connections),
        max_connections_per_peer: count(
            b,
            names.max_connections_per_peer,
            defaults.max_connections_per_peer,
        ),
        first_call_timeout: b
            .positive_duration(names.first_call_timeout, defaults.first_call_timeout),
        max_connection_idle: b
            .positive_duration(names.max_connection_idle, defaults.max_connection_idle),
        write_timeout: b.positive_duration(names.write_timeout, defaults.write_timeout),
    }
}

/// A data size within `min..=max` bytes, or the message saying why not.
fn size_between(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    let size = parse_data_size(raw).ok_or_else(|| format!("{} is not a data size", shown(raw)))?;
    if size < min {
        return Err(format!("{} is smaller than {min} bytes", shown(raw)));
    }
    if size > max {
        return Err(format!("{} is larger than {max} bytes", shown(raw)));
    }
    Ok(size)
}

/// Spring's `DataSize` syntax: a whole number and an optional unit `B`, `KB`, `MB`, `GB` or `TB`
/// (binary multiples, as Spring uses; any case). A bare number is bytes. `None` when malformed or
/// too large for 64 bits.
pub(crate) fn parse_data_size(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let digits_end = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        _ => return None,
    };
    number.checked_mul(1u64 << shift)
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;
    use std::time::Duration as D;

    use svcid_properties::PropertySet;

    use super::*;

    fn bound(text: &str) -> (GrpcLimits, Vec<String>) {
        let mut set = PropertySet::new();
        set.load_str(text, Path::new("application.properties"))
            .unwrap();
        let mut b = Binder::new(&set);
        let limits = bind(&mut b);
        (limits, b.problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn data_sizes_read_as_spring_reads_them() {
        assert_eq!(parse_data_size("4MB"), Some(4 * 1024 * 1024));
        assert_eq!(parse_data_size("512KB"), Some(512 * 1024));
        assert_eq!(parse_data_size("16kb"), Some(16 * 1024));
        assert_eq!(parse_data_size("1GB"), Some(1 << 30));
        assert_eq!(parse_data_size("2048"), Some(2048));
        assert_eq!(parse_data_size("100B"), Some(100));
        assert_eq!(parse_data_size(" 1TB "), Some(1 << 40));
        for bad in [
            "",
            "MB",
            "4 MB",
            "-1",
            "1.5MB",
            "4MiB",
            "4M",
            "99999999999999999999",
        ] {
            assert_eq!(parse_data_size(bad), None, "{bad:?}");
        }
        assert_eq!(parse_data_size("99999999TB"), None, "overflow");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let (limits, problems) = bound("");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(limits, GrpcLimits::default());
        assert_eq!(limits.max_message_size, 4 * 1024 * 1024);
        assert_eq!(limits.max_metadata_size, 16 * 1024);
        assert_eq!(limits.max_concurrent_streams, 100);
        assert_eq!(limits.request_timeout, D::from_secs(30));
        assert_eq!(limits.keep_alive_time, Some(D::from_secs(60)));
        assert_eq!(limits.keep_alive_timeout, D::from_secs(20));
    }

    #[test]
    fn every_limit_binds_in_relaxed_form() {
        let (limits, problems) = bound(
            "ataccama.server.grpc.maxMessageSize=64KB\n\
             ataccama.server.grpc.max_concurrent_streams=8\n\
             ataccama.server.grpc.max-metadata-size=32KB\n\
             ataccama.server.grpc.request-timeout=5s\n\
             ataccama.server.grpc.keep-alive-time=0\n\
             ataccama.server.grpc.keep-alive-timeout=PT3S\n\
             ataccama.server.grpc.maxConnections=50\n\
             ataccama.server.grpc.max-connections-per-peer=5\n\
             ataccama.server.grpc.first-call-timeout=2s\n\
             ataccama.server.grpc.max_connection_idle=1m\n\
             ataccama.server.grpc.writeTimeout=7s\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            limits,
            GrpcLimits {
                max_message_size: 64 * 1024,
                max_concurrent_streams: 8,
                max_metadata_size: 32 * 1024,
                request_timeout: D::from_secs(5),
                keep_alive_time: None,
                keep_alive_timeout: D::from_secs(3),
                connections: ConnectionBounds {
                    max_connections: 50,
                    max_connections_per_peer: 5,
                    first_call_timeout: D::from_secs(2),
                    max_connection_idle: D::from_secs(60),
                    write_timeout: D::from_secs(7),
                },
            }
        );
    }

    #[test]
    fn bad_values_are_errors_naming_the_property_and_keep_the_default() {
        let (limits, problems) = bound(
            "ataccama.server.grpc.max-message-size=lots\n\
             ataccama.server.grpc.max-concurrent-streams=0\n\
             ataccama.server.grpc.max-metadata-size=100\n\
             ataccama.server.grpc.request-timeout=0s\n\
             ataccama.server.grpc.keep-alive-timeout=soon\n",
        );
        assert_eq!(limits, GrpcLimits::default());
        assert_eq!(problems.len(), 5, "{problems:#?}");
        for (problem, property) in problems.iter().zip([
            "max-message-size",
            "max-metadata-size",
            "max-concurrent-streams",
            "request-timeout",
            "keep-alive-timeout",
        ]) {
            assert!(problem.contains(property), "{problem}");
            assert!(problem.contains("application.properties"), "{problem}");
        }
        assert!(problems[0].contains("not a data size"), "{}", problems[0]);
        assert!(problems[1].contains("smaller than 1024"), "{}", problems[1]);
    }

    #[test]
    fn a_message_limit_over_four_gigabytes_is_refused() {
        let (limits, problems) = bound("ataccama.server.grpc.max-message-size=5GB\n");
        assert_eq!(limits.max_message_size, 4 * 1024 * 1024);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("larger than"), "{}", problems[0]);
    }
}
