//! Every conversion between protobuf messages and core types.
use std::time::Duration;

use berth_proto::v1 as pb;

use crate::cgroups::{DeviceRate, Limits};
use crate::containers::{
    CommitOptions, ContainerRecord, CopyToOptions, CreateOptions, ExecOptions, Health, HealthConfig, HealthStatus,
    InvalidError, LogRecord, OutputStream, PathStat, Resources, RestartPolicy, RunEvent, Status, Ulimit,
};
use crate::error::AgentError;
use crate::images::history::HistoryEntry;
use crate::images::inspect::ImageDetails;
use crate::images::ImageRecord;
use crate::registry::auth::Credentials;
use crate::registry::{PullEvent, PullOptions, PushEvent, PushOptions};

pub fn image(rec: &ImageRecord) -> pb::Image {
    pb::Image {
        id: rec.id.clone(),
        names: rec.names.clone(),
        manifest_digest: rec.manifest_digest.clone(),
        created: rec.created,
        size: rec.size,
    }
}

fn credentials(auth: Option<pb::RegistryAuth>) -> Credentials {
    let auth = auth.unwrap_or_default();
    Credentials { username: auth.username, password: auth.password, identity_token: auth.identity_token }
}

pub fn pull_options(r: pb::PullRequest) -> PullOptions {
    PullOptions { reference: r.reference, platform: r.platform, credentials: credentials(r.auth) }
}

pub fn push_options(r: pb::PushRequest) -> PushOptions {
    PushOptions { reference: r.reference, credentials: credentials(r.auth) }
}

pub fn login_request(r: pb::LoginRequest) -> (String, Credentials) {
    (r.registry, credentials(r.auth))
}

pub fn push_progress(ev: PushEvent) -> pb::PushProgress {
    match ev {
        PushEvent::Status(status) => pb::PushProgress { status, ..Default::default() },
        PushEvent::Layer { id, status, current, total } => {
            pb::PushProgress { id, status, current, total, result: None }
        }
        PushEvent::Done { tag, digest, size } => {
            pb::PushProgress { result: Some(pb::PushResult { tag, digest, size }), ..Default::default() }
        }
    }
}

pub fn pull_progress(ev: PullEvent) -> pb::PullProgress {
    match ev {
        PullEvent::Status(status) => pb::PullProgress { status, ..Default::default() },
        PullEvent::Layer { id, status, current, total } => {
            pb::PullProgress { id, status, current, total, result: None }
        }
        PullEvent::Done { digest, image: rec, name, up_to_date } => pb::PullProgress {
            result: Some(pb::PullResult { digest, image: Some(image(&rec)), name, up_to_date }),
            ..Default::default()
        },
    }
}

pub fn container(rec: &ContainerRecord) -> pb::Container {
    pb::Container {
        id: rec.id.clone(),
        name: rec.name.clone(),
        image: rec.image.clone(),
        image_id: rec.image_id.clone(),
        command: rec.process.args.clone(),
        created: rec.created,
        status: rec.state.status.as_str().to_owned(),
        exit_code: rec.state.exit_code,
        started_at: rec.state.started_at,
        finished_at: rec.state.finished_at,
        pid: rec.state.pid,
        hostname: rec.process.hostname.clone(),
        auto_remove: rec.auto_remove,
        labels: rec.labels.clone(),
        error: rec.state.error.clone(),
        oom_killed: rec.state.oom_killed,
        exit_signal: rec
            .state
            .exit_signal
            .and_then(|s| nix::sys::signal::Signal::try_from(s).ok())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        tty: rec.process.tty,
        open_stdin: rec.process.open_stdin,
        state: container_state(rec.state.status) as i32,
        health: rec
            .healthcheck
            .as_ref()
            .map(|_| rec.state.health.as_ref().map_or(HealthStatus::Starting, |h| h.status).as_str().to_owned())
            .unwrap_or_default(),
    }
}

pub fn container_state(s: Status) -> pb::ContainerState {
    match s {
        Status::Created => pb::ContainerState::Created,
        Status::Running => pb::ContainerState::Running,
        Status::Paused => pb::ContainerState::Paused,
        Status::Exited => pb::ContainerState::Exited,
    }
}

