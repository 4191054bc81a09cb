//! Seccomp programs: what berthd compiles and the shim loads.
//!
//! berthd compiles `linux.seccomp` with libseccomp (it takes milliseconds:
//! hundreds of rules, three architectures; see [`profile`]) and writes the
//! program beside `config.json` as `seccomp.bpf`; the shim only reads it
//! back ([`Program::from_bytes`]) and loads it, so it links neither
//! libseccomp nor the runtime-spec types.
#[cfg(feature = "spec")]
pub mod profile;
#[cfg(feature = "spec")]
pub use profile::{compile, default_profile, default_program};

/// A profile this machine's libseccomp cannot compile, or a program file
/// that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seccomp: {0}")]
pub struct SeccompError(String);

/// A compiled filter: `struct sock_filter` instructions, as the kernel
/// takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program(Vec<libc::sock_filter>);

impl Program {
    /// The instructions as the kernel lays them out, for `seccomp.bpf`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 8);
        for f in &self.0 {
            out.extend_from_slice(&f.code.to_ne_bytes());
            out.extend_from_slice(&[f.jt, f.jf]);
            out.extend_from_slice(&f.k.to_ne_bytes());
        }
        out
    }

    /// Reads what `to_bytes` wrote (or libseccomp exports).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeccompError> {
        let size = std::mem::size_of::<libc::sock_filter>();
        if bytes.is_empty() || !bytes.len().is_multiple_of(size) || bytes.len() / size > usize::from(u16::MAX) {
            return Err(SeccompError(format!("a program of {} bytes", bytes.len())));
        }
        let program = bytes
            .chunks_exact(size)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Self(program))
    }

    /// The instructions, for `PR_SET_SECCOMP`.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
