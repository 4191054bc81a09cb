//! berth's fuzz driver: a time-bounded random-mutation loop over a
//! committed seed corpus, called from the unit tests of every parser of
//! untrusted input (STYLE.md, "Tests").
//!
//! Coverage-guided fuzzers (cargo-fuzz, AFL) need nightly or an
//! instrumenting toolchain; berth builds on stable, so this is the blunt
//! instrument that runs inside `cargo test`. A run replays every corpus
//! file as it is, then until its time is up feeds the target mutants of
//! the corpus (bit flips, boundary bytes, dictionary words, deleted,
//! repeated and spliced ranges) and, when the target has a grammar,
//! inputs generated from it. A target states its properties by
//! panicking; the driver catches the panic, saves the input, and fails
//! the test with how to replay it. A target that hangs is caught by a
//! watchdog, which prints the input and aborts: a hung thread cannot be
//! unwound.
//!
//! * `BERTH_FUZZ_SECS`: seconds per target (default 3; CI sets 30).
//! * `BERTH_FUZZ_SEED`: the seed of the input sequence, to replay a run.
//! * `BERTH_FUZZ_CRASH_DIR`: where failing inputs go (default
//!   `$TMPDIR/berth-fuzz-crashes`).

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{env, fs, thread};

/// Seconds per target when `BERTH_FUZZ_SECS` is not set: enough to shake
/// out shallow bugs without slowing `cargo test` down.
const DEFAULT_SECS: f64 = 3.0;
/// One input taking longer than this is a hang.
const HANG: Duration = Duration::from_secs(30);
/// Bytes that sit on the boundaries parsers care about.
const INTERESTING: &[u8] = b"\x00\x01\x7f\x80\xff/.:@\\\"' \t\n\r,=-_[]{}0179aAzZ";

/// How long each target runs: `BERTH_FUZZ_SECS`, else 3 s.
pub fn budget() -> Duration {
    let secs = env::var("BERTH_FUZZ_SECS").ok().and_then(|s| s.trim().parse::<f64>().ok());
    Duration::from_secs_f64(secs.filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(DEFAULT_SECS))
}

/// A small, fast, seedable generator (SplitMix64): the same seed gives
/// the same inputs, which is all a replay needs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }
}

/// What a finished run did, for the test's output.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub inputs: u64,
    pub seed: u64,
    pub elapsed: Duration,
}

type Fixup<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
type Generate<'a> = Box<dyn FnMut(&mut Rng) -> Vec<u8> + 'a>;

/// One fuzz target: its name, corpus and the knowledge of its format the
/// mutator may use.
pub struct Target<'a> {
    name: &'a str,
    corpus: PathBuf,
    dict: Vec<Vec<u8>>,
    max_len: usize,
    fixup: Option<Fixup<'a>>,
    generate: Option<Generate<'a>>,
    time: Option<Duration>,
}

impl<'a> Target<'a> {
    /// A target seeded by every file in `corpus` (which must hold some).
    pub fn new(name: &'a str, corpus: impl Into<PathBuf>) -> Self {
        Self { name, corpus: corpus.into(), dict: Vec::new(), max_len: 4096, fixup: None, generate: None, time: None }
    }

    /// Words the mutator inserts: the format's keywords and delimiters.
    pub fn dict<W: AsRef<[u8]>>(mut self, words: impl IntoIterator<Item = W>) -> Self {
        self.dict.extend(words.into_iter().map(|w| w.as_ref().to_vec()));
        self
    }

    /// Longest input the mutator makes (default 4 KiB).
    pub fn max_len(mut self, n: usize) -> Self {
        self.max_len = n;
        self
    }

    /// Runs for `d` instead of [`budget`] (for the driver's own tests).
    pub fn time(mut self, d: Duration) -> Self {
        self.time = Some(d);
        self
    }

    /// Repairs every mutant before it is run (checksums, say), so that
    /// mutants get past the first integrity check.
    pub fn fixup(mut self, f: impl Fn(&mut Vec<u8>) + 'a) -> Self {
        self.fixup = Some(Box::new(f));
        self
    }

    /// Makes fresh inputs from the format's grammar, mixed with the
    /// mutants (and mutated themselves now and then).
    pub fn generate(mut self, g: impl FnMut(&mut Rng) -> Vec<u8> + 'a) -> Self {
        self.generate = Some(Box::new(g));
        self
    }

