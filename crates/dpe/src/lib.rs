//! The Data Processing Engine daemon: registration with DPM and heartbeat.
