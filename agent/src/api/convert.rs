//! Every conversion between protobuf messages and core types.
use berth_proto::v1 as pb;

use crate::containers::{
    CommitOptions, ContainerRecord, CopyToOptions, CreateOptions, ExecOptions, LogRecord, OutputStream, PathStat,
    RunEvent, Status,
};
use crate::error::AgentError;
use crate::images::history::HistoryEntry;
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

pub fn create_options(r: pb::CreateContainerRequest) -> CreateOptions {
    CreateOptions {
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

/// One `Run` event; a start failure carries its exit code and the text a
/// failed `Start` carries in its status.
pub fn run_event(e: RunEvent) -> pb::RunEvent {
    use pb::run_event::Kind;
    let kind = match e {
        RunEvent::Started { pid } => Kind::Started(pb::RunStarted { pid }),
        RunEvent::StartFailed(err) => {
            let exit_code = match &err {
                AgentError::StartFailed { code, .. } => *code,
                _ => 1,
            };
            Kind::StartFailed(pb::StartFailure { exit_code, message: tonic::Status::from(err).message().to_owned() })
        }
        RunEvent::Log(r) => Kind::Log(log_record(r)),
        RunEvent::Exit(ev) => Kind::Exit(pb::RunExit { exit_code: ev.exit_code, error: ev.error }),
    };
    pb::RunEvent { kind: Some(kind) }
}

fn rfc3339(nanos: i64) -> String {
    if nanos == 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    let mut out = Vec::new();
    berth_contract::log::format_time(&mut out, nanos);
    String::from_utf8(out).unwrap_or_default()
}

/// `inspect` output, shaped like Docker's so scripts port over.
pub fn container_inspect(rec: &ContainerRecord) -> serde_json::Value {
    let st = &rec.state;
    serde_json::json!({
        "Id": rec.id,
        "Name": format!("/{}", rec.name),
        "Created": rfc3339(rec.created),
        "Path": rec.process.args.first().cloned().unwrap_or_default(),
        "Args": rec.process.args.iter().skip(1).collect::<Vec<_>>(),
        "Image": rec.image_id,
        "State": {
            "Status": st.status.as_str(),
            "Running": st.status.is_live(),
            "Paused": st.status == crate::containers::Status::Paused,
            "OOMKilled": st.oom_killed,
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": rfc3339(st.started_at),
            "FinishedAt": rfc3339(st.finished_at),
        },
        "Config": {
            "Hostname": rec.process.hostname,
            "User": rec.process.user,
            "Env": rec.process.env,
            "Cmd": rec.process.args,
            "Image": rec.image,
            "WorkingDir": rec.process.cwd,
            "Labels": rec.labels,
            "StopSignal": rec.process.stop_signal,
        },
        "HostConfig": {
            "AutoRemove": rec.auto_remove,
            "LogConfig": { "Type": "berth", "Config": crate::containers::log_opts_of(&rec.log) },
        },
    })
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
