//! The lifecycle verbs around start and stop: `pause`/`unpause` (the cgroup
//! freezer), `restart` and `rename`, as a user of Docker sees them. Real
//! berthd, real cgroups and processes.

use std::time::Duration;

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

/// The last number the container's counter wrote to its log.
fn last_count(a: &Agent, name: &str) -> u64 {
    let out = a.ok(&["logs", name]);
    out.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0)
}

fn state(a: &Agent, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", name])).unwrap();
    v[0]["State"].clone()
}

fn ps_status(a: &Agent, name: &str) -> String {
    let out = a.ok(&["ps", "-a", "--format", "json"]);
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Names"] == name)
        .map(|v| v["Status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// A paused container's processes do not run (its counter stands still,
/// also across a kill -9 and restart of berthd), `ps` and `inspect` say
/// paused, exec and attach are refused with Docker's words, `unpause`
/// lets the counter go on, and a paused container can be stopped.
#[test]
fn a_paused_container_does_not_run_until_unpaused() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    let counter = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done";
    a.ok(&["run", "-d", "--name", "pz", IMG, "sh", "-c", counter]);
    Agent::eventually("the counter runs", Duration::from_secs(10), || last_count(&a, "pz") > 2);

    assert_eq!(a.ok(&["pause", "pz"]).trim(), "pz");
    let frozen = last_count(&a, "pz");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(last_count(&a, "pz"), frozen, "a paused counter moved");
    let st = state(&a, "pz");
    assert_eq!(
        (st["Status"].as_str(), st["Paused"].as_bool(), st["Running"].as_bool()),
        (Some("paused"), Some(true), Some(true))
    );
    assert!(ps_status(&a, "pz").ends_with("(Paused)"), "{}", ps_status(&a, "pz"));

    let exec = a.ctl(&["exec", "pz", "true"]);
    assert_eq!(exec.code, 1, "{exec:?}");
    assert!(exec.stderr.contains("Container pz is paused, unpause the container before exec"), "{exec:?}");
    let attach = a.ctl(&["attach", "pz"]);
    assert_eq!(attach.code, 1, "{attach:?}");
    assert!(attach.stderr.contains("You cannot attach to a paused container, unpause it first"), "{attach:?}");
    let again = a.ctl(&["pause", "pz"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("Container pz is already paused"), "{again:?}");

    // berthd dies and comes back: the container is still paused, and so
    // is its counter.
    a.restart();
    assert_eq!(state(&a, "pz")["Status"], "paused");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(last_count(&a, "pz"), frozen, "the counter moved across a berthd restart");

    assert_eq!(a.ok(&["unpause", "pz"]).trim(), "pz");
    Agent::eventually("the counter goes on", Duration::from_secs(10), || last_count(&a, "pz") > frozen + 2);
    assert_eq!(state(&a, "pz")["Status"], "running");
    let not = a.ctl(&["unpause", "pz"]);
    assert_eq!(not.code, 1);
    assert!(not.stderr.contains("Container pz is not paused"), "{not:?}");
    a.ok(&["exec", "pz", "true"]);

    // Paused again, then stopped: the SIGTERM reaches it once thawed (sh
    // as PID 1 ignores it, so the grace runs out and SIGKILL ends it).
    a.ok(&["pause", "pz"]);
    a.ok(&["stop", "-t", "1", "pz"]);
    let st = state(&a, "pz");
    assert_eq!((st["Status"].as_str(), st["Paused"].as_bool()), (Some("exited"), Some(false)), "{st}");
    assert_eq!(st["ExitCode"], 137);
    let stopped = a.ctl(&["pause", "pz"]);
    assert_eq!(stopped.code, 1);
    assert!(stopped.stderr.contains("Container pz is not running"), "{stopped:?}");

    // And a paused container goes with rm -f.
    a.ok(&["run", "-d", "--name", "pz2", IMG, "sleep", "1000"]);
    let id = a.id_of("pz2");
    a.ok(&["pause", "pz2"]);
    a.ok(&["rm", "-f", "pz2"]);
    assert!(Agent::cgroups_of(&id).is_empty(), "cgroup left: {:?}", Agent::cgroups_of(&id));
}

/// `restart` gives a running container a new process and an exited one a
/// start; `rename` moves the name, with Docker's refusals.
#[test]
fn restart_and_rename() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "rs", IMG, "sleep", "1000"]);
    let before = state(&a, "rs");
    assert_eq!(a.ok(&["restart", "-t", "0", "rs"]).trim(), "rs");
    let after = state(&a, "rs");
    assert_eq!(after["Status"], "running");
    assert_ne!(after["Pid"], before["Pid"]);
    assert!(after["StartedAt"].as_str() > before["StartedAt"].as_str(), "{before} {after}");

    assert_eq!(a.ctl(&["run", "--name", "once", IMG, "sh", "-c", "exit 3"]).code, 3);
    a.ok(&["container", "restart", "once"]);
    Agent::eventually("once ran again", Duration::from_secs(10), || state(&a, "once")["Status"] == "exited");
    assert_eq!(state(&a, "once")["ExitCode"], 3);

    let id = a.id_of("rs");
    let r = a.ctl(&["rename", "rs", "web"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(a.id_of("web"), id);
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "web"])).unwrap();
    assert_eq!(v[0]["Name"], "/web");
    let gone = a.ctl(&["inspect", "rs"]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("No such object: rs"), "{gone:?}");
    // The old name is free again, the new one is taken.
    a.ok(&["create", "--name", "rs", IMG, "true"]);
    let taken = a.ctl(&["rename", "rs", "web"]);
    assert_eq!(taken.code, 1);
    assert!(taken.stderr.contains("The container name \"/web\" is already in use by container"), "{taken:?}");
    let same = a.ctl(&["rename", "web", "web"]);
    assert!(same.stderr.contains("Renaming a container with the same name as its current name"), "{same:?}");
    let bad = a.ctl(&["rename", "web", "no good"]);
    assert!(bad.stderr.contains("Invalid container name (no good)"), "{bad:?}");
    assert_eq!(a.ok(&["exec", "web", "echo", "still here"]).trim(), "still here");
}

