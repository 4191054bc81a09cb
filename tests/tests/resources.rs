//! Resource limits end to end: the flags of `run`, the files of the
//! container's cgroup on the host, what the process sees inside, `inspect`,
//! `update` at once and across restarts, Docker's refusals, and an OOM kill
//! told apart from any other SIGKILL. Real berthd, real cgroups.

use std::time::Duration;

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

/// The first of `files` (a v1 name, then its v2 name) in any of the
/// container's cgroup directories, trimmed.
fn cgroup_file(id: &str, files: &[&str]) -> String {
    let dirs = Agent::cgroups_of(id);
    for f in files {
        for d in &dirs {
            if let Ok(s) = std::fs::read_to_string(d.join(f)) {
                return s.trim().to_owned();
            }
        }
    }
    panic!("none of {files:?} in {dirs:?}");
}

fn memory_limit(id: &str) -> String {
    cgroup_file(id, &["memory.limit_in_bytes", "memory.max"])
}

fn pids_max(id: &str) -> String {
    cgroup_file(id, &["pids.max"])
}

fn cfs(id: &str) -> String {
    if Agent::cgroups_of(id).iter().any(|d| d.join("cpu.max").exists()) {
        return cgroup_file(id, &["cpu.max"]);
    }
    format!("{} {}", cgroup_file(id, &["cpu.cfs_quota_us"]), cgroup_file(id, &["cpu.cfs_period_us"]))
}

fn host_config(a: &Agent, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", name])).unwrap();
    v[0]["HostConfig"].clone()
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Every limit `run` takes lands where it acts: the cgroup's files, the
/// process's rlimits, OOM score and `/dev/shm`; `inspect` shows them in
/// Docker's `HostConfig` fields.
#[test]
fn limits_reach_the_cgroup_and_the_process() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    #[rustfmt::skip]
    let out = a.ok(&[
        "run", "-d", "--name", "lim",
        "-m", "32m", "--memory-reservation", "16m", "--cpus", "0.5", "--cpu-shares", "512",
        "--pids-limit", "20", "--cpuset-cpus", "0", "--ulimit", "nofile=100:200",
        "--oom-score-adj", "300", "--shm-size", "2m",
        IMG, "sleep", "1000",
    ]);
    let id = out.trim().to_owned();
    assert_eq!(memory_limit(&id), (32u64 << 20).to_string());
    assert_eq!(cfs(&id), "50000 100000");
    assert_eq!(pids_max(&id), "20");
    assert_eq!(cgroup_file(&id, &["cpuset.cpus"]), "0");
    assert_eq!(cgroup_file(&id, &["cpu.shares"]), "512");
    assert_eq!(cgroup_file(&id, &["memory.soft_limit_in_bytes", "memory.low"]), (16u64 << 20).to_string());
    // Docker's default swap: as much again as the memory.
    if let Some(d) = Agent::cgroups_of(&id).iter().find(|d| d.join("memory.memsw.limit_in_bytes").exists()) {
        let memsw = std::fs::read_to_string(d.join("memory.memsw.limit_in_bytes")).unwrap();
        assert_eq!(memsw.trim(), (64u64 << 20).to_string());
    }

    let inside = a.ok(&["exec", "lim", "sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/1/oom_score_adj; df -k /dev/shm"]);
    let lines: Vec<&str> = inside.lines().collect();
    assert_eq!(&lines[..3], ["100", "200", "300"], "{inside}");
    assert!(lines[4].split_whitespace().nth(1) == Some("2048"), "/dev/shm of 2 MiB: {inside}");

    let h = host_config(&a, "lim");
    assert_eq!(h["Memory"], 32 << 20);
    assert_eq!(h["MemoryReservation"], 16 << 20);
    assert_eq!(h["NanoCpus"], 500_000_000);
    assert_eq!(h["CpuShares"], 512);
    assert_eq!(h["PidsLimit"], 20);
    assert_eq!(h["CpusetCpus"], "0");
    assert_eq!(h["OomScoreAdj"], 300);
    assert_eq!(h["ShmSize"], 2 << 20);
    assert_eq!(h["Ulimits"], serde_json::json!([{"Name": "nofile", "Soft": 100, "Hard": 200}]));

    // The pids limit holds: the 21st process cannot be made.
    let r = a.ctl(&["exec", "lim", "sh", "-c", "for i in $(seq 30); do sleep 5 & done; wait"]);
    assert!(r.stderr.contains("can't fork") || r.stdout.contains("can't fork"), "{r:?}");
    a.ok(&["rm", "-f", "lim"]);
}

