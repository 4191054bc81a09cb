//! `info`.

use anyhow::Result;
use berth_proto::v1 as pb;

use crate::client::Client;
use crate::out::outln;

pub async fn info(mut c: Client) -> Result<u8> {
    let i = c.system.info(pb::InfoRequest {}).await?.into_inner();
    outln!("Containers: {}", i.containers)?;
    outln!(" Running: {}", i.containers_running)?;
    outln!(" Paused: {}", i.containers_paused)?;
    outln!(" Stopped: {}", i.containers_stopped)?;
    outln!("Images: {}", i.images)?;
    outln!("Storage Driver: {}", i.storage_driver)?;
    outln!("Cgroup Driver: {}", i.cgroup_driver)?;
    outln!("Cgroup Version: {}", i.cgroup_version)?;
    outln!("Kernel Version: {}", i.kernel_version)?;
    outln!("Root Dir: {}", i.root)?;
    outln!("State Dir: {}", i.state)?;
    Ok(0)
}
