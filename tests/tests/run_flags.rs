//! The smaller flags of `run`/`create`: `--init`, `--stop-signal`,
//! `--stop-timeout`, `--env-file`, `--cidfile`, `--group-add`, `-a`, as a
//! Docker user sees them. Real berthd, real containers.

use std::time::{Duration, Instant};

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

fn config(a: &Agent, name: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(&a.ok(&["inspect", name])).unwrap()[0].clone()
}

/// `--init`: tini is PID 1 and runs the command; a shell that ignores
/// SIGTERM as PID 1 (the kernel drops signals to a namespace's init that
/// has no handler) dies at once under tini, which forwards it.
#[test]
fn init_runs_the_command_under_tini_and_forwards_signals() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let out = a.ok(&["run", "--rm", "--init", IMG, "ps", "-o", "pid,args"]);
    assert!(out.contains("    1 /sbin/docker-init -- ps -o pid,args"), "{out}");
    a.ok(&["run", "-d", "--name", "tini", "--init", IMG, "sh", "-c", "sleep 1000"]);
    let t = Instant::now();
    a.ok(&["stop", "tini"]);
    assert!(t.elapsed() < Duration::from_secs(5), "SIGTERM reached sh through tini: {:?}", t.elapsed());
    let c = config(&a, "tini");
    assert_eq!(c["State"]["ExitCode"], 143, "{}", c["State"]);
    assert_eq!(c["HostConfig"]["Init"], true);
    let r = a.ctl(&["exec", "tini", "true"]);
    assert_ne!(r.code, 0);
    // The init binary is the host's, read-only to the container.
    a.ok(&["run", "-d", "--name", "ro", "--init", IMG, "sleep", "1000"]);
    let r = a.ctl(&["exec", "ro", "sh", "-c", "echo x > /sbin/docker-init"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
}

/// `--stop-signal` is what `stop` sends; `--stop-timeout` how long it
/// waits before SIGKILL when `-t` is not given.
#[test]
fn stop_signal_and_stop_timeout_are_used_by_stop() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    #[rustfmt::skip]
    a.ok(&[
        "run", "-d", "--name", "usr1", "--stop-signal", "SIGUSR1", IMG, "sh", "-c",
        "trap 'echo got-usr1; exit 7' USR1; while :; do sleep 0.1; done",
    ]);
    a.ok(&["stop", "usr1"]);
    let c = config(&a, "usr1");
    assert_eq!(c["State"]["ExitCode"], 7);
    assert_eq!(c["Config"]["StopSignal"], "SIGUSR1");
    assert!(a.ok(&["logs", "usr1"]).contains("got-usr1"));

    // PID 1 without a handler for SIGTERM ignores it: only the SIGKILL
    // after the timeout ends it.
    a.ok(&["run", "-d", "--name", "slow", "--stop-timeout", "1", IMG, "sleep", "1000"]);
    let t = Instant::now();
    a.ok(&["stop", "slow"]);
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "{took:?}");
    let c = config(&a, "slow");
    assert_eq!((c["State"]["ExitCode"].as_i64(), c["Config"]["StopTimeout"].as_i64()), (Some(137), Some(1)));

    let r = a.ctl(&["run", "--stop-signal", "NOPE", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid signal: NOPE"), "{r:?}");
}

/// `--env-file` lines under `-e`; `--cidfile` written once and refused
/// when present; `--group-add` by GID and by the image's group name.
#[test]
fn env_file_cidfile_and_group_add() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let env = a.dir.path().join("env");
    std::fs::write(&env, "A=1\n# a comment\n\n  B=two words\nC=from-file\n").unwrap();
    let env_s = env.to_str().unwrap();
    let out = a.ok(&["run", "--rm", "--env-file", env_s, "-e", "C=from-flag", IMG, "sh", "-c", "echo \"$A|$B|$C\""]);
    assert_eq!(out, "1|two words|from-flag\n");
    std::fs::write(&env, "BAD KEY=1\n").unwrap();
    let r = a.ctl(&["run", "--rm", "--env-file", env_s, IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("poorly formatted environment: variable 'BAD KEY' contains whitespaces"), "{r:?}");

    let cid = a.dir.path().join("cid");
    let cid_s = cid.to_str().unwrap();
    let id = a.ok(&["run", "-d", "--cidfile", cid_s, IMG, "sleep", "1000"]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    let before = a.ok(&["ps", "-aq"]).lines().count();
    let r = a.ctl(&["run", "--cidfile", cid_s, IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("Container ID file found"), "{r:?}");
    assert_eq!(a.ok(&["ps", "-aq"]).lines().count(), before, "nothing created");

    let out = a.ok(&["run", "--rm", "-u", "1000:1000", "--group-add", "2000", "--group-add", "30", IMG, "id", "-G"]);
    let groups: Vec<&str> = out.split_whitespace().collect();
    assert!(groups.contains(&"2000") && groups.contains(&"30"), "{out}");
    let out = a.ok(&["run", "--rm", "--group-add", "extra", IMG, "id", "-G"]);
    assert!(out.split_whitespace().any(|g| g == "2000"), "the image's extra group: {out}");
    let r = a.ctl(&["run", "--rm", "--group-add", "nosuchgroup", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("Unable to find group nosuchgroup"), "{r:?}");
}

/// `-a stdout` shows the container's stdout only; `-a` with `-d` is refused.
#[test]
fn attach_selects_the_streams_shown() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let r = a.ctl(&["run", "--rm", "-a", "stdout", IMG, "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "out\n", ""), "{r:?}");
    let r = a.ctl(&["run", "--rm", "-a", "STDERR", IMG, "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", "err\n"), "{r:?}");
    let r = a.ctl(&["run", "-d", "-a", "stdout", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("Conflicting options: -a and -d"), "{r:?}");
}
