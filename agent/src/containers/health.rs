//! Health checks, as Docker runs them: a probe (the image's `HEALTHCHECK`
//! or `--health-cmd`) run as an exec every interval while the container
//! runs; exit 0 is a success, anything else (or running past the timeout)
//! a failure. `retries` failures in a row make the container `unhealthy`,
//! a success `healthy`; failures inside the start period do not count. The
//! last five results are kept.
//!
//! The live state is berthd's memory (`Manager::health`), written into the
//! container's record when the status changes (a change is rare; a result
//! a second for a hundred containers would be a hundred durable commits a
//! second). After a berthd restart the kept status goes on and probing
//! resumes.
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ExecOptions, Manager, ProcessEvent, Status};
use crate::error::Result;

/// Docker's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: u32 = 3;
/// Results kept, and bytes of a probe's output kept (Docker's).
pub const KEPT_RESULTS: usize = 5;
pub const MAX_OUTPUT: usize = 4096;

/// A health check as Docker's `Config.Healthcheck` has it: zero durations
/// and retries mean "the image's, else the default".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// `["CMD", arg...]`, `["CMD-SHELL", command]`, `["NONE"]`; empty:
    /// the image's.
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub interval_ns: i64,
    #[serde(default)]
    pub timeout_ns: i64,
    #[serde(default)]
    pub start_period_ns: i64,
    #[serde(default)]
    pub retries: i32,
}

/// The image config's `Healthcheck` (Docker's field names, durations in
/// nanoseconds).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImageHealthcheck {
    #[serde(default)]
    test: Vec<String>,
    #[serde(default)]
    interval: i64,
    #[serde(default)]
    timeout: i64,
    #[serde(default)]
    start_period: i64,
    #[serde(default)]
    retries: i32,
}

impl HealthConfig {
    /// The `config.Healthcheck` of an image config blob, if it has one.
    pub fn from_image_config(blob: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Blob {
            config: Option<Inner>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Inner {
            healthcheck: Option<ImageHealthcheck>,
        }
        let h = serde_json::from_slice::<Blob>(blob).ok()?.config?.healthcheck?;
        Some(Self {
            test: h.test,
            interval_ns: h.interval,
            timeout_ns: h.timeout,
            start_period_ns: h.start_period,
            retries: h.retries,
        })
    }

    /// The caller's check over the image's, field by field as Docker merges
    /// them; `None` when there is no check (none given, or `NONE`).
    pub fn merge(given: Option<&HealthConfig>, image: Option<&HealthConfig>) -> Option<HealthConfig> {
        let mut out = given.cloned().unwrap_or_default();
        if let Some(img) = image {
            if out.test.is_empty() {
                out.test = img.test.clone();
            }
            let pick = |a: &mut i64, b: i64| {
                if *a == 0 {
                    *a = b;
                }
            };
            pick(&mut out.interval_ns, img.interval_ns);
            pick(&mut out.timeout_ns, img.timeout_ns);
            pick(&mut out.start_period_ns, img.start_period_ns);
            if out.retries == 0 {
                out.retries = img.retries;
            }
        }
        out.probe().is_some().then_some(out)
    }

    /// Docker's checks of the given values (zero is "unset").
    pub fn check(&self) -> std::result::Result<(), super::InvalidError> {
        for (field, ns) in
            [("Interval", self.interval_ns), ("Timeout", self.timeout_ns), ("StartPeriod", self.start_period_ns)]
        {
            if ns != 0 && ns < 1_000_000 {
                return Err(super::InvalidError::HealthDuration { field });
            }
        }
        if self.retries < 0 {
            return Err(super::InvalidError::HealthRetries);
        }
        Ok(())
    }

    /// The probe's command line: `CMD` as given, `CMD-SHELL` through
    /// `/bin/sh -c`; `None` for `NONE` or no test.
    pub fn probe(&self) -> Option<Vec<String>> {
        match self.test.split_first()? {
            (kind, rest) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            (kind, [cmd]) if kind == "CMD-SHELL" => Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()]),
            _ => None,
        }
    }

    fn duration(ns: i64, default: Duration) -> Duration {
        if ns > 0 {
            Duration::from_nanos(ns as u64)
        } else {
            default
        }
    }
    pub fn interval(&self) -> Duration {
        Self::duration(self.interval_ns, DEFAULT_INTERVAL)
    }
    pub fn timeout(&self) -> Duration {
        Self::duration(self.timeout_ns, DEFAULT_TIMEOUT)
    }
    pub fn start_period(&self) -> Duration {
        Self::duration(self.start_period_ns, Duration::ZERO)
    }
    pub fn retries(&self) -> u32 {
        if self.retries > 0 {
            self.retries as u32
        } else {
            DEFAULT_RETRIES
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Unix nanoseconds.
    pub start: i64,
    pub end: i64,
    /// The probe's exit code; -1 when it could not run or ran too long.
    pub exit_code: i32,
    /// Its output (stdout and stderr), at most `MAX_OUTPUT` bytes.
    pub output: String,
}

/// A container's health.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    /// The last results, oldest first.
    pub log: Vec<ProbeResult>,
}

