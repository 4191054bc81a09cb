//! Health checks end to end: `--health-*` and the image's `HEALTHCHECK`
//! probed as execs by berthd, `ps`'s `(health: starting)` / `(healthy)` /
//! `(unhealthy)`, `inspect`'s `State.Health` with the last five results,
//! timeouts, `--no-healthcheck`, and the status across a berthd kill -9.
//! Real berthd, real containers.

use std::time::{Duration, Instant};

use berth_tests::fixtures::{self, ImageSpec};
use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

fn health(a: &Agent, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", name])).unwrap();
    v[0]["State"]["Health"].clone()
}

fn ps_status(a: &Agent, name: &str) -> String {
    let out = a.ok(&["ps", "-a", "--format", "json"]);
    let row = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Names"] == name)
        .unwrap_or_else(|| panic!("{name} not in {out}"));
    row["Status"].as_str().unwrap().to_owned()
}

fn wait_status(a: &Agent, name: &str, want: &str, within: Duration) -> Duration {
    let t = Instant::now();
    Agent::eventually(&format!("{name} {want}"), within, || health(a, name)["Status"] == want);
    t.elapsed()
}

/// Healthy while the probe passes; a probe that starts failing makes the
/// container unhealthy within retries x interval; fixed, healthy again.
#[test]
fn a_failing_check_turns_the_container_unhealthy_within_retries_times_interval() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    #[rustfmt::skip]
    a.ok(&[
        "run", "-d", "--name", "web", "--health-cmd", "echo probing; test -e /tmp/ok",
        "--health-interval", "300ms", "--health-retries", "2", IMG,
        "sh", "-c", "touch /tmp/ok; sleep 1000",
    ]);
    assert!(ps_status(&a, "web").ends_with("(health: starting)"), "{}", ps_status(&a, "web"));
    wait_status(&a, "web", "healthy", Duration::from_secs(10));
    assert!(ps_status(&a, "web").ends_with("(healthy)"), "{}", ps_status(&a, "web"));
    let h = health(&a, "web");
    assert_eq!(h["FailingStreak"], 0);
    assert_eq!(h["Log"][0]["ExitCode"], 0);
    assert_eq!(h["Log"][0]["Output"], "probing\n");

    a.ok(&["exec", "web", "rm", "/tmp/ok"]);
    let took = wait_status(&a, "web", "unhealthy", Duration::from_secs(10));
    // Two failures 300 ms apart, plus the probes' own time and the poll.
    assert!(took < Duration::from_secs(3), "unhealthy after {took:?}");
    assert!(ps_status(&a, "web").ends_with("(unhealthy)"), "{}", ps_status(&a, "web"));
    let h = health(&a, "web");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 1, "{h}");

    a.ok(&["exec", "web", "touch", "/tmp/ok"]);
    wait_status(&a, "web", "healthy", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let log = health(&a, "web")["Log"].as_array().unwrap().len();
    assert_eq!(log, 5, "the last five results are kept");

    // A container without a check has no Health, and ps shows none.
    a.ok(&["run", "-d", "--name", "plain", IMG, "sleep", "1000"]);
    assert!(health(&a, "plain").is_null());
    assert!(!ps_status(&a, "plain").contains("health"), "{}", ps_status(&a, "plain"));
}

/// The image's HEALTHCHECK runs without flags; a flag overrides one field;
/// `--no-healthcheck` turns it off. A probe past its timeout fails with
/// Docker's text.
#[test]
fn the_images_check_runs_and_flags_override_or_disable_it() {
    need_root!();
    let a = Agent::start();
    let mut spec = ImageSpec::new("berth-test/checked:1");
    spec.healthcheck = Some(serde_json::json!({
        "Test": ["CMD", "test", "-e", "/etc/passwd"],
        "Interval": 200_000_000,
        "Retries": 1,
    }));
    let path = a.dir.path().join("checked.tar");
    fixtures::oci_layout_tar(&path, &spec).unwrap();
    a.ok(&["load", "-i", path.to_str().unwrap()]);

    a.ok(&["run", "-d", "--name", "img", "berth-test/checked:1", "sleep", "1000"]);
    wait_status(&a, "img", "healthy", Duration::from_secs(10));
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "img"])).unwrap();
    assert_eq!(v[0]["Config"]["Healthcheck"]["Test"], serde_json::json!(["CMD", "test", "-e", "/etc/passwd"]));

    // One field given: the image's test stays, the timeout is ours.
    #[rustfmt::skip]
    a.ok(&[
        "run", "-d", "--name", "slow", "--health-cmd", "sleep 5", "--health-timeout", "200ms",
        "berth-test/checked:1", "sleep", "1000",
    ]);
    wait_status(&a, "slow", "unhealthy", Duration::from_secs(10));
    let h = health(&a, "slow");
    assert_eq!(h["Log"][0]["ExitCode"], -1, "{h}");
    assert_eq!(h["Log"][0]["Output"], "Health check exceeded timeout (200ms)", "{h}");
    let sleeps = a.ok(&["exec", "slow", "sh", "-c", "ps -o args | grep -c '^sleep 5' || true"]);
    assert_eq!(sleeps.trim(), "0", "a timed-out probe is killed");

    a.ok(&["run", "-d", "--name", "off", "--no-healthcheck", "berth-test/checked:1", "sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(600));
    assert!(health(&a, "off").is_null(), "{}", health(&a, "off"));
    assert!(!ps_status(&a, "off").contains("health"));

    let r = a.ctl(&["run", "--no-healthcheck", "--health-retries", "2", IMG, "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--no-healthcheck conflicts with --health-* options"), "{r:?}");
}

/// berthd killed and started again: the kept status is shown and probing
/// goes on (the container turns healthy once its probe passes).
#[test]
fn probing_resumes_after_a_berthd_kill() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    #[rustfmt::skip]
    a.ok(&[
        "run", "-d", "--name", "svc", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms",
        "--health-retries", "1", IMG, "sleep", "1000",
    ]);
    wait_status(&a, "svc", "unhealthy", Duration::from_secs(10));
    a.kill9();
    a.spawn();
    assert_eq!(health(&a, "svc")["Status"], "unhealthy", "the kept status");
    a.ok(&["exec", "svc", "touch", "/tmp/ok"]);
    wait_status(&a, "svc", "healthy", Duration::from_secs(10));
    // Stopped: probing ends, the last status and results stay.
    a.ok(&["stop", "-t", "0", "svc"]);
    let h = health(&a, "svc");
    assert!(!h["Log"].as_array().unwrap().is_empty(), "{h}");
    assert!(ps_status(&a, "svc").starts_with("Exited"), "{}", ps_status(&a, "svc"));
}
