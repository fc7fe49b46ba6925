//! The gRPC glue's integration tests, in one binary: a real tonic server on `127.0.0.1:0` behind
//! the authentication layer, called by real clients.

mod auth;
mod refusal_log;
