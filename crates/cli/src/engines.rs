//! `svcid engines --dpm HOST:PORT --home DIR [--json]`: the engines a running DPM knows, from
//! its `EngineAdminService.ListEngines`, as a table or JSON.
//!
//! The call is authenticated like any other: the token is minted here with the home's own
//! generator key for `aud=dpm`, exactly as that module's daemon would mint it, so DPM must trust
//! that home's key. The DPE home of a linked pair works as it is; an operator machine can have
//! its own home (a key from `svcid keygen` and a deployment for it in DPM's file). DPM's own
//! home does not work: DPM does not trust its own key. When DPM refuses, the error says why and
//! what to use instead. The token is never printed.
//!
//! TLS: the `--tls…` flags set the same properties a DPE reads for its own connection to DPM
//! (`ataccama.client.connection.dpm.grpc.tls.*`) and are checked by the same rules: `--tls`
//! alone verifies DPM against the system's roots, `--trust-store` against a CA file,
//! `--trust-all` not at all. Without flags, a DPE home that talks TLS to its DPM lends its
//! settings; otherwise the call is plain.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use svcid_config::names::tls as tls_field;
use svcid_config::{ClientTls, RoleSettings, names};
use svcid_identity::clock::SystemClock;
use svcid_identity::token::TokenIssuer;
use svcid_proto::pb::engines::engine_admin_service_client::EngineAdminServiceClient;
use svcid_proto::pb::engines::{EngineInfo, ListEnginesRequest, engine_info};
use time::format_description::well_known::Rfc3339;

use crate::homes::ModuleChoice;

/// What `svcid engines` was asked.
#[derive(Clone, Debug)]
pub struct EnginesQuery<'a> {
    /// DPM's gRPC address as `HOST:PORT`.
    pub dpm: &'a str,
    /// The home whose key signs the token.
    pub home: &'a Path,
    /// The home's module type.
    pub module: ModuleChoice,
    /// Print JSON instead of a table.
    pub json: bool,
    /// How long to wait for DPM (connection and answer).
    pub timeout: Duration,
    /// TLS to DPM as the flags ask for it.
    pub tls: TlsFlags,
}

/// `svcid engines`' TLS flags, each one property of a DPE's connection to DPM.
#[derive(Clone, Debug, Default)]
pub struct TlsFlags {
    /// `--tls`: TLS even without other flags.
    pub enabled: bool,
    /// `--trust-store`: PEM file of the CA that issued DPM's certificate (none: the system's
    /// roots).
    pub trust_store: Option<std::path::PathBuf>,
    /// `--trust-all`: any certificate DPM presents is accepted.
    pub trust_all: bool,
    /// `--cert-chain`: this client's certificate (mutual TLS).
    pub cert_chain: Option<std::path::PathBuf>,
    /// `--private-key`: the key of `cert_chain`.
    pub private_key: Option<std::path::PathBuf>,
    /// `--server-name`: the name DPM's certificate must carry.
    pub server_name: Option<String>,
}

impl TlsFlags {
    /// Whether any TLS flag was given.
    fn any(&self) -> bool {
        self.enabled
            || self.trust_all
            || self.trust_store.is_some()
            || self.cert_chain.is_some()
            || self.private_key.is_some()
            || self.server_name.is_some()
    }

    /// The flags as the `--<property>=<value>` arguments a DPE would be given.
    fn as_args(&self) -> Vec<String> {
        let arg = |field: &str, value: &str| format!("--{}.{field}={value}", names::DPM_TLS);
        let mut args = vec![arg(tls_field::ENABLED, "true")];
        let paths = [
            (tls_field::TRUST_STORE, &self.trust_store),
            (tls_field::CERT_CHAIN, &self.cert_chain),
            (tls_field::PRIVATE_KEY, &self.private_key),
        ];
        for (field, path) in paths {
            if let Some(path) = path {
                args.push(arg(field, &path.display().to_string()));
            }
        }
        if self.trust_all {
            args.push(arg(tls_field::TRUST_ALL, "true"));
        }
        if let Some(name) = &self.server_name {
            args.push(arg(tls_field::SERVER_NAME, name));
        }
        args
    }
}

