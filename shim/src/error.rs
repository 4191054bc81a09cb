//! The shim's errors. What berthd shows a person is the `Display` of a
//! [`ShimError`] (one line) and the exit code of [`ShimError::exit_code`]:
//! 127 not found, 126 cannot invoke, 1 anything else, as Docker does.
use std::io;
use std::path::PathBuf;

/// Everything that can stop a container from starting.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("read {path}: {}", os_msg(source))]
    ReadSpec { path: PathBuf, source: io::Error },
    #[error("parse {path}: {source}")]
    ParseSpec { path: PathBuf, source: serde_json::Error },
    /// `config.json` asks for something the shim cannot do.
    #[error("{0}")]
    Spec(String),
    /// A system call in the shim itself failed.
    #[error("{what}: {}", os_msg(source))]
    Sys { what: String, source: io::Error },
    /// Another shim serves this container: its files are left alone.
    #[error("a shim is already running for this container ({})", socket.display())]
    AlreadyRunning { socket: PathBuf },
    /// The container's init failed before its `execve` succeeded.
    #[error("{message}")]
    Init { code: i32, message: String },
}

impl From<berth_contract::seccomp::SeccompError> for ShimError {
    fn from(e: berth_contract::seccomp::SeccompError) -> Self {
        Self::Spec(e.to_string())
    }
}

impl ShimError {
    /// The exit code of `berth-shim start` for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Init { code, .. } => *code,
            _ => 1,
        }
    }

    /// A failed system call, with what the shim was doing.
    pub fn sys(what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Self::Sys { what: what.into(), source: source.into() }
    }
}

/// `strerror` text without Rust's "(os error N)" suffix: the messages people
/// see read like the C tools' (`mount overlay on /x: Invalid argument`).
pub fn os_msg(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_msg(n),
        None => e.to_string(),
    }
}

/// `strerror(n)`.
pub fn errno_msg(n: i32) -> String {
    nix::errno::Errno::from_raw(n).desc().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_strerror() {
        let e = ShimError::sys("mount overlay on /r", io::Error::from_raw_os_error(22));
        assert_eq!(e.to_string(), "mount overlay on /r: Invalid argument");
        assert_eq!(e.exit_code(), 1);
        let e = ShimError::Init { code: 127, message: "exec: \"x\": executable file not found in $PATH".into() };
        assert_eq!(e.exit_code(), 127);
        assert_eq!(errno_msg(2), "No such file or directory");
    }
}
