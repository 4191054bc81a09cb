//! `berth.v1.System`.
use std::sync::Arc;

use berth_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::agent::Agent;

pub struct SystemApi {
    pub agent: Arc<Agent>,
}

#[tonic::async_trait]
impl pb::system_server::System for SystemApi {
    async fn version(&self, _: Request<pb::VersionRequest>) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: "v1".into(),
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("").into(),
        }))
    }

    async fn info(&self, _: Request<pb::InfoRequest>) -> Result<Response<pb::InfoResponse>, Status> {
        let agent = self.agent.clone();
        let info = super::blocking(move || agent.info()).await?;
        let layout = &self.agent.layout;
        Ok(Response::new(pb::InfoResponse {
            root: layout.root().display().to_string(),
            state: layout.state().display().to_string(),
            storage_driver: "overlayfs".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: info.cgroup_version.into(),
            images: info.images,
            containers: info.containers,
            containers_running: info.running,
            containers_paused: info.paused,
            containers_stopped: info.stopped,
            kernel_version: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
        }))
    }

    async fn disk_usage(&self, _: Request<pb::DiskUsageRequest>) -> Result<Response<pb::DiskUsageResponse>, Status> {
        let (images, containers) = self.agent.disk_usage().await?;
        let row = |kind: &str, total, active, size, reclaimable| pb::DiskUsageRow {
            kind: kind.into(),
            total,
            active,
            size,
            reclaimable,
        };
        Ok(Response::new(pb::DiskUsageResponse {
            rows: vec![
                row("Images", images.images, images.images_active, images.images_size, images.images_reclaimable),
                row("Containers", containers.containers, containers.active, containers.size, containers.reclaimable),
                row("Layers", images.layers, images.layers_active, images.layers_size, images.layers_reclaimable),
            ],
        }))
    }
}
