//! Restart policies (`--restart`), executed by berthd with Docker's rules:
//! after an exit the policy decides, the start comes after a back-off that
//! doubles from 100 ms up to a minute and starts over once a run lasted
//! 10 seconds; a `stop` or `kill` by a user is remembered
//! (`manually_stopped`) and no policy undoes it, until berthd itself starts
//! again, when `always` starts the container anyway and `unless-stopped`
//! does not.
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ContainerRecord, InvalidError, Manager, Status};
use crate::error::Result;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long starts the back-off over.
const RESET_AFTER: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartKind {
    #[default]
    No,
    OnFailure,
    Always,
    UnlessStopped,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub kind: RestartKind,
    /// `on-failure` only: the most restarts; 0 = no bound.
    #[serde(default)]
    pub max_retries: u32,
}

impl RestartPolicy {
    /// `no`, `on-failure`, `always`, `unless-stopped` (empty = `no`), as
    /// Docker checks them.
    pub fn parse(name: &str, max_retries: i32) -> std::result::Result<Self, InvalidError> {
        let kind = match name {
            "" | "no" => RestartKind::No,
            "on-failure" => RestartKind::OnFailure,
            "always" => RestartKind::Always,
            "unless-stopped" => RestartKind::UnlessStopped,
            other => return Err(InvalidError::RestartPolicy { name: other.to_owned() }),
        };
        if max_retries < 0 {
            return Err(InvalidError::RestartRetriesNegative);
        }
        if max_retries > 0 && kind != RestartKind::OnFailure {
            return Err(InvalidError::RestartRetriesOnlyOnFailure);
        }
        Ok(RestartPolicy { kind, max_retries: max_retries as u32 })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            RestartKind::No => "no",
            RestartKind::OnFailure => "on-failure",
            RestartKind::Always => "always",
            RestartKind::UnlessStopped => "unless-stopped",
        }
    }

    pub fn is_none(&self) -> bool {
        self.kind == RestartKind::No
    }

    /// Whether a container that exited with `code`, restarted `count`
    /// times so far, is started again. `manually_stopped` blocks every
    /// policy while berthd runs; `at_berthd_start`, `always` ignores it.
    pub fn should_restart(&self, code: i32, count: u32, manually_stopped: bool, at_berthd_start: bool) -> bool {
        match self.kind {
            RestartKind::No => false,
            RestartKind::Always => at_berthd_start || !manually_stopped,
            RestartKind::UnlessStopped => !manually_stopped,
            RestartKind::OnFailure => {
                !manually_stopped && code != 0 && (self.max_retries == 0 || count < self.max_retries)
            }
        }
    }
}

/// The wait before the next restart: doubled from the last one, from
/// scratch after a long run.
pub fn next_delay(last_ms: u64, ran: Duration) -> Duration {
    if last_ms == 0 || ran >= RESET_AFTER {
        return FIRST_DELAY;
    }
    (Duration::from_millis(last_ms) * 2).min(MAX_DELAY)
}

impl Manager {
    /// Called with the exit just recorded (under the container's lock):
    /// decides, keeps the back-off in the record, and schedules the start.
    pub(crate) fn plan_restart(&self, rec: &mut ContainerRecord) -> Option<Duration> {
        let st = &rec.state;
        if rec.auto_remove || !rec.restart.should_restart(st.exit_code, st.restart_count, st.manually_stopped, false) {
            return None;
        }
        let ran = Duration::from_nanos(st.finished_at.saturating_sub(st.started_at).max(0) as u64);
        let delay = next_delay(rec.state.restart_delay_ms, ran);
        rec.state.restart_delay_ms = delay.as_millis() as u64;
        Some(delay)
    }

