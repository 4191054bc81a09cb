//! The driver against fixture trees laid out as cgroupfs lays out v1 and
//! v2 (this host has no usable v2 hierarchy; docs/architecture.md). A plain
//! directory has none of the files the kernel makes in a new cgroup, so
//! each test writes the ones it reads, as the kernel would show them.
use std::fs;
use std::path::{Path, PathBuf};

use super::devices::DEFAULT_ALLOW;
use super::limits::shares_to_weight;
use super::{CgroupDriver, DeviceRate, Limits};

const ID: &str = "0123456789abcdef";

fn v1_tree(controllers: &[&str]) -> (tempfile::TempDir, CgroupDriver) {
    let root = tempfile::tempdir().unwrap();
    for c in controllers {
        fs::create_dir(root.path().join(c)).unwrap();
    }
    let driver = CgroupDriver::at(root.path(), false, "/berth/");
    (root, driver)
}

fn v2_tree(controllers: &str) -> (tempfile::TempDir, CgroupDriver) {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
    let driver = CgroupDriver::at(root.path(), true, "berth");
    (root, driver)
}

fn ctr(root: &Path, controller: &str) -> PathBuf {
    root.join(controller).join("berth").join(ID)
}

#[test]
fn v1_create_makes_a_cgroup_per_controller_confines_devices_and_joins_through_tasks() {
    let (root, driver) = v1_tree(&["memory", "pids", "devices", "freezer"]);
    assert_eq!(driver.version(), "1");
    assert_eq!(driver.path_of(ID), format!("berth/{ID}"));
    let join = driver.create(ID).unwrap();
    for c in ["memory", "pids", "devices", "freezer"] {
        assert!(ctr(root.path(), c).is_dir(), "{c}");
    }
    let mut want: Vec<PathBuf> =
        ["devices", "freezer", "memory", "pids"].iter().map(|c| ctr(root.path(), c).join("tasks")).collect();
    want.sort();
    assert_eq!(join, want);
    let dev = ctr(root.path(), "devices");
    assert_eq!(fs::read_to_string(dev.join("devices.deny")).unwrap(), "a");
    let allow: Vec<String> = fs::read_to_string(dev.join("devices.allow")).unwrap().lines().map(String::from).collect();
    let rules: Vec<String> = DEFAULT_ALLOW.iter().map(|r| r.v1_line()).collect();
    assert_eq!(allow, rules);
    assert!(driver.exists(ID));
}

#[test]
fn v1_without_a_devices_controller_refuses_the_container() {
    let (_root, driver) = v1_tree(&["memory", "pids"]);
    let err = driver.create(ID).unwrap_err().to_string();
    assert!(err.contains("no devices controller"), "{err}");
}