pub fn output_stream(s: OutputStream) -> pb::OutputStream {
    match s {
        OutputStream::Stdout => pb::OutputStream::Stdout,
        OutputStream::Stderr => pb::OutputStream::Stderr,
    }
}

/// A kill's signal: the enum when set, else the text (name or number).
pub fn kill_signal(r: &pb::KillRequest) -> String {
    match pb::Signal::try_from(r.sig) {
        Ok(pb::Signal::Unspecified) | Err(_) => r.signal.clone(),
        Ok(s) => (s as i32).to_string(),
    }
}

pub fn create_options(r: pb::CreateContainerRequest) -> Result<CreateOptions, AgentError> {
    Ok(CreateOptions {
        restart: restart_policy(r.restart_policy.unwrap_or_default())?,
        resources: resources(r.resources.unwrap_or_default()),
        image: r.image,
        name: r.name,
        cmd: r.cmd,
        entrypoint: r.entrypoint,
        env: r.env,
        workdir: r.workdir,
        user: r.user,
        hostname: r.hostname,
        auto_remove: r.auto_remove,
        labels: r.labels.into_iter().collect(),
        log_opts: r.log_opts.into_iter().collect(),
        tty: r.tty,
        open_stdin: r.open_stdin,
        console: (clamp_u16(r.console_width), clamp_u16(r.console_height)),
        healthcheck: r.healthcheck.map(health_config),
        stop_signal: r.stop_signal,
        stop_timeout: r.stop_timeout,
        group_add: r.group_add,
        init: r.init,
    })
}

pub fn health_config(h: pb::HealthConfig) -> HealthConfig {
    HealthConfig {
        test: h.test,
        interval_ns: h.interval_ns,
        timeout_ns: h.timeout_ns,
        start_period_ns: h.start_period_ns,
        retries: h.retries,
    }
}

fn health_config_message(h: &HealthConfig) -> pb::HealthConfig {
    pb::HealthConfig {
        test: h.test.clone(),
        interval_ns: h.interval_ns,
        timeout_ns: h.timeout_ns,
        start_period_ns: h.start_period_ns,
        retries: h.retries,
    }
}

fn health_message(h: &Health) -> pb::Health {
    pb::Health {
        status: h.status.as_str().to_owned(),
        failing_streak: h.failing_streak,
        log: h
            .log
            .iter()
            .map(|r| pb::HealthResult { start: r.start, end: r.end, exit_code: r.exit_code, output: r.output.clone() })
            .collect(),
    }
}

pub fn commit_options(r: pb::CommitRequest) -> CommitOptions {
    CommitOptions {
        container: r.container,
        reference: r.reference,
        message: r.message,
        author: r.author,
        changes: r.changes,
        pause: r.pause,
    }
}

pub fn history_entry(h: HistoryEntry) -> pb::HistoryEntry {
    pb::HistoryEntry {
        id: h.id,
        created: h.created,
        created_by: h.created_by,
        size: h.size,
        comment: h.comment,
        empty_layer: h.empty_layer,
    }
}

pub fn path_stat(s: PathStat) -> pb::PathStat {
    pb::PathStat { name: s.name, size: s.size, mode: s.mode, mtime: s.mtime, link_target: s.link_target }
}

pub fn copy_to_options(first: &pb::CopyToChunk) -> CopyToOptions {
    CopyToOptions { path: first.path.clone(), single: first.single, archive: first.archive }
}

pub fn log_record(r: LogRecord) -> pb::LogRecord {
    let output = match r.stream.as_str() {
        "stdout" => pb::OutputStream::Stdout,
        "stderr" => pb::OutputStream::Stderr,
        _ => pb::OutputStream::Unspecified,
    };
    pb::LogRecord { time: r.time, stream: r.stream, data: r.data, output: output as i32 }
}

