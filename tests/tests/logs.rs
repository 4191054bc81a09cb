//! Container logs end to end: `--log-opt` rotation by the shim, `logs` and
//! `logs -f` across the rotated files, and output that never waits for
//! berthd (a container writes 50 MiB while berthd is down).
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use berth_tests::harness::{Agent, Run};
use berth_tests::{need_root, IMG};

fn inspect(a: &Agent, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

fn container_dir(a: &Agent, name: &str) -> PathBuf {
    a.root.join("containers").join(a.id_of(name))
}

/// `container.log*` in the container's directory: name and size, sorted.
fn log_files(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .filter(|(n, _)| n.starts_with("container.log"))
        .collect();
    out.sort();
    out
}

/// The numbers of `seq` output, asserting every line is one.
fn numbers(out: &str) -> Vec<u64> {
    out.lines().map(|l| l.parse().unwrap_or_else(|_| panic!("not a number: {l:?}"))).collect()
}

/// Asserts `got` is `from..=to`, naming the first difference (the lists
/// are too long to print).
fn assert_seq(got: &[u64], from: u64, to: u64, what: &str) {
    let want: Vec<u64> = (from..=to).collect();
    if got != want {
        let at = got.iter().zip(&want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: {} lines, want {} ({from} to {to}); first difference at index {at}: got {:?}, want {:?}",
            got.len(),
            want.len(),
            got.get(at),
            want.get(at)
        );
    }
}

/// An awk program printing `lines` lines of 1 KiB: an 8-digit number, a
/// space, 1014 `x` and a newline.
fn kib_lines(lines: u32) -> String {
    format!(
        r#"awk 'BEGIN {{ pad = sprintf("%1014s", ""); gsub(/ /, "x", pad); for (i = 1; i <= {lines}; i++) printf "%08d %s\n", i, pad }}'"#
    )
}

fn kib_line(i: u32) -> String {
    format!("{i:08} {}\n", "x".repeat(1014))
}

fn refused(r: &Run, want: &str) {
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains(want), "{want:?} in {r:?}");
}

#[test]
fn log_opts_are_checked_kept_and_shown() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);

    refused(&a.ctl(&["run", "--log-opt", "max-size=0", IMG, "true"]), "invalid max-size '0'");
    refused(&a.ctl(&["run", "--log-opt", "max-size=10q", IMG, "true"]), "invalid max-size '10q'");
    refused(&a.ctl(&["create", "--log-opt", "max-file=0", IMG]), "invalid max-file '0'");
    refused(&a.ctl(&["create", "--log-opt", "max-file=1000", IMG]), "from 1 to 100");
    refused(&a.ctl(&["create", "--log-opt", "compress=true", IMG]), "unknown log opt 'compress'");
    refused(&a.ctl(&["create", "--log-opt", "max-size", IMG]), "invalid --log-opt \"max-size\": want KEY=VALUE");
    assert_eq!(a.ok(&["ps", "-a", "-q"]), "", "a refused create left a container");

    a.ok(&["create", "--name", "plain", IMG]);
    let cfg = &inspect(&a, "plain")["HostConfig"]["LogConfig"]["Config"];
    assert_eq!(cfg, &serde_json::json!({"max-size": "10m", "max-file": "3"}));
    a.ok(&["create", "--name", "set", "--log-opt", "max-size=1.5k", "--log-opt", "max-file=7", IMG]);
    let cfg = &inspect(&a, "set")["HostConfig"]["LogConfig"]["Config"];
    assert_eq!(cfg, &serde_json::json!({"max-size": "1536", "max-file": "7"}));

    let help = a.ok(&["run", "--help"]);
    assert!(help.contains("--log-opt <KEY=VALUE>") && help.contains("default 10m"), "{help}");
}