#[test]
fn v1_reads_oom_kills_pids_and_freezes_through_the_controllers_files() {
    let (root, driver) = v1_tree(&["memory", "pids", "devices", "freezer"]);
    driver.create(ID).unwrap();
    let mem = ctr(root.path(), "memory");
    assert!(!driver.oom_killed(ID), "no memory.oom_control yet");
    fs::write(mem.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n").unwrap();
    assert!(!driver.oom_killed(ID));
    fs::write(mem.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
    assert!(driver.oom_killed(ID));

    for c in ["memory", "pids", "devices", "freezer"] {
        fs::write(ctr(root.path(), c).join("cgroup.procs"), "12\n7\n").unwrap();
    }
    assert_eq!(driver.pids(ID), [7, 12]);

    let state = ctr(root.path(), "freezer").join("freezer.state");
    let err = driver.freeze(ID).unwrap_err().to_string();
    assert!(err.contains("no freezer.state"), "{err}");
    fs::write(&state, "THAWED").unwrap();
    driver.freeze(ID).unwrap();
    assert_eq!(fs::read_to_string(&state).unwrap(), "FROZEN");
    driver.thaw(ID).unwrap();
    assert_eq!(fs::read_to_string(&state).unwrap(), "THAWED");
}

#[test]
fn v1_remove_takes_every_controllers_directory_and_a_missing_cgroup_is_fine() {
    let (root, driver) = v1_tree(&["memory", "cpu", "devices"]);
    driver.create(ID).unwrap();
    // The kernel's interface files go with the directory; a fixture's do
    // not, so only the empty directories are left for the test.
    fs::remove_file(ctr(root.path(), "devices").join("devices.deny")).unwrap();
    fs::remove_file(ctr(root.path(), "devices").join("devices.allow")).unwrap();
    driver.remove(ID).unwrap();
    for c in ["memory", "cpu", "devices"] {
        assert!(!ctr(root.path(), c).exists(), "{c}");
        assert!(root.path().join(c).join("berth").is_dir(), "the parent stays: {c}");
    }
    assert!(!driver.exists(ID));
    driver.remove(ID).unwrap();
    assert!(driver.pids(ID).is_empty());
}

#[test]
fn v2_joins_through_cgroup_procs_and_reads_memory_events() {
    let (root, driver) = v2_tree("cpu memory pids");
    assert_eq!(driver.version(), "2");
    let dir = root.path().join("berth").join(ID);
    assert_eq!(driver.join_files(ID), [dir.join("cgroup.procs")]);
    fs::create_dir_all(&dir).unwrap();
    assert!(driver.exists(ID));
    fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n").unwrap();
    assert!(!driver.oom_killed(ID), "oom without oom_kill is not a kill");
    fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n").unwrap();
    assert!(driver.oom_killed(ID));
    fs::write(dir.join("cgroup.procs"), "40\n41\n40\n").unwrap();
    assert_eq!(driver.pids(ID), [40, 41]);
}

#[test]
fn v2_freezes_through_cgroup_freeze_and_waits_for_cgroup_events() {
    let (root, driver) = v2_tree("memory pids");
    let dir = root.path().join("berth").join(ID);
    fs::create_dir_all(&dir).unwrap();
    let err = driver.freeze(ID).unwrap_err().to_string();
    assert!(err.contains("no cgroup.freeze"), "{err}");
    fs::write(dir.join("cgroup.freeze"), "0").unwrap();
    // The kernel says "frozen 1" once every task is frozen.
    fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    driver.freeze(ID).unwrap();
    assert_eq!(fs::read_to_string(dir.join("cgroup.freeze")).unwrap(), "1");
    driver.thaw(ID).unwrap();
    assert_eq!(fs::read_to_string(dir.join("cgroup.freeze")).unwrap(), "0");
}

/// A directory that is not a cgroup2 directory cannot hold a device
/// program: the container is refused, never started unconfined.
#[test]
fn v2_create_refuses_the_container_when_no_device_program_can_be_attached() {
    let (root, driver) = v2_tree("memory pids");
    let err = driver.create(ID).unwrap_err().to_string();
    assert!(err.contains("device program"), "{err}");
    assert!(root.path().join("berth").join(ID).is_dir());
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

fn every_limit() -> Limits {
    Limits {
        memory: 64 << 20,
        memory_swap: 96 << 20,
        memory_reservation: 32 << 20,
        oom_kill_disable: false,
        nano_cpus: 1_500_000_000,
        cpu_shares: 512,
        cpu_period: 0,
        cpu_quota: 0,
        cpuset_cpus: "0".into(),
        cpuset_mems: "0".into(),
        pids_limit: 20,
        blkio_weight: 300,
        device_read_bps: vec![DeviceRate { path: "/dev/vda".into(), major: 254, minor: 0, rate: 1 << 20 }],
        device_write_bps: vec![],
    }
}

#[test]
fn v1_limits_go_to_each_controllers_files() {
    let (root, driver) = v1_tree(&["memory", "pids", "devices", "cpu", "cpuset", "blkio"]);
    driver.create(ID).unwrap();
    let mem = ctr(root.path(), "memory");
    // Swap accounting on, as on this host: memsw exists.
    fs::write(mem.join("memory.memsw.limit_in_bytes"), "9223372036854771712\n").unwrap();
    driver.set_limits(ID, &every_limit()).unwrap();
    assert_eq!(read(&mem, "memory.limit_in_bytes"), (64u64 << 20).to_string());
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), (96u64 << 20).to_string());
    assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), (32u64 << 20).to_string());
    let cpu = ctr(root.path(), "cpu");
    assert_eq!(read(&cpu, "cpu.shares"), "512");
    assert_eq!((read(&cpu, "cpu.cfs_quota_us"), read(&cpu, "cpu.cfs_period_us")), ("150000".into(), "100000".into()));
    let set = ctr(root.path(), "cpuset");
    assert_eq!((read(&set, "cpuset.cpus"), read(&set, "cpuset.mems")), ("0".into(), "0".into()));
    assert_eq!(read(&ctr(root.path(), "pids"), "pids.max"), "20");
    let blkio = ctr(root.path(), "blkio");
    assert_eq!(read(&blkio, "blkio.weight"), "300");
    assert_eq!(read(&blkio, "blkio.throttle.read_bps_device"), "254:0 1048576");
    // A host whose only I/O scheduler with weights is BFQ (as this one):
    // its weight file instead.
    fs::remove_file(blkio.join("blkio.weight")).unwrap();
    fs::write(blkio.join("blkio.bfq.weight"), "100").unwrap();
    let l = Limits {
        blkio_weight: 500,
        device_write_bps: vec![DeviceRate { path: "/dev/vda".into(), major: 254, minor: 0, rate: 4096 }],
        ..Default::default()
    };
    driver.set_limits(ID, &l).unwrap();
    assert_eq!(read(&blkio, "blkio.bfq.weight"), "500");
    assert_eq!(read(&blkio, "blkio.throttle.write_bps_device"), "254:0 4096");
    assert!(!blkio.join("blkio.weight").exists());

    // Without --memory-swap: twice the memory, as Docker; the OOM killer off.
    let l = Limits { memory: 8 << 20, oom_kill_disable: true, ..Default::default() };
    driver.set_limits(ID, &l).unwrap();
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), (16u64 << 20).to_string());
    assert_eq!(read(&mem, "memory.oom_control"), "1");
    // -1: unlimited pids and swap.
    let l = Limits { memory: 8 << 20, memory_swap: -1, pids_limit: -1, ..Default::default() };
    driver.set_limits(ID, &l).unwrap();
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "-1");
    assert_eq!(read(&ctr(root.path(), "pids"), "pids.max"), "max");
}

