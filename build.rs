//! Compiles `proto/` into Rust without a system `protoc`: `protox` parses the files into a
//! descriptor set, which feeds tonic's code generator and is also embedded for server reflection.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/constraints.proto",
    "proto/registry.proto",
    "proto/heartbeat.proto",
    "proto/identity.proto",
    "proto/engines.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("svcid_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
