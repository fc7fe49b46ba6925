//! svcid, the key and configuration tool.
