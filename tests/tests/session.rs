//! Working inside containers, at the keyboard: `run -it` in a real terminal
//! (tmux), `-i` with a pipe, detach and `attach`, and `exec`.
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_tests::harness::{bin_dir, Agent};
use berth_tests::{need_root, IMG};

/// A tmux server of its own, with one window running `script`.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(a: &Agent, name: &str, cols: u16, rows: u16, script: &str) -> Tmux {
        let socket = format!("berth-{}-{name}", std::process::id());
        let t = Tmux { socket };
        let env = format!(
            "export BERTH_SOCKET={} PATH={}:$PATH; cd {};",
            a.socket.display(),
            bin_dir().display(),
            a.dir.path().display()
        );
        let status = t
            .cmd(&["new-session", "-d", "-s", "s", "-x", &cols.to_string(), "-y", &rows.to_string()])
            .arg(format!("{env} {script}"))
            .status()
            .expect("tmux");
        assert!(status.success(), "tmux new-session failed");
        t
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args).stdin(Stdio::null());
        c
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "s"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().unwrap().success());
    }

    fn line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-t", "s"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` `n` times.
    fn wait_for(&self, text: &str, n: usize) {
        let mut last = String::new();
        for _ in 0..400 {
            last = self.screen();
            if last.matches(text).count() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the terminal never showed {text:?} {n} time(s); it shows:\n{last}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

fn read_when_there(path: &Path) -> String {
    Agent::eventually(&format!("{} is written", path.display()), Duration::from_secs(20), || {
        std::fs::read_to_string(path).is_ok_and(|s| s.ends_with('\n'))
    });
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn run_it_in_a_real_terminal() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let script =
        format!("stty -g > before; berthctl run -it --name tty1 {IMG} sh; echo $? > code; stty -g > after; sleep 600");
    let t = Tmux::start(&a, "run", 100, 30, &script);
    t.wait_for("/ #", 1);
    // The size is right from the first byte, not fixed up afterwards.
    t.line("stty size");
    t.wait_for("30 100", 1);
    t.line("echo $((6*7))");
    t.wait_for("\n42", 1);
    t.cmd(&["resize-window", "-t", "s", "-x", "120", "-y", "40"]).status().unwrap();
    t.line("stty size");
    t.wait_for("40 120", 1);
    t.line("test -t 0 && echo tty-$TERM; tty; grep -c devpts /proc/mounts");
    t.wait_for("tty-xterm", 1);
    // The container's own devpts, as under Docker.
    t.wait_for("/dev/pts/0", 1);
    t.line("exit 3");
    let dir = a.dir.path();
    assert_eq!(read_when_there(&dir.join("code")), "3\n");
    assert_eq!(read_when_there(&dir.join("after")), read_when_there(&dir.join("before")), "terminal mode not restored");
    let ps = a.ok(&["ps", "-a", "--filter", "name=tty1"]);
    assert!(ps.contains("Exited (3)"), "{ps}");
}

#[test]
fn the_seed_scenario_at_the_keyboard() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let script = format!(
        "berthctl run -it --name k1 {IMG} sh; berthctl run -it --name k2 {IMG} cat /foo; echo $? > code; sleep 600"
    );
    let t = Tmux::start(&a, "seed", 80, 24, &script);
    t.wait_for("/ #", 1);
    t.line("echo important > /foo");
    t.wait_for("/ #", 2);
    t.line("exit");
    let code = read_when_there(&a.dir.path().join("code"));
    assert_eq!(code, "1\n");
    t.wait_for("No such file or directory", 1);
    let ps = a.ok(&["ps", "-a", "--format", "json"]);
    let rows: Vec<serde_json::Value> = ps.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2, "{ps}");
    assert!(rows.iter().all(|r| r["State"] == "exited"), "{ps}");
}

#[test]
fn run_i_streams_stdin_and_closes_it_at_eof() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let mut child =
        a.ctl_cmd(&["run", "-i", "--rm", IMG, "cat"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"hi\nthere\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\nthere\n");

    // The exit code of the container is berthctl's.
    let mut child = a.ctl_cmd(&["run", "-i", "--rm", IMG, "sh"]).stdin(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"exit 4\n").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(4));
}

