//! DPM's connections to its engines: one lazily connected channel per engine address, shared by
//! the status checker and the calls DPM makes on a person's behalf (`WhoAmIOnEngine`), so a call
//! for a person reuses the connection the checks keep warm.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use svcid_config::ClientTls;
use tonic::transport::Channel;

use crate::engines::{EngineAddress, EngineRegistry};

/// Channels beyond the registry's size kept before the ones of departed engines are dropped.
const SPARE_CHANNELS: usize = 16;

/// Open channels to engines, by address.
#[derive(Debug)]
pub struct EngineChannels {
    /// Client TLS for every engine (`ataccama.one.dpm.registry.grpc-client.tls.*`); `None` is
    /// plain text.
    tls: Option<ClientTls>,
    /// Deadline of connecting (and of one check).
    timeout: Duration,
    /// One channel per address.
    open: Mutex<HashMap<EngineAddress, Channel>>,
}

impl EngineChannels {
    /// Channels over TLS with `tls` (plain text when `None`), connecting within `timeout`.
    pub fn new(tls: Option<ClientTls>, timeout: Duration) -> Self {
        Self {
            tls,
            timeout,
            open: Mutex::default(),
        }
    }

    /// The deadline of one call to an engine (`grpc-checker-timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The channel to `address`, set up (not yet connected) on first use.
    pub fn get(&self, address: &EngineAddress) -> Result<Channel, String> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = open.get(address) {
            return Ok(channel.clone());
        }
        let channel = svcid_client::endpoint(&address.hostname, address.port, self.tls.as_ref())
            .map_err(|e| format!("cannot set up the connection: {e}"))?
            .connect_timeout(self.timeout)
            .connect_lazy();
        open.insert(address.clone(), channel.clone());
        Ok(channel)
    }

    /// Drops the channels of engines that moved or left, once there are more than the registry
    /// needs, so connections do not pile up.
    pub fn prune(&self, registry: &EngineRegistry) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() <= registry.len() + SPARE_CHANNELS {
            return;
        }
        let live: std::collections::HashSet<EngineAddress> = registry
            .snapshot()
            .into_iter()
            .map(|e| e.record.address)
            .collect();
        open.retain(|address, _| live.contains(address));
    }
}
