//! berth-shim: one small process per container. It creates the container
//! from the OCI bundle berthd wrote, is its init's parent and reaper, writes
//! its log, persists its exit status and answers berthd on `shim.sock`.
//!
//! What the shim shares with berthd (paths, formats, annotations, the
//! seccomp profile, its command line) is in `berth_contract`.
//!
//! The life of a shim, module by module: `berth_contract::shim_start`
//! parses `start --id --bundle --state`; [`daemon`] detaches (double fork,
//! setsid, stdio away from berthd) and reports the outcome to the
//! foreground process through a pipe; [`spec`] turns `config.json` into a
//! [`spec::Plan`] before any fork; [`init`] clones the container's init,
//! which joins its cgroups and [`namespaces`], builds its [`rootfs`],
//! switches [`user`] and execs; then a `current_thread` tokio runtime runs
//! [`stdio`] (pipes to `container.log`, rotated by [`logfile`]), [`reaper`]
//! (SIGCHLD) and [`service`] (`shim.sock`) until the init has exited and its
//! status is persisted.
#![deny(unsafe_code)]

pub mod logfile;

pub mod daemon;
pub mod diag;
pub mod error;
pub mod exec;
pub mod init;
pub mod namespaces;
pub mod oci;
pub mod pty;
pub mod reaper;
pub mod rootfs;
pub mod seccomp;
pub mod service;
pub mod spec;
pub mod stdio;
pub mod streams;
pub mod user;

pub use error::ShimError;