pub fn stats_batch(b: crate::containers::StatsBatch) -> pb::StatsBatch {
    let containers = b
        .containers
        .into_iter()
        .map(|c| pb::ContainerStats {
            id: c.id,
            name: c.name,
            running: c.running,
            cpu_percent: c.cpu_percent,
            cpu_usage_ns: c.cpu_ns,
            system_cpu_ns: c.system_cpu_ns,
            online_cpus: c.online_cpus,
            memory_usage: c.memory,
            memory_limit: c.memory_limit,
            memory_percent: c.memory_percent,
            memory_cache: c.memory_cache,
            net_rx_bytes: c.net_rx,
            net_tx_bytes: c.net_tx,
            block_read_bytes: c.block_read,
            block_write_bytes: c.block_write,
            pids: c.pids,
        })
        .collect();
    pb::StatsBatch { read_at: b.read_at, containers }
}

/// One `Run` event; a start failure carries its exit code and the text a
/// failed `Start` carries in its status.
pub fn run_event(e: RunEvent) -> pb::RunEvent {
    use pb::run_event::Kind;
    let kind = match e {
        RunEvent::Started { pid } => Kind::Started(pb::RunStarted { pid }),
        RunEvent::StartFailed(err) => {
            let exit_code = match &err {
                AgentError::Container(crate::containers::ContainerError::StartFailed { code, .. }) => *code,
                _ => 1,
            };
            Kind::StartFailed(pb::StartFailure { exit_code, message: tonic::Status::from(err).message().to_owned() })
        }
        RunEvent::Log(r) => Kind::Log(log_record(r)),
        RunEvent::Exit(ev) => Kind::Exit(pb::RunExit { exit_code: ev.exit_code, error: ev.error }),
    };
    pb::RunEvent { kind: Some(kind) }
}

/// `inspect`'s typed message (Docker's document is rendered from it:
/// `berth_contract::inspect`).
pub fn container_inspect(rec: &ContainerRecord) -> pb::ContainerInspect {
    pb::ContainerInspect {
        container: Some(container(rec)),
        args: rec.process.args.clone(),
        env: rec.process.env.clone(),
        user: rec.process.user.clone(),
        working_dir: rec.process.cwd.clone(),
        stop_signal: rec.process.stop_signal.clone(),
        log_config: crate::containers::log_opts_of(&rec.log),
        resources: Some(resources_message(&rec.resources)),
        restart_policy: Some(pb::RestartPolicy {
            name: rec.restart.name().to_owned(),
            maximum_retry_count: rec.restart.max_retries as i32,
        }),
        restart_count: rec.state.restart_count,
        healthcheck: rec.healthcheck.as_ref().map(health_config_message),
        // A check with no result yet is starting.
        health: rec.healthcheck.as_ref().map(|_| health_message(&rec.state.health.clone().unwrap_or_default())),
        stop_timeout: rec.process.stop_timeout,
        group_add: rec.process.group_add.clone(),
        init: rec.process.init,
    }
}

/// A policy as sent (the default message is `no`).
pub fn restart_policy(p: pb::RestartPolicy) -> Result<RestartPolicy, InvalidError> {
    RestartPolicy::parse(&p.name, p.maximum_retry_count)
}

/// `stop`'s and `restart`'s grace period; negative: the default.
pub fn stop_timeout(r: &pb::StopRequest) -> Option<Duration> {
    (r.timeout >= 0).then(|| Duration::from_secs(r.timeout as u64))
}

pub fn resources(r: pb::Resources) -> Resources {
    Resources {
        limits: Limits {
            memory: r.memory,
            memory_swap: r.memory_swap,
            memory_reservation: r.memory_reservation,
            oom_kill_disable: r.oom_kill_disable,
            nano_cpus: r.nano_cpus,
            cpu_shares: r.cpu_shares,
            cpu_period: r.cpu_period,
            cpu_quota: r.cpu_quota,
            cpuset_cpus: r.cpuset_cpus,
            cpuset_mems: r.cpuset_mems,
            pids_limit: r.pids_limit,
            blkio_weight: u16::try_from(r.blkio_weight).unwrap_or(u16::MAX),
            device_read_bps: r.device_read_bps.into_iter().map(device_rate).collect(),
            device_write_bps: r.device_write_bps.into_iter().map(device_rate).collect(),
        },
        kernel_memory: r.kernel_memory,
        ulimits: r.ulimits.into_iter().map(|u| Ulimit { name: u.name, soft: u.soft, hard: u.hard }).collect(),
        oom_score_adj: r.oom_score_adj,
        shm_size: r.shm_size,
    }
}

