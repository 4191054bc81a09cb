//! Recovery at berthd's start (DESIGN.md "Recovery"): every container the
//! database believes live is checked against its shim. A live shim gets a
//! new monitor; a gone one is finalised from its `exit.json`, or as unknown
//! (255) with its leftovers (processes, cgroup, state) cleaned. Directories
//! of containers the database does not know are removed.
use std::collections::HashSet;
use std::sync::Arc;

use super::Manager;
use crate::error::Result;
use berth_contract::shim_client::ShimClient;

impl Manager {
    /// `sweep`: whether the database knows the whole root, so that a
    /// directory it has no record of is an orphan to remove (else it is
    /// kept and reported: `server/metadata.rs`).
    pub async fn recover(self: &Arc<Self>, sweep: bool) -> Result<()> {
        let records = self.all_records()?;
        let known: HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
        for mut rec in records {
            let paths = self.paths(&rec);
            let shim = ShimClient::new(&paths);
            if !rec.state.status.is_live() {
                // berthd died during a start, after the shim was spawned
                // and before the record said so: adopt what runs, so no
                // container lives unseen. Else nothing may hold a cgroup.
                match shim.state().await {
                    Ok(resp) => {
                        let pid = resp.state.as_ref().map_or(0, |s| s.pid);
                        tracing::info!(id = rec.short_id(), pid, "adopting a container started by a previous berthd");
                        rec.state.status = super::Status::Running;
                        rec.state.pid = pid;
                        rec.state.started_at = berth_contract::now_nanos();
                        rec.state.error.clear();
                        self.put_record(&rec).await?;
                        if resp.state.as_ref().is_some_and(|s| s.running) {
                            self.spawn_monitor(&rec);
                            self.start_health(&rec, true);
                        } else {
                            self.finalize_exit(&rec.id).await?;
                        }
                    }
                    Err(_) => {
                        if self.cgroups.exists(&rec.id) {
                            self.cgroups.kill_all(&rec.id).await;
                            let _ = self.cgroups.remove_off_runtime(&rec.id).await;
                        }
                        let _ = crate::tree::remove_all(paths.state_dir());
                    }
                }
                continue;
            }
            match shim.state().await {
                Ok(resp) if resp.state.as_ref().is_some_and(|s| s.running) => {
                    tracing::info!(id = rec.short_id(), "container still running, re-attached");
                    // A berthd killed during a commit leaves the container
                    // frozen; only a paused one stays so.
                    if rec.state.status == super::Status::Running {
                        let _ = self.cgroups.thaw(&rec.id);
                    }
                    self.spawn_monitor(&rec);
                    self.start_health(&rec, false);
                }
                Ok(_) => {
                    // Exited while berthd was away; the shim lingers until
                    // it has told someone. Record and let it go.
                    self.finalize_exit(&rec.id).await?;
                    let _ = shim.shutdown().await;
                }
                Err(e) => {
                    tracing::info!(id = rec.short_id(), error = %e, "shim gone");
                    self.finalize_exit(&rec.id).await?;
                }
            }
        }
        // Orphans: a container directory or state directory with no record
        // (a crash between the record's removal and the directory's).
        for dir in [self.layout.containers_dir(), self.layout.state().to_path_buf()] {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if berth_contract::ContainerId::parse(&name).is_ok() && !known.contains(&name) {
                    if !sweep {
                        tracing::warn!(id = %&name[..12], dir = %dir.display(), "kept a directory the database does not know");
                        continue;
                    }
                    tracing::info!(id = %&name[..12], "removing orphan directory");
                    let _ = crate::tree::remove_all(entry.path());
                    let _ = self.cgroups.remove_off_runtime(&name).await;
                }
            }
        }
        Ok(())
    }
}
