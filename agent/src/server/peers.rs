//! The accept side of berthd's socket: connections counted per peer uid
//! (`SO_PEERCRED`, unix(7)) and bounded, so one user's idle connections
//! cannot take every file descriptor berthd has.
//!
//! Before this, 1,100 idle connections made berthd unresponsive to all:
//! with the usual soft `RLIMIT_NOFILE` of 1024, `accept(2)` failed with
//! `EMFILE` from the 1,0xx-th on, tonic retried at once (a busy loop) and
//! nobody else's connection was taken off the backlog while they stayed
//! open. Now a connection beyond its uid's bound is closed as soon as it
//! is accepted, which keeps the backlog moving for other peers, and
//! `EMFILE` pauses accepting for a moment instead of spinning.
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tonic::transport::server::{Connected, UdsConnectInfo};

use super::authority::AuthorityFilter;

/// Connections a uid may hold open at once unless `--max-connections-per-uid`
/// says otherwise: far more than any client needs (berthctl holds one),
/// few enough that four users cannot exhaust a 1024-fd limit alone.
pub const DEFAULT_MAX_PER_UID: usize = 256;

/// How long accepting pauses when berthd is out of file descriptors.
const FD_PAUSE: Duration = Duration::from_millis(100);

/// Open connections per uid; a uid at its bound has had its refusal logged
/// once (`warned`), so a flood does not flood the log too.
#[derive(Default)]
struct Counts {
    open: HashMap<u32, usize>,
    warned: HashMap<u32, bool>,
}

/// The listener's stream of admitted connections, for
/// `serve_with_incoming`.
pub struct Incoming {
    listener: UnixListener,
    max_per_uid: usize,
    counts: Arc<Mutex<Counts>>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Incoming {
    pub fn new(listener: UnixListener, max_per_uid: usize) -> Self {
        Self { listener, max_per_uid, counts: Arc::default(), pause: None }
    }

    /// Counts a connection of `uid` in, or refuses it at the bound.
    fn admit(&self, uid: u32) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let open = counts.open.get(&uid).copied().unwrap_or(0);
        if open >= self.max_per_uid {
            if !counts.warned.insert(uid, true).unwrap_or(false) {
                tracing::warn!(uid, max = self.max_per_uid, "closing new connections of a uid at its bound");
            }
            return None;
        }
        counts.open.insert(uid, open + 1);
        counts.warned.remove(&uid);
        Some(Slot { counts: self.counts.clone(), uid })
    }
}

impl Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(pause) = self.pause.as_mut() {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            // `poll_accept` spends tokio's cooperative budget, so a flood of
            // refused connections still lets the other tasks run.
            match ready!(self.listener.poll_accept(cx)) {
                Ok((stream, _)) => {
                    let uid = match stream.peer_cred() {
                        Ok(cred) => cred.uid(),
                        Err(e) => {
                            tracing::debug!(error = %e, "closing a connection without peer credentials");
                            continue;
                        }
                    };
                    match self.admit(uid) {
                        Some(slot) => return Poll::Ready(Some(Ok(Conn::new(stream, slot)))),
                        None => continue,
                    }
                }
                Err(e) if is_out_of_fds(&e) => {
                    tracing::warn!(error = %e, "out of file descriptors; accepting again shortly");
                    self.pause = Some(Box::pin(tokio::time::sleep(FD_PAUSE)));
                }
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

/// `EMFILE`, `ENFILE` and the like: accept(2) fails until something closes.
fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// A uid's place among its open connections, given back on drop.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = counts.open.get_mut(&self.uid) {
            *open -= 1;
            if *open == 0 {
                counts.open.remove(&self.uid);
            }
        }
    }
}

/// An admitted connection; its uid's count goes down when it closes.
/// What the client sends reaches h2 through an [`AuthorityFilter`] until
/// the filter steps aside (`authority.rs`).
pub struct Conn {
    stream: UnixStream,
    _slot: Slot,
    filter: AuthorityFilter,
    /// Filtered bytes h2 has yet to read.
    ready: Vec<u8>,
    taken: usize,
}

impl Conn {
    fn new(stream: UnixStream, slot: Slot) -> Self {
        Self { stream, _slot: slot, filter: AuthorityFilter::default(), ready: Vec::new(), taken: 0 }
    }
}

impl Connected for Conn {
    type ConnectInfo = UdsConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.taken < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.taken);
                buf.put_slice(&this.ready[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.ready.len() {
                    this.ready.clear();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.filter.passing() {
                return Pin::new(&mut this.stream).poll_read(cx, buf);
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.stream).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    this.filter.finish(&mut this.ready);
                    if this.ready.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => this.filter.feed(read.filled(), &mut this.ready),
                other => return other,
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    /// The bound holds per uid, and a closed connection frees its place.
    #[tokio::test]
    async fn bounds_connections_per_uid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let mut incoming = Incoming::new(UnixListener::bind(&path).unwrap(), 2);
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(UnixStream::connect(&path).await.unwrap());
        }
        let first = incoming.next().await.unwrap().unwrap();
        let _second = incoming.next().await.unwrap().unwrap();
        // The third is closed on accept, and nothing else is waiting.
        let nothing = tokio::time::timeout(Duration::from_millis(200), incoming.next()).await;
        assert!(nothing.is_err(), "a third connection was admitted");
        let mut buf = [0u8; 1];
        let n = tokio::io::AsyncReadExt::read(&mut clients[2], &mut buf).await.unwrap();
        assert_eq!(n, 0, "the third connection was closed");
        // A place given back is a place for the next connection.
        drop(first);
        let _fourth = UnixStream::connect(&path).await.unwrap();
        let admitted = tokio::time::timeout(Duration::from_secs(5), incoming.next()).await;
        assert!(matches!(admitted, Ok(Some(Ok(_)))), "the fourth connection was refused");
    }
}
