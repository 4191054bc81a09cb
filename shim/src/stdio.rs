//! The container's stdout and stderr: two pipes whose write ends the init
//! got as fds 1 and 2, and whose read ends the shim drains into
//! `container.log` (format: [`berth_contract::log`], rotation:
//! [`crate::logfile`]).
//!
//! The shim reads whenever there is data, whatever berthd does, so a
//! container never blocks on its output. A record is one line; a line
//! longer than [`MAX_LINE`] is cut into partial (`P`) records, and bytes
//! left without a newline at EOF make a final partial record. The records of
//! one read are appended whole (one `write` per file they land in), so the
//! two streams' records never interleave mid-line.
use std::io;
use std::rc::Rc;

use crate::diag;
use crate::logfile::LogFile;
use crate::pty::FdIo;
use crate::streams::{Hub, STDERR, STDOUT};
use berth_contract::log as logfmt;
use berth_contract::now_nanos;

/// The longest record; longer lines are split into partial records.
pub const MAX_LINE: usize = 16 * 1024;

/// Splits a byte stream into log records, remembering an unfinished line.
#[derive(Debug, Default)]
pub struct Splitter {
    pending: Vec<u8>,
}

impl Splitter {
    /// Appends to `out` the records completed by `data`.
    pub fn feed(&mut self, out: &mut Vec<u8>, now: i64, stream: &str, mut data: &[u8]) {
        while let Some(i) = data.iter().position(|b| *b == b'\n') {
            let line = &data[..i];
            if self.pending.is_empty() && line.len() <= MAX_LINE {
                logfmt::encode(out, now, stream, false, line);
            } else {
                self.push(out, now, stream, line);
                logfmt::encode(out, now, stream, false, &self.pending);
                self.pending.clear();
            }
            data = &data[i + 1..];
        }
        self.push(out, now, stream, data);
        if self.pending.is_empty() && self.pending.capacity() > 4096 {
            // An idle container keeps no big buffer.
            self.pending = Vec::new();
        }
    }

    /// The stream ended: what is left becomes a partial record.
    pub fn finish(&mut self, out: &mut Vec<u8>, now: i64, stream: &str) {
        if !self.pending.is_empty() {
            logfmt::encode(out, now, stream, true, &self.pending);
        }
        self.pending = Vec::new();
    }

    /// Adds bytes of an unfinished line, emitting a partial record each time
    /// the buffer is full and more bytes come.
    fn push(&mut self, out: &mut Vec<u8>, now: i64, stream: &str, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.pending.len() == MAX_LINE {
                logfmt::encode(out, now, stream, true, &self.pending);
                self.pending.clear();
            }
            let take = (MAX_LINE - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }
}

/// Copies one output (a pipe, or the terminal) into the log, and to the
/// attached clients, until EOF (every writer gone).
pub async fn pump(rx: Rc<FdIo>, stream: &'static str, log: Rc<LogFile>, hub: Rc<Hub>) {
    let number = if stream == "stderr" { STDERR } else { STDOUT };
    let mut buf = vec![0u8; MAX_LINE];
    let mut split = Splitter::default();
    let mut out = Vec::new();
    loop {
        match rx.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                split.feed(&mut out, now_nanos(), stream, &buf[..n]);
                log.append(&out);
                hub.publish(number, &buf[..n]);
                out.clear();
                if out.capacity() > 4 * MAX_LINE {
                    out = Vec::new();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                diag!("read {stream}: {e}");
                break;
            }
        }
    }
    split.finish(&mut out, now_nanos(), stream);
    log.append(&out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(&mut out, 7, "stdout", c);
        }
        s.finish(&mut out, 7, "stdout");
        out.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let r = logfmt::decode(l).unwrap();
                assert_eq!((r.time, r.stream), (7, "stdout"));
                (r.partial, r.content.to_vec())
            })
            .collect()
    }

    fn full(s: &[u8]) -> (bool, Vec<u8>) {
        (false, s.to_vec())
    }

    fn part(s: &[u8]) -> (bool, Vec<u8>) {
        (true, s.to_vec())
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(records(&[b"a\nb", b"c\n\nd"]), vec![full(b"a"), full(b"bc"), full(b""), part(b"d")]);
        assert_eq!(records(&[b"", b"x\n"]), vec![full(b"x")]);
        assert_eq!(records(&[]), vec![]);
    }

    #[test]
    fn long_lines_become_partial_records() {
        let big = vec![b'x'; MAX_LINE];
        // Exactly MAX_LINE then a newline: one full record.
        let mut input = big.clone();
        input.push(b'\n');
        assert_eq!(records(&[&input]), vec![full(&big)]);
        // One byte more: a partial record of MAX_LINE, then the rest.
        let mut input = big.clone();
        input.extend_from_slice(b"yz\n");
        assert_eq!(records(&[&input]), vec![part(&big), full(b"yz")]);
        // The same split over many small reads.
        let chunks: Vec<&[u8]> = input.chunks(1000).collect();
        assert_eq!(records(&chunks), vec![part(&big), full(b"yz")]);
    }
}
