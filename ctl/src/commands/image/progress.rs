//! The progress of a pull or a push, drawn as `docker pull` draws it: on
//! a terminal one line per layer, redrawn in place, with a bar while bytes
//! move; elsewhere one line per change of state.
use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use anyhow::Result;

use crate::out::outln;
use crate::table;

/// Layer lines, as `docker pull` and `docker push` draw them.
pub(crate) struct Progress {
    tty: bool,
    /// Layer ids in the order first seen; their line index.
    lines: HashMap<String, usize>,
    count: usize,
    /// The last status printed per id (no repeats off a terminal).
    last: HashMap<String, String>,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self { tty: std::io::stdout().is_terminal(), lines: HashMap::new(), count: 0, last: HashMap::new() }
    }

    /// A progress message: a line about the whole pull or push (no `id`),
    /// or a layer's.
    /// Texts from the registry are escaped (`out::shown`): a hostile one
    /// must not move the cursor these lines are drawn with.
    pub(crate) fn show(&mut self, id: &str, status: &str, current: u64, total: u64) -> Result<()> {
        let (id, status) = (crate::out::shown(id), crate::out::shown(status));
        if id.is_empty() {
            self.line(&status)
        } else {
            self.layer(&id, &status, current, total);
            Ok(())
        }
    }

    pub(crate) fn line(&mut self, text: &str) -> Result<()> {
        outln!("{text}")?;
        if self.tty {
            // Lines above no longer move with the layer lines.
            self.lines.clear();
            self.count = 0;
        }
        Ok(())
    }

    pub(crate) fn layer(&mut self, id: &str, status: &str, current: u64, total: u64) {
        let moving = matches!(status, "Downloading" | "Pushing" | "Extracting");
        let text = if moving && self.tty && total > 0 {
            format!("{id}: {status} {}", bar(current, total))
        } else {
            format!("{id}: {status}")
        };
        let mut out = std::io::stdout().lock();
        if !self.tty {
            if moving || self.last.get(id).is_some_and(|s| s == status) {
                return;
            }
            self.last.insert(id.to_owned(), status.to_owned());
            let _ = writeln!(out, "{text}");
            return;
        }
        match self.lines.get(id) {
            None => {
                self.lines.insert(id.to_owned(), self.count);
                self.count += 1;
                let _ = writeln!(out, "{text}");
            }
            Some(&i) => {
                let up = self.count - i;
                let _ = write!(out, "\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B");
            }
        }
        let _ = out.flush();
    }
}

pub(crate) fn bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = (current.min(total) * WIDTH / total.max(1)) as usize;
    let mut b = "=".repeat(filled);
    if filled < WIDTH as usize {
        b.push('>');
    }
    format!("[{b:<50}] {:>8}/{}", table::human_size_4(current), table::human_size_4(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars() {
        assert_eq!(table::human_size_4(999), "999B");
        assert_eq!(table::human_size_4(1000), "1kB");
        assert_eq!(table::human_size_4(1_234_567), "1.235MB");
        assert_eq!(table::human_size_4(3_400_000), "3.4MB");
        assert_eq!(table::human_size_4(123_450_000), "123.5MB");
        assert_eq!(table::human_size_4(20_000_000), "20MB");
        let b = bar(1, 2);
        assert!(b.starts_with(&format!("[{}>", "=".repeat(25))), "{b}");
        assert!(b.ends_with("1B/2B"), "{b}");
        assert!(bar(5, 5).starts_with(&format!("[{}]", "=".repeat(50))));
        assert!(bar(0, 0).starts_with("[>"));
    }
}
