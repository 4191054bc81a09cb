//! Terminals, and the non-blocking descriptors the shim's event loop reads
//! and writes (pipes and terminal masters alike).
//!
//! A container or exec process with a terminal gets the slave side of a
//! pseudo-terminal pair opened by the shim, as its stdin, stdout, stderr
//! and controlling terminal; the shim keeps the master. The pair is opened
//! with the client's window size, so the size is right from the process's
//! first byte. The pair lives in the host's devpts: the process sees a
//! terminal (`isatty`, `stty`, job control), but `ttyname(3)` finds no
//! `/dev/pts/N` inside the container's own devpts.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::Winsize;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The size a terminal gets when the client's is unknown.
pub const DEFAULT_SIZE: (u16, u16) = (80, 24);

/// A pseudo-terminal pair.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

fn winsize(cols: u16, rows: u16) -> Winsize {
    let (cols, rows) = if cols == 0 || rows == 0 { DEFAULT_SIZE } else { (cols, rows) };
    Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
}

/// Opens a pair sized `cols` x `rows` (0 for unknown); the master is
/// close-on-exec.
pub fn open(cols: u16, rows: u16) -> io::Result<Pty> {
    let ws = winsize(cols, rows);
    let pair = nix::pty::openpty(Some(&ws), None)?;
    set_cloexec(pair.master.as_fd())?;
    Ok(Pty { master: pair.master, slave: pair.slave })
}

fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// Sets the window size of the terminal behind `fd`; its foreground
/// process group gets SIGWINCH from the kernel.
pub fn resize(fd: BorrowedFd<'_>, cols: u16, rows: u16) -> io::Result<()> {
    let ws = winsize(cols, rows);
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which lives
    // for the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// In a new session leader (after `setsid`): makes the terminal on `fd`
/// its controlling terminal.
pub fn set_controlling(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument and touches no memory.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pipe end or terminal master, non-blocking, driven by the runtime.
#[derive(Debug)]
pub struct FdIo {
    fd: AsyncFd<OwnedFd>,
}

impl FdIo {
    /// Takes `fd`, makes it non-blocking and registers it.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
        fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // SAFETY: an `OwnedFd` is a valid open descriptor that stays the
        // same until it is dropped, which happens with the `AsyncFd`.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::WRITABLE) }
            .map_err(io::Error::from)?;
        Ok(Self { fd })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }

    /// Reads what is there; `Ok(0)` at the end (EOF, or EIO on a terminal
    /// master whose slave side every process has closed).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(io::Error::from)) {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }

    /// Writes all of `data`, waiting while the reader is behind.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from)) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_opens_with_its_size_and_resizes() {
        let pty = open(132, 43).unwrap();
        let size = |fd: BorrowedFd<'_>| {
            // SAFETY: winsize is plain old data; all zeroes is a valid value.
            let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
            // SAFETY: TIOCGWINSZ writes one winsize into `ws`.
            assert_eq!(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) }, 0);
            (ws.ws_col, ws.ws_row)
        };
        assert_eq!(size(pty.slave.as_fd()), (132, 43));
        resize(pty.master.as_fd(), 100, 30).unwrap();
        assert_eq!(size(pty.slave.as_fd()), (100, 30));
        let unknown = open(0, 0).unwrap();
        assert_eq!(size(unknown.slave.as_fd()), DEFAULT_SIZE);
    }
}
