//! The gRPC protocol spoken between `dpm` and `dpe`, generated from `proto/` by `build.rs`: the
//! product's own services and messages (docs/wire.md; packages `ataccama.dppapi.*`, so a real
//! Ataccama ONE 13.3 module can talk to ours) and svcid's own (`svcid.identity`, `svcid.engines`).
//!
//! Everything generated lives behind [`pb`]; the rest of the workspace imports messages and
//! service stubs from there and never names the generated modules directly. [`kept`] holds the
//! server views that keep an engine's constraints as the bytes it sent; [`text`] renders
//! constraints in the product's log form, [`json`] in protobuf's JSON mapping.

pub mod json;
pub mod kept;
pub mod text;

/// Generated messages, clients and servers, one module per protobuf package.
pub mod pb {
    /// The module tree mirrors the protobuf packages so cross-package references resolve.
    mod generated {
        pub mod ataccama {
            pub mod dppapi {
                pub mod constraint {
                    tonic::include_proto!("ataccama.dppapi.constraint");
                    pub mod standard {
                        tonic::include_proto!("ataccama.dppapi.constraint.standard");
                    }
                }
                pub mod dpm {
                    pub mod registry {
                        tonic::include_proto!("ataccama.dppapi.dpm.registry");
                    }
                }
                pub mod heartbeat {
                    tonic::include_proto!("ataccama.dppapi.heartbeat");
                }
            }
        }
        pub mod svcid {
            pub mod identity {
                tonic::include_proto!("svcid.identity");
            }
            pub mod engines {
                tonic::include_proto!("svcid.engines");
            }
        }
    }

    /// `ataccama.dppapi.constraint`: `Constraints` (capabilities, requirements, priorities),
    /// `Range`; its `standard` module holds the extractors and comparators priorities pack.
    pub use generated::ataccama::dppapi::constraint;
    /// `ataccama.dppapi.dpm.registry`: DPM's engine registry (`RegistryService`).
    pub use generated::ataccama::dppapi::dpm::registry;
    /// `ataccama.dppapi.heartbeat`: DPE's status endpoint (`HeartbeatService`).
    pub use generated::ataccama::dppapi::heartbeat;
    /// `svcid.engines`: `EngineAdminService.ListEngines`, DPM's engine listing for operators.
    pub use generated::svcid::engines;
    /// `svcid.identity`: `IdentityService.WhoAmI`, served by both daemons.
    pub use generated::svcid::identity;
}

/// The encoded descriptor set of every file in `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/svcid_descriptor.bin"));
