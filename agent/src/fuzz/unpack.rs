//! Layer tars (`images::unpack::unpack`): headers, PAX records, GNU long
//! names and sparse maps, whiteouts and hostile paths, from any registry.
//!
//! Each input is unpacked as root into `BASE/snap/fs`, beside
//! `BASE/outside`, which holds one canary file; the symlinks and hard
//! links the generator and the corpus plant aim at `outside` by relative
//! and by absolute path. Whatever the input, unpacking must return (an
//! error is fine), nothing may appear, change or gain a link beside the
//! snapshot, no layer may set an overlayfs xattr other than the opaque
//! marker, and a layer that unpacks has the diff ID of its bytes.
//! `BASE` is a fixed path (so that seeds can name it) on tmpfs (so that
//! the `syncfs` of every unpack costs nothing), locked against a second
//! run.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_fuzz::{Rng, Target};
use rustix::fs::{self as rfs, FlockOperation};
use tar::EntryType;

use super::corpus;
use crate::images::store::digest_of;
use crate::images::testutil::Layer;
use crate::images::unpack::{unpack, Compression};

const BASE: &str = "/dev/shm/berth-fuzz-unpack";
const OUTSIDE: &str = "/dev/shm/berth-fuzz-unpack/outside";
const CANARY: &[u8] = b"canary\n";
/// Largest file a GNU sparse map may expand to: a few hundred bytes of
/// map can otherwise describe terabytes of zeros.
const SPARSE_MAX: u64 = 1 << 20;

const DICT: &[&[u8]] = &[
    b"../",
    b"..",
    b"./",
    b"/",
    b"//",
    b"../../outside",
    OUTSIDE.as_bytes(),
    b"/etc/passwd",
    b".wh.",
    b".wh..wh..opq",
    b".wh..wh.plnk",
    b"30 path=../../outside/x\n",
    b"22 linkpath=../../x\n",
    b"44 SCHILY.xattr.trusted.overlay.redirect=/x\n",
    b"27 SCHILY.xattr.user.a=b\n",
    b"20 mtime=-1.5\n",
    b"14 size=99\n",
    b"ustar\0",
    b"ustar  \0",
    b"\x80\0\0\0\0\0\0\xff",
];

fn check(input: &[u8]) {
    let base = Path::new(BASE);
    let snap = base.join("snap");
    if snap.exists() {
        fs::remove_dir_all(&snap).unwrap();
    }
    let dest = snap.join("fs");
    fs::create_dir_all(&dest).unwrap();

    let result = unpack(input, &dest, "layer fuzz");

    assert_eq!(names(base), ["outside", "snap"], "something appeared beside the snapshot");
    assert_eq!(names(&snap), ["fs"], "something appeared beside the snapshot's fs");
    assert_eq!(names(Path::new(OUTSIDE)), ["canary"], "something appeared in {OUTSIDE}");
    let canary = Path::new(OUTSIDE).join("canary");
    let m = fs::symlink_metadata(&canary).unwrap();
    assert!(m.is_file() && m.nlink() == 1, "the canary was linked into the layer");
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o644, 0, 0), "the canary's owner or mode changed");
    assert_eq!(fs::read(&canary).unwrap(), CANARY, "the canary was written");
    overlay_xattrs_are_ours(&dest);
    if let Ok(u) = result {
        if Compression::detect(input) == Ok(Compression::None) {
            assert_eq!(u.diff_id, digest_of(input), "diff ID of an uncompressed layer");
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Only unpack's own `trusted.overlay.opaque=y` may steer overlayfs.
fn overlay_xattrs_are_ours(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let mut list = vec![0u8; 4096];
        let n = rfs::llistxattr(&p, &mut list[..]).unwrap_or(0);
        for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
            if name.starts_with(b"trusted.overlay.") {
                let mut v = [0u8; 16];
                let len = rfs::lgetxattr(&p, name, &mut v[..]).unwrap_or(0);
                assert!(
                    name == b"trusted.overlay.opaque" && &v[..len] == b"y",
                    "{}: layer set {}",
                    p.display(),
                    String::from_utf8_lossy(name)
                );
            }
        }
        if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
}

// ------------------------------------------------------------ repairs

/// Makes a mutant's headers consistent again, so that it gets past the
/// tar reader's checksum test to the unpacker: walks the headers by
/// their size fields, caps what a GNU sparse map may expand to, and
/// recomputes every checksum.
fn fixup(tar: &mut [u8]) {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let h = &mut tar[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            at += 512;
            continue;
        }
        let size = number(&h[124..136]).unwrap_or(0);
        let sparse = h[156] == b'S';
        let mut extended = sparse && h[482] != 0;
        if sparse && number(&h[483..495]).is_none_or(|n| n > SPARSE_MAX) {
            write_octal(&mut h[483..495], SPARSE_MAX);
        }
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        write_octal(&mut h[148..155], u64::from(sum));
        h[155] = b' ';
        at += 512;
        while extended && at + 512 <= tar.len() {
            extended = tar[at + 504] != 0;
            at += 512;
        }
        at = at.saturating_add(usize::try_from(size.div_ceil(512) * 512).unwrap_or(usize::MAX));
    }
}

