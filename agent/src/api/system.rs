//! `berth.v1.System`.
use std::sync::Arc;

use berth_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::containers::Manager;

pub struct SystemApi {
    pub manager: Arc<Manager>,
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
        let m = self.manager.clone();
        let (info, images) = super::blocking(move || {
            let counts = m.counts()?;
            let images = m.images.count()?;
            Ok((counts, images))
        })
        .await?;
        let layout = &self.manager.layout;
        Ok(Response::new(pb::InfoResponse {
            root: layout.root().display().to_string(),
            state: layout.state().display().to_string(),
            storage_driver: "overlayfs".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: self.manager.cgroups.version().into(),
            images: images as u64,
            containers: info.0,
            containers_running: info.1,
            containers_paused: info.2,
            containers_stopped: info.3,
            kernel_version: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
        }))
    }

    async fn disk_usage(&self, _: Request<pb::DiskUsageRequest>) -> Result<Response<pb::DiskUsageResponse>, Status> {
        let containers = self.manager.disk_usage().await?;
        let m = self.manager.clone();
        let images = super::blocking(move || {
            let in_use = m.images_in_use()?;
            Ok(m.images.disk_usage(&in_use)?)
        })
        .await?;
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
