//! `berth-shim start`, both halves: the command line berthd builds and
//! the shim parses (by hand: one subcommand and three flags do not justify
//! an argument-parsing crate in a process that runs once per container),
//! and what the shim answers: the init's pid on stdout and exit code 0, or
//! one line on stderr and the exit code of the container's process that
//! could not start (127 not found, 126 cannot invoke, 1 anything else).
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use crate::id::ContainerId;

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
    /// berthd's half: the arguments after the program name.
    pub fn args(&self) -> Vec<OsString> {
        let mut v = vec![OsString::from("start"), "--id".into(), self.id.as_str().into(), "--bundle".into()];
        v.push(self.bundle.clone().into_os_string());
        v.push("--state".into());
        v.push(self.state.clone().into_os_string());
        v
    }

    /// The shim's half: parses the arguments after the program name. Flags take their value
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

/// How `berth-shim start` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// The container's init has exec'd; its pid on the host.
    Started { pid: u32 },
    /// Nothing runs. `code` is the exit code a client shows for the
    /// container's process (127, 126, or 1).
    Failed { code: i32, message: String },
}

impl StartOutcome {
    /// The shim's half: prints the outcome where berthd reads it and
    /// returns the shim's exit code.
    pub fn report(&self) -> i32 {
        match self {
            Self::Started { pid } => {
                let _ = writeln!(std::io::stdout(), "{pid}");
                0
            }
            Self::Failed { code, message } => {
                let _ = writeln!(std::io::stderr(), "{}", message.replace('\n', " "));
                if *code == 0 {
                    1
                } else {
                    *code
                }
            }
        }
    }

    /// berthd's half: reads the shim's exit code (`None`: killed by a
    /// signal, described by `status`) and its two outputs.
    pub fn read(code: Option<i32>, status: &dyn std::fmt::Display, stdout: &[u8], stderr: &[u8]) -> Self {
        if code == Some(0) {
            // The container runs whatever was printed: a pid it cannot
            // read is unknown (0), never a failure that would forget it.
            return Self::Started { pid: String::from_utf8_lossy(stdout).trim().parse().unwrap_or(0) };
        }
        let message = String::from_utf8_lossy(stderr).trim().to_owned();
        let message = if message.is_empty() { format!("shim exited with {status}") } else { message };
        Self::Failed { code: code.unwrap_or(1), message }
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
    fn what_berthd_builds_the_shim_parses() {
        let c = StartConfig {
            id: ContainerId::parse(&"cd".repeat(32)).unwrap(),
            bundle: PathBuf::from("/var/lib/berth/containers/x"),
            state: PathBuf::from("/run/berth/x y"),
        };
        assert_eq!(StartConfig::parse(&c.args()).unwrap(), c);
    }

    #[test]
    fn the_outcome_is_read_from_the_exit_code_and_the_outputs() {
        let read = |code, out: &str, err: &str| StartOutcome::read(code, &"signal 9", out.as_bytes(), err.as_bytes());
        assert_eq!(read(Some(0), "4242\n", ""), StartOutcome::Started { pid: 4242 });
        let failed = |code, message: &str| StartOutcome::Failed { code, message: message.into() };
        assert_eq!(read(Some(127), "", "exec: \"x\": not found\n"), failed(127, "exec: \"x\": not found"));
        assert_eq!(read(None, "", ""), failed(1, "shim exited with signal 9"));
        assert_eq!(read(Some(0), "", ""), StartOutcome::Started { pid: 0 });
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
