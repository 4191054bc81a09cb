//! Docker's `inspect` documents, rendered from `berth.v1`'s typed
//! messages (`ContainerInspect`, `ImageInspect`). berthd sends the typed
//! message and, for clients from before it, the document rendered here;
//! berthctl renders the same document from the typed message. One
//! renderer, so the two cannot drift.
use berth_proto::v1 as pb;
use serde_json::{json, Map, Value};

/// Docker's zero time, for what has not happened (or is not known).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 with nanoseconds, or Docker's zero time for 0.
pub fn rfc3339(nanos: i64) -> String {
    if nanos == 0 {
        return ZERO_TIME.into();
    }
    let mut out = Vec::new();
    crate::log::format_time(&mut out, nanos);
    String::from_utf8(out).unwrap_or_default()
}

/// The container's state: the enum, or the text a berthd from before the
/// enum sends.
pub fn container_state(c: &pb::Container) -> pb::ContainerState {
    use pb::ContainerState as S;
    match S::try_from(c.state) {
        Ok(s) if s != S::Unspecified => s,
        _ => match c.status.as_str() {
            "created" => S::Created,
            "running" => S::Running,
            "paused" => S::Paused,
            "exited" => S::Exited,
            _ => S::Unspecified,
        },
    }
}

/// The state as Docker's documents name it.
fn state_text(c: &pb::Container) -> &str {
    match container_state(c) {
        pb::ContainerState::Created => "created",
        pb::ContainerState::Running => "running",
        pb::ContainerState::Paused => "paused",
        pb::ContainerState::Exited => "exited",
        pb::ContainerState::Unspecified => c.status.as_str(),
    }
}

/// `inspect CONTAINER`, shaped like Docker's so scripts port over.
pub fn container_document(i: &pb::ContainerInspect) -> Value {
    let default = pb::Container::default();
    let c = i.container.as_ref().unwrap_or(&default);
    let status = state_text(c);
    let labels: Map<String, Value> = c.labels.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
    let mut doc = json!({
        "Id": c.id,
        "Name": format!("/{}", c.name),
        "Created": rfc3339(c.created),
        "Path": i.args.first().cloned().unwrap_or_default(),
        "Args": i.args.iter().skip(1).collect::<Vec<_>>(),
        "Image": c.image_id,
        "RestartCount": i.restart_count,
        "State": {
            "Status": status,
            "Running": status == "running" || status == "paused",
            "Paused": status == "paused",
            "OOMKilled": c.oom_killed,
            "Pid": c.pid,
            "ExitCode": c.exit_code,
            "Error": c.error,
            "StartedAt": rfc3339(c.started_at),
            "FinishedAt": rfc3339(c.finished_at),
        },
        "Config": {
            "Hostname": c.hostname,
            "User": i.user,
            "Env": i.env,
            "Cmd": i.args,
            "Image": c.image,
            "WorkingDir": i.working_dir,
            "Labels": labels,
            "StopSignal": i.stop_signal,
            "StopTimeout": i.stop_timeout,
        },
        "HostConfig": host_config(c, i),
    });
    // Docker has the two only for a container with a check.
    if let Some(h) = &i.health {
        let log: Vec<Value> = h
            .log
            .iter()
            .map(|r| json!({"Start": rfc3339(r.start), "End": rfc3339(r.end), "ExitCode": r.exit_code, "Output": r.output}))
            .collect();
        doc["State"]["Health"] = json!({"Status": h.status, "FailingStreak": h.failing_streak, "Log": log});
    }
    if let Some(h) = &i.healthcheck {
        doc["Config"]["Healthcheck"] = json!({
            "Test": h.test,
            "Interval": h.interval_ns,
            "Timeout": h.timeout_ns,
            "StartPeriod": h.start_period_ns,
            "Retries": h.retries,
        });
    }
    doc
}

/// Docker's `HostConfig`: the fields berth has, zero where not set (as
/// Docker shows them), `/dev/shm`'s size as mounted.
fn host_config(c: &pb::Container, i: &pb::ContainerInspect) -> Value {
    let log: Map<String, Value> = i.log_config.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
    let default = pb::Resources::default();
    let r = i.resources.as_ref().unwrap_or(&default);
    let rates = |v: &[pb::DeviceRate]| v.iter().map(|d| json!({"Path": d.path, "Rate": d.rate})).collect::<Vec<_>>();
    let ulimits: Vec<Value> =
        r.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect();
    json!({
        "AutoRemove": c.auto_remove,
        "GroupAdd": i.group_add.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        "Init": i.init,
        "RestartPolicy": {
            "Name": i.restart_policy.as_ref().map_or("no", |p| if p.name.is_empty() { "no" } else { p.name.as_str() }),
            "MaximumRetryCount": i.restart_policy.as_ref().map_or(0, |p| p.maximum_retry_count),
        },
        "LogConfig": { "Type": "berth", "Config": log },
        "Memory": r.memory,
        "MemorySwap": r.memory_swap,
        "MemoryReservation": r.memory_reservation,
        "OomKillDisable": r.oom_kill_disable,
        "NanoCpus": r.nano_cpus,
        "CpuShares": r.cpu_shares,
        "CpuPeriod": r.cpu_period,
        "CpuQuota": r.cpu_quota,
        "CpusetCpus": r.cpuset_cpus,
        "CpusetMems": r.cpuset_mems,
        "PidsLimit": if r.pids_limit > 0 { json!(r.pids_limit) } else { Value::Null },
        "Ulimits": ulimits,
        "OomScoreAdj": r.oom_score_adj,
        "BlkioWeight": r.blkio_weight,
        "BlkioDeviceReadBps": rates(&r.device_read_bps),
        "BlkioDeviceWriteBps": rates(&r.device_write_bps),
        "ShmSize": if r.shm_size > 0 { r.shm_size } else { crate::defaults::DEFAULT_SHM_SIZE },
    })
}

