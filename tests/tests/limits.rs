//! Limits: what one caller may store (labels, command, environment), and
//! what berthd can hold (listings of any length, thousands of running
//! containers). Real berthd, real shims.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_tests::harness::Agent;
use berth_tests::{need_root, IMG};

/// Bytes of labels (keys and values) one container may carry.
const LABELS_LIMIT: usize = 256 * 1024;

/// Runs `f(i)` for every `i` below `n` on `workers` threads.
fn parallel(n: usize, workers: usize, f: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                f(i);
            });
        }
    });
}

/// `-l KEY=VALUE` flags whose keys and values come to exactly `total`
/// bytes, in four labels (one argument may not pass 128 KiB).
fn label_flags(total: usize) -> Vec<String> {
    let each = total / 4;
    (0..4)
        .map(|i| {
            let key = format!("l{i}");
            let len = if i == 3 { total - 3 * each } else { each } - key.len();
            format!("{key}={}", "v".repeat(len))
        })
        .flat_map(|kv| ["-l".to_owned(), kv])
        .collect()
}

/// Oversized labels are refused at create and commit with the limit in
/// the error; labels at the limit on more containers than one message could
/// carry (300 × 256 KiB, past the 64 MiB a client reads) still list, in
/// every format. Before, one user's large labels broke `ps -a` for all.
#[test]
fn oversized_input_is_refused_and_long_listings_work() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);

    let over = label_flags(LABELS_LIMIT + 1);
    let mut args = vec!["create"];
    args.extend(over.iter().map(String::as_str));
    args.extend([IMG, "true"]);
    let r = a.ctl(&args);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("invalid labels: 262145 bytes of keys and values, the limit is 262144 (256 KiB)"),
        "{r:?}"
    );
    args[0] = "run";
    let r = a.ctl(&args);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("the limit is 262144"), "{r:?}");

    let long_key = format!("{}=v", "k".repeat(1025));
    let r = a.ctl(&["run", "--rm", "-l", &long_key, IMG, "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("the key is 1025 bytes, the limit is 1024"), "{r:?}");

    // Eleven variables of 100 KiB: more than 1 MiB for the process.
    let var = |i: usize| format!("V{i:02}={}", "e".repeat(100 * 1024));
    let vars: Vec<String> = (0..11).map(var).collect();
    let mut args = vec!["run", "--rm"];
    for v in &vars {
        args.extend(["-e", v.as_str()]);
    }
    args.extend([IMG, "true"]);
    let r = a.ctl(&args);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("argument list too long"), "{r:?}");
    assert!(r.stderr.contains("the limit is 1048576 (1 MiB)"), "{r:?}");
    assert_eq!(a.ok(&["ps", "-aq"]), "", "nothing refused was created");

    // An image's labels are bounded as a container's.
    a.ok(&["create", "--name", "base", IMG, "true"]);
    let label = |i: usize| format!("LABEL big{i}={}", "b".repeat(100 * 1024));
    let (l0, l1, l2) = (label(0), label(1), label(2));
    let r = a.ctl(&["commit", "-c", &l0, "-c", &l1, "-c", &l2, "base", "big/labels:1"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("invalid labels: ") && r.stderr.contains("the limit is 262144"), "{r:?}");
    assert!(a.ctl(&["inspect", "big/labels:1"]).code != 0, "no image was made");
    a.ok(&["commit", "-c", &l0, "-c", &l1, "base", "big/labels:2"]);
    a.ok(&["rm", "base"]);

    // At the limit, on enough containers to pass any one message.
    let n = 300;
    let at = label_flags(LABELS_LIMIT);
    let t0 = Instant::now();
    parallel(n, 4, |i| {
        let name = format!("c{i:03}");
        let mut args = vec!["create", "--name", name.as_str()];
        args.extend(at.iter().map(String::as_str));
        args.extend([IMG, "true"]);
        a.ok(&args);
    });
    eprintln!("{n} creates: {:?}", t0.elapsed());
    let t0 = Instant::now();
    let table = a.ok(&["ps", "-a"]);
    eprintln!("ps -a: {:?}", t0.elapsed());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), n + 1, "header and {n} rows");
    assert!(lines[0].starts_with("CONTAINER ID"), "{}", lines[0]);
    let mut names: Vec<&str> = lines[1..].iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    names.sort_unstable();
    let want: Vec<String> = (0..n).map(|i| format!("c{i:03}")).collect();
    assert_eq!(names, want);

    let json = a.ok(&["ps", "-a", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).expect("json row")).collect();
    assert_eq!(rows.len(), n);
    for row in &rows {
        let labels = row["Labels"].as_object().expect("labels");
        let bytes: usize = labels.iter().map(|(k, v)| k.len() + v.as_str().unwrap().len()).sum();
        assert_eq!((labels.len(), bytes), (4, LABELS_LIMIT), "{}", row["Names"]);
    }
    assert_eq!(a.ok(&["ps", "-aq"]).lines().count(), n);
    assert_eq!(a.ok(&["ps", "-aq", "--filter", "name=c1"]).lines().count(), 100);
    assert!(a.ok(&["images"]).contains("big/labels"), "images lists");
}

