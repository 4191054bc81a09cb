//! berthd's life: open the state, recover containers, serve gRPC on the
//! unix socket until SIGTERM or SIGINT. Stopping berthd stops no container.
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use berth_proto::v1::{containers_server::ContainersServer, images_server::ImagesServer, system_server::SystemServer};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::api::{ContainersApi, ImagesApi, SystemApi};
use crate::config::Config;
use crate::containers::{CgroupDriver, Manager};
use crate::error::{AgentError, IoContext, Result};
use crate::images::ImageService;
use crate::registry::Puller;
use crate::shim_binary::SealedShim;

mod peers;
pub use peers::DEFAULT_MAX_PER_UID;

/// Opens everything berthd owns and recovers the containers.
pub async fn open(config: &Config, shim: &std::path::Path) -> Result<Arc<Manager>> {
    let layout = config.layout();
    std::fs::create_dir_all(layout.root()).context(|| format!("create {}", layout.root().display()))?;
    std::fs::create_dir_all(layout.state()).context(|| format!("create {}", layout.state().display()))?;
    let db = redb::Database::create(layout.meta_db()).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            AgentError::FailedPrecondition(format!("{} is in use by another berthd", layout.meta_db().display()))
        }
        e => AgentError::Db(e.to_string()),
    })?;
    let db = Arc::new(db);
    let images = {
        let layout = layout.clone();
        let db = db.clone();
        let limits = config.registries.images.limits();
        tokio::task::spawn_blocking(move || ImageService::open(layout, db).map(|s| s.with_limits(limits)))
            .await
            .map_err(|e| AgentError::Internal(e.to_string()))??
    };
    let manager = Manager::new(layout, db, Arc::new(images), shim.to_path_buf(), CgroupDriver::default())?;
    manager.recover().await?;
    Ok(manager)
}

/// Serves until a stop signal.
pub async fn run(config: Config) -> Result<()> {
    // The shim runs from a read-only view of its binary (`shim_binary.rs`),
    // detached again when berthd stops.
    let layout = config.layout();
    std::fs::create_dir_all(layout.state()).context(|| format!("create {}", layout.state().display()))?;
    let sealed = SealedShim::mount(&config.shim, layout.state())?;
    let manager = open(&config, sealed.path()).await?;

    let socket = &config.socket;
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
    }
    if tokio::net::UnixStream::connect(socket).await.is_ok() {
        return Err(AgentError::FailedPrecondition(format!("{} is served by another berthd", socket.display())));
    }
    let _ = std::fs::remove_file(socket);
    let listener = berth_shim::layout::SocketPath::new(socket)
        .and_then(|addr| UnixListener::bind(addr.path()))
        .context(|| format!("listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .context(|| format!("chmod {}", socket.display()))?;
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
        .add_service(SystemServer::new(SystemApi { manager: manager.clone() }))
        .add_service(ImagesServer::new(ImagesApi {
            manager: manager.clone(),
            puller: Arc::new(Puller::new(config.registries.clone(), manager.images.clone())),
        }))
        .add_service(ContainersServer::new(ContainersApi { manager }))
        .serve_with_incoming_shutdown(peers::Incoming::new(listener, config.max_connections_per_uid), shutdown)
        .await
        .map_err(|e| AgentError::Internal(format!("grpc server: {e}")))?;
    let _ = std::fs::remove_file(socket);
    drop(sealed);
    Ok(())
}