fn device_rate(d: pb::DeviceRate) -> DeviceRate {
    DeviceRate { path: d.path, rate: d.rate, ..Default::default() }
}

pub fn resources_message(r: &Resources) -> pb::Resources {
    let l = &r.limits;
    let rates = |v: &[DeviceRate]| v.iter().map(|d| pb::DeviceRate { path: d.path.clone(), rate: d.rate }).collect();
    pb::Resources {
        memory: l.memory,
        memory_swap: l.memory_swap,
        memory_reservation: l.memory_reservation,
        kernel_memory: r.kernel_memory,
        oom_kill_disable: l.oom_kill_disable,
        nano_cpus: l.nano_cpus,
        cpu_shares: l.cpu_shares,
        cpu_period: l.cpu_period,
        cpu_quota: l.cpu_quota,
        cpuset_cpus: l.cpuset_cpus.clone(),
        cpuset_mems: l.cpuset_mems.clone(),
        pids_limit: l.pids_limit,
        ulimits: r.ulimits.iter().map(|u| pb::Ulimit { name: u.name.clone(), soft: u.soft, hard: u.hard }).collect(),
        oom_score_adj: r.oom_score_adj,
        shm_size: r.shm_size,
        blkio_weight: u32::from(l.blkio_weight),
        device_read_bps: rates(&l.device_read_bps),
        device_write_bps: rates(&l.device_write_bps),
    }
}

pub fn image_inspect(d: ImageDetails) -> pb::ImageInspect {
    let list = |v: Option<Vec<String>>| v.map(|values| pb::StringList { values });
    pb::ImageInspect {
        id: d.id,
        repo_tags: d.repo_tags,
        repo_digests: d.repo_digests,
        created: d.created,
        size: d.size,
        architecture: d.architecture,
        variant: d.variant,
        os: d.os,
        env: list(d.env),
        cmd: list(d.cmd),
        entrypoint: list(d.entrypoint),
        working_dir: d.working_dir,
        user: d.user,
        has_labels: d.labels.is_some(),
        labels: d.labels.unwrap_or_default().into_iter().collect(),
        exposed_ports: list(d.exposed_ports),
        stop_signal: d.stop_signal,
        layers: d.layers,
    }
}

fn clamp_u16(v: u32) -> u16 {
    v.min(u32::from(u16::MAX)) as u16
}

pub fn exec_options(r: pb::ExecStart) -> ExecOptions {
    ExecOptions {
        container: r.id,
        cmd: r.cmd,
        env: r.env,
        workdir: r.workdir,
        user: r.user,
        tty: r.tty,
        stdin: r.stdin,
        console: (clamp_u16(r.width), clamp_u16(r.height)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The enums say what the texts say; a kill's enum wins over its text.
    #[test]
    fn enums_agree_with_the_texts() {
        for (s, want) in [
            (Status::Created, pb::ContainerState::Created),
            (Status::Running, pb::ContainerState::Running),
            (Status::Paused, pb::ContainerState::Paused),
            (Status::Exited, pb::ContainerState::Exited),
        ] {
            assert_eq!(container_state(s), want);
            assert_eq!(want.as_str_name().trim_start_matches("CONTAINER_STATE_").to_lowercase(), s.as_str());
        }
        let rec = |stream: &str| LogRecord { time: 1, stream: stream.into(), data: b"x".to_vec() };
        assert_eq!(log_record(rec("stderr")).output, pb::OutputStream::Stderr as i32);
        assert_eq!(log_record(rec("stdout")).output, pb::OutputStream::Stdout as i32);
        assert_eq!(log_record(rec("")).output, pb::OutputStream::Unspecified as i32);
        let kill =
            |signal: &str, sig: pb::Signal| pb::KillRequest { id: "x".into(), signal: signal.into(), sig: sig as i32 };
        assert_eq!(kill_signal(&kill("HUP", pb::Signal::Unspecified)), "HUP");
        assert_eq!(kill_signal(&kill("HUP", pb::Signal::Term)), "15");
        assert_eq!(kill_signal(&pb::KillRequest { id: "x".into(), signal: "9".into(), sig: 77 }), "9");
    }
}
