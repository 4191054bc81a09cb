//! The blocking end of a stream of byte chunks: an `io::Write` that cuts
//! what is written into chunks of [`CHUNK`] bytes and sends each through a
//! bounded queue to the async task that streams them (berthd's `Save`,
//! `Export` and `CopyFrom`; berthctl's `cp` to a container). A full queue
//! slows the writer down; a queue whose reader is gone is a broken pipe.
//! Only for use in a blocking task or thread.
use std::io::{self, Write};

use tokio::sync::mpsc;

/// Bytes of one chunk: large enough that a message's overhead does not
/// count, small enough to be far under gRPC's message limits.
pub const CHUNK: usize = 1 << 20;

pub struct ChunkWriter<T> {
    tx: mpsc::Sender<T>,
    wrap: fn(Vec<u8>) -> T,
    buf: Vec<u8>,
    total: u64,
}

impl<T> ChunkWriter<T> {
    /// Chunks go to `tx` as `wrap(bytes)`.
    pub fn new(tx: mpsc::Sender<T>, wrap: fn(Vec<u8>) -> T) -> Self {
        Self { tx, wrap, buf: Vec::with_capacity(CHUNK), total: 0 }
    }

    /// Bytes sent so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.total += data.len() as u64;
        self.tx
            .blocking_send((self.wrap)(data))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the other end of the stream went away"))
    }
}

impl<T> Write for ChunkWriter<T> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = bytes.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&bytes[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_whole_until_the_flush_and_a_gone_reader_is_a_broken_pipe() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut w = ChunkWriter::new(tx, |d: Vec<u8>| d.len());
        w.write_all(&vec![7u8; CHUNK * 2 + 10]).unwrap();
        assert_eq!((rx.try_recv().unwrap(), rx.try_recv().unwrap()), (CHUNK, CHUNK));
        assert!(rx.try_recv().is_err(), "the tail waits for the flush");
        w.flush().unwrap();
        assert_eq!(rx.try_recv().unwrap(), 10);
        assert_eq!(w.total(), (CHUNK * 2 + 10) as u64);
        drop(rx);
        w.write_all(b"x").unwrap();
        assert_eq!(w.flush().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
