//! Terminals, and the non-blocking descriptors the shim's event loop reads
//! and writes (pipes and terminal masters alike).
//!
//! A container or exec process with a terminal gets a pseudo-terminal of
//! the container's own devpts, as runc gives one: the process itself, once
//! it is in the container's mount namespace (the init after `pivot_root`,
//! an exec'd child after `setns`), opens `/dev/ptmx`, takes the slave side
//! as its stdin, stdout, stderr and controlling terminal, and sends the
//! master to the shim over a socket (`SCM_RIGHTS`); the shim keeps it. So
//! `tty` prints `/dev/pts/N` inside, as it does under Docker. The pair is
//! sized with the client's window before the process's first byte.
//!
//! The container owns its `/dev`: `/dev/ptmx` must be a character device,
//! and the slave is reached from the master (`TIOCGPTPEER`), never by a
//! path the container could have replaced.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::Winsize;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::{fstat, SFlag};
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

/// Opens a pair from the devpts behind `/dev/ptmx` of the caller's root,
/// sized `cols` x `rows` (0 for unknown); both ends are close-on-exec.
pub fn open(cols: u16, rows: u16) -> io::Result<Pty> {
    // No magic links (`/proc/self/fd/N`): only the container's own files.
    // Non-blocking, so that a FIFO put there by the container cannot hang
    // the open; a terminal master is made blocking again.
    let master = rustix::fs::openat2(
        rustix::fs::CWD,
        "/dev/ptmx",
        rustix::fs::OFlags::RDWR
            | rustix::fs::OFlags::NOCTTY
            | rustix::fs::OFlags::CLOEXEC
            | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )?;
    let st = fstat(&master)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR {
        return Err(io::Error::other("/dev/ptmx is not a character device"));
    }
    fcntl(master.as_fd(), FcntlArg::F_SETFL(OFlag::O_RDWR))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which lives for
    // the call; on a descriptor that is not a master it fails with ENOTTY.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: TIOCGPTPEER takes open flags as an integer and returns a new
    // descriptor of the slave, or -1.
    let slave =
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    resize(master.as_fd(), cols, rows)?;
    Ok(Pty { master, slave })
}

/// Sends a terminal master over `socket` (one byte and the descriptor).
pub fn send_master(socket: BorrowedFd<'_>, master: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket.as_raw_fd(), &[IoSlice::new(b"m")], &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Receives the master a process sent with `send_master`; an error when it
/// closed its end without sending one.
pub fn recv_master(socket: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => {}
            other => break other?,
        }
    };
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let mut owned: Vec<OwnedFd> =
                // SAFETY: descriptors just received are this process's and
                // owned by nothing else.
                fds.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }).collect();
            if owned.len() == 1 {
                return Ok(owned.remove(0));
            }
        }
    }
    Err(io::Error::other("the process sent no terminal"))
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

    #[test]
    fn a_master_crosses_a_socket_and_still_drives_its_slave() {
        let pty = open(80, 24).unwrap();
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        send_master(theirs.as_fd(), pty.master.as_fd()).unwrap();
        drop(theirs);
        let master = recv_master(ours.as_fd()).unwrap();
        drop(pty.master);
        // What the slave writes comes out of the received master.
        nix::unistd::write(&pty.slave, b"hi").unwrap();
        let mut buf = [0u8; 8];
        let n = nix::unistd::read(&master, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi");
        // Nothing sent, end of stream: an error, not a hang.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(theirs);
        let err = recv_master(ours.as_fd()).unwrap_err();
        assert_eq!(err.to_string(), "the process sent no terminal");
    }
}
