//! The Data Processing Module daemon: engine registry and status checker.
