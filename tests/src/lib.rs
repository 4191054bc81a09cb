//! Helpers shared by the integration tests.

pub mod fixtures;
pub mod harness;
pub mod registry;

/// The fixture image most integration tests run.
pub const IMG: &str = "berth-test/busybox:latest";

/// Returns early (the test passes, saying why) when this process may not
/// run containers.
#[macro_export]
macro_rules! need_root {
    () => {
        if !$crate::harness::can_run_containers() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}
