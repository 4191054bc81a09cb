//! What a hostile or careless peer of berthctl and berthd can do to them:
//! a stdout closed early (`berthctl images | head`), an image whose layer
//! names carry terminal escapes or a path too long to quote, a stock gRPC
//! client sending its own idea of `:authority`, and a crowd of idle
//! connections on the socket.
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use berth_tests::harness::Agent;
use berth_tests::{fixtures, need_root, IMG};

/// How a tool ends when its reader went away: 0, or killed by SIGPIPE
/// (141 as the shell says it, or the signal itself).
fn ended_quietly(st: ExitStatus) -> bool {
    st.code() == Some(0) || st.code() == Some(141) || st.signal() == Some(libc::SIGPIPE)
}

/// `berthctl … | head -n 1`: a listing far larger than the pipe's buffer,
/// read for one line, then the pipe closed.
#[test]
fn a_reader_closing_early_ends_berthctl_quietly() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    // 300 copies of the image's JSON: hundreds of KiB, many lines.
    let mut args = vec!["image", "inspect"];
    args.extend(std::iter::repeat_n(IMG, 300));
    let mut child = a.ctl_cmd(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn berthctl");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "[\n");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(ended_quietly(out.status), "{:?}: {stderr}", out.status);
}

/// Every kind of output, written into a pipe whose reader is already
/// gone: each verb ends quietly, none panics, none prints an error.
#[test]
fn every_verb_ends_quietly_on_a_closed_stdout() {
    need_root!();
    let a = Agent::start();
    a.load_fixture(IMG);
    let verbs: &[&[&str]] = &[
        &["version"],
        &["info"],
        &["images"],
        &["images", "-q"],
        &["images", "--format", "json"],
        &["image", "inspect", IMG],
        &["history", IMG],
        &["ps", "-a"],
        &["system", "df"],
        &["tag", IMG, "berth-test/other:1"],
        // A streamed archive, written by another path than the lines.
        &["save", IMG],
    ];
    for verb in verbs {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let out = a.ctl_cmd(verb).stdout(Stdio::from(write)).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{verb:?}: {stderr}");
        assert!(stderr.is_empty(), "{verb:?} printed an error: {stderr}");
        assert!(ended_quietly(out.status), "{verb:?}: {:?}", out.status);
    }
}

/// A layer whose entry names carry a terminal's escapes (a window title,
/// colours) and fail to unpack: the error names the entry with its
/// escapes written out, and no raw control byte reaches stderr.
#[test]
fn hostile_escapes_in_a_layer_never_reach_the_terminal() {
    need_root!();
    let a = Agent::start();
    let name = "evil/\x1b]0;pwned\x07\x1b[31mred\u{9b}2J";
    let layer = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_link(&mut h, "evil", "/").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(5);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, name, &b"evil\n"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let path = a.dir.path().join("escapes.tar");
    fixtures::single_layer_oci_tar(&path, "hostile/escapes:1", &layer).unwrap();
    let r = a.ctl(&["load", "-i", path.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    let raw = r.stderr.chars().filter(|c| c.is_control() && *c != '\n').collect::<String>();
    assert!(raw.is_empty(), "raw control characters {raw:?} in {:?}", r.stderr);
    assert!(r.stderr.contains(r"evil/\x1b]0;pwned\x07\x1b[31mred\u{9b}2J"), "{:?}", r.stderr);
    assert!(r.stderr.starts_with("Error response from daemon: "), "{:?}", r.stderr);
}

/// A path in a layer past unpack's bound (256 KiB: 140,000 levels; deep
/// trees below it unpack, `deep_trees.rs`): the error quoting it is cut in
/// the middle to a size any gRPC client accepts, and says how much was
/// left out, instead of the call dying as an HTTP/2 protocol error.
#[test]
fn an_error_quoting_a_huge_path_stays_bounded() {
    need_root!();
    let a = Agent::start();
    let deep = format!("{}file", "a/".repeat(140_000));
    let layer = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(5);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, &deep, &b"deep\n"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let path = a.dir.path().join("deep.tar");
    fixtures::single_layer_oci_tar(&path, "hostile/deep:1", &layer).unwrap();
    let r = a.ctl(&["load", "-i", path.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    let err = r.stderr.trim_end();
    assert!(!err.contains("protocol error"), "{err}");
    assert!(err.starts_with("Error response from daemon: "), "{}", &err[..err.len().min(200)]);
    assert!(err.contains("a/a/a/a/"), "the path is quoted: {}", &err[..err.len().min(200)]);
    // Cut by the unpack's own quoting, or else by the bound on every
    // error text: either way it says how much is left out.
    let said = err.contains(" bytes cut) … ") || err.contains(" bytes)...");
    assert!(said, "the cut is said: {}", &err[..err.len().min(4000)]);
    assert!(err.ends_with("a/a/file\" is too long"), "the verdict is kept: {}", &err[err.len().saturating_sub(200)..]);
    assert!(err.len() < 8 * 1024, "{} bytes", err.len());
    assert_eq!(a.ok(&["images", "-q"]), "");
}

/// A command run with a deadline: its output, or `None` when it had to be
/// killed. Only a guard against a hung test, not a timing assertion.
fn output_within(mut cmd: std::process::Command, deadline: Duration) -> Option<std::process::Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Opens `n` idle connections to a socket as another user, holds them
/// until its stdin closes.
const FLOOD: &str = r#"
import resource, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 64)), hard))
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
    except OSError as e:
        print("connect failed after", len(socks), e, file=sys.stderr, flush=True)
        break
    socks.append(s)
print(len(socks), flush=True)
sys.stdin.read()
"#;

/// 1,100 idle connections of one user, with berthd at the common soft
/// limit of 1024 file descriptors: another user's call is still served.
#[test]
fn idle_connections_of_one_user_do_not_starve_the_others() {
    need_root!();
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    // berthd inherits it (what systemd and most shells give a service).
    setrlimit(Resource::RLIMIT_NOFILE, 1024.min(hard), hard).unwrap();
    let a = Agent::start();
    // The flood runs as nobody, in root's group so the 0660 socket lets it in.
    std::fs::set_permissions(a.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let mut flood = std::process::Command::new("python3")
        .args(["-c", FLOOD, a.socket.to_str().unwrap(), "1100"])
        .uid(65534)
        .gid(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup.sh installs it)");
    let mut line = String::new();
    BufReader::new(flood.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let opened: usize = line.trim().parse().unwrap_or_else(|_| panic!("flood said {line:?}"));
    assert!(opened > 1024, "only {opened} connections opened");

    let call = output_within(a.ctl_cmd(&["version"]), Duration::from_secs(60));
    drop(flood.stdin.take());
    let _ = flood.wait();
    let out = call.unwrap_or_else(|| panic!("berthctl hung behind the idle connections\n{}", a.agent_log()));
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("API version: v1"), "{out:?}");
    assert!(a.agent_log().contains("closing new connections of a uid at its bound"), "{}", a.agent_log());
    // And once they are gone, everything is as before.
    assert!(a.ok(&["version"]).contains("API version: v1"));
}

/// A stock Python gRPC client (grpcio, no generated code): calls
/// `berth.v1.System/Version` with an empty request on berthd's socket and
/// prints the answer's bytes in hex, or the status it got. `authority`,
/// if given, is what the client sends as `:authority`.
const GRPCIO: &str = r#"
import sys, grpc
target, authority = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
options = [("grpc.default_authority", authority)] if authority else []
with grpc.insecure_channel(target, options=options) as channel:
    version = channel.unary_unary("/berth.v1.System/Version")
    try:
        print("ok", version(b"", timeout=20).hex())
    except grpc.RpcError as e:
        print("error", e.code(), e.details())
"#;

/// The Debian python3 that has grpcio (scripts/setup.sh installs
/// python3-grpcio); another python3 may come first on PATH.
fn grpcio_python() -> std::process::Command {
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| std::process::Command::new(p).args(["-c", "import grpc"]).output().is_ok_and(|o| o.status.success()))
        .expect("no python3 with grpcio: run scripts/setup.sh");
    std::process::Command::new(python)
}

fn grpcio_version(a: &Agent, authority: Option<&str>) -> String {
    let mut cmd = grpcio_python();
    cmd.args(["-c", GRPCIO, &format!("unix:{}", a.socket.display())]).args(authority);
    let out = output_within(cmd, Duration::from_secs(60)).expect("the grpcio client hung");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The version answer's bytes: field 1 the version, field 2 `v1`.
fn version_answer() -> String {
    let v = env!("CARGO_PKG_VERSION");
    let mut bytes = vec![0x0a, v.len() as u8];
    bytes.extend_from_slice(v.as_bytes());
    bytes.extend_from_slice(&[0x12, 2, b'v', b'1']);
    format!("ok {}\n", hex::encode(bytes))
}

/// grpcio as it comes, with the `:authority` it picks for a `unix:` target.
#[test]
fn a_stock_grpcio_client_is_served() {
    need_root!();
    let a = Agent::start();
    assert_eq!(grpcio_version(&a, None), version_answer());
    assert_eq!(grpcio_version(&a, Some("localhost")), version_answer());
}

/// The other `:authority` values real clients send over a unix socket:
/// the path (grpc-java, grpcurl `-unix`, grpc-go's passthrough) and the
/// percent-encoded path (grpcio and grpc C++ from 1.57). h2 alone refuses
/// both (RST_STREAM PROTOCOL_ERROR); berthd's authority filter
/// (`agent/src/server/authority.rs`) makes them `localhost` first.
#[test]
fn grpc_clients_sending_the_socket_path_as_authority_are_served() {
    need_root!();
    let a = Agent::start();
    let path = a.socket.display().to_string();
    assert_eq!(grpcio_version(&a, Some(&path)), version_answer());
    assert_eq!(grpcio_version(&a, Some(&path.replace('/', "%2F"))), version_answer());
}