fn list(l: &Option<pb::StringList>) -> Value {
    l.as_ref().map_or(Value::Null, |l| json!(l.values))
}

/// `image inspect IMAGE`, with the fields berth has, named as Docker's.
pub fn image_document(i: &pb::ImageInspect) -> Value {
    let mut config = json!({
        "Env": list(&i.env),
        "Cmd": list(&i.cmd),
        "Entrypoint": list(&i.entrypoint),
        "WorkingDir": i.working_dir,
        "User": i.user,
        "Labels": if i.has_labels { json!(i.labels) } else { Value::Null },
        "ExposedPorts": i.exposed_ports.as_ref().map_or(Value::Null, |p| {
            Value::Object(p.values.iter().map(|k| (k.clone(), json!({}))).collect())
        }),
    });
    if let Some(s) = &i.stop_signal {
        config["StopSignal"] = json!(s);
    }
    let mut doc = json!({
        "Id": i.id,
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Created": i.created,
        "Size": i.size,
        "Architecture": i.architecture,
        "Os": i.os,
        "Config": config,
        "RootFS": { "Type": "layers", "Layers": i.layers },
    });
    if let Some(v) = &i.variant {
        doc["Variant"] = json!(v);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_document_says_what_the_message_says() {
        let i = pb::ContainerInspect {
            container: Some(pb::Container {
                id: "ab".repeat(32),
                name: "web".into(),
                image: "busybox".into(),
                image_id: "sha256:00".into(),
                created: 1_700_000_000_123_456_789,
                state: pb::ContainerState::Paused as i32,
                exit_code: 0,
                pid: 42,
                labels: [("a".to_owned(), "b".to_owned())].into(),
                ..Default::default()
            }),
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/bin".into()],
            log_config: [("max-file".to_owned(), "3".to_owned())].into(),
            ..Default::default()
        };
        let d = container_document(&i);
        assert_eq!(d["Name"], "/web");
        assert_eq!(d["Created"], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(d["Path"], "sh");
        assert_eq!(d["Args"], json!(["-c", "true"]));
        assert_eq!(d["State"]["Status"], "paused");
        assert_eq!(d["State"]["Running"], true);
        assert_eq!(d["State"]["Paused"], true);
        assert_eq!(d["State"]["Pid"], 42);
        assert_eq!(d["State"]["StartedAt"], ZERO_TIME);
        assert_eq!(d["Config"]["Cmd"], json!(["sh", "-c", "true"]));
        assert_eq!(d["Config"]["Labels"], json!({"a": "b"}));
        assert_eq!(d["HostConfig"]["LogConfig"], json!({"Type": "berth", "Config": {"max-file": "3"}}));
        assert_eq!(
            (d["HostConfig"]["Memory"].as_i64(), d["HostConfig"]["ShmSize"].as_i64()),
            (Some(0), Some(64 << 20))
        );
        assert_eq!(d["HostConfig"]["PidsLimit"], Value::Null);
    }

    #[test]
    fn the_host_config_shows_the_limits() {
        let i = pb::ContainerInspect {
            resources: Some(pb::Resources {
                memory: 32 << 20,
                nano_cpus: 500_000_000,
                pids_limit: 20,
                shm_size: 1 << 20,
                ulimits: vec![pb::Ulimit { name: "nofile".into(), soft: 10, hard: 20 }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let h = &container_document(&i)["HostConfig"];
        assert_eq!((h["Memory"].as_i64(), h["NanoCpus"].as_i64()), (Some(32 << 20), Some(500_000_000)));
        assert_eq!((h["PidsLimit"].as_i64(), h["ShmSize"].as_i64()), (Some(20), Some(1 << 20)));
        assert_eq!(h["Ulimits"], json!([{"Name": "nofile", "Soft": 10, "Hard": 20}]));
    }

    /// The enum says the state; a berthd from before it says it in text.
    #[test]
    fn the_state_is_the_enum_else_the_text() {
        let c = |state: pb::ContainerState, status: &str| pb::Container {
            state: state as i32,
            status: status.into(),
            ..Default::default()
        };
        assert_eq!(container_state(&c(pb::ContainerState::Running, "exited")), pb::ContainerState::Running);
        assert_eq!(container_state(&c(pb::ContainerState::Unspecified, "paused")), pb::ContainerState::Paused);
        assert_eq!(container_state(&c(pb::ContainerState::Unspecified, "odd")), pb::ContainerState::Unspecified);
    }

    /// Absent lists are `null`, absent options are left out, as Docker.
    #[test]
    fn an_image_document_tells_absent_from_empty() {
        let mut i = pb::ImageInspect {
            id: "sha256:11".into(),
            cmd: Some(pb::StringList { values: vec!["sh".into()] }),
            exposed_ports: Some(pb::StringList { values: vec!["80/tcp".into()] }),
            ..Default::default()
        };
        let d = image_document(&i);
        assert_eq!(d["Config"]["Cmd"], json!(["sh"]));
        assert_eq!(d["Config"]["Env"], Value::Null);
        assert_eq!(d["Config"]["Labels"], Value::Null);
        assert_eq!(d["Config"]["ExposedPorts"], json!({"80/tcp": {}}));
        assert!(d.get("Variant").is_none() && d["Config"].get("StopSignal").is_none(), "{d}");
        i.variant = Some("v8".into());
        i.stop_signal = Some("SIGQUIT".into());
        i.has_labels = true;
        let d = image_document(&i);
        assert_eq!((d["Variant"].as_str(), d["Config"]["StopSignal"].as_str()), (Some("v8"), Some("SIGQUIT")));
        assert_eq!(d["Config"]["Labels"], json!({}));
    }
}