#[test]
fn v1_without_swap_accounting_limits_memory_alone() {
    let (root, driver) = v1_tree(&["memory", "devices"]);
    driver.create(ID).unwrap();
    driver.set_limits(ID, &Limits { memory: 8 << 20, ..Default::default() }).unwrap();
    let mem = ctr(root.path(), "memory");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), (8u64 << 20).to_string());
    assert!(!mem.join("memory.memsw.limit_in_bytes").exists());
}

#[test]
fn v1_a_limit_without_its_controller_is_refused() {
    let (_root, driver) = v1_tree(&["memory", "devices"]);
    driver.create(ID).unwrap();
    let err = driver.set_limits(ID, &Limits { pids_limit: 5, ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("a pids limit needs a controller this host does not have"), "{err}");
    // Nothing asked, nothing needed.
    driver.set_limits(ID, &Limits::default()).unwrap();
}

#[test]
fn v2_limits_are_converted_to_the_unified_files() {
    let (root, driver) = v2_tree("cpuset cpu io memory pids");
    let dir = root.path().join("berth").join(ID);
    fs::create_dir_all(&dir).unwrap();
    // What the kernel shows in a new v2 cgroup, before the device program.
    fs::write(dir.join("cpu.max"), "max 100000\n").unwrap();
    // Makes the directories; fails only at the device program, which a
    // fixture cannot attach. The limits do not depend on it.
    let _ = driver.create(ID);
    driver.set_limits(ID, &every_limit()).unwrap();
    assert_eq!(read(&dir, "memory.max"), (64u64 << 20).to_string());
    // v2's swap file holds the swap alone: 96 MiB total minus 64 of memory.
    assert_eq!(read(&dir, "memory.swap.max"), (32u64 << 20).to_string());
    assert_eq!(read(&dir, "memory.low"), (32u64 << 20).to_string());
    assert_eq!(read(&dir, "cpu.weight"), shares_to_weight(512).to_string());
    assert_eq!(read(&dir, "cpu.max"), "150000 100000");
    assert_eq!(read(&dir, "cpuset.cpus"), "0");
    assert_eq!(read(&dir, "pids.max"), "20");
    assert_eq!(read(&dir, "io.bfq.weight"), "300");
    assert_eq!(read(&dir, "io.max"), "254:0 rbps=1048576");

    let l = Limits { memory: 8 << 20, memory_swap: -1, ..Default::default() };
    driver.set_limits(ID, &l).unwrap();
    assert_eq!(read(&dir, "memory.swap.max"), "max");
    let l = Limits { memory: 8 << 20, memory_swap: 8 << 20, ..Default::default() };
    driver.set_limits(ID, &l).unwrap();
    assert_eq!(read(&dir, "memory.swap.max"), "0");
    let err = driver.set_limits(ID, &Limits { oom_kill_disable: true, memory: 8 << 20, ..Default::default() });
    assert!(err.unwrap_err().to_string().contains("cannot be disabled on cgroup v2"));
}

#[test]
fn shares_map_onto_weights_as_runc_does() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1), 1);
}

