//! Server-side views of two messages that carry an engine's constraints, keeping them as the
//! bytes the engine sent instead of decoding and re-encoding them.
//!
//! DPM keeps an engine's constraints exactly as received (docs/wire.md), every variant and `Any`
//! payload included, and hands them back unchanged. Decoding into the generated types and
//! encoding again would not: map entries come back in another order, fields a newer product adds
//! are dropped. On the wire an embedded message and a `bytes` field are the same thing (a
//! length-delimited field), so these views declare the constraints field as bytes and the
//! servers generated for them (by `build.rs`, on the same method paths) never touch its content.
//! Clients keep the generated types of [`crate::pb`] and cannot tell the difference.
//!
//! Decode the bytes with [`crate::pb::constraint::Constraints`] to look inside (DPM does, to
//! refuse constraints that do not decode and to log them). One difference from a full decode: a
//! sender that splits the field into several occurrences (legal protobuf, which merges them) has
//! only the last one kept; no known client does.

use crate::pb::registry::EngineAddress;

/// `ataccama.dppapi.dpm.registry.RegistrationRequest` with `constraints` (field 4) as bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegistrationRequest {
    /// The engine's persisted UUID.
    #[prost(string, tag = "1")]
    pub engine_id: String,
    /// Where DPM checks the engine.
    #[prost(message, optional, tag = "2")]
    pub address: Option<EngineAddress>,
    /// The encoded `Constraints`, exactly as sent; `None` when the field was absent.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub constraints: Option<Vec<u8>>,
}

/// `svcid.engines.EngineInfo` with `constraints` (field 7) as bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EngineInfo {
    /// The engine's id.
    #[prost(string, tag = "1")]
    pub engine_id: String,
    /// Where DPM checks it.
    #[prost(message, optional, tag = "2")]
    pub address: Option<EngineAddress>,
    /// `svcid.engines.EngineInfo.Status` as a number.
    #[prost(int32, tag = "3")]
    pub status: i32,
    /// When the engine entered its status, Unix milliseconds.
    #[prost(int64, tag = "4")]
    pub status_since_ms: i64,
    /// When DPM last heard from it, Unix milliseconds; 0: never.
    #[prost(int64, tag = "5")]
    pub last_seen_ms: i64,
    /// When it registered, Unix milliseconds.
    #[prost(int64, tag = "6")]
    pub registered_at_ms: i64,
    /// The encoded `Constraints` as the engine sent them.
    #[prost(bytes = "vec", optional, tag = "7")]
    pub constraints: Option<Vec<u8>>,
    /// The identity that registered it.
    #[prost(string, tag = "8")]
    pub registered_by: String,
}

/// `svcid.engines.ListEnginesResponse` of [`EngineInfo`] views.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListEnginesResponse {
    /// Every engine, sorted by id.
    #[prost(message, repeated, tag = "1")]
    pub engines: Vec<EngineInfo>,
}

/// The server of `ataccama.dppapi.dpm.registry.RegistryService` over [`RegistrationRequest`].
pub mod registry {
    include!(concat!(
        env!("OUT_DIR"),
        "/ataccama.dppapi.dpm.registry.RegistryService.rs"
    ));
}

/// The server of `svcid.engines.EngineAdminService` over [`ListEnginesResponse`].
pub mod engines {
    include!(concat!(
        env!("OUT_DIR"),
        "/svcid.engines.EngineAdminService.rs"
    ));
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::pb::constraint::Constraints;
    use crate::pb::constraint::constraints::{Capability, capability};

    fn constraints() -> Constraints {
        let mut c = Constraints::default();
        for (key, value) in [("b", "2"), ("a", "1"), ("c", "3")] {
            c.capabilities.insert(
                key.to_owned(),
                Capability {
                    capability_type: Some(capability::CapabilityType::Value(value.to_owned())),
                },
            );
        }
        c
    }

    #[test]
    fn the_view_reads_what_a_generated_client_sends_and_keeps_its_bytes() {
        let sent = crate::pb::registry::RegistrationRequest {
            engine_id: "e1".into(),
            address: Some(EngineAddress {
                hostname: "h".into(),
                port: 8532,
            }),
            constraints: Some(constraints()),
        };
        let bytes = sent.encode_to_vec();
        let kept = RegistrationRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(kept.engine_id, "e1");
        assert_eq!(kept.address, sent.address);
        assert_eq!(
            kept.constraints.as_deref(),
            Some(
                sent.constraints
                    .as_ref()
                    .unwrap()
                    .encode_to_vec()
                    .as_slice()
            )
        );
        // And back: the view encodes to the very bytes the client sent.
        assert_eq!(kept.encode_to_vec(), bytes);
    }

    #[test]
    fn engine_info_views_decode_as_the_generated_listing() {
        let raw = constraints().encode_to_vec();
        let view = ListEnginesResponse {
            engines: vec![EngineInfo {
                engine_id: "e1".into(),
                address: None,
                status: 1,
                status_since_ms: 2,
                last_seen_ms: 3,
                registered_at_ms: 4,
                constraints: Some(raw.clone()),
                registered_by: "me".into(),
            }],
        };
        let listed =
            crate::pb::engines::ListEnginesResponse::decode(view.encode_to_vec().as_slice())
                .unwrap();
        let engine = &listed.engines[0];
        assert_eq!(engine.engine_id, "e1");
        assert_eq!(engine.status, 1);
        assert_eq!(
            (
                engine.status_since_ms,
                engine.last_seen_ms,
                engine.registered_at_ms
            ),
            (2, 3, 4)
        );
        assert_eq!(engine.registered_by, "me");
        assert_eq!(engine.constraints.as_ref().unwrap(), &constraints());
    }
}
