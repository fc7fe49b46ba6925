//! The gRPC protocol spoken between `dpm` and `dpe`, generated from `proto/` by `build.rs`.
//!
//! Everything generated lives behind [`pb`]; the rest of the workspace imports messages and
//! service stubs from there and never names the generated modules directly.

/// Generated messages, clients and servers, one module per protobuf package.
pub mod pb {
    /// The module tree mirrors the protobuf packages so cross-package references resolve.
    mod generated {
        pub mod ataccama {
            pub mod common {
                tonic::include_proto!("ataccama.common");
            }
            pub mod dpm {
                pub mod registry {
                    tonic::include_proto!("ataccama.dpm.registry");
                }
            }
            pub mod dpe {
                pub mod heartbeat {
                    tonic::include_proto!("ataccama.dpe.heartbeat");
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

    /// Messages shared by the registry and the heartbeat (`Constraints`).
    pub use generated::ataccama::common;
    /// DPE's status endpoint (`HeartbeatService`).
    pub use generated::ataccama::dpe::heartbeat;
    /// DPM's engine registry (`RegistryService`).
    pub use generated::ataccama::dpm::registry;
    /// `EngineAdminService.ListEngines`, DPM's engine listing for operators.
    pub use generated::svcid::engines;
    /// `IdentityService.WhoAmI`, served by both daemons.
    pub use generated::svcid::identity;
}

/// The encoded descriptor set of every file in `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/svcid_descriptor.bin"));
