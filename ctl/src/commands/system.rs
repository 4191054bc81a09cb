//! `version`, `info`.
use anyhow::Result;
use berth_proto::v1 as pb;

use crate::client::Client;

pub async fn version(mut c: Client) -> Result<u8> {
    let v = c.system.version(pb::VersionRequest {}).await?.into_inner();
    println!(
        "Client:\n Version:    {}\n\nServer:\n Version:    {}\n API version: {}",
        env!("CARGO_PKG_VERSION"),
        v.version,
        v.api_version
    );
    Ok(0)
}

pub async fn info(mut c: Client) -> Result<u8> {
    let i = c.system.info(pb::InfoRequest {}).await?.into_inner();
    println!("Containers: {}", i.containers);
    println!(" Running: {}", i.containers_running);
    println!(" Paused: {}", i.containers_paused);
    println!(" Stopped: {}", i.containers_stopped);
    println!("Images: {}", i.images);
    println!("Storage Driver: {}", i.storage_driver);
    println!("Cgroup Driver: {}", i.cgroup_driver);
    println!("Cgroup Version: {}", i.cgroup_version);
    println!("Kernel Version: {}", i.kernel_version);
    println!("Root Dir: {}", i.root);
    println!("State Dir: {}", i.state);
    Ok(0)
}
