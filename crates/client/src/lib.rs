//! Every outbound gRPC call of svcid goes through here: DPE → DPM (registration), DPM → engines
//! (status checks), `svcid engines`, and the bench tools.
//!
//! - [`endpoint`]: where to connect, plain text or TLS from the checked [`ClientTls`] settings
//!   (a trust store, the system's roots, or `trust-all` with [`AcceptAnyServerCertificate`]).
//! - [`OutboundCredentials`]: the interceptor that puts this module's service token
//!   (`authorization: Internal-jwt <token>`) and a correlation id on every request.
//! - [`failure_reason`]: a failed call in words, with the transport causes tonic keeps out of
//!   the status message (an untrusted certificate, a refused connection).
//!
//! The crate sits below the daemons' gRPC glue and the CLI and knows nothing of serving.
//!
//! [`ClientTls`]: svcid_config::ClientTls

mod credentials;
mod endpoint;
mod failure;

pub use credentials::{
    CORRELATION_ID_HEADER, OutboundCredentials, PeerProfile, SCHEME, authorization_value,
    with_correlation_id,
};
pub use endpoint::{AcceptAnyServerCertificate, EndpointError, endpoint, uri};
pub use failure::failure_reason;
