//! What a hostile or careless peer of berthctl and berthd can do to them:
//! a stdout closed early (`berthctl images | head`), an image whose layer
//! names carry terminal escapes or a path too long to quote, a stock gRPC
//! client sending its own idea of `:authority`, and a crowd of idle
//! connections on the socket.
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

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

/// A 20,000-level path in a layer: the error quoting it is cut in the
/// middle to a size any gRPC client accepts, and says how much was left
/// out, instead of the call dying as an HTTP/2 protocol error.
#[test]
fn an_error_quoting_a_huge_path_stays_bounded() {
    need_root!();
    let a = Agent::start();
    let deep = format!("{}file", "a/".repeat(20_000));
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
    assert!(err.contains(" bytes cut) … "), "the cut is said: {}", &err[..err.len().min(4000)]);
    assert!(err.ends_with("a/a/file\" is too long"), "the verdict is kept: {}", &err[err.len().saturating_sub(200)..]);
    assert!(err.len() < 8 * 1024, "{} bytes", err.len());
    assert_eq!(a.ok(&["images", "-q"]), "");
}