#[test]
fn detach_then_attach_and_detach_again() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "-it", "--name", "d1", IMG, "sh"]);
    let script = "berthctl attach d1; echo $? > code; sleep 600";
    let t = Tmux::start(&a, "attach", 80, 24, script);
    a.wait_answered("Containers/Attach", 1);
    t.line("echo attached-$((1+1))");
    t.wait_for("attached-2", 1);
    // ctrl-p ctrl-q: berthctl ends, the container runs on.
    t.keys(&["C-p", "C-q"]);
    assert_eq!(read_when_there(&a.dir.path().join("code")), "0\n");
    let ps = a.ok(&["ps", "--filter", "name=d1", "--format", "json"]);
    assert!(ps.contains("\"running\""), "{ps}");
    // Its shell still answers, through exec.
    assert_eq!(a.ok(&["exec", "d1", "echo", "alive"]), "alive\n");
}

#[test]
fn exec_runs_inside_the_container() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "web", "-e", "FROM_RUN=1", IMG, "sleep", "600"]);

    assert_eq!(a.ok(&["exec", "web", "echo", "hi"]), "hi\n");
    assert_eq!(a.ctl(&["exec", "web", "sh", "-c", "exit 7"]).code, 7);
    // The container's pid namespace: its init is pid 1.
    assert_eq!(a.ok(&["exec", "web", "cat", "/proc/1/cmdline"]), "sleep\x00600\x00");
    // Its environment, working directory, user and -e/-w/-u.
    let env = a.ok(&["exec", "-e", "X=y", "web", "env"]);
    assert!(env.contains("FROM_RUN=1\n") && env.contains("X=y\n"), "{env}");
    assert_eq!(a.ok(&["exec", "-w", "/etc", "web", "pwd"]), "/etc\n");
    assert_eq!(a.ok(&["exec", "-u", "berth", "web", "id", "-u"]), "1000\n");
    // Its cgroup (relative to its cgroup namespace, so no "..").
    let cg = a.ok(&["exec", "web", "cat", "/proc/self/cgroup"]);
    assert!(!cg.contains(".."), "{cg}");
    // Nothing of the shim or berthd: only stdio is open, the working
    // directory and root are the container's.
    assert_eq!(a.ok(&["exec", "web", "ls", "/proc/self/fd"]), "0\n1\n2\n3\n");
    assert_eq!(a.ok(&["exec", "web", "sh", "-c", "readlink /proc/self/cwd; readlink /proc/self/root"]), "/\n/\n");
    // stdin with -i.
    let mut child =
        a.ctl_cmd(&["exec", "-i", "web", "wc", "-c"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&[b'x'; 100_000]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100000");
    // -d returns at once; the process runs on in the container.
    a.ok(&["exec", "-d", "web", "sh", "-c", "sleep 0.2; touch /done"]);
    Agent::eventually("the detached exec ran", Duration::from_secs(10), || {
        a.ctl(&["exec", "web", "test", "-e", "/done"]).code == 0
    });

    // Errors, with Docker's texts and codes.
    let r = a.ctl(&["exec", "web", "nope"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("exec: \"nope\": executable file not found in $PATH"), "{r:?}");
    let r = a.ctl(&["exec", "web", "/etc/passwd"]);
    assert_eq!(r.code, 126, "{r:?}");
    a.ok(&["create", "--name", "idle", IMG, "true"]);
    let r = a.ctl(&["exec", "idle", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("container idle is not running"), "{r:?}");
    let r = a.ctl(&["exec", "ghost", "true"]);
    assert!(r.stderr.contains("No such container: ghost"), "{r:?}");

    // The terminal is opened in the container's /dev, which the container
    // owns: a /dev/ptmx that is a magic link or a FIFO is refused, clearly.
    assert_eq!(a.ok(&["exec", "-t", "web", "tty"]), "/dev/pts/0\r\n");
    a.ok(&["exec", "web", "sh", "-c", "rm /dev/ptmx && ln -s /proc/self/fd/2 /dev/ptmx"]);
    let r = a.ctl(&["exec", "-t", "web", "true"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("open a terminal in the container"), "{r:?}");
    a.ok(&["exec", "web", "sh", "-c", "rm /dev/ptmx && mkfifo /dev/ptmx"]);
    let r = a.ctl(&["exec", "-t", "web", "true"]);
    assert!(r.stderr.contains("/dev/ptmx is not a character device"), "{r:?}");
    a.ok(&["exec", "web", "sh", "-c", "rm /dev/ptmx && ln -s pts/ptmx /dev/ptmx"]);
    assert_eq!(a.ok(&["exec", "-t", "web", "echo", "back"]), "back\r\n");

    // The exec'd processes leave nothing behind: after the container
    // stops, no process of it is left.
    a.ok(&["exec", "-d", "web", "sleep", "1000"]);
    a.ok(&["stop", "-t", "0", "web"]);
    let id = a.id_of("web");
    assert!(Agent::cgroups_of(&id).is_empty(), "cgroup left");
}

#[test]
fn start_ai_on_a_created_container_with_other_detach_keys() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["create", "-it", "--name", "s1", IMG, "sh"]);
    let script = "berthctl start -ai --detach-keys ctrl-x,x s1; echo $? > code1; \
                  berthctl attach s1; echo $? > code2; sleep 600";
    let t = Tmux::start(&a, "start", 90, 20, script);
    t.wait_for("/ #", 1);
    t.line("stty size; echo five-$((2+3))");
    t.wait_for("20 90", 1);
    t.wait_for("five-5", 1);
    // ctrl-p ctrl-q is not the sequence here: it goes to the shell.
    t.keys(&["C-p", "C-q"]);
    t.keys(&["C-x", "x"]);
    assert_eq!(read_when_there(&a.dir.path().join("code1")), "0\n");
    let ps = a.ok(&["ps", "--filter", "name=s1", "--format", "json"]);
    assert!(ps.contains("\"running\""), "{ps}");
    // Attached again: the same shell, with what it printed before.
    t.line("echo again-$((3+4))");
    t.wait_for("again-7", 1);
    t.line("exit 5");
    assert_eq!(read_when_there(&a.dir.path().join("code2")), "5\n");
    let ps = a.ok(&["ps", "-a", "--filter", "name=s1"]);
    assert!(ps.contains("Exited (5)"), "{ps}");
}

#[test]
fn exec_it_in_a_real_terminal() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "--name", "web", IMG, "sleep", "600"]);
    let script = "stty -g > before; berthctl exec -it web sh; echo $? > code; stty -g > after; sleep 600";
    let t = Tmux::start(&a, "exec", 70, 15, script);
    t.wait_for("/ #", 1);
    t.line("stty size; test -t 0 && echo exec-tty-$TERM; tty");
    t.wait_for("15 70", 1);
    t.wait_for("exec-tty-xterm", 1);
    t.wait_for("/dev/pts/0", 1);
    t.line("exit 9");
    let dir = a.dir.path();
    assert_eq!(read_when_there(&dir.join("code")), "9\n");
    assert_eq!(read_when_there(&dir.join("after")), read_when_there(&dir.join("before")), "terminal mode not restored");
    // The container is untouched by the exec's end.
    let ps = a.ok(&["ps", "--filter", "name=web", "--format", "json"]);
    assert!(ps.contains("\"running\""), "{ps}");
}

