//! Image references (`images::reference::parse`): what people type and
//! what archives, registries and annotations name.

use berth_fuzz::{Rng, Target};

use super::{corpus, text};
use crate::images::reference::{parse, Reference, DEFAULT_DOMAIN};
use crate::images::ImageError;

const DICT: &[&str] = &[
    "/",
    ":",
    "@",
    "@sha256:",
    "sha256:",
    ".",
    "_",
    "__",
    "-",
    "..",
    "//",
    "docker.io/",
    "index.docker.io/",
    "library/",
    "localhost",
    "localhost:5000/",
    "[::1]",
    "]:",
    "[",
    ":latest",
    "A",
    "\u{e9}",
    "\u{fffd}",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
];

/// Characters a normalised reference may contain.
fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-/:@[]".contains(c)
}

fn check(input: &[u8]) {
    let s = text(input);
    let r = match parse(&s) {
        Ok(r) => r,
        Err(ImageError::InvalidReference(m)) => {
            match m.as_str() {
                "invalid reference format" => {}
                "invalid reference format: repository name must be lowercase" => {
                    assert!(parse(&s.to_ascii_lowercase()).is_ok(), "{s:?}: told to lower-case, but that fails too");
                }
                other => panic!("{s:?}: unexpected message {other:?}"),
            }
            return;
        }
        Err(e) => panic!("{s:?}: not an invalid-reference error: {e:?}"),
    };
    let full = r.to_string();
    assert!(full.chars().all(valid_char), "{s:?} normalised to {full:?}");
    assert_eq!(parse(&full).as_ref().ok(), Some(&r), "{s:?}: the full form {full:?} does not parse back");
    assert_eq!(full, format!("{}{}", r.name(), suffix(&r)));
    assert!(!r.domain().is_empty() && !r.domain().contains('/'), "{s:?}: domain {:?}", r.domain());
    assert_ne!(r.domain(), "index.docker.io", "{s:?}: legacy domain kept");
    assert!(
        !r.path().is_empty() && r.path().split('/').all(|c| !c.is_empty()),
        "{s:?}: path {:?} has an empty component",
        r.path()
    );
    if r.domain() == DEFAULT_DOMAIN {
        assert!(r.path().contains('/'), "{s:?}: official image {:?} without library/", r.path());
    }
    assert!(r.tag().is_some() || r.digest().is_some(), "{s:?}: neither tag nor digest");
    if let Some(d) = r.digest() {
        assert!(d.len() == 71 && d.starts_with("sha256:"), "{s:?}: digest {d:?}");
    }
    match r.tagged() {
        Some(t) => {
            assert_eq!((t.tag(), t.digest(), t.name()), (r.tag(), None, r.name()), "{s:?}");
            assert_eq!(parse(&t.to_string()).ok(), Some(t), "{s:?}: tagged form");
        }
        None => assert!(r.tag().is_none(), "{s:?}"),
    }

    // The familiar form names the same image, except where Docker's own
    // familiar form is ambiguous: a Docker Hub repository whose first
    // component reads as a registry (`docker.io/localhost/x`,
    // `docker.io/a.b/x`) is shown as `localhost/x`, and an official image
    // named by 64 hex digits as those digits (an image ID), as Docker
    // shows them.
    let familiar = r.familiar();
    let first = r.path().split('/').next().unwrap_or("");
    let repo = r.repository();
    let ambiguous = r.domain() == DEFAULT_DOMAIN
        && (first.contains('.') || first == "localhost" || (repo.len() == 64 && crate::images::is_hex(&repo)));
    if !ambiguous {
        assert_eq!(parse(&familiar).ok(), Some(r.clone()), "{s:?}: familiar form {familiar:?}");
    }
    assert_eq!(crate::images::reference::familiar(&full), familiar);
}

fn suffix(r: &Reference) -> String {
    let mut s = String::new();
    if let Some(t) = r.tag() {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = r.digest() {
        s.push('@');
        s.push_str(d);
    }
    s
}

/// A reference from the grammar, valid more often than not.
fn generate(rng: &mut Rng) -> Vec<u8> {
    const DOMAINS: &[&str] = &[
        "",
        "",
        "docker.io/",
        "index.docker.io/",
        "localhost/",
        "localhost:5000/",
        "example.com/",
        "registry-1.example.co.uk:443/",
        "[::1]:5000/",
        "[fe80::1]/",
        "Foo.Bar:1/",
        "Upper/",
        "-bad.com/",
        "a.-b/",
    ];
    const SEPARATORS: &[&str] = &[".", "_", "__", "-", "---", "___", "..", "/"];
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::from(*rng.pick(DOMAINS));
    for c in 0..=rng.below(3) {
        if c > 0 {
            s.push('/');
        }
        for p in 0..=rng.below(3) {
            if p > 0 {
                s.push_str(rng.pick::<&str>(SEPARATORS));
            }
            for _ in 0..=rng.below(6) {
                s.push(*rng.pick(ALNUM) as char);
            }
        }
    }
    if rng.one_in(2) {
        s.push(':');
        let len = *rng.pick(&[1, 3, 10, 127, 128, 129]);
        const TAG: &[u8] = b"abcXYZ019_.-";
        for _ in 0..len {
            s.push(*rng.pick(TAG) as char);
        }
    }
    if rng.one_in(3) {
        s.push_str("@sha256:");
        let len = *rng.pick(&[64, 64, 64, 63, 65]);
        const HEX: &[u8] = b"0123456789abcdefABCDEF";
        for _ in 0..len {
            let digits = if rng.one_in(8) { HEX } else { &HEX[..16] };
            s.push(*rng.pick(digits) as char);
        }
    }
    s.into_bytes()
}

#[test]
fn references_round_trip() {
    Target::new("reference", corpus("reference")).dict(DICT).max_len(600).generate(generate).run(check);
}
