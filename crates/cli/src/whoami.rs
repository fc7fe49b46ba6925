//! `svcid whoami HOST:PORT`: asks a running dpm or dpe as whom it sees the caller
//! (`IdentityService.WhoAmI`), the quickest check of a key or a token end to end.
//!
//! The caller is either a person (`--bearer TOKEN`: the token goes out as
//! `authorization: Bearer TOKEN`, exactly as an application sends it) or a module (`--home DIR`:
//! a token minted with that home's generator key, as its daemon would mint it). `--engine ID`
//! asks DPM instead to call that engine on the caller's behalf
//! (`EngineAdminService.WhoAmIOnEngine`) and prints the engine's answer. The token is never
//! printed, not in errors either.

use std::io::{Read as _, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;
use svcid_identity::clock::SystemClock;
use svcid_identity::token::TokenIssuer;
use svcid_proto::pb::engines::WhoAmIOnEngineRequest;
use svcid_proto::pb::engines::engine_admin_service_client::EngineAdminServiceClient;
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use svcid_proto::pb::identity::{WhoAmIRequest, WhoAmIResponse};
use tonic::metadata::AsciiMetadataValue;

use crate::homes::ModuleChoice;

/// Largest token accepted from the command line or standard input.
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Who calls.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A person's token, sent with the `Bearer` scheme.
    Bearer(String),
    /// A module token minted with a home's generator key for `aud`.
    Home {
        /// The module home.
        home: PathBuf,
        /// Its module type.
        module: ModuleChoice,
        /// The called daemon's module type.
        aud: String,
    },
}

/// What `svcid whoami` was asked.
#[derive(Clone, Debug)]
pub struct WhoamiQuery<'a> {
    /// `HOST:PORT` of the daemon.
    pub address: &'a str,
    /// Who calls.
    pub caller: Caller,
    /// Ask DPM to ask this engine.
    pub engine: Option<String>,
    /// Print JSON.
    pub json: bool,
    /// Connection and answer timeout.
    pub timeout: Duration,
}

/// The token of `--bearer`: as given, `Bearer ` optional, `-` reads standard input. It must be
/// one line of visible ASCII (what an `authorization` header can carry); the error never
/// echoes it.
pub fn read_token(given: &str) -> Result<String> {
    let mut read = String::new();
    let given = if given == "-" {
        std::io::stdin()
            .take(MAX_TOKEN_BYTES as u64 + 1)
            .read_to_string(&mut read)
            .context("cannot read the token from standard input")?;
        read.trim()
    } else {
        given.trim()
    };
    let token = given
        .strip_prefix("Bearer ")
        .or_else(|| given.strip_prefix("bearer "))
        .unwrap_or(given)
        .trim();
    if token.is_empty() {
        bail!("--bearer: the token is empty");
    }
    if token.len() > MAX_TOKEN_BYTES {
        bail!("--bearer: the token exceeds {MAX_TOKEN_BYTES} bytes");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("--bearer: the token holds spaces or characters a header cannot carry (not shown)");
    }
    Ok(token.to_owned())
}

/// `HOST:PORT` (IPv6 as `[::1]:8531`).
fn split_address(address: &str) -> Result<(&str, u16)> {
    let usage = || anyhow::anyhow!("{address:?} must be HOST:PORT, e.g. localhost:8531");
    let (host, port) = address.rsplit_once(':').ok_or_else(usage)?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(usage)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(usage());
    }
    Ok((host, port))
}