    /// Replays the corpus, then fuzzes `check` for [`budget`]. Panics
    /// (failing the test) with the first input on which `check` panicked.
    pub fn run(mut self, mut check: impl FnMut(&[u8])) -> Stats {
        let seeds = read_corpus(&self.corpus);
        let seed = env::var("BERTH_FUZZ_SEED")
            .ok()
            .and_then(|s| parse_seed(&s))
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64));
        let mut rng = Rng::new(seed);
        let current = Arc::new(Mutex::new(Vec::new()));
        let progress = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let watchdog = spawn_watchdog(self.name.to_owned(), current.clone(), progress.clone(), done.clone());

        let start = Instant::now();
        let budget = self.time.unwrap_or_else(budget);
        let mut inputs = 0u64;
        let mut input = Vec::new();
        let mut seeds_left = seeds.iter();
        loop {
            match seeds_left.next() {
                Some(s) => input.clone_from(s),
                None if start.elapsed() >= budget => break,
                None => self.next_input(&seeds, &mut rng, &mut input),
            }
            if let Ok(mut c) = current.lock() {
                c.clone_from(&input);
            }
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(&input)));
            inputs += 1;
            progress.store(inputs, Ordering::Relaxed);
            if let Err(cause) = outcome {
                done.store(true, Ordering::Relaxed);
                let saved = save_crash(self.name, &input);
                panic!(
                    "fuzz target {} failed after {inputs} inputs (BERTH_FUZZ_SEED={seed:#x}): {}\n\
                     input ({} bytes, saved to {saved}): {}\n\
                     once fixed, add the file to {} so that it stays fixed",
                    self.name,
                    panic_text(&*cause),
                    input.len(),
                    escape(&input),
                    self.corpus.display(),
                );
            }
        }
        done.store(true, Ordering::Relaxed);
        let _ = watchdog.join();
        let stats = Stats { inputs, seed, elapsed: start.elapsed() };
        eprintln!(
            "fuzz {}: {} inputs in {:.1} s ({} seeds, BERTH_FUZZ_SEED={seed:#x})",
            self.name,
            stats.inputs,
            stats.elapsed.as_secs_f64(),
            seeds.len()
        );
        stats
    }

    /// The next input: mostly a mutant of a seed, sometimes generated.
    fn next_input(&mut self, seeds: &[Vec<u8>], rng: &mut Rng, out: &mut Vec<u8>) {
        let generated = match self.generate.as_mut() {
            Some(g) if rng.one_in(3) => {
                *out = g(rng);
                if !rng.one_in(3) {
                    return;
                }
                true
            }
            _ => false,
        };
        if !generated {
            out.clone_from(rng.pick(seeds));
        }
        for _ in 0..=rng.below(4) {
            self.mutate(seeds, rng, out);
        }
        out.truncate(self.max_len);
        if let Some(f) = &self.fixup {
            f(out);
        }
    }

    fn mutate(&self, seeds: &[Vec<u8>], rng: &mut Rng, v: &mut Vec<u8>) {
        let len = v.len();
        // `at` may be the end (for inserting), `i` is a byte (for changing).
        let at = rng.below(len + 1);
        let i = at.min(len.saturating_sub(1));
        match rng.below(10) {
            0 if len > 0 => v[i] ^= 1 << rng.below(8),
            1 if len > 0 => v[i] = *rng.pick(INTERESTING),
            2 if len > 0 => v[i] = rng.next_u64() as u8,
            3 if len > 0 => {
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            4 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| *rng.pick(INTERESTING)).collect();
                v.splice(at..at, bytes);
            }
            5 | 6 if !self.dict.is_empty() => {
                let w = rng.pick(&self.dict).clone();
                if rng.one_in(2) || at + w.len() > len {
                    v.splice(at..at, w);
                } else {
                    v.splice(at..at + w.len(), w);
                }
            }
            7 if len > 0 => {
                // Repeat a range: long names, deep paths, many records.
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(256));
                let chunk = v[from..from + n].to_vec();
                for _ in 0..=rng.below(3) {
                    v.splice(at..at, chunk.iter().copied());
                }
            }
            8 => {
                // Splice: this input's head with another seed's tail.
                let other = rng.pick(seeds);
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            _ => v.truncate(at),
        }
    }
}

