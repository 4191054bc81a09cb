//! Restart policies (`--restart`) as Docker users rely on them: counted
//! retries, `always` after its process is killed and across a berthd
//! kill -9, a user's stop never undone while berthd runs, and `always`
//! versus `unless-stopped` when berthd starts again. Real berthd, real
//! processes.

use std::time::Duration;

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

fn inspect(a: &Agent, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

fn status(a: &Agent, name: &str) -> String {
    inspect(a, name)["State"]["Status"].as_str().unwrap_or_default().to_owned()
}

fn restarts(a: &Agent, name: &str) -> u64 {
    inspect(a, name)["RestartCount"].as_u64().unwrap()
}

fn kill_init(a: &Agent, name: &str) -> u64 {
    let pid = inspect(a, name)["State"]["Pid"].as_u64().unwrap();
    assert!(pid > 0, "{name} has no process");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL).unwrap();
    pid
}

/// Running again with a process other than `old`.
fn wait_back(a: &Agent, name: &str, old: u64) {
    Agent::eventually(&format!("{name} restarted"), Duration::from_secs(20), || {
        let st = inspect(a, name)["State"].clone();
        st["Status"] == "running" && st["Pid"].as_u64() != Some(old) && st["Pid"].as_u64() != Some(0)
    });
}

/// `on-failure:3` restarts a failing command exactly three times (with the
/// back-off of 100, 200, 400 ms), then leaves it exited; a command that
/// succeeds is not restarted; `inspect` shows the policy and the count.
#[test]
fn on_failure_retries_exactly_its_maximum() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "flaky", "--restart", "on-failure:3", IMG, "sh", "-c", "echo ran; exit 2"]);
    Agent::eventually("three restarts", Duration::from_secs(20), || restarts(&a, "flaky") == 3);
    Agent::eventually("flaky exited", Duration::from_secs(20), || status(&a, "flaky") == "exited");
    // A fourth would come after 800 ms.
    std::thread::sleep(Duration::from_secs(2));
    let v = inspect(&a, "flaky");
    assert_eq!((v["RestartCount"].as_u64(), v["State"]["Status"].as_str()), (Some(3), Some("exited")), "{v}");
    assert_eq!(v["State"]["ExitCode"], 2);
    assert_eq!(v["HostConfig"]["RestartPolicy"], serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3}));
    assert_eq!(a.ok(&["logs", "flaky"]).lines().filter(|l| *l == "ran").count(), 4);

    a.ok(&["run", "-d", "--name", "fine", "--restart", "on-failure", IMG, "true"]);
    Agent::eventually("fine exited", Duration::from_secs(10), || status(&a, "fine") == "exited");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(restarts(&a, "fine"), 0);
}

/// `always` comes back when its init is killed, also when that happens
/// while berthd is dead; a user's `stop` is not undone while berthd runs,
/// but `always` comes back at berthd's next start, `unless-stopped` not.
#[test]
fn always_and_unless_stopped() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "svc", "--restart", "always", IMG, "sleep", "1000"]);
    a.ok(&["run", "-d", "--name", "keep", "--restart", "unless-stopped", IMG, "sleep", "1000"]);

    let old = kill_init(&a, "svc");
    wait_back(&a, "svc", old);
    assert_eq!(restarts(&a, "svc"), 1);

    // berthd killed, then the container's process: berthd finds the exit
    // at its start and applies the policy.
    let old = inspect(&a, "svc")["State"]["Pid"].as_u64().unwrap();
    a.kill9();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), nix::sys::signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    a.spawn();
    wait_back(&a, "svc", old);
    assert_eq!(restarts(&a, "svc"), 2);

    // A user's stop holds.
    a.ok(&["stop", "-t", "0", "svc"]);
    a.ok(&["stop", "-t", "0", "keep"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!((status(&a, "svc"), status(&a, "keep")), ("exited".to_owned(), "exited".to_owned()));

    // berthd starts again: `always` is started, `unless-stopped` is not.
    a.restart();
    Agent::eventually("svc started at berthd's start", Duration::from_secs(20), || status(&a, "svc") == "running");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&a, "keep"), "exited");

    // A user's start clears the stop: the policy applies again.
    a.ok(&["start", "keep"]);
    let old = kill_init(&a, "keep");
    wait_back(&a, "keep", old);
}

/// The policy `update --restart` sets applies to the next exit and is
/// kept; `--restart` with `--rm` and unknown policies are refused with
/// Docker's words.
#[test]
fn update_sets_the_policy_and_bad_ones_are_refused() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "plain", IMG, "sleep", "1000"]);
    a.ok(&["update", "--restart", "always", "plain"]);
    a.restart();
    assert_eq!(inspect(&a, "plain")["HostConfig"]["RestartPolicy"]["Name"], "always");
    let old = kill_init(&a, "plain");
    wait_back(&a, "plain", old);

    for (args, text) in [
        (vec!["run", "--rm", "--restart", "always", IMG, "true"], "Conflicting options: --restart and --rm"),
        (vec!["create", "--restart", "sometimes", IMG, "true"], "invalid restart policy 'sometimes'"),
        (
            vec!["create", "--restart", "always:3", IMG, "true"],
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
    ] {
        let r = a.ctl(&args);
        assert_eq!(r.code, 125, "{args:?}: {r:?}");
        assert!(r.stderr.contains(text), "{args:?}: {r:?}");
    }
}