/// `update` changes a running container at once; the values stay across a
/// restart of berthd and are applied again at the next start.
#[test]
fn update_applies_at_once_and_is_kept() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    let id =
        a.ok(&["run", "-d", "--name", "up", "-m", "32m", "--pids-limit", "20", IMG, "sleep", "1000"]).trim().to_owned();
    assert_eq!(memory_limit(&id), (32u64 << 20).to_string());

    assert_eq!(
        a.ok(&["update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "1", "--pids-limit", "40", "up"]),
        "up\n"
    );
    assert_eq!(memory_limit(&id), (64u64 << 20).to_string());
    assert_eq!(pids_max(&id), "40");
    assert_eq!(cfs(&id), "100000 100000");

    // A refused value changes nothing.
    let r = a.ctl(&["update", "--memory", "4m", "up"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Minimum memory limit allowed is 6MB"), "{r:?}");
    assert_eq!(memory_limit(&id), (64u64 << 20).to_string());
    let r = a.ctl(&["update", "up"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("you must provide one or more flags"), "{r:?}");
    let r = a.ctl(&["update", "--memory", "64m", "nosuch"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("No such container: nosuch"), "{r:?}");

    a.restart();
    let h = host_config(&a, "up");
    assert_eq!((h["Memory"].as_i64(), h["MemorySwap"].as_i64()), (Some(64 << 20), Some(128 << 20)));
    assert_eq!((h["NanoCpus"].as_i64(), h["PidsLimit"].as_i64()), (Some(1_000_000_000), Some(40)));

    a.ok(&["stop", "-t", "1", "up"]);
    a.ok(&["start", "up"]);
    assert_eq!(memory_limit(&id), (64u64 << 20).to_string());
    assert_eq!(pids_max(&id), "40");
    a.ok(&["rm", "-f", "up"]);
}

/// Values Docker refuses are refused with Docker's words and exit 125, and
/// leave no container behind.
#[test]
fn refused_limits_say_why() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let n = cpus();
    let too_many = (n + 1).to_string();
    let range = format!("Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available");
    let not_a_device = "invalid device /dev/null: not a block device".to_owned();
    for (flags, want) in [
        (vec!["-m", "4m"], "Minimum memory limit allowed is 6MB".to_owned()),
        (vec!["--memory-swap", "64m"], "You should always set the Memory limit when using Memoryswap limit".into()),
        (
            vec!["-m", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit".into(),
        ),
        (vec!["--cpus", too_many.as_str()], range),
        (vec!["--kernel-memory", "64m"], "Kernel memory limit is not supported".into()),
        (vec!["--cpuset-cpus", "0-63"], "Requested CPUs are not available - requested 0-63".into()),
        (vec!["--oom-score-adj", "1001"], "range for oom score adj is [-1000, 1000]".into()),
        (vec!["--ulimit", "bogus=1"], "invalid ulimit type: bogus".into()),
        (vec!["--blkio-weight", "5"], "Range of blkio weight is from 10 to 1000".into()),
        (vec!["--device-read-bps", "/dev/null:1mb"], not_a_device),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(&flags);
        args.extend([IMG, "true"]);
        let r = a.ctl(&args);
        assert_eq!(r.code, 125, "{flags:?}: {r:?}");
        assert!(r.stderr.contains(&want), "{flags:?}: want {want:?} in {r:?}");
    }
    // A size berthctl cannot read is a flag error.
    let r = a.ctl(&["run", "-m", "lots", IMG, "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("invalid size: 'lots'"), "{r:?}");
    assert_eq!(a.ok(&["ps", "-aq"]), "");
}

/// A process past its memory limit is killed by the kernel's OOM killer:
/// exit 137, `OOMKilled: true`, and no cgroup left. A plain SIGKILL is not
/// an OOM kill.
#[test]
fn an_oom_kill_is_told_apart() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    // `tail` keeps what it reads until a newline, which /dev/zero never
    // sends; no swap, so the limit is reached.
    let r = a.ctl(&["run", "--name", "oom", "-m", "8m", "--memory-swap", "8m", IMG, "tail", "/dev/zero"]);
    assert_eq!(r.code, 137, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "oom"])).unwrap();
    assert_eq!(v[0]["State"]["OOMKilled"], true, "{v}");
    assert_eq!(v[0]["State"]["ExitCode"], 137);
    assert!(a.ok(&["ps", "-a"]).contains("Exited (137)"));
    let id = v[0]["Id"].as_str().unwrap().to_owned();
    assert!(Agent::cgroups_of(&id).is_empty(), "{:?}", Agent::cgroups_of(&id));

    a.ok(&["run", "-d", "--name", "killed", "-m", "64m", IMG, "sleep", "1000"]);
    a.ok(&["kill", "killed"]);
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "killed"])).unwrap();
    assert_eq!((v[0]["State"]["OOMKilled"].as_bool(), v[0]["State"]["ExitCode"].as_i64()), (Some(false), Some(137)));
}

/// `--pids-limit 20` stops a fork loop at 20 tasks: the 21st fork fails
/// inside the container (busybox's shell dies of it, its parent goes on),
/// the kernel counts the refusal, and the container's tasks stay at 20.
#[test]
fn pids_limit_stops_a_fork_loop() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    #[rustfmt::skip]
    let id = a.ok(&[
        "run", "-d", "--name", "forks", "--pids-limit", "20", IMG, "sh", "-c",
        "sh -c 'i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); done'; echo looped; sleep 1000",
    ]).trim().to_owned();
    Agent::eventually("the loop ended", Duration::from_secs(20), || a.ok(&["logs", "forks"]).contains("looped"));
    let logs = a.ctl(&["logs", "forks"]);
    assert!(logs.stderr.contains("can't fork"), "{logs:?}");
    let refused = cgroup_file(&id, &["pids.events"]);
    let max: u64 = refused.strip_prefix("max ").and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    assert!(max > 0, "the kernel refused forks at the limit: {refused}");
    // The loop's shell is gone; its 18 sleeps, the first shell (or the
    // sleep it became) remain.
    let procs = cgroup_file(&id, &["cgroup.procs"]).lines().count();
    assert!((18..=20).contains(&procs), "{procs} processes");
    let current: u64 = cgroup_file(&id, &["pids.current"]).parse().unwrap();
    assert!(current <= 20, "{current}");
    let stats: serde_json::Value =
        serde_json::from_str(&a.ok(&["stats", "--no-stream", "--format", "json", "forks"])).unwrap();
    assert_eq!(stats["PIDs"], current.to_string());
}

