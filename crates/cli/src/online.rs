//! `svcid check --online`: each user-token issuer whose keys are behind a URL (a Keycloak realm's
//! certs, or an `http(s)://` `mp.jwt.verify.publickey.location`) has its keys fetched once, the
//! way the daemon fetches them (`svcid_users`: the same time and size bounds, no redirects, the
//! module's client trust for `https://`), and the answer is judged: unreachable, reachable but
//! not a usable key set, or how many keys it gave and their kids. Without `--online` nothing here
//! runs and `check` touches no network.

use std::sync::Arc;

use svcid_actuator::instruments::UserKeyMetrics;
use svcid_config::names;
use svcid_config::{
    Problem, RoleSettings, ServerTrust, Settings, UserIssuerSettings, UserKeySource,
};
use svcid_identity::user::IssuerRules;
use svcid_properties::PropertySet;
use svcid_users::fetch::shown_url;
use svcid_users::{FetchOptions, KeySource, KeySourceState};

use crate::codes;

/// The `result`s of a fetch that never reached a key set: the URL could not be reached in time.
const UNREACHABLE: &[&str] = &["unreachable", "timeout", "client"];

/// What fetching one issuer's keys found.
#[derive(Debug)]
pub enum Online {
    /// The keys were fetched: a line to print.
    Ok(String),
    /// The fetch failed: an error at the property that names the URL.
    Problem(Problem),
}

/// Fetches the keys of every URL-keyed issuer of `settings` once; `props` gives the properties'
/// file and line. The daemon's trust for `https://`: a DPM its engine-client TLS trust store, a
/// DPE its DPM-client one, else the system's roots.
pub fn check_user_keys(settings: &Settings, props: &PropertySet) -> Vec<Online> {
    let issuers: Vec<&UserIssuerSettings> = settings
        .users
        .issuers
        .iter()
        .filter(|issuer| matches!(issuer.keys, UserKeySource::Url(_)))
        .collect();
    if issuers.is_empty() {
        return Vec::new();
    }
    let client_tls = match &settings.role {
        RoleSettings::Dpm(dpm) => dpm.engine_tls.as_ref(),
        RoleSettings::Dpe(dpe) => dpe.dpm_tls.as_ref(),
    };
    let trust = client_tls.map_or(ServerTrust::SystemRoots, |tls| tls.trust.clone());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return issuers
                .iter()
                .map(|issuer| {
                    failure(
                        issuer,
                        props,
                        codes::USER_KEYS_UNREACHABLE,
                        format!("no runtime to fetch with ({e})"),
                    )
                })
                .collect();
        }
    };
    issuers
        .into_iter()
        .map(|issuer| runtime.block_on(fetch_once(issuer, &trust, props)))
        .collect()
}

/// One fetch of `issuer`'s keys, judged.
async fn fetch_once(
    issuer: &UserIssuerSettings,
    trust: &ServerTrust,
    props: &PropertySet,
) -> Online {
    let UserKeySource::Url(url) = &issuer.keys else {
        return Online::Ok(String::new());
    };
    let shown = shown_url(url);
    let metrics = Arc::new(UserKeyMetrics::default());
    let source =
        KeySource::with_options(issuer, trust, FetchOptions::default(), Arc::clone(&metrics));
    match source.keys(None).await {
        Ok(keys) => {
            let kids: Vec<&str> = keys
                .keys()
                .iter()
                .map(|key| key.kid().unwrap_or("(no kid)"))
                .collect();
            let skipped = match keys.skipped() {
                0 => String::new(),
                n => format!(" ({n} not for signing skipped)"),
            };
            let (file, _) = origin(issuer, props);
            Online::Ok(format!(
                "{file}: info: {}: {shown}: {} usable key{}{skipped}: {}",
                property(issuer),
                kids.len(),
                if kids.len() == 1 { "" } else { "s" },
                kids.join(", ")
            ))
        }
        Err(unavailable) => {
            let reason = match source.state() {
                KeySourceState::Unavailable { error, .. } => error,
                _ => unavailable.reason,
            };
            let code = if UNREACHABLE
                .iter()
                .any(|result| metrics.fetches(&issuer.policy.issuer, result) > 0)
            {
                codes::USER_KEYS_UNREACHABLE
            } else {
                codes::USER_KEYS_UNUSABLE
            };
            failure(issuer, props, code, format!("{shown}: {reason}"))
        }
    }
}

/// The property that names the issuer's key URL.
fn property(issuer: &UserIssuerSettings) -> &'static str {
    match issuer.policy.rules {
        IssuerRules::Keycloak => names::KEYCLOAK_SERVER_URL,
        IssuerRules::MicroProfileJwt => names::MP_JWT_PUBLICKEY_LOCATION,
    }
}

/// `file:line` of the issuer's key property, and the origin itself.
fn origin(
    issuer: &UserIssuerSettings,
    props: &PropertySet,
) -> (String, Option<svcid_properties::Origin>) {
    match props.get(property(issuer)) {
        Some(value) => (value.origin.to_string(), Some(value.origin.clone())),
        None => ("(arguments)".to_owned(), None),
    }
}

fn failure(
    issuer: &UserIssuerSettings,
    props: &PropertySet,
    code: svcid_config::ProblemCode,
    message: String,
) -> Online {
    let fix = if code == codes::USER_KEYS_UNREACHABLE {
        match issuer.policy.rules {
            IssuerRules::Keycloak => {
                "check server-url and realm, that Keycloak is running and reachable from this host, \
                 and for https:// that the module's client trust store holds its CA"
            }
            IssuerRules::MicroProfileJwt => {
                "check the URL, that the identity provider is running and reachable from this host, \
                 and for https:// that the module's client trust store holds its CA"
            }
        }
    } else {
        "point it at the issuer's public keys: a JWK set (Keycloak: <server-url>/realms/<realm>/protocol/openid-connect/certs) \
         answered with 200, under 1 MiB and 100 keys, with at least one RS256 or ES256 signing key"
    };
    let (_, origin) = origin(issuer, props);
    Online::Problem(Problem::error(
        code,
        origin,
        property(issuer).to_owned(),
        message,
        Some(fix.to_owned()),
    ))
}
