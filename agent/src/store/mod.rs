//! berthd's metadata database (`meta.redb`), one typed store per kind of
//! object. Callers see records and IDs, never bytes or JSON; every
//! secondary index is kept in the same write transaction as the record it
//! points at, so a crash leaves both or neither.
//!
//! `containers` is the first; sandboxes (CRI), networks and volumes go
//! beside it, each with its own tables and indexes (a sandbox → containers
//! index goes in `containers.rs`, next to the image one). The image
//! store's tables are in `images/meta.rs`, which predates this module.
mod containers;

pub use containers::ContainerStore;
