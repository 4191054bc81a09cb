//! Learning about exits. One task per running container holds a `wait` call
//! on its shim; when it returns (or the shim vanishes), `finalize_exit`
//! records the exit from `exit.json`, or as unknown (255) when the shim died
//! without writing one, and cleans what the container held on the host.
use std::sync::Arc;
use std::time::Duration;

use berth_contract::{now_nanos, ExitStatus};

use super::{ContainerError, ContainerRecord, ExitEvent, Manager};
use crate::error::{AgentError, Result};
use berth_contract::shim_client::{ShimCallError, ShimClient};

/// Exit code recorded when the real one cannot be known (Docker's choice).
pub const UNKNOWN_EXIT: i32 = 255;

impl Manager {
    pub(crate) fn spawn_monitor(self: &Arc<Self>, rec: &ContainerRecord) {
        let this = self.clone();
        let id = rec.id.clone();
        let paths = self.paths(rec);
        let shim = ShimClient::new(&paths);
        tokio::spawn(async move {
            loop {
                match shim.wait().await {
                    Ok(_) | Err(ShimCallError::Gone(_)) | Err(ShimCallError::Closed) => break,
                    // A reset while the shim exits: its exit.json says so.
                    Err(_) if paths.has_exit() => break,
                    Err(e) => {
                        tracing::debug!(id = %&id[..12], error = %e, "shim wait interrupted, retrying");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            if let Err(e) = this.finalize_exit(&id).await {
                tracing::error!(id = %&id[..12], error = %e, "record container exit");
            }
        });
    }

    /// Records the exit of a container the database believes live. Safe to
    /// call more than once: only the first call changes anything.
    pub(crate) async fn finalize_exit(self: &Arc<Self>, id: &str) -> Result<()> {
        let lock = self.lock_for(id);
        let guard = lock.lock().await;
        let Some(mut rec) = self.get_record(id)? else { return Ok(()) };
        if !rec.state.status.is_live() {
            return Ok(());
        }
        let paths = self.paths(&rec);
        let mut exit = ExitStatus::read_for(&paths).ok().flatten();
        if exit.is_none() {
            // The shim may be alive but between answering and writing:
            // trust only a shim that does not answer at all.
            if ShimClient::new(&paths).state().await.is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                exit = ExitStatus::read_for(&paths).ok().flatten();
                if exit.is_none() {
                    return Ok(());
                }
            }
        }
        // A shim that died without an exit status may leave its container
        // running: its processes go before it is reported exited. With an
        // exit status the init is dead, and with it its pid namespace.
        if exit.is_none() {
            self.cgroups.kill_all(id).await;
        }
        let oom = self.cgroups.oom_killed(id);

        match exit {
            Some(st) => {
                rec.state.exit_code = st.code;
                rec.state.exit_signal = st.signal;
                rec.state.finished_at = st.finished_at;
                rec.state.oom_killed = st.oom_killed || oom;
                rec.state.error.clear();
                if st.log_dropped > 0 {
                    // The disk was full: the log could not even say so.
                    rec.state.error =
                        format!("{} bytes of output dropped from the log: the disk was full", st.log_dropped);
                }
            }
            None => {
                rec.state.exit_code = UNKNOWN_EXIT;
                rec.state.exit_signal = None;
                rec.state.finished_at = now_nanos();
                rec.state.oom_killed = oom;
                rec.state.error = "container's shim exited without recording an exit status".into();
            }
        }
        rec.state.status = super::Status::Exited;
        rec.state.pid = 0;
        if let Some(h) = self.take_health(id, rec.state.started_at) {
            rec.state.health = Some(h);
        }
        let restart = self.plan_restart(&mut rec);
        self.put_record(&rec).await?;
        tracing::info!(id = %&id[..12], code = rec.state.exit_code, "container exited");
        let ev = ExitEvent { id: id.to_owned(), exit_code: rec.state.exit_code, error: rec.state.error.clone() };
        // Waiters learn the exit now; the host clean-up below is not theirs
        // to wait for. It stays under the lock so a restart cannot race it.
        let _ = self.exits.send(ev);
        if let Err(e) = self.cgroups.remove_off_runtime(id).await {
            tracing::warn!(id = %&id[..12], error = %e, "remove cgroup");
        }
        let _ = crate::tree::remove_all(paths.state_dir());
        drop(guard);
        if let Some(delay) = restart {
            tracing::info!(id = %&id[..12], delay_ms = delay.as_millis() as u64, "restart policy: starting again");
            self.spawn_restart(id.to_owned(), rec.state.finished_at, delay, false);
        }
        if rec.auto_remove {
            // Its own task: the caller may be one of the log readers the
            // removal waits for (a `logs -f` that noticed the exit first
            // and finalised it), and would otherwise wait for itself until
            // the grace ran out.
            tokio::spawn(self.clone().auto_remove(id.to_owned()));
        }
        Ok(())
    }

    /// The removal of an auto-remove container once its log readers are
    /// done. Boxed as `dyn Future + Send`: it calls `remove`, which can
    /// finalise an exit, which spawns this; the box cuts that cycle of
    /// future types.
    fn auto_remove(self: Arc<Self>, id: String) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            self.wait_for_log_readers(&id).await;
            if let Err(e) = self.remove(&id, false).await {
                tracing::warn!(id = %&id[..12], error = %e, "auto-remove");
            }
        })
    }

    /// Waits until the container has exited and returns its code and error.
    pub async fn wait(self: &Arc<Self>, key: &str) -> Result<ExitEvent> {
        let mut rx = self.exits.subscribe();
        let mut rec = self.refresh(key).await?;
        let id = rec.id.clone();
        loop {
            if !rec.state.status.is_live() && rec.state.status != super::Status::Created {
                return Ok(ExitEvent { id, exit_code: rec.state.exit_code, error: rec.state.error });
            }
            match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                Ok(Ok(ev)) if ev.id == id => return Ok(ev),
                _ => {}
            }
            // Removed meanwhile (an auto-remove whose broadcast this wait
            // missed): "No such container", as Docker says then.
            rec = self.refresh(&id).await.map_err(|e| match e {
                AgentError::Container(ContainerError::NotFound { .. }) => ContainerError::not_found(key).into(),
                e => e,
            })?;
        }
    }
}