fn read_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect(),
        Err(e) => panic!("fuzz corpus {}: {e}", dir.display()),
    };
    paths.sort();
    let seeds: Vec<Vec<u8>> =
        paths.iter().map(|p| fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))).collect();
    assert!(!seeds.is_empty(), "fuzz corpus {} has no seeds", dir.display());
    seeds
}

fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn spawn_watchdog(
    name: String,
    current: Arc<Mutex<Vec<u8>>>,
    progress: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let (mut seen, mut since) = (u64::MAX, Instant::now());
        while !done.load(Ordering::Relaxed) {
            let now = progress.load(Ordering::Relaxed);
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if since.elapsed() > HANG {
                let input = current.lock().map(|c| c.clone()).unwrap_or_default();
                let saved = save_crash(&name, &input);
                eprintln!(
                    "fuzz target {name} hangs (no result in {} s) on input saved to {saved}: {}",
                    HANG.as_secs(),
                    escape(&input)
                );
                std::process::abort();
            }
            thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Writes a failing input where it can be found again; returns the path
/// (or why not).
fn save_crash(name: &str, input: &[u8]) -> String {
    let dir = env::var_os("BERTH_FUZZ_CRASH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env::temp_dir().join("berth-fuzz-crashes"))
        .join(name);
    // FNV-1a names the file by its content, so a crash found twice is
    // saved once.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("crash-{hash:016x}"));
    match fs::create_dir_all(&dir).and_then(|()| fs::write(&path, input)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("nowhere ({}: {e})", path.display()),
    }
}

fn panic_text(cause: &(dyn std::any::Any + Send)) -> String {
    match (cause.downcast_ref::<&str>(), cause.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "panic with a non-string payload".to_owned(),
    }
}

/// The input as a Rust byte string, at most 2 KiB of it.
pub fn escape(input: &[u8]) -> String {
    let mut s = String::from("b\"");
    for &b in input.iter().take(2048) {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(b as char),
            b => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    if input.len() > 2048 {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(seeds: &[&[u8]]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (i, s) in seeds.iter().enumerate() {
            fs::write(dir.path().join(format!("seed{i}")), s).unwrap();
        }
        dir
    }

    #[test]
    fn finds_a_planted_bug_and_names_the_input() {
        let dir = corpus(&[b"hello world"]);
        let err = panic::catch_unwind(|| {
            Target::new("planted", dir.path()).dict(["BOOM"]).time(Duration::from_secs(30)).run(|input| {
                assert!(!input.windows(4).any(|w| w == b"BOOM"), "planted bug");
            })
        })
        .unwrap_err();
        let msg = panic_text(&*err);
        assert!(msg.contains("fuzz target planted failed") && msg.contains("planted bug"), "{msg}");
        assert!(msg.contains("BOOM"), "the input is shown: {msg}");
        let saved = msg.split("saved to ").nth(1).and_then(|s| s.split("): ").next()).unwrap();
        assert!(fs::read(saved).unwrap().windows(4).any(|w| w == b"BOOM"), "{saved}");
        fs::remove_file(saved).unwrap();
    }

    #[test]
    fn seeds_are_replayed_first_and_mutants_stay_bounded() {
        let dir = corpus(&[b"seed-a", b"seed-b"]);
        let mut seen = Vec::new();
        let stats = Target::new("bounded", dir.path()).max_len(16).time(Duration::from_millis(200)).run(|input| {
            if seen.len() < 2 {
                seen.push(input.to_vec());
            } else {
                assert!(input.len() <= 16, "{input:?}");
            }
        });
        assert_eq!(seen, vec![b"seed-a".to_vec(), b"seed-b".to_vec()]);
        assert!(stats.inputs > 100, "{stats:?}");
    }

    #[test]
    fn an_empty_corpus_is_an_error() {
        let dir = corpus(&[]);
        assert!(panic::catch_unwind(|| Target::new("empty", dir.path()).run(|_| {})).is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_eq!(escape(b"a\"\\\n\x00"), "b\"a\\\"\\\\\\n\\x00\"");
        assert_eq!(parse_seed("0x10"), Some(16));
        assert_eq!(parse_seed("10"), Some(10));
    }
}