    /// Starts the container after `delay` if it is still exited from the
    /// same run and nobody stopped it meanwhile.
    pub(crate) fn spawn_restart(self: &Arc<Self>, id: String, finished_at: i64, delay: Duration, at_start: bool) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = this.policy_start(&id, finished_at, at_start).await {
                tracing::warn!(id = %&id[..12], error = %e, "restart by policy");
            }
        });
    }

    async fn policy_start(self: &Arc<Self>, id: &str, finished_at: i64, at_start: bool) -> Result<()> {
        {
            let lock = self.lock_for(id);
            let _held = lock.lock().await;
            let Some(mut rec) = self.get_record(id)? else { return Ok(()) };
            let st = &rec.state;
            let wanted = rec.restart.should_restart(st.exit_code, st.restart_count, st.manually_stopped, at_start);
            if st.status != Status::Exited || st.finished_at != finished_at || !wanted {
                return Ok(());
            }
            rec.state.restart_count += 1;
            self.put_record(&rec).await?;
        }
        tracing::info!(id = %&id[..12], "restarting by policy");
        self.start(id).await.map(|_| ())
    }

    /// At berthd's start, after recovery: containers whose policy wants
    /// them up and that do not run are started (host reboot, lost state).
    pub(crate) fn restart_on_boot(self: &Arc<Self>) -> Result<()> {
        for rec in self.all_records()? {
            let st = &rec.state;
            if st.status == Status::Exited
                && !rec.auto_remove
                && rec.restart.should_restart(st.exit_code, st.restart_count, st.manually_stopped, true)
            {
                self.spawn_restart(rec.id.clone(), st.finished_at, Duration::ZERO, true);
            }
        }
        Ok(())
    }

    /// A user's `stop` or `kill`: no policy starts the container again
    /// until a user (or berthd's own start, for `always`) does.
    pub(crate) async fn mark_manually_stopped(self: &Arc<Self>, id: &str) -> Result<()> {
        let lock = self.lock_for(id);
        let _held = lock.lock().await;
        let Some(mut rec) = self.get_record(id)? else { return Ok(()) };
        if rec.restart.is_none() || rec.state.manually_stopped {
            return Ok(());
        }
        rec.state.manually_stopped = true;
        self.put_record(&rec).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_docker_checks_them() {
        assert_eq!(RestartPolicy::parse("", 0).unwrap(), RestartPolicy::default());
        assert_eq!(RestartPolicy::parse("on-failure", 3).unwrap().max_retries, 3);
        assert_eq!(RestartPolicy::parse("always", 0).unwrap().kind, RestartKind::Always);
        let e =
            |n: &str, m: i32| super::super::ContainerError::from(RestartPolicy::parse(n, m).unwrap_err()).to_string();
        assert_eq!(e("sometimes", 0), "invalid restart policy 'sometimes'");
        assert_eq!(e("always", 2), "invalid restart policy: maximum retry count can only be used with 'on-failure'");
        assert_eq!(e("on-failure", -1), "invalid restart policy: maximum retry count cannot be negative");
    }

    #[test]
    fn the_rules() {
        let p = |n: &str, m: i32| RestartPolicy::parse(n, m).unwrap();
        assert!(!p("no", 0).should_restart(1, 0, false, true));
        assert!(p("on-failure", 3).should_restart(1, 2, false, false));
        assert!(!p("on-failure", 3).should_restart(1, 3, false, false));
        assert!(!p("on-failure", 0).should_restart(0, 0, false, false));
        assert!(p("on-failure", 0).should_restart(2, 1000, false, false));
        assert!(p("always", 0).should_restart(0, 0, false, false));
        assert!(!p("always", 0).should_restart(0, 0, true, false));
        assert!(p("always", 0).should_restart(0, 0, true, true));
        assert!(!p("unless-stopped", 0).should_restart(0, 0, true, true));
        assert!(p("unless-stopped", 0).should_restart(137, 9, false, true));
    }

    #[test]
    fn the_back_off_doubles_to_a_minute_and_resets_after_a_long_run() {
        let short = Duration::from_secs(1);
        assert_eq!(next_delay(0, short), Duration::from_millis(100));
        assert_eq!(next_delay(100, short), Duration::from_millis(200));
        assert_eq!(next_delay(40_000, short), Duration::from_secs(60));
        assert_eq!(next_delay(60_000, short), Duration::from_secs(60));
        assert_eq!(next_delay(6_400, Duration::from_secs(10)), Duration::from_millis(100));
    }
}
