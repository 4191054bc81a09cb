//! berth-shim: one small process per container. It creates the container
//! from the OCI bundle berthd wrote, is its init's parent and reaper, writes
//! its log, persists its exit status and answers berthd on `shim.sock`.
//!
//! [`layout`] and [`logfmt`] are also berthd's: the two processes share one
//! definition of every path and format.
#![deny(unsafe_code)]

pub mod layout;
pub mod logfmt;