/// Lists DPM's engines on `out`.
pub fn engines(query: &EnginesQuery<'_>, out: &mut dyn Write) -> Result<()> {
    let (host, port) = split_address(query.dpm)?;
    let (opened, loaded) = crate::token::load(query.home, query.module)?;
    let settings = loaded.settings;
    let issuer = TokenIssuer::new(
        settings.jwt.generator_key,
        settings.jwt.token_expiration,
        Arc::new(SystemClock),
    )
    .context("the generator key cannot sign")?;
    let tls = client_tls(&query.tls, &settings.role)?;
    let token = issuer.mint("dpm", None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let listed = runtime.block_on(list(host, port, tls.as_ref(), &token, query.timeout));
    let engines = match listed {
        Ok(engines) => engines,
        Err(status) => bail!(
            "{}",
            explain(
                &status,
                query.dpm,
                &issuer.kid(),
                opened.decided.kind.as_str(),
                query.home
            )
        ),
    };
    if query.json {
        let listed: Vec<Value> = engines.iter().map(engine_json).collect();
        let document = json!({"dpm": query.dpm, "engines": listed});
        writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
    } else {
        write_table(out, query.dpm, &engines)?;
    }
    Ok(())
}

/// `HOST:PORT` (IPv6 as `[::1]:8531`).
fn split_address(address: &str) -> Result<(&str, u16)> {
    let Some((host, port)) = address.rsplit_once(':') else {
        bail!("--dpm must be HOST:PORT, e.g. localhost:8531");
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .with_context(|| format!("--dpm: {port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("--dpm must be HOST:PORT, e.g. localhost:8531");
    }
    Ok((host, port))
}

/// The TLS of the call: the flags when any is given, else the DPE home's own connection to DPM.
fn client_tls(flags: &TlsFlags, role: &RoleSettings) -> Result<Option<ClientTls>> {
    if flags.any() {
        let base = std::env::current_dir().context("cannot read the current directory")?;
        return svcid_config::dpm_client_tls_from_args(&base, &flags.as_args()).map_err(
            |problems| {
                let lines: Vec<String> = problems
                    .iter()
                    .filter(|p| p.is_error())
                    .map(ToString::to_string)
                    .collect();
                anyhow::anyhow!("the TLS flags cannot be used:\n{}", lines.join("\n"))
            },
        );
    }
    Ok(match role {
        RoleSettings::Dpe(dpe) => dpe.dpm_tls.clone(),
        RoleSettings::Dpm(_) => None,
    })
}

/// The `ListEngines` call.
async fn list(
    host: &str,
    port: u16,
    tls: Option<&ClientTls>,
    token: &str,
    timeout: Duration,
) -> Result<Vec<EngineInfo>, tonic::Status> {
    let channel = connect(host, port, tls, timeout, "bad DPM address").await?;
    let mut request = tonic::Request::new(ListEnginesRequest {});
    let value = svcid_client::authorization_value(token)
        .ok_or_else(|| tonic::Status::internal("the token is not valid metadata"))?;
    request.metadata_mut().insert("authorization", value);
    let response = EngineAdminServiceClient::new(channel)
        .list_engines(request)
        .await?;
    Ok(response.into_inner().engines)
}

/// A refusal or failure in words an operator can act on.
fn explain(status: &tonic::Status, dpm: &str, kid: &str, kind: &str, home: &Path) -> String {
    let what = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        tonic::Code::Unauthenticated => format!(
            "DPM at {dpm} refused the token signed by the {kind} home {} (kid {kid}): {what}\n\
             DPM must trust this home's key: use the home of a module DPM trusts (the DPE home of \
             a linked pair), or add a deployment with this fingerprint to DPM's file. DPM does not \
             trust its own key.",
            home.display()
        ),
        tonic::Code::PermissionDenied => {
            format!("DPM at {dpm} knows this home's key but does not let it list engines: {what}")
        }
        tonic::Code::Unimplemented => format!(
            "the server at {dpm} does not serve EngineAdminService: is it a DPM (and a recent one)? {what}"
        ),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
            format!("cannot reach DPM at {dpm}: {what}")
        }
        _ => format!("DPM at {dpm} answered {what}"),
    }
}

/// The status name as DPM logs it.
fn status_name(engine: &EngineInfo) -> &'static str {
    match engine.status() {
        engine_info::Status::New => "NEW",
        engine_info::Status::Ready => "READY",
        engine_info::Status::Disconnected => "DISCONNECTED",
    }
}

