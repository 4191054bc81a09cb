//! `start`: cgroup, runtime spec, then the shim, which creates the
//! container and returns once its process has exec'd (or failed to).
use std::sync::Arc;

use berth_contract::fs::atomic_replace;
use berth_contract::shim_client::ShimClient;
use berth_contract::shim_start::{StartConfig, StartOutcome};
use berth_contract::{now_nanos, ContainerId};

use super::spec::{self, SpecInputs};
use super::{ContainerError, Wanted};
use super::{ContainerRecord, Manager, Status};
use crate::error::{AgentError, IoContext, Result};

impl Manager {
    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<ContainerRecord> {
        let t0 = std::time::Instant::now();
        let rec = self.refresh(key).await?;
        let lock = self.lock_for(&rec.id);
        let _held = lock.lock().await;
        let mut rec = self.lookup(&rec.id)?;
        if !rec.state.status.can_start() {
            return Err(ContainerError::wrong_state(&rec.name, rec.state.status, Wanted::Startable).into());
        }
        let paths = self.paths(&rec);

        let lower = self.image_layers(&rec).await?;

        // A restart keeps the writable layer and the log, not the old exit.
        let _ = std::fs::remove_file(paths.exit_file());
        let _ = std::fs::remove_file(paths.spare_exit_file());
        std::fs::create_dir_all(paths.state_dir()).context(|| format!("create {}", paths.state_dir().display()))?;

        let procs = self.cgroups.create(&rec.id)?;
        // The cgroup is new at each start: its limits are written each time,
        // before the init joins it.
        if let Err(e) = self.cgroups.set_limits(&rec.id, &rec.resources.limits) {
            let _ = self.cgroups.remove_off_runtime(&rec.id).await;
            return Err(e);
        }
        let cgroup_path = self.cgroups.path_of(&rec.id);
        let upper = paths.upper();
        let work = paths.work();
        let spec = spec::build(
            &rec,
            &SpecInputs { lower: &lower, upper: &upper, work: &work, cgroup_path: &cgroup_path, cgroup_join: &procs },
        )?;
        let bytes = serde_json::to_vec_pretty(&spec)?;
        let bundle = paths.clone();
        crate::blocking::run(move || {
            // Both rewritten at each start, before the shim that reads them
            // exists: no fsync (nothing reads them after a crash of the
            // host). The program is compiled once per berthd.
            atomic_replace(&bundle.config_file(), &bytes).context(|| "write config.json".into())?;
            let program =
                berth_contract::seccomp::default_program().map_err(|e| AgentError::Internal(e.to_string()))?;
            std::fs::write(bundle.seccomp_program(), program.to_bytes())
                .context(|| format!("write {}", bundle.seccomp_program().display()))
        })
        .await?;

        let t_shim = std::time::Instant::now();
        // Taken before the shim runs: a process that exits at once is seen
        // to end (the shim's time in `exit.json`) after it started.
        let started_at = now_nanos();
        let prepared_us = t0.elapsed().as_micros() as u64;
        let config = StartConfig {
            id: ContainerId::parse(&rec.id).map_err(|e| AgentError::Internal(e.to_string()))?,
            bundle: paths.dir().to_path_buf(),
            state: paths.state_dir().to_path_buf(),
        };
        let outcome =
            ShimClient::start(&self.shim, &config).await.context(|| format!("run {}", self.shim.display()))?;
        let pid = match outcome {
            StartOutcome::Started { pid } => pid,
            StartOutcome::Failed { code, message } => {
                // Nothing runs: undo the cgroup, keep the record as created
                // with the error, as Docker does.
                self.cgroups.kill_all(&rec.id).await;
                let _ = self.cgroups.remove_off_runtime(&rec.id).await;
                // The shim's own log stays (its diagnostics of the failure)
                // until the container is removed; only what says "a shim is
                // here" goes.
                let _ = std::fs::remove_file(paths.shim_socket());
                let _ = std::fs::remove_file(paths.shim_pid());
                rec.state.error = message.clone();
                rec.state.exit_code = code;
                self.put_record(&rec).await?;
                return Err(ContainerError::StartFailed { id: rec.short_id().to_owned(), message, code }.into());
            }
        };
        let shim_us = t_shim.elapsed().as_micros() as u64;
        rec.state.status = Status::Running;
        rec.state.pid = pid;
        rec.state.started_at = started_at;
        rec.state.finished_at = 0;
        rec.state.exit_code = 0;
        rec.state.exit_signal = None;
        rec.state.oom_killed = false;
        rec.state.error.clear();
        rec.state.manually_stopped = false;
        self.put_record(&rec).await?;
        tracing::info!(pid, prepared_us, shim_us, total_us = t0.elapsed().as_micros() as u64, "container started");
        self.spawn_monitor(&rec);
        self.start_health(&rec, true);
        Ok(rec)
    }
}