/// An OOM kill while berthd is down is not lost: the shim writes it into
/// the exit record before berthd (which removes the cgroup) is back, and
/// berthd, started again, reports it.
#[test]
fn an_oom_kill_while_berthd_is_down_is_reported() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    #[rustfmt::skip]
    let id = a.ok(&[
        "run", "-d", "--name", "late-oom", "-m", "8m", "--memory-swap", "8m", IMG,
        "sh", "-c", "sleep 3; tail /dev/zero",
    ]).trim().to_owned();
    a.kill9();
    // The container goes on without berthd and reaches its limit 3 s after
    // its start.
    let exit = a.root.join("containers").join(&id).join("exit.json");
    assert!(!exit.exists(), "the container ran out of memory before berthd was killed");
    Agent::eventually("the shim wrote the exit", Duration::from_secs(20), || exit.exists());
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&exit).unwrap()).unwrap();
    assert_eq!((record["code"].as_i64(), record["oom_killed"].as_bool()), (Some(137), Some(true)), "{record}");

    a.spawn();
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "late-oom"])).unwrap();
    assert_eq!(v[0]["State"]["OOMKilled"], true, "{v}");
    assert_eq!(v[0]["State"]["ExitCode"], 137);
    assert!(Agent::cgroups_of(&id).is_empty(), "{:?}", Agent::cgroups_of(&id));
}
