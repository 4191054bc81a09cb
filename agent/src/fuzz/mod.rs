//! Fuzz targets for every parser berthd runs on untrusted input: image
//! references, layer tars, OCI manifests, indexes and configs, registry
//! auth challenges, and `cp` paths. Each runs for `BERTH_FUZZ_SECS`
//! (berth-fuzz's driver) over its seed corpus in `agent/fuzz-corpus/`,
//! and asserts properties beyond "no panic" (docs/fuzzing.md).

use std::borrow::Cow;
use std::path::PathBuf;

mod auth;
mod cp;
mod oci;
mod reference;
mod unpack;

/// The committed seeds of one target.
fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz-corpus").join(target)
}

/// The input as the `&str` most parsers take: invalid UTF-8 becomes
/// U+FFFD, a multi-byte character, which is itself good at finding byte
/// offsets that are not character boundaries.
fn text(input: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(input)
}