#[test]
fn rotation_keeps_at_most_max_file_files_and_the_newest_lines() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "--log-opt",
        "max-size=100k",
        "--log-opt",
        "max-file=2",
        IMG,
        "seq",
        "1",
        "30000",
    ]);
    assert_eq!(a.ok(&["wait", "writer"]).trim(), "0");

    // Two files, none above 100 KiB, each made of whole records.
    let dir = container_dir(&a, "writer");
    let files = log_files(&dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["container.log", "container.log.1"], "{files:?}");
    let mut on_disk = 0;
    for (name, size) in &files {
        assert!(*size <= 100 * 1024, "{name} is {size} bytes");
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.ends_with('\n'), "{name} ends mid-record");
        for line in text.lines() {
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            assert!(fields.len() == 4 && fields[1] == "stdout" && fields[2] == "F", "{name}: {line:?}");
        }
        on_disk += text.lines().count();
    }
    // The rotated file is full: the next record did not fit.
    assert!(files[1].1 > 100 * 1024 - 64, "{files:?}");

    // logs: the newest lines, oldest file first, no gap, no repeat.
    let got = numbers(&a.ok(&["logs", "writer"]));
    let first = got[0];
    assert!(first > 1, "nothing was dropped");
    assert_seq(&got, first, 30000, "logs");
    assert_eq!(got.len(), on_disk);
    let oldest = std::fs::read_to_string(dir.join("container.log.1")).unwrap();
    assert!(oldest.lines().next().unwrap().ends_with(&format!(" F {first}")), "logs starts with the rotated file");

    assert_eq!(a.ok(&["logs", "--tail", "3", "writer"]), "29998\n29999\n30000\n");
    let stamped = a.ok(&["logs", "-t", "--tail", "1", "writer"]);
    assert!(stamped.starts_with("20") && stamped.ends_with("Z 30000\n"), "{stamped:?}");
    assert_seq(&numbers(&a.ok(&["logs", "--since", "1h", "writer"])), first, 30000, "logs --since 1h");
    assert_eq!(a.ok(&["logs", "--since", "2100-01-01T00:00:00Z", "writer"]), "");
    // --since the first record of container.log skips the older records of
    // container.log.1 (those from the same read share its time).
    let current = std::fs::read_to_string(dir.join("container.log")).unwrap();
    let first_current = current.lines().next().unwrap();
    let (time, rest) = first_current.split_once(' ').unwrap();
    let n: u64 = rest.rsplit(' ').next().unwrap().parse().unwrap();
    let since = numbers(&a.ok(&["logs", "--since", time, "writer"]));
    assert!(since.len() < got.len() && since[0] <= n, "--since {time}: from {} ({} lines)", since[0], since.len());
    assert_seq(&since, since[0], 30000, "logs --since");

    // A restart appends to the rotated log and keeps the limits.
    a.ok(&["start", "writer"]);
    assert_eq!(a.ok(&["wait", "writer"]).trim(), "0");
    assert_eq!(log_files(&dir).len(), 2);
    assert_eq!(a.ok(&["logs", "--tail", "2", "writer"]), "29999\n30000\n");

    // rm takes the rotated files with it.
    a.ok(&["rm", "writer"]);
    assert!(!dir.exists(), "{dir:?} left behind");
}

#[test]
fn follow_sees_every_line_across_rotations() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&[
        "create",
        "--name",
        "follow",
        "--log-opt",
        "max-size=64k",
        "--log-opt",
        "max-file=100",
        IMG,
        "sh",
        "-c",
        "seq 1 20000; seq 1 500 >&2; seq 20001 40000",
    ]);
    // Following from before the start, as `run` does.
    let follows = a.answered("Containers/Logs");
    let follower =
        a.ctl_cmd(&["logs", "-f", "follow"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("logs -f");
    a.wait_answered("Containers/Logs", follows + 1);
    a.ok(&["start", "follow"]);
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_seq(&numbers(&String::from_utf8_lossy(&out.stdout)), 1, 40000, "logs -f stdout");
    assert_seq(&numbers(&String::from_utf8_lossy(&out.stderr)), 1, 500, "logs -f stderr");
    // It did follow across many rotations.
    let files = log_files(&container_dir(&a, "follow"));
    assert!(files.len() > 10, "{files:?}");

    // run in the foreground reads the same way.
    let r = a.ctl(&["run", "--rm", "--log-opt", "max-size=16k", "--log-opt", "max-file=100", IMG, "seq", "1", "5000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_seq(&numbers(&r.stdout), 1, 5000, "run --rm");
}

#[test]
fn default_limits_bound_a_chatty_container() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    // 36 MiB of output, more than the default 3 files of 10 MiB hold.
    let lines = 36 * 1024;
    a.ok(&["run", "-d", "--name", "chatty", IMG, "sh", "-c", &kib_lines(lines)]);
    assert_eq!(a.ok(&["wait", "chatty"]).trim(), "0");
    let files = log_files(&container_dir(&a, "chatty"));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["container.log", "container.log.1", "container.log.2"], "{files:?}");
    assert!(files.iter().all(|(_, size)| *size <= 10 << 20), "{files:?}");
    let r = a.ctl(&["logs", "--tail", "1", "chatty"]);
    assert_eq!(r.stdout, kib_line(lines));
}

#[test]
fn fifty_mib_written_while_berthd_is_down_are_all_kept() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    let lines = 50 * 1024;
    let script = format!("while [ ! -e /go ]; do usleep 20000; done; {}", kib_lines(lines));
    a.ok(&["run", "-d", "--name", "big", "--log-opt", "max-size=100m", IMG, "sh", "-c", &script]);
    let pid = inspect(&a, "big")["State"]["Pid"].as_u64().unwrap();
    let exit_file = container_dir(&a, "big").join("exit.json");

    // berthd goes away; only then does the container start writing.
    a.kill9();
    std::fs::write(format!("/proc/{pid}/root/go"), "").expect("signal the container");
    // With nobody reading but the shim, the container writes it all and
    // exits: nothing blocks on berthd.
    Agent::eventually("the container's exit while berthd is down", Duration::from_secs(120), || exit_file.exists());
    a.restart();

    let st = &inspect(&a, "big")["State"];
    assert_eq!((st["Status"].as_str(), st["ExitCode"].as_i64()), (Some("exited"), Some(0)), "{st}");
    let out = a.ctl_cmd(&["logs", "big"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), 50 << 20, "every byte");
    let text = String::from_utf8(out.stdout).unwrap();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let want = kib_line(i as u32 + 1);
        assert!(line == want, "line {} is {:?}", i + 1, &line[..line.len().min(40)]);
    }
    assert_eq!(text.lines().count(), lines as usize);
}
