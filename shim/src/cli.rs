//! The shim's command line, parsed by hand: one subcommand and three flags
//! do not justify an argument-parsing crate in a process that runs once per
//! container.
use std::ffi::OsString;
use std::path::PathBuf;

use crate::layout::ContainerId;

const USAGE: &str = "usage: berth-shim start --id <id> --bundle <dir> --state <dir>";

/// What `berth-shim start` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartConfig {
    pub id: ContainerId,
    /// `containers/<id>`: `config.json`, `upper/`, `work/`, `rootfs/`.
    pub bundle: PathBuf,
    /// `<state>/<id>`: `shim.sock`, `shim.pid`, `shim.log`.
    pub state: PathBuf,
}

/// The command line is not one the shim understands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}\n{USAGE}")]
pub struct UsageError(String);

impl StartConfig {
    /// Parses the arguments after the program name. Flags take their value
    /// as the next argument or after `=`.
    pub fn parse(args: &[OsString]) -> Result<Self, UsageError> {
        let mut args = args.iter();
        match args.next().and_then(|a| a.to_str()) {
            Some("start") => {}
            Some(other) => return Err(UsageError(format!("unknown command {other:?}"))),
            None => return Err(UsageError("missing command".into())),
        }
        let (mut id, mut bundle, mut state) = (None, None, None);
        while let Some(arg) = args.next() {
            let arg = arg.to_str().ok_or_else(|| UsageError(format!("unexpected argument {arg:?}")))?;
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f, Some(OsString::from(v))),
                None => (arg, None),
            };
            let slot = match flag {
                "--id" => &mut id,
                "--bundle" => &mut bundle,
                "--state" => &mut state,
                _ => return Err(UsageError(format!("unexpected argument {arg:?}"))),
            };
            let value = match inline {
                Some(v) => v,
                None => args.next().cloned().ok_or_else(|| UsageError(format!("{flag} needs a value")))?,
            };
            *slot = Some(value);
        }
        let id = id.ok_or_else(|| UsageError("missing --id".into()))?;
        let id = ContainerId::parse(&id.to_string_lossy()).map_err(|e| UsageError(e.to_string()))?;
        let bundle = bundle.ok_or_else(|| UsageError("missing --bundle".into()))?;
        let state = state.ok_or_else(|| UsageError("missing --state".into()))?;
        Ok(Self { id, bundle: PathBuf::from(bundle), state: PathBuf::from(state) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_both_flag_forms() {
        let id = "ab".repeat(32);
        let c = StartConfig::parse(&args(&["start", "--id", &id, "--bundle=/b", "--state", "/s"])).unwrap();
        assert_eq!(c.id.as_str(), id);
        assert_eq!(c.bundle, PathBuf::from("/b"));
        assert_eq!(c.state, PathBuf::from("/s"));
    }

    #[test]
    fn rejects_bad_command_lines() {
        let id = "ab".repeat(32);
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing command"),
            (&["stop"], "unknown command \"stop\""),
            (&["start", "--bundle", "/b", "--state", "/s"], "missing --id"),
            (&["start", "--id", &id, "--state", "/s"], "missing --bundle"),
            (&["start", "--id", &id, "--bundle", "/b"], "missing --state"),
            (&["start", "--id"], "--id needs a value"),
            (&["start", "--id", "xyz"], "invalid container id"),
            (&["start", "--verbose"], "unexpected argument \"--verbose\""),
        ];
        for (argv, want) in cases {
            let err = StartConfig::parse(&args(argv)).unwrap_err().to_string();
            assert!(err.starts_with(want), "{argv:?}: {err}");
            assert!(err.ends_with(USAGE));
        }
    }
}
