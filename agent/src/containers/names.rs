//! Generated container names, `adjective_surname`, as Docker users expect
//! (`elegant_ardinghelli`). The word lists are berth's own: adjectives of
//! temperament, and surnames of people who shaped computing, mathematics
//! and the sciences.
use rand::seq::IndexedRandom;

const LEFT: &[&str] = &[
    "agile",
    "amiable",
    "ardent",
    "audacious",
    "blissful",
    "bold",
    "brave",
    "bright",
    "calm",
    "candid",
    "careful",
    "charming",
    "cheerful",
    "clever",
    "cosmic",
    "courteous",
    "curious",
    "daring",
    "dazzling",
    "devoted",
    "diligent",
    "dreamy",
    "eager",
    "earnest",
    "elated",
    "eloquent",
    "fearless",
    "fervent",
    "festive",
    "gallant",
    "gentle",
    "gleeful",
    "graceful",
    "hardy",
    "hearty",
    "honest",
    "humble",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "lively",
    "loyal",
    "lucid",
    "merry",
    "mellow",
    "modest",
    "nimble",
    "noble",
    "patient",
    "peaceful",
    "plucky",
    "polite",
    "proud",
    "quick",
    "quiet",
    "radiant",
    "resolute",
    "serene",
    "sincere",
    "spirited",
    "steady",
    "stoic",
    "sturdy",
    "sunny",
    "swift",
    "tender",
    "thoughtful",
    "tidy",
    "tranquil",
    "upbeat",
    "valiant",
    "vibrant",
    "vigilant",
    "warm",
    "wise",
    "witty",
    "zealous",
    "zesty",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "allen",
    "babbage",
    "backus",
    "bardeen",
    "bartik",
    "bernoulli",
    "boole",
    "borg",
    "brattain",
    "carver",
    "cauchy",
    "cerf",
    "chandrasekhar",
    "clarke",
    "conway",
    "corbato",
    "curie",
    "dijkstra",
    "easley",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "fibonacci",
    "franklin",
    "galois",
    "gauss",
    "germain",
    "goldberg",
    "hamilton",
    "hamming",
    "hawking",
    "hilbert",
    "hodgkin",
    "hollerith",
    "hopper",
    "huffman",
    "hypatia",
    "jackson",
    "johnson",
    "kahan",
    "kepler",
    "knuth",
    "kovalevskaya",
    "lamarr",
    "lamport",
    "leavitt",
    "lovelace",
    "maxwell",
    "mccarthy",
    "meitner",
    "mirzakhani",
    "morse",
    "napier",
    "neumann",
    "noether",
    "pascal",
    "perlman",
    "poincare",
    "ramanujan",
    "riemann",
    "ritchie",
    "shannon",
    "shockley",
    "somerville",
    "stallman",
    "sutherland",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wiles",
    "wing",
    "wozniak",
    "yalow",
    "zuse",
];

/// A fresh `adjective_surname`; the caller retries on a clash.
pub fn generate(attempt: u32) -> String {
    let mut rng = rand::rng();
    let l = LEFT.choose(&mut rng).copied().unwrap_or("calm");
    let r = RIGHT.choose(&mut rng).copied().unwrap_or("turing");
    if attempt == 0 {
        format!("{l}_{r}")
    } else {
        // Like Docker: after a clash, a digit makes the space larger.
        format!("{l}_{r}{}", rand::random_range(0..10u32))
    }
}

/// Docker's rule for user-given names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for i in 0..200 {
            let n = generate(i % 2);
            assert!(valid(&n), "{n}");
            assert!(n.contains('_'));
        }
    }

    #[test]
    fn name_rule() {
        for (name, ok) in
            [("web", true), ("a", false), ("-x", false), ("my.app_1-2", true), ("x/y", false), ("", false)]
        {
            assert_eq!(valid(name), ok, "{name}");
        }
    }
}
