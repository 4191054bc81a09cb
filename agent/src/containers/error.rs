//! `ContainerError`: what the containers service refuses, with the facts a
//! front end needs to answer (which key was not found, which state a call
//! did not fit). The texts are Docker's, byte for byte where Docker has
//! one; the gRPC code of each is chosen once, in `api::status`.
use super::Status;

/// What a call needed the container to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Running (kill, exec, signals).
    Running,
    /// Created or exited (start).
    Startable,
    /// Created or exited (rm without `-f`).
    Removable,
    /// Created or exited, after `rm -f`'s kill: still not, after retries.
    Dead,
    /// Running, or exited with output to replay (attach).
    Attachable,
    /// Running and not paused (pause).
    Pausable,
    /// Paused (unpause).
    Paused,
    /// Running and not paused (exec).
    Execable,
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// No container has this ID, ID prefix or name.
    #[error("No such container: {key}")]
    NotFound { key: String },
    /// More than one ID starts with the prefix.
    #[error("multiple containers found with provided prefix: {prefix}")]
    AmbiguousPrefix { prefix: String },
    /// The name is another container's.
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, holder: String },
    /// The call does not fit the container's state.
    #[error("{}", wrong_state(name, *state, *wanted))]
    WrongState { name: String, state: Status, wanted: Wanted },
    /// The shim is gone although the record says the container runs (it
    /// exited just now).
    #[error("container {name} is not running ({detail})")]
    ShimGone { name: String, detail: String },
    /// A copy into or out of a container whose process went away.
    #[error("container {key} stopped during the copy")]
    StoppedDuringCopy { key: String },
    /// A live container without a process to copy through.
    #[error("container {key} has no live process to copy through")]
    NoLiveProcess { key: String },
    /// `cp` of a path the container does not have.
    #[error("Could not find the file {path} in container {key}")]
    NoSuchPath { key: String, path: String },
    /// `cp`: what the paths or the archive do not allow.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// The container's process could not be started; the text says why in
    /// the words of the runtime (`exec: "x": executable file not found in
    /// $PATH`), the code is the one Docker exits with (126, 127, ...).
    #[error("failed to start container {id}: {message}")]
    StartFailed { id: String, message: String, code: i32 },
    /// A configuration (create, exec) or an argument the service refuses.
    #[error(transparent)]
    Invalid(#[from] InvalidError),
}