/// The soft RLIMIT_NOFILE berthd was started with.
fn nofile_of(pid: i32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line").to_owned();
    let mut f = line.split_whitespace().skip(3);
    (f.next().unwrap().to_owned(), f.next().unwrap().to_owned())
}

/// 2,000 running containers from a berthd started with a soft limit of
/// 1,024 open files: it raises its own, so the ~1,007th start no longer
/// fails with `Too many open files`; the containers keep the spec's
/// limits; and all of them go away again, shims and cgroups included.
#[test]
fn two_thousand_running_containers() {
    need_root!();
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(hard >= 4096, "the hard limit on open files ({hard}) is too low for this test");
    // berthd inherits the usual soft limit from this process.
    setrlimit(Resource::RLIMIT_NOFILE, 1024, hard).expect("setrlimit");

    let a = Agent::start();
    a.load_fixture(IMG);
    let berthd = Agent::processes_with(&a.socket.display().to_string());
    assert_eq!(berthd.len(), 1, "one berthd: {berthd:?}");
    let (soft, hard_seen) = nofile_of(berthd[0]);
    assert_eq!((soft.as_str(), hard_seen.as_str()), (hard.to_string().as_str(), hard.to_string().as_str()));

    // The container's own limits come from its spec, not from berthd's.
    let own = a.ok(&["run", "--rm", IMG, "grep", "open files", "/proc/self/limits"]);
    let f: Vec<&str> = own.split_whitespace().collect();
    assert_eq!(&f[3..5], ["1024", "1024"], "{own}");

    let n = 2000;
    let t0 = Instant::now();
    let ids: Vec<std::sync::Mutex<String>> = (0..n).map(|_| Default::default()).collect();
    parallel(n, 16, |i| {
        let out = a.ok(&["run", "-d", IMG, "sleep", "100000"]);
        *ids[i].lock().unwrap() = out.trim().to_owned();
    });
    let started = t0.elapsed();
    let running = a.ok(&["ps", "-q"]);
    assert_eq!(running.lines().count(), n, "all running");
    let ids: Vec<String> = ids.into_iter().map(|m| m.into_inner().unwrap()).collect();
    let exec = a.ok(&["exec", &ids[0], "grep", "open files", "/proc/self/limits"]);
    assert_eq!(exec, own, "an exec'd process has the container's limits");

    let t1 = Instant::now();
    let batches: Vec<&[String]> = ids.chunks(50).collect();
    parallel(batches.len(), 4, |b| {
        let mut args = vec!["rm", "-f"];
        args.extend(batches[b].iter().map(String::as_str));
        a.ok(&args);
    });
    let removed = t1.elapsed();
    eprintln!("2,000 containers: started in {started:?}, removed in {removed:?}");

    assert_eq!(a.ok(&["ps", "-aq"]), "", "nothing left");
    // The shims' command lines name their state dirs, as berthd's names
    // the parent.
    let shims = || -> Vec<i32> {
        Agent::processes_with(&a.state.display().to_string()).into_iter().filter(|p| *p != berthd[0]).collect()
    };
    Agent::eventually("every shim gone", Duration::from_secs(30), || shims().is_empty());
    let cgroups: Vec<_> = ids.iter().flat_map(|id| Agent::cgroups_of(id)).collect();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}