impl Health {
    /// Takes a result; `in_start_period`: a failure does not count yet.
    /// Returns whether the status changed.
    pub fn record(&mut self, r: ProbeResult, retries: u32, in_start_period: bool) -> bool {
        let before = self.status;
        if r.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !in_start_period || self.status != HealthStatus::Starting {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(r);
        let extra = self.log.len().saturating_sub(KEPT_RESULTS);
        self.log.drain(..extra);
        before != self.status
    }
}

impl Manager {
    /// The record with its health as it is now: berthd's live one over
    /// the record's last kept change.
    pub fn with_live_health(&self, mut rec: super::ContainerRecord) -> super::ContainerRecord {
        if rec.healthcheck.is_some() {
            let live = self.health.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, h)) = live.get(&rec.id).filter(|(run, _)| *run == rec.state.started_at) {
                rec.state.health = Some(h.clone());
            }
        }
        rec
    }

    /// Starts probing a container that now runs (a start, a restart by its
    /// policy, berthd finding it running at its start). A start resets the
    /// status to `starting`; berthd's own restart keeps it.
    pub(crate) fn start_health(self: &Arc<Self>, rec: &super::ContainerRecord, fresh: bool) {
        let Some(cfg) = rec.healthcheck.clone() else { return };
        let Some(cmd) = cfg.probe() else { return };
        let mut health = rec.state.health.clone().unwrap_or_default();
        if fresh {
            // A new run starts over; the log of earlier runs stays, as
            // Docker keeps it.
            (health.status, health.failing_streak) = (HealthStatus::Starting, 0);
        }
        self.health.lock().unwrap_or_else(|e| e.into_inner()).insert(rec.id.clone(), (rec.state.started_at, health));
        let (m, id, started_at) = (self.clone(), rec.id.clone(), rec.state.started_at);
        tokio::spawn(async move { m.probe_loop(id, started_at, cfg, cmd).await });
    }

    async fn probe_loop(self: Arc<Self>, id: String, started_at: i64, cfg: HealthConfig, cmd: Vec<String>) {
        let (interval, retries) = (cfg.interval(), cfg.retries());
        let start_period_ns = i64::try_from(cfg.start_period().as_nanos()).unwrap_or(i64::MAX);
        loop {
            tokio::time::sleep(interval).await;
            // This run of the container only: a restart starts its own loop.
            let rec = match self.get_record(&id) {
                Ok(Some(r)) if r.state.started_at == started_at && r.state.status.is_live() => r,
                _ => break,
            };
            if rec.state.status == Status::Paused {
                continue;
            }
            let result = self.probe(&id, cmd.clone(), cfg.timeout()).await;
            // From the container's start, so a berthd restart does not
            // begin the period again.
            let in_start = berth_contract::now_nanos().saturating_sub(started_at) < start_period_ns;
            let changed = {
                let mut all = self.health.lock().unwrap_or_else(|e| e.into_inner());
                match all.get_mut(&id).filter(|(run, _)| *run == started_at) {
                    Some((_, h)) => h.record(result, retries, in_start).then(|| h.clone()),
                    None => break,
                }
            };
            if let Some(h) = changed {
                tracing::info!(id = %&id[..12], status = h.status.as_str(), "health");
                if let Err(e) = self.keep_health(&id, started_at, h).await {
                    tracing::warn!(id = %&id[..12], error = %e, "keep health status");
                }
            }
        }
        self.take_health(&id, started_at);
    }

    /// Ends the live health of run `started_at` of a container, returning
    /// it (an exit keeps its last results in the record).
    pub(crate) fn take_health(&self, id: &str, started_at: i64) -> Option<Health> {
        let mut all = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match all.get(id) {
            Some((run, _)) if *run == started_at => all.remove(id).map(|(_, h)| h),
            _ => None,
        }
    }

    /// Writes a changed health into the record (this run's only).
    async fn keep_health(self: &Arc<Self>, id: &str, started_at: i64, h: Health) -> Result<()> {
        let lock = self.lock_for(id);
        let _held = lock.lock().await;
        let Some(mut rec) = self.get_record(id)? else { return Ok(()) };
        if rec.state.started_at != started_at {
            return Ok(());
        }
        rec.state.health = Some(h);
        self.put_record(&rec).await
    }

    /// Runs the probe once in the container.
    async fn probe(self: &Arc<Self>, id: &str, cmd: Vec<String>, timeout: Duration) -> ProbeResult {
        let start = berth_contract::now_nanos();
        let opts = ExecOptions {
            container: id.to_owned(),
            cmd,
            env: Vec::new(),
            workdir: String::new(),
            user: String::new(),
            tty: false,
            stdin: false,
            console: (0, 0),
        };
        let fail = |output: String| ProbeResult { start, end: berth_contract::now_nanos(), exit_code: -1, output };
        let stream = match self.exec(opts).await {
            Ok(s) => s,
            Err(e) => return fail(e.to_string()),
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let sink = super::EventSink { tx, map: |ev: Result<ProcessEvent>| ev };
        let m = self.clone();
        let relay =
            tokio::spawn(async move { m.relay_process(stream, futures::stream::pending(), sink, false, None).await });
        let mut output = Vec::new();
        let mut pid = None;
        let outcome = tokio::time::timeout(timeout, async {
            while let Some(ev) = rx.recv().await {
                match ev {
                    Ok(ProcessEvent::Started { pid: p }) => pid = Some(p),
                    Ok(ProcessEvent::Output { data, .. }) => {
                        let room = MAX_OUTPUT.saturating_sub(output.len());
                        output.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    Ok(ProcessEvent::Exit { code, .. }) => return Ok(code),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Err("the probe's session ended without an exit".to_owned())
        })
        .await;
        let text = String::from_utf8_lossy(&output).into_owned();
        match outcome {
            Ok(Ok(code)) => ProbeResult { start, end: berth_contract::now_nanos(), exit_code: code, output: text },
            Ok(Err(e)) => fail(e),
            Err(_) => {
                if let Some(p) = pid {
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::Signal::SIGKILL);
                }
                relay.abort();
                fail(format!("Health check exceeded timeout ({})", go_duration(timeout)))
            }
        }
    }
}

/// A duration as Go prints one (`30s`, `1.5s`, `500ms`, `1m0s`), for
/// Docker's texts.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        let s = format!("{secs:.3}");
        return format!("{}s", s.trim_end_matches('0').trim_end_matches('.'));
    }
    let (m, s) = (d.as_secs() / 60, d.as_secs() % 60);
    if m < 60 {
        format!("{m}m{s}s")
    } else {
        format!("{}h{}m{s}s", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(code: i32) -> ProbeResult {
        ProbeResult { exit_code: code, ..Default::default() }
    }

    #[test]
    fn the_callers_check_overrides_the_images_field_by_field() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval_ns: 5_000_000_000,
            timeout_ns: 1_000_000_000,
            start_period_ns: 0,
            retries: 5,
        };
        let given = HealthConfig { interval_ns: 1_000_000_000, ..Default::default() };
        let m = HealthConfig::merge(Some(&given), Some(&image)).unwrap();
        assert_eq!(m.test, image.test);
        assert_eq!((m.interval(), m.timeout(), m.retries()), (Duration::from_secs(1), Duration::from_secs(1), 5));
        assert_eq!(m.probe().unwrap(), ["/bin/sh", "-c", "true"]);
        let none = HealthConfig { test: vec!["NONE".into()], ..Default::default() };
        assert_eq!(HealthConfig::merge(Some(&none), Some(&image)), None, "--no-healthcheck");
        assert_eq!(HealthConfig::merge(None, None), None);
        let cmd =
            HealthConfig { test: vec!["CMD".into(), "test".into(), "-e".into(), "/x".into()], ..Default::default() };
        let m = HealthConfig::merge(Some(&cmd), None).unwrap();
        assert_eq!(m.probe().unwrap(), ["test", "-e", "/x"]);
        assert_eq!((m.interval(), m.timeout(), m.retries()), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_RETRIES));
        assert!(m.check().is_ok());
        let fast = HealthConfig { interval_ns: 999_999, ..cmd.clone() };
        assert_eq!(fast.check().unwrap_err().to_string(), "Interval in Healthcheck cannot be less than 1ms");
        let neg = HealthConfig { retries: -1, ..cmd };
        assert_eq!(neg.check().unwrap_err().to_string(), "Retries in Healthcheck cannot be negative");
    }

    #[test]
    fn the_image_configs_healthcheck_is_read() {
        let blob = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],
            "Healthcheck":{"Test":["CMD-SHELL","wget -q localhost"],"Interval":2000000000,"Retries":2}}}"#;
        let h = HealthConfig::from_image_config(blob).unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "wget -q localhost"]);
        assert_eq!((h.interval_ns, h.timeout_ns, h.retries), (2_000_000_000, 0, 2));
        assert_eq!(HealthConfig::from_image_config(br#"{"config":{"Cmd":["sh"]}}"#), None);
    }

    #[test]
    fn retries_failures_in_a_row_make_it_unhealthy_and_a_success_healthy() {
        let mut h = Health::default();
        assert!(!h.record(res(1), 3, false));
        assert!(!h.record(res(1), 3, false));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 2));
        assert!(h.record(res(1), 3, false));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 3));
        assert!(h.record(res(0), 3, false));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..10 {
            h.record(res(0), 3, false);
        }
        assert_eq!(h.log.len(), KEPT_RESULTS);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_a_success() {
        let mut h = Health::default();
        for _ in 0..5 {
            h.record(res(1), 1, true);
        }
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        h.record(res(0), 1, true);
        assert_eq!(h.status, HealthStatus::Healthy);
        // Once healthy, a failure counts even in the start period.
        assert!(h.record(res(1), 1, true));
        assert_eq!(h.status, HealthStatus::Unhealthy);
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    }
}