#[test]
fn v1_usage_comes_from_each_controllers_accounting_files() {
    let (root, driver) = v1_tree(&["memory", "pids", "devices", "cpuacct", "blkio"]);
    assert_eq!(driver.usage(ID), None, "no cgroup, no usage");
    driver.create(ID).unwrap();
    let w = |c: &str, f: &str, text: &str| fs::write(ctr(root.path(), c).join(f), text).unwrap();
    w("cpuacct", "cpuacct.usage", "123456789\n");
    w("memory", "memory.usage_in_bytes", "10485760\n");
    w("memory", "memory.limit_in_bytes", "9223372036854771712\n");
    w("memory", "memory.stat", "cache 4096\ninactive_file 8192\ntotal_inactive_file 1048576\n");
    w("blkio", "blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096\n8:0 Write 512\nTotal 4608\n");
    w("pids", "pids.current", "3\n");
    let u = driver.usage(ID).unwrap();
    assert_eq!(
        u,
        super::Usage {
            cpu_ns: 123_456_789,
            memory: 10_485_760,
            inactive_file: 1_048_576,
            memory_limit: None,
            block_read: 4096,
            block_write: 512,
            pids: 3,
        }
    );
    assert_eq!(u.memory_without_cache(), 9_437_184);
    w("memory", "memory.limit_in_bytes", "33554432\n");
    assert_eq!(driver.usage(ID).unwrap().memory_limit, Some(32 << 20));
}

#[test]
fn v2_usage_comes_from_the_unified_files() {
    let (root, driver) = v2_tree("cpu io memory pids");
    let dir = root.path().join("berth").join(ID);
    fs::create_dir_all(&dir).unwrap();
    let w = |f: &str, text: &str| fs::write(dir.join(f), text).unwrap();
    w("cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
    w("memory.current", "2097152\n");
    w("memory.max", "max\n");
    w("memory.stat", "anon 1024\nfile 4096\ninactive_file 4096\n");
    w("io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n");
    w("pids.current", "2\n");
    let u = driver.usage(ID).unwrap();
    assert_eq!(u.cpu_ns, 2_500_000);
    assert_eq!((u.memory, u.inactive_file, u.memory_limit), (2_097_152, 4096, None));
    assert_eq!((u.block_read, u.block_write, u.pids), (100, 200, 2));
    w("memory.max", "67108864\n");
    assert_eq!(driver.usage(ID).unwrap().memory_limit, Some(64 << 20));
}
