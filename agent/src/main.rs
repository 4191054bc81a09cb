//! berthd: parse flags, start tracing, run.
use std::path::PathBuf;

use clap::Parser;

/// berth's node agent.
#[derive(Parser, Debug)]
#[command(name = "berthd", version, about = "berth's node agent: images and containers over gRPC")]
struct Args {
    /// Persistent state: metadata, content, snapshots, containers.
    #[arg(long, env = "BERTH_ROOT", default_value = "/var/lib/berth")]
    root: PathBuf,
    /// Runtime state (tmpfs): shim sockets.
    #[arg(long, env = "BERTH_STATE", default_value = "/run/berth")]
    state: PathBuf,
    /// The gRPC unix socket.
    #[arg(long, env = "BERTH_SOCKET", default_value = "/run/berth/berthd.sock")]
    socket: PathBuf,
    /// The berth-shim binary (default: beside berthd, else from PATH).
    #[arg(long, env = "BERTH_SHIM")]
    shim: Option<PathBuf>,
    /// Config file (TOML): registry mirrors, CA files, insecure
    /// registries, download limits. See docs/registries.md.
    #[arg(long, env = "BERTH_CONFIG_FILE")]
    config: Option<PathBuf>,
    /// Connections one user (peer uid) may hold open on the socket; more
    /// are closed as they come, so others are still served.
    #[arg(long, env = "BERTH_MAX_CONNECTIONS_PER_UID", default_value_t = berth_agent::server::DEFAULT_MAX_PER_UID)]
    max_connections_per_uid: usize,
    /// Begin a new, empty metadata database when `meta.redb` is missing or
    /// empty over a root that holds state (berthd refuses to start then,
    /// rather than delete what the lost database knew). What is on disk is
    /// kept, not adopted: images and containers must be loaded and created
    /// again.
    #[arg(long)]
    reinit_metadata: bool,
    /// The group that may use the socket (mode 0660); default `berth`
    /// when the host has such a group, else root's.
    #[arg(long, short = 'G', env = "BERTH_GROUP")]
    group: Option<String>,
    /// Log filter, as RUST_LOG.
    #[arg(long, env = "BERTH_LOG", default_value = "info")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let registries = match &args.config {
        Some(path) => berth_agent::registry::RegistriesConfig::load(path)?,
        None => berth_agent::registry::RegistriesConfig::default(),
    };
    let config = berth_agent::config::Config {
        root: args.root,
        state: args.state,
        socket: args.socket,
        shim: args.shim.unwrap_or_else(berth_agent::config::Config::default_shim),
        registries,
        max_connections_per_uid: args.max_connections_per_uid,
        reinit_metadata: args.reinit_metadata,
        group: args.group,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(berth_agent::server::run(config))?;
    Ok(())
}