/// The `authorization` value, marked sensitive (never in HPACK tables or `Debug`).
fn authorization(scheme: &str, token: &str) -> Result<AsciiMetadataValue> {
    let mut value = AsciiMetadataValue::try_from(format!("{scheme} {token}"))
        .map_err(|_| anyhow::anyhow!("the token cannot be sent as a header (not shown)"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Calls the daemon and prints its answer on `out`.
pub fn whoami(query: &WhoamiQuery<'_>, out: &mut dyn Write) -> Result<()> {
    let (host, port) = split_address(query.address)?;
    let (value, who) = match &query.caller {
        Caller::Bearer(token) => (
            authorization("Bearer", token)?,
            "the bearer token".to_owned(),
        ),
        Caller::Home { home, module, aud } => {
            let (opened, loaded) = crate::token::load(home, *module)?;
            let settings = loaded.settings;
            let issuer = TokenIssuer::new(
                settings.jwt.generator_key,
                settings.jwt.token_expiration,
                Arc::new(SystemClock),
            )
            .context("the generator key cannot sign")?;
            let token = issuer.mint(aud, None);
            (
                authorization("Internal-jwt", &token)?,
                format!(
                    "the token of the {} home {} (kid {})",
                    opened.decided.kind,
                    home.display(),
                    issuer.kid()
                ),
            )
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let answer = runtime.block_on(call(
        host,
        port,
        value,
        query.engine.as_deref(),
        query.timeout,
    ));
    let answer = answer.map_err(|status| {
        anyhow::anyhow!(
            "{}",
            explain(&status, query.address, &who, query.engine.as_deref())
        )
    })?;
    write_answer(out, query, &answer)
}

async fn call(
    host: &str,
    port: u16,
    authorization: AsciiMetadataValue,
    engine: Option<&str>,
    timeout: Duration,
) -> Result<WhoAmIResponse, tonic::Status> {
    let channel = crate::engines::connect(host, port, None, timeout, "bad address").await?;
    match engine {
        None => {
            let mut request = tonic::Request::new(WhoAmIRequest {});
            request
                .metadata_mut()
                .insert("authorization", authorization);
            Ok(IdentityServiceClient::new(channel)
                .who_am_i(request)
                .await?
                .into_inner())
        }
        Some(engine) => {
            let mut request = tonic::Request::new(WhoAmIOnEngineRequest {
                engine_id: engine.to_owned(),
            });
            request
                .metadata_mut()
                .insert("authorization", authorization);
            Ok(EngineAdminServiceClient::new(channel)
                .who_am_i_on_engine(request)
                .await?
                .into_inner())
        }
    }
}

/// A refusal or failure in words the caller can act on; never the token.
fn explain(status: &tonic::Status, address: &str, who: &str, engine: Option<&str>) -> String {
    let what = format!(
        "{:?}: {}",
        status.code(),
        svcid_identity::printable::excerpt(status.message(), 300)
    );
    match (status.code(), engine) {
        (tonic::Code::Unauthenticated, _) => {
            format!("the server at {address} refused {who}: {what}")
        }
        (tonic::Code::PermissionDenied, Some(engine)) => format!(
            "the server at {address} knows the caller but does not let it ask engine {engine} \
             (an administrator role is needed): {what}"
        ),
        (tonic::Code::PermissionDenied, None) => {
            format!("the server at {address} knows the caller but refuses it: {what}")
        }
        (tonic::Code::Unimplemented, Some(_)) => format!(
            "the server at {address} does not serve EngineAdminService.WhoAmIOnEngine: is it a DPM \
             recent enough to ask engines for the caller? {what}"
        ),
        (tonic::Code::Unimplemented, None) => format!(
            "the server at {address} does not serve IdentityService.WhoAmI: is it a dpm or dpe? {what}"
        ),
        (tonic::Code::FailedPrecondition, Some(engine)) => format!(
            "DPM at {address} let you in, but engine {engine} refused DPM's call on your behalf \
             (when it says \"Impersonation is not allowed\", the engine's properties must give \
             DPM's deployment the impersonation role, e.g. `…deployments.dpm-dev.security.roles[0]=IMPERSONATION`): {what}"
        ),
        (tonic::Code::Unavailable | tonic::Code::DeadlineExceeded, Some(engine))
            if status.message().starts_with("Engine(") =>
        {
            format!("DPM at {address} could not reach engine {engine}: {what}")
        }
        (tonic::Code::NotFound, Some(engine)) => {
            format!("DPM at {address} knows no engine {engine}: {what}")
        }
        (tonic::Code::Unavailable | tonic::Code::DeadlineExceeded, _) => {
            format!("cannot reach {address}: {what}")
        }
        _ => format!("the server at {address} answered {what}"),
    }
}

fn write_answer(
    out: &mut dyn Write,
    query: &WhoamiQuery<'_>,
    answer: &WhoAmIResponse,
) -> Result<()> {
    let user = answer.user.as_ref();
    if query.json {
        let value = json!({
            "address": query.address,
            "engine": query.engine,
            "serverModule": answer.server_module,
            "identity": answer.identity,
            "module": answer.module,
            "id": answer.id,
            "roles": answer.roles,
            "kid": answer.kid,
            "user": user.map(|u| json!({"id": u.id, "username": u.username, "roles": u.roles})),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let server = match &query.engine {
        Some(engine) => format!("engine {engine} (via DPM at {})", query.address),
        None if answer.server_module.is_empty() => format!("the server at {}", query.address),
        None => format!("{} at {}", answer.server_module, query.address),
    };
    writeln!(out, "{server} sees you as {}", answer.identity)?;
    writeln!(out, "module: {}", answer.module)?;
    writeln!(out, "id: {}", answer.id)?;
    writeln!(out, "roles: {}", answer.roles.join(", "))?;
    if !answer.kid.is_empty() {
        writeln!(out, "kid: {}", answer.kid)?;
    }
    if let Some(user) = user {
        writeln!(
            out,
            "acting for user: {} (id {}, roles: {})",
            user.username,
            user.id,
            user.roles.join(", ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_checked_without_echo() {
        assert_eq!(read_token("Bearer abc.def.ghi").unwrap(), "abc.def.ghi");
        assert_eq!(read_token(" abc.def.ghi\n").unwrap(), "abc.def.ghi");
        let error = format!("{:#}", read_token("sec ret").unwrap_err());
        assert!(!error.contains("sec"), "{error}");
        assert!(read_token("").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            split_address("localhost:8531").unwrap(),
            ("localhost", 8531)
        );
        assert_eq!(split_address("[::1]:8531").unwrap(), ("::1", 8531));
        assert!(split_address("localhost").is_err());
        assert!(split_address(":1").is_err());
        assert!(split_address("h:0").is_err());
    }
}