/// What a create, exec, kill, list or log option gets refused for. The
/// texts are Docker's where Docker has one.
#[derive(Debug, thiserror::Error)]
pub enum InvalidError {
    #[error("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    Name { name: String },
    #[error("no command specified")]
    NoCommand,
    #[error("invalid restart policy '{name}'")]
    RestartPolicy { name: String },
    #[error("invalid restart policy: maximum retry count can only be used with 'on-failure'")]
    RestartRetriesOnlyOnFailure,
    #[error("invalid restart policy: maximum retry count cannot be negative")]
    RestartRetriesNegative,
    #[error("Conflicting options: --restart and --rm")]
    RestartWithAutoRemove,
    /// A health check duration below Docker's 1 ms minimum, or negative
    /// retries (`field`: `Interval`, `Timeout`, `StartPeriod`).
    #[error("{field} in Healthcheck cannot be less than 1ms")]
    HealthDuration { field: &'static str },
    #[error("Retries in Healthcheck cannot be negative")]
    HealthRetries,
    /// A `--group-add` name the image's /etc/group does not have.
    #[error("Unable to find group {group}: no matching entries in group file")]
    Group { group: String },
    /// `--init` on a host without a static init binary.
    #[error("no init binary for --init: install Debian's tini (it brings {path})")]
    NoInit { path: &'static str },
    #[error("Couldn't find PID field in ps output")]
    TopNoPid,
    /// `top`'s ps refused its options (its own words).
    #[error("Error running ps: {0}")]
    Ps(String),
    #[error("Neither old nor new names may be empty")]
    RenameEmpty,
    #[error("Renaming a container with the same name as its current name")]
    RenameSame,
    #[error("invalid environment variable: {var}")]
    Env { var: String },
    #[error("the working directory '{path}' is invalid, it needs to be an absolute path")]
    Workdir { path: String },
    /// A uid or gid that would overflow to "unchanged" (root).
    #[error(transparent)]
    User(#[from] berth_contract::user::IdOutOfRange),
    #[error("invalid signal: {signal}")]
    Signal { signal: String },
    #[error("bad format of filter (expected name=value): {item}")]
    FilterFormat { item: String },
    #[error("invalid filter 'status={value}'")]
    FilterStatus { value: String },
    #[error("invalid filter '{key}'")]
    FilterKey { key: String },
    #[error("invalid {key} '{value}': want a size above 0 such as 100k, 10m or 1g, or a number of bytes")]
    LogSize { key: &'static str, value: String },
    #[error("invalid {key} '{value}': want a number of files from 1 to {max}")]
    LogFiles { key: &'static str, value: String, max: u32 },
    #[error("unknown log opt '{key}': berth's log takes {known}")]
    LogOption { key: String, known: &'static str },
    /// A limit Docker's rules refuse (`Minimum memory limit allowed is
    /// 6MB`, ...).
    #[error(transparent)]
    Resource(#[from] super::ResourceError),
}

/// What `cp` refuses, in Docker's words.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("{path}: no such directory")]
    NoSuchDirectory { path: String },
    #[error("extraction point is not a directory")]
    ExtractionPoint,
    #[error("invalid copy source content")]
    SourceContent,
    #[error("cannot copy directory")]
    Directory,
    /// A tar stream that cannot be read or holds an entry that is refused
    /// (the text names it).
    #[error("{0}")]
    Archive(String),
}

/// The state is in the error for front ends; the texts say "running" for a
/// paused container too, as Docker does, except where Docker names the
/// pause (pause, unpause, exec, attach).
fn wrong_state(name: &str, state: Status, wanted: Wanted) -> String {
    match wanted {
        Wanted::Pausable if state == Status::Paused => format!("Container {name} is already paused"),
        Wanted::Pausable => format!("Container {name} is not running"),
        Wanted::Paused if state == Status::Running => format!("Container {name} is not paused"),
        Wanted::Paused => format!("Container {name} is not running"),
        Wanted::Execable if state == Status::Paused => {
            format!("Container {name} is paused, unpause the container before exec")
        }
        Wanted::Execable => format!("container {name} is not running"),
        Wanted::Attachable if state == Status::Paused => {
            "You cannot attach to a paused container, unpause it first".to_owned()
        }
        Wanted::Running => format!("container {name} is not running"),
        Wanted::Startable => format!("container {name} is already running"),
        Wanted::Removable => format!(
            "cannot remove container \"/{name}\": container is running: stop the container before removing or force remove"
        ),
        Wanted::Dead => format!("container {name} is running"),
        Wanted::Attachable => "You cannot attach to a stopped container, start it first".to_owned(),
    }
}

impl From<InvalidError> for crate::error::AgentError {
    fn from(e: InvalidError) -> Self {
        ContainerError::Invalid(e).into()
    }
}

impl From<CopyError> for crate::error::AgentError {
    fn from(e: CopyError) -> Self {
        ContainerError::Copy(e).into()
    }
}

impl ContainerError {
    pub fn not_found(key: &str) -> Self {
        ContainerError::NotFound { key: key.to_owned() }
    }

    pub fn wrong_state(name: &str, state: Status, wanted: Wanted) -> Self {
        ContainerError::WrongState { name: name.to_owned(), state, wanted }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts berthctl shows, and scripts match, are Docker's.
    #[test]
    fn texts_are_dockers() {
        let s = |e: ContainerError| e.to_string();
        assert_eq!(s(ContainerError::not_found("web")), "No such container: web");
        assert_eq!(
            s(ContainerError::wrong_state("web", Status::Running, Wanted::Removable)),
            "cannot remove container \"/web\": container is running: stop the container before removing or force remove"
        );
        assert_eq!(
            s(ContainerError::wrong_state("web", Status::Exited, Wanted::Running)),
            "container web is not running"
        );
        assert_eq!(
            s(ContainerError::wrong_state("web", Status::Running, Wanted::Startable)),
            "container web is already running"
        );
        assert_eq!(s(ContainerError::wrong_state("web", Status::Paused, Wanted::Dead)), "container web is running");
        assert_eq!(
            s(ContainerError::wrong_state("web", Status::Paused, Wanted::Pausable)),
            "Container web is already paused"
        );
        assert_eq!(
            s(ContainerError::wrong_state("web", Status::Exited, Wanted::Pausable)),
            "Container web is not running"
        );
        assert_eq!(
            s(ContainerError::wrong_state("web", Status::Running, Wanted::Paused)),
            "Container web is not paused"
        );
        assert_eq!(
            s(ContainerError::wrong_state("web", Status::Paused, Wanted::Execable)),
            "Container web is paused, unpause the container before exec"
        );
        assert_eq!(
            s(ContainerError::wrong_state("web", Status::Paused, Wanted::Attachable)),
            "You cannot attach to a paused container, unpause it first"
        );
        assert_eq!(
            s(ContainerError::NameInUse { name: "web".into(), holder: "abc".into() }),
            "Conflict. The container name \"/web\" is already in use by container \"abc\". You have to remove (or rename) that container to be able to reuse that name."
        );
        let i = |e: InvalidError| ContainerError::from(e).to_string();
        assert_eq!(
            i(InvalidError::Name { name: "a b".into() }),
            "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert_eq!(i(InvalidError::NoCommand), "no command specified");
        assert_eq!(i(InvalidError::RenameSame), "Renaming a container with the same name as its current name");
        assert_eq!(i(InvalidError::Env { var: "=x".into() }), "invalid environment variable: =x");
        assert_eq!(
            i(InvalidError::Workdir { path: "rel".into() }),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
        assert_eq!(i(InvalidError::Signal { signal: "NOPE".into() }), "invalid signal: NOPE");
        assert_eq!(i(InvalidError::FilterStatus { value: "up".into() }), "invalid filter 'status=up'");
        assert_eq!(i(InvalidError::FilterKey { key: "colour".into() }), "invalid filter 'colour'");
        assert_eq!(i(InvalidError::FilterFormat { item: "x".into() }), "bad format of filter (expected name=value): x");
        let c = |e: CopyError| ContainerError::from(e).to_string();
        assert_eq!(c(CopyError::NotADirectory { path: "/etc/passwd".into() }), "/etc/passwd: not a directory");
        assert_eq!(c(CopyError::Directory), "cannot copy directory");
        assert_eq!(
            s(ContainerError::StartFailed { id: "abc".into(), message: "exec: \"x\": nope".into(), code: 127 }),
            "failed to start container abc: exec: \"x\": nope"
        );
    }
}
