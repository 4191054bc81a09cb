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
}

/// The state is in the error for front ends; the texts say "running" for a
/// paused container too, as berth always has.
fn wrong_state(name: &str, _state: Status, wanted: Wanted) -> String {
    match wanted {
        Wanted::Running => format!("container {name} is not running"),
        Wanted::Startable => format!("container {name} is already running"),
        Wanted::Removable => format!(
            "cannot remove container \"/{name}\": container is running: stop the container before removing or force remove"
        ),
        Wanted::Dead => format!("container {name} is running"),
        Wanted::Attachable => "You cannot attach to a stopped container, start it first".to_owned(),
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
            s(ContainerError::NameInUse { name: "web".into(), holder: "abc".into() }),
            "Conflict. The container name \"/web\" is already in use by container \"abc\". You have to remove (or rename) that container to be able to reuse that name."
        );
    }
}