/// `top` lists the container's processes (and only them) with ps's
/// columns and options; refused for a container that does not run.
#[test]
fn top_lists_the_containers_processes() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "busy", IMG, "sh", "-c", "sleep 1001 & exec sleep 1002"]);
    let id = a.id_of("busy");
    Agent::eventually("both sleeps run", Duration::from_secs(10), || a.ok(&["top", "busy"]).contains("sleep 1001"));
    let out = a.ok(&["top", "busy"]);
    let lines: Vec<&str> = out.lines().collect();
    let titles: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "{out}");
    assert_eq!(lines.len(), 3, "two processes: {out}");
    let mut pids: Vec<u64> = lines[1..].iter().map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
    pids.sort_unstable();
    let mut want: Vec<u64> = std::fs::read_to_string(Agent::cgroups_of(&id)[0].join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    want.sort_unstable();
    assert_eq!(pids, want, "the cgroup's processes");
    assert!(out.contains("sleep 1001") && out.contains("sleep 1002"), "{out}");
    assert!(!out.contains("berthd"), "no host process: {out}");

    let custom = a.ok(&["top", "busy", "-o", "pid,args"]);
    assert!(custom.starts_with("PID") && custom.contains("sleep 1002"), "{custom}");
    let r = a.ctl(&["top", "busy", "-o", "comm"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("Couldn't find PID field in ps output"), "{r:?}");
    a.ok(&["create", "--name", "idle", IMG, "true"]);
    let r = a.ctl(&["top", "idle"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is not running"), "{r:?}");
}

/// `diff` lists what a container added, changed and deleted, sorted, in
/// Docker's A/C/D lines, running or stopped; nothing for a new one.
#[test]
fn diff_lists_added_changed_and_deleted_paths() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["create", "--name", "fresh", IMG, "true"]);
    assert_eq!(a.ok(&["diff", "fresh"]), "");
    #[rustfmt::skip]
    a.ok(&[
        "run", "--name", "changer", IMG, "sh", "-c",
        "mkdir -p /srv/data && echo 1 > /srv/data/f && echo x >> /etc/passwd && rm /etc/hostname",
    ]);
    let out = a.ok(&["diff", "changer"]);
    assert_eq!(out, "C /etc\nD /etc/hostname\nC /etc/passwd\nA /srv\nA /srv/data\nA /srv/data/f\n");
    let r = a.ctl(&["diff", "nosuch"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("No such container: nosuch"), "{r:?}");
}
