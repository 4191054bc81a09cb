//! berthd's life: open the state, recover containers, serve gRPC on the
//! unix socket until SIGTERM or SIGINT. Stopping berthd stops no container.
use std::os::unix::fs::PermissionsExt;

use berth_proto::v1::{containers_server::ContainersServer, images_server::ImagesServer, system_server::SystemServer};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::agent::Agent;
use crate::api::{ContainersApi, ImagesApi, SystemApi};
use crate::config::Config;
use crate::error::{AgentError, IoContext, Result};
use crate::shim_binary::SealedShim;

mod authority;
pub(crate) mod metadata;
mod peers;
pub mod spans;
pub use peers::DEFAULT_MAX_PER_UID;

/// berthd's directories with their modes: the root private to root, the
/// state dir passable (the socket's group reaches berthd.sock in it).
pub(crate) fn prepare_dirs(layout: &berth_contract::Layout) -> Result<()> {
    private_dir(layout.root(), 0o700)?;
    private_dir(layout.state(), 0o711)
}

/// Gives the socket to its group: the one asked for (which must exist), or
/// `berth` when the host has it (as dockerd does with `docker`).
fn socket_group(socket: &std::path::Path, group: Option<&str>) -> Result<()> {
    let name = group.unwrap_or("berth");
    let found =
        nix::unistd::Group::from_name(name).map_err(|e| AgentError::Internal(format!("look up group {name}: {e}")))?;
    let gid = match (found, group) {
        (Some(g), _) => g.gid,
        (None, None) => return Ok(()),
        (None, Some(_)) => return Err(AgentError::Startup(format!("group {name} not found"))),
    };
    nix::unistd::chown(socket, None, Some(gid)).map_err(|e| AgentError::Io {
        context: format!("chown {} to group {name}", socket.display()),
        source: e.into(),
    })
}

/// Creates `dir` if needed and gives it `mode` (Docker's root is 0710, its
/// files readable by root alone: a container's spec holds its environment,
/// passwords included).
fn private_dir(dir: &std::path::Path, mode: u32) -> Result<()> {
    std::fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).context(|| format!("chmod {}", dir.display()))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. berthd holds a
/// descriptor per running container (its monitor's `wait` connection to
/// the shim, `containers/monitor.rs`) besides its clients', so the usual
/// soft limit of 1024 stopped containers from starting at about the
/// 1,000th. The soft limit exists for programs that `select(2)` on fds
/// below 1024 (getrlimit(2)); berthd does not. The shims inherit the raised
/// limit, the containers do not: their process gets the spec's rlimits
/// (`spec.rs`), 1024 as in containerd's default spec.
pub fn raise_nofile_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let old = getrlimit(Resource::Nofile);
    // An unlimited hard limit cannot be the soft one for files: the
    // kernel's bound is fs.nr_open (proc(5)).
    let hard = old.maximum.or_else(|| std::fs::read_to_string("/proc/sys/fs/nr_open").ok()?.trim().parse().ok());
    let Some(hard) = hard else { return };
    if old.current.is_some_and(|soft| soft >= hard) {
        return;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: old.maximum }) {
        Ok(()) => tracing::info!(from = ?old.current, to = hard, "raised the soft limit on open files"),
        Err(e) => tracing::warn!(error = %e, "raise the soft limit on open files"),
    }
}

/// Serves until a stop signal.
pub async fn run(config: Config) -> Result<()> {
    raise_nofile_limit();
    // The shim runs from a read-only view of its binary (`shim_binary.rs`),
    // detached again when berthd stops.
    let layout = config.layout();
    std::fs::create_dir_all(layout.state()).context(|| format!("create {}", layout.state().display()))?;
    let sealed = SealedShim::mount(&config.shim, layout.state())?;
    let agent = Agent::open(&config, sealed.path()).await?;

    let socket = &config.socket;
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
    }
    if tokio::net::UnixStream::connect(socket).await.is_ok() {
        return Err(AgentError::Startup(format!("{} is served by another berthd", socket.display())));
    }
    let _ = std::fs::remove_file(socket);
    let listener = berth_contract::SocketPath::new(socket)
        .and_then(|addr| UnixListener::bind(addr.path()))
        .context(|| format!("listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .context(|| format!("chmod {}", socket.display()))?;
    socket_group(socket, config.group.as_deref())?;
    tracing::info!(socket = %socket.display(), root = %config.root.display(), "berthd serving");

    let mut term = signal(SignalKind::terminate()).context(|| "install SIGTERM handler".into())?;
    let mut int = signal(SignalKind::interrupt()).context(|| "install SIGINT handler".into())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping; containers keep running");
    };

    tonic::transport::Server::builder()
        .layer(spans::RpcSpans)
        .add_service(SystemServer::new(SystemApi { agent: agent.clone() }))
        .add_service(ImagesServer::new(ImagesApi { agent: agent.clone() }))
        .add_service(ContainersServer::new(ContainersApi { manager: agent.containers.clone() }))
        .serve_with_incoming_shutdown(peers::Incoming::new(listener, config.max_connections_per_uid), shutdown)
        .await
        .map_err(|e| AgentError::Internal(format!("grpc server: {e}")))?;
    let _ = std::fs::remove_file(socket);
    drop(sealed);
    Ok(())
}