#[test]
fn an_interactive_container_outlives_berthd_kill9_and_is_attached_again() {
    need_root!();
    let mut a = Agent::start();
    a.load_fixture(IMG);
    a.ok(&["run", "-d", "-it", "--name", "i1", IMG, "sh"]);
    let script = "berthctl attach i1; echo $? > code1; sleep 600";
    let t = Tmux::start(&a, "kill9", 80, 24, script);
    a.wait_answered("Containers/Attach", 1);
    t.line("echo before-$((1+1))");
    t.wait_for("before-2", 1);
    // berthd dies under the attached client: the client ends with an
    // error, the shell lives on in its shim.
    a.kill9();
    let code = read_when_there(&a.dir.path().join("code1"));
    assert_ne!(code, "0\n");
    a.restart();
    let ps = a.ok(&["ps", "--filter", "name=i1", "--format", "json"]);
    assert!(ps.contains("\"running\""), "{ps}");
    // A new client reaches the same shell, through the new berthd.
    let t2 = Tmux::start(&a, "kill9b", 80, 24, "berthctl attach i1; echo $? > code2; sleep 600");
    // The restarted berthd appends to the same log.
    a.wait_answered("Containers/Attach", 2);
    t2.line("echo after-$((2+2)); tty");
    t2.wait_for("after-4", 1);
    t2.wait_for("/dev/pts/0", 1);
    t2.line("exit 6");
    assert_eq!(read_when_there(&a.dir.path().join("code2")), "6\n");
    let ps = a.ok(&["ps", "-a", "--filter", "name=i1"]);
    assert!(ps.contains("Exited (6)"), "{ps}");
    // The log has both sessions' output.
    let logs = a.ok(&["logs", "i1"]);
    assert!(logs.contains("before-2") && logs.contains("after-4"), "{logs}");
    drop(t);
}
