//! The end-to-end tests: one test binary (linked once), a module per behaviour. They start the
//! real `dpm`, `dpe` and `svcid` binaries, which `cargo test --workspace` builds beside this
//! executable (the daemon and cli crates' own integration tests make cargo build them).
//!
//! Run one behaviour with its module's name, e.g. `cargo test --test e2e floods::`.

mod common;

mod access;
mod console;
mod console_login;
mod docs_links;
mod floods;
mod handshake;
mod hostile;
mod link;
mod live_reload;
mod ops;
mod product_wire;
mod registry_postgres;
mod registry_tls;
mod startup;
mod tls;
mod user_keys;
mod users;
