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
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{AgentError, Result};
use crate::images::ImageService;

mod commit;
pub(crate) mod copy;
mod create;
mod export;
mod io;
mod list;
mod logopts;
mod logs;
mod monitor;
mod names;
mod prune;
mod recover;
mod remove;
mod run;
mod spec;
mod start;
mod stop;

pub use crate::cgroups::CgroupDriver;
pub use commit::CommitOptions;
pub use copy::{CopyToOptions, PathStat};
pub use create::CreateOptions;
pub use io::{Attached, ExecOptions, ShimStream};
pub use list::Filters;
pub use logopts::to_opts as log_opts_of;
pub use logs::{LogOptions, LogRecord};
pub use prune::ContainerUsage;
pub use run::RunEvent;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
/// Name → ID of every container: a lookup by name, and a create's check of
/// its name, read one row instead of decoding every record.
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("container_names");

/// The two fields of a record a name index needs (the rest, labels
/// included, is skipped).
#[derive(Deserialize)]
struct IdName {
    name: String,
}

/// Where a container is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    pub(crate) db: Arc<redb::Database>,
    pub(crate) images: Arc<ImageService>,
    pub(crate) shim: PathBuf,
    pub(crate) cgroups: CgroupDriver,
    /// One lock per container serialises its state changes.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) exits: broadcast::Sender<ExitEvent>,
    /// Exit codes of auto-removed containers, so a `wait` that comes after
    /// the removal still gets the code.
    removed_exits: Mutex<HashMap<String, ExitEvent>>,
    /// Serialises name checks with inserts.
    names_lock: tokio::sync::Mutex<()>,
    /// `logs` calls reading each container's log, and a wake-up for each
    /// one that ends (an auto-remove waits for them: see `logs.rs`).
    log_readers: Mutex<HashMap<String, usize>>,
    log_reader_done: tokio::sync::Notify,
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
        let tx = db.begin_write()?;
        {
            let records = tx.open_table(CONTAINERS)?;
            let mut names = tx.open_table(NAMES)?;
            // A database from before the index: built once.
            if names.is_empty()? && !records.is_empty()? {
                for row in records.iter()? {
                    let (id, v) = row?;
                    let n: IdName = serde_json::from_slice(v.value())?;
                    names.insert(n.name.as_str(), id.value())?;
                }
            }
        }
        tx.commit()?;
        let (exits, _) = broadcast::channel(1024);
        Ok(Arc::new(Self {
            layout,
            db,
            images,
            shim,
            cgroups,
            locks: Mutex::default(),
            exits,
            removed_exits: Mutex::default(),
            names_lock: tokio::sync::Mutex::default(),
            log_readers: Mutex::default(),
            log_reader_done: tokio::sync::Notify::new(),
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
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTAINERS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// The ID of the container named `name`.
    fn id_by_name(&self, name: &str) -> Result<Option<String>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(NAMES)?;
        Ok(table.get(name)?.map(|v| v.value().to_owned()))
    }

    /// IDs that start with `prefix` (keys only: no record decoded).
    fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTAINERS)?;
        let mut out = Vec::new();
        for row in table.range(prefix..)? {
            let (id, _) = row?;
            if !id.value().starts_with(prefix) {
                break;
            }
            out.push(id.value().to_owned());
        }
        Ok(out)
    }

    pub(crate) fn get_record(&self, id: &str) -> Result<Option<ContainerRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CONTAINERS)?;
        match table.get(id)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Writes a record; durable when this returns. The commit (an fsync)
    /// runs off the async threads.
    pub(crate) async fn put_record(&self, rec: &ContainerRecord) -> Result<()> {
        let bytes = serde_json::to_vec(rec)?;
        let (db, id, name) = (self.db.clone(), rec.id.clone(), rec.name.clone());
        crate::blocking::run(move || {
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(CONTAINERS)?;
                table.insert(id.as_str(), bytes.as_slice())?;
                tx.open_table(NAMES)?.insert(name.as_str(), id.as_str())?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Deletes a record and its name; durable when this returns.
    pub(crate) async fn delete_record(&self, id: &str) -> Result<()> {
        let (db, id) = (self.db.clone(), id.to_owned());
        crate::blocking::run(move || {
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(CONTAINERS)?;
                let name = match table.remove(id.as_str())? {
                    Some(old) => Some(serde_json::from_slice::<IdName>(old.value())?.name),
                    None => None,
                };
                if let Some(name) = name {
                    let mut names = tx.open_table(NAMES)?;
                    // Only if the name is still this container's.
                    let ours = names.get(name.as_str())?.is_some_and(|v| v.value() == id);
                    if ours {
                        names.remove(name.as_str())?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Finds a container by full ID, unique ID prefix or name (with or
    /// without Docker's leading `/`).
    pub fn lookup(&self, key: &str) -> Result<ContainerRecord> {
        let not_found = || AgentError::NotFound(format!("No such container: {key}"));
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
            let hits = self.ids_with_prefix(key)?;
            if hits.len() > 1 {
                return Err(AgentError::InvalidArgument(format!(
                    "multiple containers found with provided prefix: {key}"
                )));
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

    pub(crate) fn remember_removed_exit(&self, ev: ExitEvent) {
        let mut m = self.removed_exits.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 4096 {
            m.clear();
        }
        m.insert(ev.id.clone(), ev);
    }

    pub(crate) fn removed_exit(&self, id: &str) -> Option<ExitEvent> {
        let m = self.removed_exits.lock().unwrap_or_else(|e| e.into_inner());
        m.get(id).cloned()
    }

    /// Counts by state, for `Info`.
    pub fn counts(&self) -> Result<(u64, u64, u64, u64)> {
        let all = self.all_records()?;
        let n = |s: Status| all.iter().filter(|r| r.state.status == s).count() as u64;
        Ok((all.len() as u64, n(Status::Running), n(Status::Paused), n(Status::Exited) + n(Status::Created)))
    }

    /// Image IDs in use by containers, for `rmi`.
    pub fn image_user(&self, image_id: &str) -> Option<String> {
        self.all_records().ok()?.into_iter().find(|r| r.image_id == image_id).map(|r| r.short_id().to_owned())
    }
}
