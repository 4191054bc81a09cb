//! Generated protobuf code for berth's two protocols, the framing used on
//! the shim socket, the blocking writer of a chunk stream (`chunks`) and
//! the rule for text sent to a person (`text`). No other logic lives here.
#![deny(unsafe_code)]

/// Public API of berthd.
// `RunEvent` carries a whole `Container` once, then small events: its
// size per message is a few hundred bytes in a queue of at most 256.
#[allow(clippy::large_enum_variant)]
pub mod v1 {
    tonic::include_proto!("berth.v1");
}

/// Agent <-> shim protocol.
pub mod shim {
    tonic::include_proto!("berth.shim.v1");
}

pub mod chunks;
pub mod frame;

/// gRPC metadata key of a `Containers.Start` (or `run`) failure: the exit
/// code of the container's process that could not start (127 not found,
/// 126 cannot invoke, 1 anything else), so clients need not read the text.
pub const START_EXIT_CODE: &str = "berth-start-exit-code";

pub mod text;