/// Unix milliseconds as RFC 3339 UTC with seconds; `None` for 0 (never).
fn time_of(millis: i64) -> Option<String> {
    if millis == 0 {
        return None;
    }
    time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

fn address_of(engine: &EngineInfo) -> String {
    match &engine.address {
        Some(address) if address.hostname.contains(':') => {
            format!("[{}]:{}", address.hostname, address.port)
        }
        Some(address) => format!("{}:{}", address.hostname, address.port),
        None => "-".to_owned(),
    }
}

/// `key=<capability>` for each capability, sorted (`spark="true" cores=8`), then
/// `requirements: …` and `priorities: …` in the product's log form when present.
fn constraints_text(engine: &EngineInfo) -> String {
    let Some(constraints) = &engine.constraints else {
        return String::new();
    };
    let mut capabilities: Vec<String> = constraints
        .capabilities
        .iter()
        .map(|(key, capability)| format!("{key}={}", svcid_proto::text::capability(capability)))
        .collect();
    capabilities.sort();
    let mut parts = Vec::new();
    if !capabilities.is_empty() {
        parts.push(capabilities.join(" "));
    }
    if !constraints.requirements.is_empty() || !constraints.priorities.is_empty() {
        let whole = svcid_proto::text::constraints(constraints);
        let rest = whole
            .split_once(" capabilities: ")
            .map(|(requirements, _)| requirements.trim_start_matches('('))
            .unwrap_or_default();
        if !constraints.requirements.is_empty() {
            parts.push(rest.to_owned());
        }
        if let Some((_, priorities)) = whole.rsplit_once(" priorities: ")
            && !constraints.priorities.is_empty()
        {
            parts.push(format!("priorities: {}", priorities.trim_end_matches(')')));
        }
    }
    parts.join("; ")
}

fn engine_json(engine: &EngineInfo) -> Value {
    let constraints = engine.constraints.clone().unwrap_or_default();
    json!({
        "engineId": engine.engine_id,
        "address": address_of(engine),
        "status": status_name(engine),
        "since": time_of(engine.status_since_ms),
        "lastSeen": time_of(engine.last_seen_ms),
        "registeredAt": time_of(engine.registered_at_ms),
        "registeredBy": engine.registered_by,
        "constraints": svcid_proto::json::constraints(&constraints),
    })
}

/// The table, columns as wide as their widest cell, then a count by status.
fn write_table(out: &mut dyn Write, dpm: &str, engines: &[EngineInfo]) -> Result<()> {
    if engines.is_empty() {
        writeln!(out, "No engine is registered with DPM at {dpm}.")?;
        return Ok(());
    }
    let header = [
        "ENGINE ID",
        "ADDRESS",
        "STATUS",
        "SINCE",
        "LAST SEEN",
        "REGISTERED BY",
        "CONSTRAINTS",
    ];
    let rows: Vec<[String; 7]> = engines
        .iter()
        .map(|engine| {
            [
                engine.engine_id.clone(),
                address_of(engine),
                status_name(engine).to_owned(),
                time_of(engine.status_since_ms).unwrap_or_else(|| "-".into()),
                time_of(engine.last_seen_ms).unwrap_or_else(|| "never".into()),
                engine.registered_by.clone(),
                constraints_text(engine),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(&header))?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for engine in engines {
        let name = status_name(engine);
        match counts.iter_mut().find(|(known, _)| *known == name) {
            Some((_, count)) => *count += 1,
            None => counts.push((name, 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    writeln!(
        out,
        "{} engine(s) at DPM {dpm}: {}",
        engines.len(),
        summary.join(", ")
    )?;
    Ok(())
}

/// A channel to `host:port` with `timeout` on connecting and on every call; a bad address is
/// `INVALID_ARGUMENT` (`bad_address` starts its message), an unreachable one `UNAVAILABLE` with the
/// transport's reason.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    tls: Option<&ClientTls>,
    timeout: Duration,
    bad_address: &str,
) -> Result<tonic::transport::Channel, tonic::Status> {
    let endpoint = svcid_client::endpoint(host, port, tls)
        .map_err(|e| tonic::Status::invalid_argument(format!("{bad_address}: {e}")))?
        .connect_timeout(timeout)
        .timeout(timeout);
    endpoint.connect().await.map_err(|e| {
        let status = tonic::Status::from_error(Box::new(e));
        tonic::Status::unavailable(format!(
            "cannot connect: {}",
            svcid_client::failure_reason(&status)
        ))
    })
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use svcid_proto::pb::constraint::Constraints;
    use svcid_proto::pb::constraint::constraints::{Capability, capability};
    use svcid_proto::pb::registry::EngineAddress;

    use super::*;

    fn engine(id: &str, status: engine_info::Status, last_seen_ms: i64) -> EngineInfo {
        let mut constraints = Constraints::default();
        constraints.capabilities.insert(
            "spark".into(),
            Capability {
                capability_type: Some(capability::CapabilityType::Boolean(true)),
            },
        );
        constraints.capabilities.insert(
            "environment".into(),
            Capability {
                capability_type: Some(capability::CapabilityType::Value("dev".into())),
            },
        );
        EngineInfo {
            engine_id: id.into(),
            address: Some(EngineAddress {
                hostname: "127.0.0.1".into(),
                port: 8532,
            }),
            status: status.into(),
            status_since_ms: 1_714_557_600_000,
            last_seen_ms,
            registered_at_ms: 1_714_557_600_000,
            constraints: Some(constraints),
            registered_by: "ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])".into(),
        }
    }

    #[test]
    fn tls_flags_become_the_properties_a_dpe_reads() {
        let prefix = names::DPM_TLS;
        let tls = TlsFlags {
            enabled: true,
            ..TlsFlags::default()
        };
        assert_eq!(tls.as_args(), [format!("--{prefix}.enabled=true")]);
        let base = std::env::temp_dir();
        let bound = svcid_config::dpm_client_tls_from_args(&base, &tls.as_args())
            .unwrap()
            .unwrap();
        assert_eq!(bound.trust, svcid_config::ServerTrust::SystemRoots);

        let trust_all = TlsFlags {
            trust_all: true,
            server_name: Some("dpm.example.com".into()),
            ..TlsFlags::default()
        };
        assert!(trust_all.any());
        assert_eq!(
            trust_all.as_args(),
            [
                format!("--{prefix}.enabled=true"),
                format!("--{prefix}.trust-all=true"),
                format!("--{prefix}.server-name=dpm.example.com"),
            ]
        );
        let bound = svcid_config::dpm_client_tls_from_args(&base, &trust_all.as_args())
            .unwrap()
            .unwrap();
        assert_eq!(bound.trust, svcid_config::ServerTrust::TrustAll);

        let both = TlsFlags {
            trust_all: true,
            trust_store: Some("ca.pem".into()),
            ..TlsFlags::default()
        };
        let problems = svcid_config::dpm_client_tls_from_args(&base, &both.as_args()).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.code == svcid_config::codes::TLS_TRUST_CONFLICT),
            "{problems:?}"
        );
    }

    #[test]
    fn addresses_split_with_ipv6_and_errors() {
        assert_eq!(
            split_address("localhost:8531").unwrap(),
            ("localhost", 8531)
        );
        assert_eq!(split_address("[::1]:8531").unwrap(), ("::1", 8531));
        for bad in ["localhost", "localhost:", ":8531", "h:0", "h:99999"] {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_table_aligns_columns_and_counts_statuses() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            "localhost:8531",
            &[
                engine("a", engine_info::Status::Ready, 1_714_557_605_000),
                engine("bb", engine_info::Status::New, 0),
            ],
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("ENGINE ID  ADDRESS         STATUS  SINCE"),
            "{text}"
        );
        assert!(lines[1].starts_with("a          127.0.0.1:8532  READY   2024-05-01T10:00:00Z  2024-05-01T10:00:05Z  ServiceIdentity(module=dpe, id=dpe-dev, roles=[IMPERSONATION])  environment=\"dev\" spark=true"), "{text}");
        assert!(lines[2].contains("  NEW     "), "{text}");
        assert!(lines[2].contains("never"), "{text}");
        assert_eq!(
            lines[3],
            "2 engine(s) at DPM localhost:8531: 1 READY, 1 NEW"
        );

        let mut out = Vec::new();
        write_table(&mut out, "h:1", &[]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "No engine is registered with DPM at h:1.\n"
        );
    }

    #[test]
    fn json_names_every_field() {
        let value = engine_json(&engine("a", engine_info::Status::Disconnected, 0));
        assert_eq!(value["status"], "DISCONNECTED");
        assert_eq!(value["address"], "127.0.0.1:8532");
        assert_eq!(value["lastSeen"], Value::Null);
        assert_eq!(value["since"], "2024-05-01T10:00:00Z");
        assert_eq!(
            value["constraints"]["capabilities"]["spark"],
            json!({"boolean": true})
        );
    }
}
