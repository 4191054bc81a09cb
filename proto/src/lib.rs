//! Generated protobuf code for berth's two protocols, the framing used on
//! the shim socket and the rule for text sent to a person (`text`). No
//! other logic lives here.
#![deny(unsafe_code)]

/// Public API of berthd.
pub mod v1 {
    tonic::include_proto!("berth.v1");
}

/// Agent <-> shim protocol.
pub mod shim {
    tonic::include_proto!("berth.shim.v1");
}

pub mod frame;

pub mod text;
