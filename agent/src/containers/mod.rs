//! Containers: their records, their state machine, and the `Manager` whose
//! operations live one per file (`create.rs`, `start.rs`, `stop.rs`,
//! `remove.rs`, `recover.rs`, ...), each an `impl Manager` block.
//!
//! The metadata database is the one source of truth: every change of a
//! container commits durably before the RPC that caused it answers. The
//! shim owns the live process; berthd learns about an exit from the shim's
//! `exit.json` (see `monitor.rs`).
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_contract::log::LogLimits;
use berth_contract::{ContainerId, ContainerPaths, Layout};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{AgentError, Result};
use crate::images::ImageService;
use crate::store::ContainerStore;

mod commit;
pub(crate) mod copy;
mod create;
pub mod diff;
mod error;
mod export;
pub mod health;
mod io;
mod list;
mod logopts;
mod logs;
mod monitor;
mod names;
mod pause;
pub mod policy;
mod process;
mod prune;
mod recover;
mod remove;
mod rename;
pub mod resources;
mod run;
mod spec;
mod start;
mod stats;
mod stop;
pub mod top;
mod update;

pub use crate::cgroups::CgroupDriver;
pub use commit::CommitOptions;
pub use copy::{CopyToOptions, PathStat};
pub use create::CreateOptions;
pub use error::{ContainerError, CopyError, InvalidError, Wanted};
pub use health::{Health, HealthConfig, HealthStatus, ProbeResult};
pub use io::{Attached, ExecOptions, ShimStream};
pub use list::Filters;
pub use logopts::to_opts as log_opts_of;
pub use logs::{LogOptions, LogRecord};
pub use policy::RestartPolicy;
pub use process::{EventSink, OutputStream, ProcessEvent, ProcessInput};
pub use prune::ContainerUsage;
pub use resources::{ResourceError, Resources, Ulimit};
pub use run::RunEvent;
pub use stats::{ContainerStats, StatsBatch, StatsOptions};

/// Where a container is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }
    /// The status named `s` (`as_str`'s inverse); Docker's other names
    /// (`restarting`, `removing`, `dead`) are none of berth's.
    pub fn parse(s: &str) -> Option<Self> {
        [Status::Created, Status::Running, Status::Paused, Status::Exited].into_iter().find(|x| x.as_str() == s)
    }
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }
    pub fn can_stop(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
    pub fn can_remove(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// What the container runs, fixed at create time from the image and the
/// caller's overrides.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProcessConfig {
    /// Entrypoint followed by command.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// As given (`name`, `uid`, `name:group`); empty = root.
    pub user: String,
    pub hostname: String,
    pub stop_signal: String,
    /// A terminal for the process (`-t`).
    #[serde(default)]
    pub tty: bool,
    /// stdin kept open for attaches (`-i`).
    #[serde(default)]
    pub open_stdin: bool,
    /// The terminal's size at create (columns, rows); 0 = unknown.
    #[serde(default)]
    pub console: (u16, u16),
    /// `--stop-timeout`: seconds `stop` waits without `-t`; `None`: 10.
    #[serde(default)]
    pub stop_timeout: Option<i32>,
    /// `--group-add`: supplementary groups, GIDs (names resolved at create
    /// from the image's /etc/group).
    #[serde(default)]
    pub group_add: Vec<u32>,
    /// `--init`: berth's init (tini) runs as PID 1 and runs `args`.
    #[serde(default)]
    pub init: bool,
}

/// The live part of a record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub started_at: i64,
    #[serde(default)]
    pub finished_at: i64,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub exit_signal: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    /// Why the last start failed, or why the exit status is unknown.
    #[serde(default)]
    pub error: String,
    /// Starts by the restart policy since the container was created.
    #[serde(default)]
    pub restart_count: u32,
    /// A user stopped or killed it: no policy undoes that (`policy.rs`).
    #[serde(default)]
    pub manually_stopped: bool,
    /// The last wait before a restart by the policy (its back-off).
    #[serde(default)]
    pub restart_delay_ms: u64,
    /// The health check's state as last changed (`health.rs`); `None`
    /// without a check or before its first result.
    #[serde(default)]
    pub health: Option<Health>,
}

/// One container as the database keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image reference as the user gave it.
    pub image: String,
    pub image_id: String,
    /// Unix nanoseconds.
    pub created: i64,
    pub process: ProcessConfig,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub auto_remove: bool,
    /// How the shim rotates the log; records from before rotation existed
    /// get the default.
    #[serde(default)]
    pub log: LogLimits,
    /// Limits; records from before limits existed have none.
    #[serde(default)]
    pub resources: Resources,
    /// `--restart`; records from before policies existed have `no`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// The health check (the caller's over the image's); `None`: none.
    #[serde(default)]
    pub healthcheck: Option<HealthConfig>,
    pub state: State,
}

