//! Everything berthctl prints to stdout goes through here, and so does
//! every text of berthd's that it shows a person.
//!
//! A closed stdout (`berthctl images | head`) ends berthctl quietly with
//! 141, the status a shell reports for a tool killed by SIGPIPE as `ls` or
//! `docker` are. `println!` panics on that `EPIPE` instead; so stdout is
//! written with `outln!`, whose error (`Closed`) travels up like any
//! other and `main` turns into the exit. Why not give SIGPIPE back its
//! default action, as C tools have it: the signal cannot tell stdout from
//! berthd's socket, which tokio writes with `write(2)`, not with
//! `MSG_NOSIGNAL`; a berthd going away in the middle of `load` would then
//! kill berthctl without a word, where now it says what happened. And the
//! error path runs destructors, so a terminal left in raw mode by `-it`
//! is restored.
use std::io::Write;

use berth_proto::text;

/// stdout (or, for a container's output, stderr) was closed by its reader.
#[derive(Debug, thiserror::Error)]
#[error("output is closed")]
pub struct Closed;

/// The exit code of a berthctl whose stdout was closed: 128 + SIGPIPE.
pub const CLOSED_EXIT: u8 = 128 + 13;

/// Writes to stdout; a closed stdout is `Closed`.
pub fn print(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    std::io::stdout().lock().write_fmt(args).map_err(output_error)
}

/// An error of a write to stdout or stderr: `Closed` when the reader went
/// away.
pub fn output_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Closed.into()
    } else {
        anyhow::Error::new(e).context("write output")
    }
}

/// Whether `e` is, or was caused by, a closed stdout.
pub fn is_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Closed>())
}

/// A text from berthd, or one quoting what berthd sent, as a person may
/// see it: its control characters escaped, its length bounded. berthd
/// does the same to its messages; this is for older or foreign ones, and
/// for texts berthctl puts around them.
pub fn shown(text: &str) -> String {
    text::printable(text, 2 * text::MAX_MESSAGE)
}

/// Docker's line for an error of berthd's.
pub fn daemon_error(s: &tonic::Status) -> String {
    daemon_text(s.message())
}

/// Docker's line for an error berthd reported in a message, not a status.
pub fn daemon_text(message: &str) -> String {
    shown(&format!("Error response from daemon: {message}"))
}

/// `println!` that fails with `Closed` instead of panicking.
macro_rules! outln {
    () => {
        $crate::out::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that fails with `Closed` instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::print(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};
