//! svcid-testkit: what the end-to-end tests, the crates' integration tests and the benchmarks
//! share, written once.
//!
//! - [`process`]: the workspace's binaries (`dpm`, `dpe`, `svcid`) found beside the running
//!   executable, a daemon started in a module home and killed when dropped, a process's memory;
//! - [`homes`]: module homes (`etc/application.properties`) written from the property names of
//!   `svcid_config::names`, trusted peers included;
//! - [`log`]: a daemon's JSON log, read whole, tailed as it grows, or waited on for an event;
//! - [`http`]: one plain HTTP/1.1 request to a daemon's HTTP port;
//! - [`jwks`]: an identity provider's key endpoint (a Keycloak realm's JWK set) that counts
//!   requests and can be made slow, broken or redirecting;
//! - [`net`]: free loopback ports;
//! - [`browser`]: Debian's headless Chromium, launched the same way everywhere;
//! - [`postgres`]: a throwaway PostgreSQL server on loopback, with TLS if asked;
//! - [`pki`]: a test CA made at run time and the certificates it issues;
//! - [`oidc`]: a real OpenID Connect provider (Node.js `oidc-provider`) with Keycloak's paths, and
//!   a cookie-keeping agent that signs in without a browser;
//! - [`daemon_cli`]: the command-line checks both daemons' binaries pass.
//!
//! Everything runs on 127.0.0.1 and every wait is bounded. Failures are returned, not panicked,
//! so the benchmarks can report them; the tests unwrap them.

pub mod browser;
pub mod daemon_cli;
pub mod homes;
pub mod http;
pub mod jwks;
pub mod log;
pub mod net;
pub mod oidc;
pub mod pki;
pub mod postgres;
pub mod process;