impl ContainerRecord {
    pub fn container_id(&self) -> ContainerId {
        // Every record was created with a valid ID.
        ContainerId::parse(&self.id).expect("stored container id is valid")
    }
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// An exit berthd has recorded, as broadcast to waiters.
#[derive(Clone, Debug)]
pub struct ExitEvent {
    pub id: String,
    pub exit_code: i32,
    pub error: String,
}

/// Owns every container operation.
pub struct Manager {
    pub(crate) layout: Layout,
    pub(crate) store: ContainerStore,
    pub(crate) images: Arc<ImageService>,
    pub(crate) shim: PathBuf,
    pub(crate) cgroups: CgroupDriver,
    /// CPUs and memory nodes, for the checks of limits.
    pub(crate) host: resources::Host,
    /// One lock per container serialises its state changes.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) exits: broadcast::Sender<ExitEvent>,
    /// Serialises name checks with inserts.
    names_lock: tokio::sync::Mutex<()>,
    /// `logs` calls reading each container's log, and a wake-up for each
    /// one that ends (an auto-remove waits for them: see `logs.rs`).
    log_readers: Mutex<HashMap<String, usize>>,
    log_reader_done: tokio::sync::Notify,
    /// Live health of containers with a check, with the start (its
    /// `started_at`) it belongs to (`health.rs`).
    pub(crate) health: Mutex<HashMap<String, (i64, Health)>>,
}

impl Manager {
    pub fn new(
        layout: Layout,
        db: Arc<redb::Database>,
        images: Arc<ImageService>,
        shim: PathBuf,
        cgroups: CgroupDriver,
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(layout.containers_dir())
            .map_err(|source| AgentError::Io { context: "create containers dir".into(), source })?;
        std::fs::create_dir_all(layout.state())
            .map_err(|source| AgentError::Io { context: "create state dir".into(), source })?;
        let store = ContainerStore::open(db, &crate::store_layout::StoreLayout::meta_db(&layout))?;
        let (exits, _) = broadcast::channel(1024);
        Ok(Arc::new(Self {
            layout,
            store,
            images,
            shim,
            cgroups,
            host: resources::Host::detect(),
            locks: Mutex::default(),
            exits,
            names_lock: tokio::sync::Mutex::default(),
            log_readers: Mutex::default(),
            log_reader_done: tokio::sync::Notify::new(),
            health: Mutex::default(),
        }))
    }

    pub(crate) fn paths(&self, rec: &ContainerRecord) -> ContainerPaths {
        self.layout.container(&rec.container_id())
    }

    pub(crate) fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    fn forget_lock(&self, id: &str) {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    // ------------------------------------------------------------ database

    pub(crate) fn all_records(&self) -> Result<Vec<ContainerRecord>> {
        self.store.all()
    }

    /// The records of live (running or paused) containers.
    pub(crate) fn live_records(&self) -> Result<Vec<ContainerRecord>> {
        let ids = self.store.ids_with_status(&[Status::Running, Status::Paused]);
        self.store.get_many(ids.iter().map(String::as_str))
    }

    /// The ID of the container named `name`.
    fn id_by_name(&self, name: &str) -> Result<Option<String>> {
        self.store.id_by_name(name)
    }

    pub(crate) fn get_record(&self, id: &str) -> Result<Option<ContainerRecord>> {
        self.store.get(id)
    }

    /// Writes a record (and its index entries); durable when this
    /// returns. The commit (an fsync) runs off the async threads.
    pub(crate) async fn put_record(&self, rec: &ContainerRecord) -> Result<()> {
        let (store, rec) = (self.store.clone(), rec.clone());
        crate::blocking::run(move || store.put(&rec)).await
    }

    /// Deletes a record and its index entries; durable when this returns.
    pub(crate) async fn delete_record(&self, id: &str) -> Result<()> {
        let (store, id) = (self.store.clone(), id.to_owned());
        crate::blocking::run(move || store.delete(&id)).await
    }

    /// Finds a container by full ID, unique ID prefix or name (with or
    /// without Docker's leading `/`).
    pub fn lookup(&self, key: &str) -> Result<ContainerRecord> {
        let not_found = || AgentError::from(ContainerError::not_found(key));
        if key.is_empty() {
            return Err(not_found());
        }
        if key.len() == 64 {
            if let Some(rec) = self.get_record(key)? {
                return Ok(rec);
            }
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(rec) = self.id_by_name(name)?.map(|id| self.get_record(&id)).transpose()?.flatten() {
            return Ok(rec);
        }
        let hexish = key.bytes().all(|b| b.is_ascii_hexdigit());
        if hexish {
            let hits = self.store.ids_with_prefix(key)?;
            if hits.len() > 1 {
                return Err(ContainerError::AmbiguousPrefix { prefix: key.to_owned() }.into());
            }
            if let Some(rec) = hits.first().map(|id| self.get_record(id)).transpose()?.flatten() {
                return Ok(rec);
            }
        }
        Err(not_found())
    }

    /// The record as it is now: a container the database believes running
    /// whose shim has persisted an exit is finalised first.
    pub async fn refresh(self: &Arc<Self>, key: &str) -> Result<ContainerRecord> {
        let rec = self.lookup(key)?;
        if rec.state.status.is_live() && self.paths(&rec).has_exit() {
            self.finalize_exit(&rec.id).await?;
            return self.lookup(&rec.id);
        }
        Ok(rec)
    }

    /// Counts by state, for `Info`: all, running, paused, stopped.
    pub fn counts(&self) -> Result<(u64, u64, u64, u64)> {
        let by = self.store.count_by_status();
        let n = |s: Status| by.get(&s).copied().unwrap_or(0);
        let stopped = n(Status::Exited) + n(Status::Created);
        Ok((n(Status::Running) + n(Status::Paused) + stopped, n(Status::Running), n(Status::Paused), stopped))
    }

    /// The short ID of a container created from `image_id`, for `rmi`.
    pub fn image_user(&self, image_id: &str) -> Option<String> {
        self.store.ids_of_image(image_id).first().map(|id| id[..12].to_owned())
    }
}
