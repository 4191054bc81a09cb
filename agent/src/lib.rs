//! berthd, berth's node agent: images, containers and their state, served
//! over gRPC on a unix socket. Containers run under their own shims, so
//! berthd can die or be upgraded without killing any.
#![deny(unsafe_code)]

pub mod agent;
pub mod api;
pub mod blocking;
pub mod cgroups;
pub mod config;
pub mod containers;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod images;
pub mod limits;
pub mod registry;
pub mod server;
pub mod shim_binary;
pub mod store;
pub mod store_layout;
pub mod tree;
