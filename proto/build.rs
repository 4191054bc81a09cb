//! Compiles the .proto files with the pure-Rust `protox` (no system protoc)
//! and hands the descriptor set to tonic-prost-build.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/berth/v1/common.proto",
        "proto/berth/v1/system.proto",
        "proto/berth/v1/images.proto",
        "proto/berth/v1/resources.proto",
        "proto/berth/v1/containers.proto",
        "proto/berth/shim/v1/shim.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().build_server(true).build_client(true).build_transport(false).compile_fds(fds)?;
    Ok(())
}
