//! `create`: a record, a bundle directory with an empty writable layer, and
//! no process. The process is made by `start`.
use std::collections::HashMap;
use std::sync::Arc;

use berth_contract::{now_nanos, ContainerId};
use sha2::{Digest, Sha256};

use super::{logopts, names, ContainerRecord, Manager, ProcessConfig, State, Status};
use super::{ContainerError, HealthConfig, InvalidError, Resources, RestartPolicy};
use crate::error::{AgentError, IoContext, Result};
use crate::limits;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the caller asks for; empty fields take the image's values.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    pub image: String,
    pub name: String,
    pub cmd: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub hostname: String,
    pub auto_remove: bool,
    pub labels: HashMap<String, String>,
    /// `--log-opt` as given; checked by `logopts::parse`.
    pub log_opts: HashMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    /// Columns and rows of the client's terminal.
    pub console: (u16, u16),
    /// Limits, checked here with Docker's rules.
    pub resources: Resources,
    /// `--restart` (checked by the front end's parse).
    pub restart: RestartPolicy,
    /// `--health-*`, `--no-healthcheck` (`["NONE"]`); merged over the
    /// image's `HEALTHCHECK`.
    pub healthcheck: Option<HealthConfig>,
    /// `--stop-signal` (a name or number); empty: the image's.
    pub stop_signal: String,
    /// `--stop-timeout` in seconds.
    pub stop_timeout: Option<i32>,
    /// `--group-add`: GIDs or group names.
    pub group_add: Vec<String>,
    /// `--init`.
    pub init: bool,
}

