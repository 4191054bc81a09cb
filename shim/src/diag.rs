//! The shim's own diagnostics. The daemon's stderr is `shim.log` in its
//! state directory (see [`crate::daemon`]), so a line written here, and a
//! panic message, land there with a timestamp. No logging framework: the
//! shim stays small.
use std::fmt;
use std::io::Write;

use berth_contract::log::format_time;
use berth_contract::now_nanos;

/// Writes one timestamped line to stderr; errors are ignored (there is
/// nowhere else to report them).
pub fn write(args: fmt::Arguments<'_>) {
    let mut line = Vec::with_capacity(96);
    format_time(&mut line, now_nanos());
    line.push(b' ');
    let _ = line.write_fmt(args);
    line.push(b'\n');
    let _ = std::io::stderr().write_all(&line);
}

/// `diag!("reaped {pid}")`: one line in `shim.log`.
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::diag::write(format_args!($($arg)*))
    };
}
