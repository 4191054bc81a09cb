//! The composition root: berthd's services, each built here with what it
//! depends on passed in, and the policy that spans more than one of them
//! (an image in use by a container, the disk both use, the node's counts).
//! Front ends (`api/` for `berth.v1`, and the CRI service to come) are
//! built from an [`Agent`] and hold the services they serve; no service
//! reaches another through a third.
//!
//! ```text
//! Agent ─┬─ images:     ImageService   (layout, database)
//!        ├─ registry:   Puller         (registries' config, images)
//!        ├─ containers: Manager        (layout, store, images, shim, cgroups)
//!        └─ (networks, volumes, sandboxes, builder, events: each a field here,
//!            built in `open` from what it needs)
//! ```
use std::collections::HashSet;
use std::sync::Arc;

use berth_contract::Layout;

use crate::cgroups::CgroupDriver;
use crate::config::Config;
use crate::containers::{ContainerUsage, Manager};
use crate::error::{AgentError, Result};
use crate::images::prune::{ImageUsage, PruneReport};
use crate::images::{ImageService, RemoveReport};
use crate::registry::Puller;

/// What `Info` reports about the node.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub images: u64,
    pub containers: u64,
    pub running: u64,
    pub paused: u64,
    pub stopped: u64,
    pub cgroup_version: &'static str,
}

pub struct Agent {
    pub layout: Layout,
    pub images: Arc<ImageService>,
    pub registry: Arc<Puller>,
    pub containers: Arc<Manager>,
}

impl Agent {
    /// Opens everything berthd owns (directories, the database, each
    /// service) and recovers the containers. `shim` is the shim binary
    /// berthd runs (its read-only view: `shim_binary.rs`).
    pub async fn open(config: &Config, shim: &std::path::Path) -> Result<Arc<Self>> {
        let layout = config.layout();
        crate::server::prepare_dirs(&layout)?;
        let db = crate::server::metadata::open(&layout, config.reinit_metadata)?;
        let sweep = db.sweep;
        let db = db.db;
        let images = {
            let layout = layout.clone();
            let db = db.clone();
            let limits = config.registries.images.limits();
            crate::blocking::run(move || {
                ImageService::open_with(layout, db, sweep).map(|s| s.with_limits(limits)).map_err(AgentError::from)
            })
            .await?
        };
        let images = Arc::new(images);
        let registry = Arc::new(Puller::new(config.registries.clone(), images.clone()));
        let containers = Manager::new(layout.clone(), db, images.clone(), shim.to_path_buf(), CgroupDriver::default())?;
        containers.recover(sweep).await?;
        // Restart policies apply from berthd's first moment (host reboot).
        containers.restart_on_boot()?;
        Ok(Arc::new(Self { layout, images, registry, containers }))
    }

    /// The node's counts. Reads the database: call it off the async
    /// threads.
    pub fn info(&self) -> Result<NodeInfo> {
        let (containers, running, paused, stopped) = self.containers.counts()?;
        let images = self.images.count()? as u64;
        Ok(NodeInfo { images, containers, running, paused, stopped, cgroup_version: self.containers.cgroups.version() })
    }

    /// `rmi`: refused for an image a container was created from (unless
    /// forced, as Docker does). Blocks.
    pub fn remove_image(&self, reference: &str, force: bool) -> Result<RemoveReport> {
        let users = |image_id: &str| self.containers.image_user(image_id);
        Ok(self.images.remove(reference, force, &users)?)
    }

    /// `image prune`: never an image a container was created from. Blocks.
    pub fn prune_images(&self, all: bool) -> Result<PruneReport> {
        let users = |image_id: &str| self.containers.image_user(image_id);
        Ok(self.images.prune(all, &users)?)
    }

    /// `system df`: the containers' writable layers, and the images and
    /// layers with those in use by a container counted as active.
    pub async fn disk_usage(self: &Arc<Self>) -> Result<(ImageUsage, ContainerUsage)> {
        let containers = self.containers.disk_usage().await?;
        let this = self.clone();
        let images = crate::blocking::run(move || {
            let in_use: HashSet<String> = this.containers.images_in_use()?;
            Ok::<_, AgentError>(this.images.disk_usage(&in_use)?)
        })
        .await?;
        Ok((images, containers))
    }
}
