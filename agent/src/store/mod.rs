//! berthd's metadata database (`meta.redb`), one typed store per kind of
//! object. Callers see records and IDs, never bytes or JSON. An index on
//! disk is written in the record's own transaction, so a crash leaves both
//! or neither; an index in memory is rebuilt from the records at start
//! and moved after each commit (`containers.rs` says which is which and
//! why). `reserve.rs` keeps blocks for the next commits on a full disk.
//!
//! `containers` is the first; sandboxes (CRI), networks and volumes go
//! beside it, each with its own tables and indexes (a sandbox → containers
//! index goes in `containers.rs`, next to the image one). The image
//! store's tables are in `images/meta.rs`, which predates this module.
mod containers;
pub mod reserve;

pub use containers::ContainerStore;
