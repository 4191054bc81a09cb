//! `stats` end to end: the numbers agree with the container's cgroup files,
//! CPU % follows what the container burns (and a `--cpus` limit), the
//! stream gives a batch a second and follows containers that start, Docker's
//! table and refusals. Real berthd, real cgroups and processes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

fn cgroup_u64(id: &str, files: &[&str]) -> u64 {
    for f in files {
        for d in Agent::cgroups_of(id) {
            if let Ok(s) = std::fs::read_to_string(d.join(f)) {
                return s.trim().parse().unwrap_or_else(|_| panic!("{f}: {s}"));
            }
        }
    }
    panic!("none of {files:?} for {id}");
}

fn stat_line(id: &str, file: &str, key: &str) -> u64 {
    for d in Agent::cgroups_of(id) {
        if let Ok(s) = std::fs::read_to_string(d.join(file)) {
            if let Some(v) = s.lines().find_map(|l| l.strip_prefix(&format!("{key} "))) {
                return v.trim().parse().unwrap();
            }
        }
    }
    0
}

fn one_json(a: &Agent, name: &str) -> serde_json::Value {
    let out = a.ok(&["stats", "--no-stream", "--format", "json", name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    serde_json::from_str(lines[0]).unwrap()
}

/// Memory, pids and CPU time in `stats` are the cgroup's; the table has
/// Docker's columns and texts.
#[test]
fn numbers_agree_with_the_cgroup_files() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    // 20 MiB in tmpfs is charged to the container and is not file cache.
    let id = a
        .ok(&[
            "run",
            "-d",
            "--name",
            "st",
            "-m",
            "64m",
            "--pids-limit",
            "50",
            IMG,
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/f bs=1M count=20 2>/dev/null; touch /tmp/ready; sleep 1000",
        ])
        .trim()
        .to_owned();
    Agent::eventually("the container wrote its 20 MiB", Duration::from_secs(10), || {
        a.ctl(&["exec", "st", "test", "-e", "/tmp/ready"]).code == 0
    });

    let v = one_json(&a, "st");
    let raw = &v["Raw"];
    assert_eq!(v["Name"], "st");
    assert_eq!(v["ID"], &id[..12]);
    assert_eq!(v["Container"], "st");
    assert_eq!(raw["running"], true);
    assert_eq!(raw["memory_limit"], 64u64 << 20);
    assert!(v["MemUsage"].as_str().unwrap().ends_with(" / 64MiB"), "{v}");
    let usage = cgroup_u64(&id, &["memory.usage_in_bytes", "memory.current"]);
    let cache =
        stat_line(&id, "memory.stat", "total_inactive_file").max(stat_line(&id, "memory.stat", "inactive_file"));
    let want = usage.saturating_sub(cache) as i64;
    let got = raw["memory_usage"].as_u64().unwrap() as i64;
    assert!(got >= 20 << 20, "the 20 MiB are counted: {v}");
    assert!((got - want).abs() < 2 << 20, "stats {got} vs cgroup {want}");
    let pct = raw["memory_percent"].as_f64().unwrap();
    assert!((pct - got as f64 / (64u64 << 20) as f64 * 100.0).abs() < 0.01, "{v}");
    assert_eq!(raw["pids"], cgroup_u64(&id, &["pids.current"]), "{v}");
    assert_eq!(v["PIDs"], raw["pids"].to_string(), "{v}");
    let cpu_after = cgroup_u64(&id, &["cpuacct.usage"]);
    let cpu = raw["cpu_usage_ns"].as_u64().unwrap();
    assert!(cpu > 0 && cpu <= cpu_after, "stats {cpu} ns, cgroup {cpu_after} ns");

    let table = a.ok(&["stats", "--no-stream", "st"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let header: Vec<&str> = lines[0].split("   ").map(str::trim).filter(|s| !s.is_empty()).collect();
    assert_eq!(header, ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]);
    assert!(lines[1].starts_with(&id[..12]) && lines[1].contains(" st ") && lines[1].contains("/ 64MiB"), "{table}");

    // Stopped: only with -a, and with zeros.
    a.ok(&["create", "--name", "idle", IMG, "true"]);
    let running = a.ok(&["stats", "--no-stream", "--format", "json"]);
    assert!(running.contains("\"st\"") && !running.contains("\"idle\""), "{running}");
    let all = a.ok(&["stats", "-a", "--no-stream", "--format", "json"]);
    let idle: serde_json::Value = all
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Name"] == "idle")
        .unwrap();
    assert_eq!((idle["CPUPerc"].as_str(), idle["MemUsage"].as_str()), (Some("0.00%"), Some("0B / 0B")));
    assert_eq!(idle["Raw"]["running"], false);

    let r = a.ctl(&["stats", "--no-stream", "nosuch"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Error response from daemon: No such container: nosuch"), "{r:?}");
}

/// A container spinning on one CPU shows about 100 %; with `--cpus 0.5` its
/// cgroup grants half a CPU, and measured over a second it gets no more.
#[test]
fn cpu_percent_follows_the_load_and_cpus_holds() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "spin", IMG, "sh", "-c", "while :; do :; done"]);
    a.ok(&["run", "-d", "--name", "half", "--cpus", "0.5", IMG, "sh", "-c", "while :; do :; done"]);
    let half_id = a.id_of("half");
    assert_eq!(cgroup_u64(&half_id, &["cpu.cfs_quota_us"]), 50_000);
    assert_eq!(cgroup_u64(&half_id, &["cpu.cfs_period_us"]), 100_000);

    let t0 = (cgroup_u64(&half_id, &["cpuacct.usage"]), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let used = (cgroup_u64(&half_id, &["cpuacct.usage"]) - t0.0) as f64 / t0.1.elapsed().as_nanos() as f64;
    assert!((0.3..=0.6).contains(&used), "--cpus 0.5 used {used:.2} of a CPU");

    // Both run together on two CPUs; the quota caps `half` whatever else runs.
    let spin = one_json(&a, "spin")["Raw"]["cpu_percent"].as_f64().unwrap();
    let half = one_json(&a, "half")["Raw"]["cpu_percent"].as_f64().unwrap();
    assert!(spin > 40.0, "a spinning container shows its CPU: {spin:.1}%");
    assert!(half > 20.0 && half < 65.0, "--cpus 0.5 shows about 50%: {half:.1}%");
}

/// The stream sends a batch per second, and without names it follows the
/// containers that start after it began.
#[test]
fn the_stream_gives_a_batch_a_second_and_follows_new_containers() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "first", IMG, "sleep", "1000"]);
    let mut child = a.ctl_cmd(&["stats", "--format", "json"]).stdout(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, serde_json::Value)>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let _ = tx.send((Instant::now(), serde_json::from_str(&line).unwrap()));
        }
    });
    let begin = Instant::now();
    let mut seen = Vec::new();
    let mut started_second = false;
    while begin.elapsed() < Duration::from_millis(4500) {
        if let Ok(x) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(x);
        }
        if !started_second && begin.elapsed() > Duration::from_millis(1800) {
            a.ok(&["run", "-d", "--name", "second", IMG, "sleep", "1000"]);
            started_second = true;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    let firsts: Vec<&Instant> = seen.iter().filter(|(_, v)| v["Name"] == "first").map(|(t, _)| t).collect();
    assert!((3..=5).contains(&firsts.len()), "a line a second for 4.5 s: {} lines", firsts.len());
    for w in firsts.windows(2) {
        let gap = w[1].duration_since(*w[0]);
        assert!(gap > Duration::from_millis(500) && gap < Duration::from_millis(1800), "{gap:?}");
    }
    assert!(seen.iter().any(|(_, v)| v["Name"] == "second"), "the new container joined the stream");
}
