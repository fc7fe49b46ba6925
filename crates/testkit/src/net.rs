//! Loopback ports.

use std::io;
use std::net::TcpListener;

/// A loopback port that was free a moment ago (for a daemon that must listen on a known port,
/// or start again where its peers look for it).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
