//! The registry's `WWW-Authenticate` challenge
//! (`registry::auth::parse_challenges`): a registry, or anything between
//! berthd and it, writes it.

use berth_fuzz::{Rng, Target};

use super::{corpus, text};
use crate::registry::auth::{parse_challenges, Challenge};

const DICT: &[&str] =
    &["Bearer ", "Basic ", "realm=", "service=", "scope=", "\"", "\\\"", "\\", ",", " ", "\t", "=", "=\"\"", "\u{e9}"];

fn check(input: &[u8]) {
    let s = text(input);
    let got = parse_challenges(&s);
    // Every challenge takes at least a five-letter scheme.
    assert!(got.len() * 5 <= s.len(), "{s:?}: {} challenges", got.len());
    for c in &got {
        if let Challenge::Bearer { realm, .. } = c {
            assert!(!realm.is_empty(), "{s:?}: a bearer challenge without a realm");
        }
    }
    // What was understood, written back canonically, reads the same.
    let canonical = render(&got);
    assert_eq!(parse_challenges(&canonical), got, "{s:?} rendered as {canonical:?}");
    // Schemes and keys are case-insensitive: the same challenges, by
    // kind, come out of the upper-cased header.
    let kinds = |cs: &[Challenge]| cs.iter().map(|c| matches!(c, Challenge::Basic { .. })).collect::<Vec<_>>();
    assert_eq!(kinds(&parse_challenges(&s.to_ascii_uppercase())), kinds(&got), "{s:?} upper-cased");
}

fn render(cs: &[Challenge]) -> String {
    let q = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    let parts: Vec<String> = cs
        .iter()
        .map(|c| match c {
            Challenge::Basic { realm: None } => "Basic".to_owned(),
            Challenge::Basic { realm: Some(r) } => format!("Basic realm={}", q(r)),
            Challenge::Bearer { realm, service, scope } => {
                let mut s = format!("Bearer realm={}", q(realm));
                for (k, v) in [("service", service), ("scope", scope)] {
                    if let Some(v) = v {
                        s.push_str(&format!(",{k}={}", q(v)));
                    }
                }
                s
            }
        })
        .collect();
    parts.join(", ")
}

/// A header from RFC 7235's grammar, with the usual deviations.
fn generate(rng: &mut Rng) -> Vec<u8> {
    const SCHEMES: &[&str] = &["Bearer", "Basic", "bearer", "BASIC", "Negotiate", "Digest", "OAuth"];
    const KEYS: &[&str] = &["realm", "service", "scope", "Realm", "error", "charset", "x"];
    const VALUES: &[&str] = &[
        "\"https://auth.example.com/token\"",
        "\"registry.example.com\"",
        "\"repository:a/b:pull,push\"",
        "\"\"",
        "\"q\\\"uote\\\\\"",
        "token68/x:y",
        "\"unterminated",
        "",
    ];
    const GAPS: &[&str] = &["", " ", "  ", "\t", ",", ", ", " , "];
    let mut s = String::new();
    for c in 0..=rng.below(3) {
        if c > 0 {
            s.push_str(rng.pick::<&str>(&[", ", ",", " "]));
        }
        s.push_str(rng.pick::<&str>(SCHEMES));
        for p in 0..rng.below(4) {
            s.push_str(if p == 0 { " " } else { rng.pick::<&str>(GAPS) });
            s.push_str(rng.pick::<&str>(KEYS));
            s.push_str(rng.pick::<&str>(&["=", " = ", "="]));
            s.push_str(rng.pick::<&str>(VALUES));
        }
    }
    s.into_bytes()
}

#[test]
fn challenges_parse_canonically() {
    Target::new("auth-challenge", corpus("auth-challenge")).dict(DICT).max_len(1024).generate(generate).run(check);
}