impl Manager {
    /// `--group-add` as GIDs: numbers as they are, names looked up in the
    /// image's `/etc/group` (the top layer that has it, read inside that
    /// layer), refused as Docker refuses an unknown one.
    /// Each GID once, in the order given; the group file is read only
    /// when a name is given.
    async fn group_ids(&self, image: &crate::images::ImageRecord, given: &[String]) -> Result<Vec<u32>> {
        let mut groups: Option<Option<String>> = None;
        let mut gids = Vec::new();
        for g in given {
            let gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    if groups.is_none() {
                        let (images, image) = (self.images.clone(), image.clone());
                        groups = Some(
                            crate::blocking::run(move || {
                                let layers = images.rootfs_layers(&image).map_err(AgentError::from)?;
                                Ok::<_, AgentError>(super::diff::read_in_layers(&layers, "etc/group"))
                            })
                            .await?,
                        );
                    }
                    groups
                        .as_ref()
                        .and_then(Option::as_deref)
                        .and_then(|text| {
                            text.lines().find_map(|l| {
                                let f: Vec<&str> = l.split(':').collect();
                                (f.len() >= 3 && f[0] == g).then(|| f[2].parse().ok()).flatten()
                            })
                        })
                        .ok_or_else(|| ContainerError::from(InvalidError::Group { group: g.clone() }))?
                }
            };
            if !gids.contains(&gid) {
                gids.push(gid);
            }
        }
        Ok(gids)
    }

    /// The `HEALTHCHECK` of the image's config blob, if it has one.
    async fn image_healthcheck(&self, image_id: &str) -> Option<HealthConfig> {
        let path = self.images.blob_path(image_id).ok()?;
        let blob = tokio::fs::read(path).await.ok()?;
        HealthConfig::from_image_config(&blob)
    }

    #[tracing::instrument(skip_all, fields(image = %opts.image))]
    pub async fn create(self: &Arc<Self>, mut opts: CreateOptions) -> Result<ContainerRecord> {
        let log = logopts::parse(&opts.log_opts)?;
        opts.resources.check(&self.host).map_err(InvalidError::from)?;
        opts.resources.resolve_devices().map_err(InvalidError::from)?;
        limits::check_labels(&opts.labels)?;
        if let Some(h) = &opts.healthcheck {
            h.check()?;
        }
        if opts.auto_remove && !opts.restart.is_none() {
            return Err(ContainerError::from(InvalidError::RestartWithAutoRemove).into());
        }
        let images = self.images.clone();
        let reference = opts.image.clone();
        // Held until the record is committed: from then on the record keeps
        // the image from `rmi` and `image prune`.
        let (image, _lease) = crate::blocking::run(move || images.lease(&reference).map_err(AgentError::from)).await?;

        if !opts.name.is_empty() && !names::valid(opts.name.trim_start_matches('/')) {
            return Err(ContainerError::from(InvalidError::Name { name: opts.name.clone() }).into());
        }

        let id = new_id();
        let cid = ContainerId::parse(&id).map_err(|e| AgentError::Internal(e.to_string()))?;
        let cfg = image.config.config().clone().unwrap_or_default();

        // Entrypoint and command, as Docker combines them: --entrypoint
        // replaces the image's entrypoint and clears its CMD.
        let mut args: Vec<String> = match &opts.entrypoint {
            Some(e) if e.is_empty() => Vec::new(),
            Some(e) => vec![e.clone()],
            None => cfg.entrypoint().clone().unwrap_or_default(),
        };
        if !opts.cmd.is_empty() {
            args.extend(opts.cmd.iter().cloned());
        } else if opts.entrypoint.is_none() {
            args.extend(cfg.cmd().clone().unwrap_or_default());
        }
        if args.is_empty() {
            return Err(ContainerError::from(InvalidError::NoCommand).into());
        }

        let mut env = cfg.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_owned());
        }
        for kv in &opts.env {
            let key = kv.split('=').next().unwrap_or_default();
            if key.is_empty() {
                return Err(ContainerError::from(InvalidError::Env { var: kv.clone() }).into());
            }
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".to_owned());
        }
        let hostname = if opts.hostname.is_empty() { id[..12].to_owned() } else { opts.hostname.clone() };
        env.retain(|e| !e.starts_with("HOSTNAME="));
        env.push(format!("HOSTNAME={hostname}"));

        let process = ProcessConfig {
            args,
            env,
            cwd: first_non_empty(&opts.workdir, cfg.working_dir().as_deref().unwrap_or(""), "/"),
            user: first_non_empty(&opts.user, cfg.user().as_deref().unwrap_or(""), ""),
            hostname,
            stop_signal: if opts.stop_signal.is_empty() {
                cfg.stop_signal().clone().unwrap_or_default()
            } else {
                opts.stop_signal.clone()
            },
            tty: opts.tty,
            open_stdin: opts.open_stdin,
            console: opts.console,
            stop_timeout: opts.stop_timeout,
            group_add: self.group_ids(&image, &opts.group_add).await?,
            init: opts.init,
        };
        if !opts.stop_signal.is_empty() {
            super::stop::parse_signal(&opts.stop_signal)?;
        }
        if process.init {
            super::spec::init_binary()?;
        }
        limits::check_process(&process.args, &process.env)?;
        berth_contract::user::check_user(&process.user).map_err(|e| ContainerError::from(InvalidError::from(e)))?;
        if !process.cwd.starts_with('/') {
            return Err(ContainerError::from(InvalidError::Workdir { path: process.cwd.clone() }).into());
        }

        let image_check = self.image_healthcheck(&image.id).await;
        let healthcheck = HealthConfig::merge(opts.healthcheck.as_ref(), image_check.as_ref());

        let rec_for = |name: String| ContainerRecord {
            id: id.clone(),
            name,
            image: opts.image.clone(),
            image_id: image.id.clone(),
            created: now_nanos(),
            process: process.clone(),
            labels: opts.labels.clone(),
            auto_remove: opts.auto_remove,
            log,
            resources: opts.resources.clone(),
            restart: opts.restart,
            healthcheck: healthcheck.clone(),
            state: State {
                status: Status::Created,
                pid: 0,
                started_at: 0,
                finished_at: 0,
                exit_code: 0,
                exit_signal: None,
                oom_killed: false,
                error: String::new(),
                restart_count: 0,
                manually_stopped: false,
                restart_delay_ms: 0,
                health: None,
            },
        };

        // The bundle directory first: a record never points at nothing.
        let paths = self.layout.container(&cid);
        let bundle = paths.clone();
        crate::blocking::run(move || {
            for dir in [bundle.dir().to_path_buf(), bundle.upper(), bundle.work(), bundle.rootfs()] {
                std::fs::create_dir_all(&dir).context(|| format!("create {}", dir.display()))?;
            }
            // The log exists from the start, so a follower can open it
            // before the container runs (the shim appends to it).
            std::fs::File::create(bundle.log_file()).context(|| "create container log".into())?;
            Ok::<_, AgentError>(())
        })
        .await?;

        let result = self.insert_named(rec_for, opts.name.trim_start_matches('/')).await;
        if result.is_err() {
            let _ = crate::tree::remove_all(paths.dir());
        }
        result
    }

    /// Inserts the record under `name` (or a generated one), refusing a
    /// name that is taken. One create at a time checks and inserts; each
    /// check reads one row of the name index.
    async fn insert_named(&self, rec_for: impl Fn(String) -> ContainerRecord, name: &str) -> Result<ContainerRecord> {
        let _guard = self.names_lock.lock().await;
        let name = if name.is_empty() {
            let mut attempt = 0;
            loop {
                let n = names::generate(attempt);
                if self.id_by_name(&n)?.is_none() {
                    break n;
                }
                attempt += 1;
            }
        } else if let Some(holder) = self.id_by_name(name)? {
            return Err(ContainerError::NameInUse { name: name.to_owned(), holder }.into());
        } else {
            name.to_owned()
        };
        let rec = rec_for(name);
        self.put_record(&rec).await?;
        Ok(rec)
    }
}

fn first_non_empty(a: &str, b: &str, default: &str) -> String {
    [a, b].into_iter().find(|s| !s.is_empty()).unwrap_or(default).to_owned()
}

/// 64 hex digits from 32 random bytes (hashed, so the ID never repeats the
/// generator's raw output).
fn new_id() -> String {
    let seed: [u8; 32] = rand::random();
    hex::encode(Sha256::digest(seed))
}