/// A tar numeric field: octal, or base-256 when the top bit is set.
fn number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        return None;
    }
    let s = std::str::from_utf8(field).ok()?.trim_matches(|c| c == ' ' || c == '\0');
    u64::from_str_radix(s, 8).ok()
}

fn write_octal(field: &mut [u8], n: u64) {
    let s = format!("{n:0w$o}", w = field.len() - 1);
    let len = field.len();
    field[..len - 1].copy_from_slice(&s.as_bytes()[s.len() - (len - 1)..]);
    field[len - 1] = 0;
}

// ---------------------------------------------------------- generator

/// A layer of hostile entries: paths and link targets built from the
/// components that have broken unpackers before.
fn generate(rng: &mut Rng) -> Vec<u8> {
    const PARTS: &[&str] =
        &["a", "b", "etc", "link", "up", "..", ".", "", ".wh.a", ".wh..wh..opq", ".wh..wh.plnk", ".wh..", ".wh."];
    const TARGETS: &[&str] = &["../../outside", OUTSIDE, "/", "..", "../..", "a", "/etc/passwd", "link/x", "up", ""];
    let path = |rng: &mut Rng| {
        let mut s = String::from(*rng.pick(&["", "", "/", "./", "../"]));
        for i in 0..=rng.below(3) {
            if i > 0 {
                s.push('/');
            }
            s.push_str(rng.pick::<&str>(PARTS));
        }
        if rng.one_in(5) {
            s.push('/');
        }
        s
    };
    let mut l = Layer::new();
    for _ in 0..=rng.below(8) {
        let name = path(rng);
        let target = *rng.pick(TARGETS);
        if rng.one_in(4) {
            let long = format!("{}/{}", "d".repeat(rng.below(120)), path(rng));
            let xattr = *rng.pick(&["SCHILY.xattr.user.x", "SCHILY.xattr.trusted.overlay.redirect", "SCHILY.xattr."]);
            let records: Vec<(&str, &[u8])> = match rng.below(4) {
                0 => vec![("path", long.as_bytes())],
                1 => vec![("linkpath", target.as_bytes())],
                2 => vec![(xattr, b"/x")],
                _ => vec![("mtime", rng.pick::<&str>(&["-1.25", "1e9", "99999999999999999999", ".5"]).as_bytes())],
            };
            l.pax(&records);
        }
        let mode = *rng.pick(&[0o644, 0o4755, 0o7777, 0o000, 0o1777]);
        let (uid, gid) = *rng.pick(&[(0, 0), (1000, 1000), (u64::from(u32::MAX) - 1, 0)]);
        match rng.below(9) {
            0 | 1 => l.raw(EntryType::Regular, &name, "", b"data", mode, uid, gid, 1_000_000),
            2 => l.raw(EntryType::Directory, &name, "", b"", mode, uid, gid, 1_000_000),
            3 | 4 => l.raw(EntryType::Symlink, &name, target, b"", 0o777, uid, gid, 1_000_000),
            5 => l.raw(EntryType::Link, &name, target, b"", 0o644, uid, gid, 1_000_000),
            6 => l.raw(EntryType::Fifo, &name, "", b"", mode, uid, gid, 1_000_000),
            7 if !name.is_empty() && !name.contains("..") && !name.starts_with('/') => {
                l.device(&name, EntryType::Char, 0, 0)
            }
            _ => l.raw(EntryType::Regular, &name, target, b"", mode, uid, gid, 1_000_000),
        };
    }
    l.finish()
}

#[test]
fn layers_stay_inside_the_snapshot() {
    fs::create_dir_all(BASE).unwrap();
    let lock = fs::File::create(PathBuf::from(format!("{BASE}.lock"))).unwrap();
    rfs::flock(&lock, FlockOperation::LockExclusive).unwrap();
    let outside = Path::new(OUTSIDE);
    if outside.exists() {
        fs::remove_dir_all(outside).unwrap();
    }
    fs::create_dir_all(outside).unwrap();
    fs::write(outside.join("canary"), CANARY).unwrap();
    fs::set_permissions(outside.join("canary"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    Target::new("unpack", corpus("unpack"))
        .dict(DICT)
        .max_len(64 << 10)
        .fixup(|v| fixup(v))
        .generate(generate)
        .run(check);
    fs::remove_dir_all(BASE).unwrap();
}
