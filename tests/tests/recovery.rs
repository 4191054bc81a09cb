//! Containers outlive berthd: kill -9 of the agent loses no container and
//! no exit status; a killed shim is recorded as exited (255) and leaves
//! nothing behind on the host.
use std::time::Duration;

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

fn status(a: &Agent, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", name])).unwrap();
    v[0]["State"].clone()
}

#[test]
fn running_containers_survive_agent_kill9() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        IMG,
        "sh",
        "-c",
        "echo before; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let pid = status(&a, "svc")["Pid"].as_u64().unwrap();

    a.kill9();
    // The container runs on with no agent at all: a window to die in, not
    // a wait for readiness (nothing would signal that it is still alive).
    std::thread::sleep(Duration::from_millis(300));
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "container died with the agent");
    a.restart();

    let st = status(&a, "svc");
    assert_eq!(st["Status"], "running");
    assert_eq!(st["Pid"].as_u64().unwrap(), pid);
    assert!(a.ok(&["ps"]).contains("svc"));
    assert_eq!(a.ok(&["logs", "svc"]), "before\n");

    // logs -f, stop and wait work on the recovered container.
    let follows = a.answered("Containers/Logs");
    let follower = a.ctl_cmd(&["logs", "-f", "svc"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    a.wait_answered("Containers/Logs", follows + 1);
    a.ok(&["stop", "svc"]);
    let out = follower.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "before\nbye\n");
    assert_eq!(a.ok(&["wait", "svc"]).trim(), "0");
    let id = a.id_of("svc");
    assert!(Agent::cgroups_of(&id).is_empty());
    assert!(Agent::processes_with(&id).is_empty(), "shim left running");
}

#[test]
fn exit_while_agent_is_down_keeps_its_code_and_time() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "short", IMG, "sh", "-c", "sleep 0.5; echo done; exit 42"]);
    let id = a.id_of("short");
    a.kill9();
    let before = std::time::SystemTime::now();
    // Let it exit with nobody watching.
    Agent::eventually("exit.json written", Duration::from_secs(10), || {
        a.root.join("containers").join(&id).join("exit.json").exists()
    });
    a.restart();
    let st = status(&a, "short");
    assert_eq!(st["Status"], "exited");
    assert_eq!(st["ExitCode"], 42);
    let finished = chrono_like_secs(st["FinishedAt"].as_str().unwrap());
    let before_secs = before.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((finished - before_secs).abs() <= 10, "FinishedAt {} vs {before_secs}", st["FinishedAt"]);
    assert!(a.ok(&["ps", "-a"]).contains("Exited (42)"));
    assert_eq!(a.ok(&["logs", "short"]), "done\n");
    assert!(Agent::cgroups_of(&id).is_empty());
    assert!(Agent::processes_with(&id).is_empty());
}

/// Seconds of an RFC 3339 UTC time like 2026-11-22T14:03:07.123456789Z.
fn chrono_like_secs(s: &str) -> i64 {
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    // days from civil (proleptic Gregorian)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19)
}

#[test]
fn killed_shim_is_recorded_as_exited_255_and_leaves_nothing() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "orphan", IMG, "sleep", "1000"]);
    let id = a.id_of("orphan");
    let init = status(&a, "orphan")["Pid"].as_u64().unwrap() as i32;
    let shim = a.shim_pid(&id).expect("shim.pid");

    a.kill9();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim), nix::sys::signal::SIGKILL).unwrap();
    Agent::eventually("shim gone", Duration::from_secs(5), || !std::path::Path::new(&format!("/proc/{shim}")).exists());
    a.restart();

    let st = status(&a, "orphan");
    assert_eq!(st["Status"], "exited");
    assert_eq!(st["ExitCode"], 255);
    assert!(a.ok(&["ps", "-a"]).contains("Exited (255)"));
    // Nothing left: no process, no cgroup, no mount, no state dir.
    Agent::eventually("container process gone", Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{init}")).exists()
    });
    assert!(Agent::cgroups_of(&id).is_empty(), "cgroup left");
    assert!(Agent::mounts_under(&a.root).is_empty(), "mount left: {:?}", Agent::mounts_under(&a.root));
    assert!(!a.state.join(&id).exists(), "state dir left");
    a.ok(&["rm", "orphan"]);
}

#[test]
fn sigterm_stops_the_agent_not_the_containers() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "keep", IMG, "sleep", "1000"]);
    let pid = status(&a, "keep")["Pid"].as_u64().unwrap();
    a.terminate();
    assert!(!a.socket.exists(), "socket left after SIGTERM");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    a.restart();
    assert_eq!(status(&a, "keep")["Status"], "running");
    a.ok(&["rm", "-f", "keep"]);
    Agent::eventually("the removed container's process is gone", Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
}
