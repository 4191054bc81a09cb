//! Bounds on what one caller may make berthd store and send back: labels,
//! the command and the environment. Every record is listed to every client
//! (`ps -a`), so without a bound one user's 4 MB of labels on each of 40
//! containers broke every listing and bloated berthd for everyone.
//!
//! The numbers are ones Docker and Kubernetes users already live with
//! (docs/choices.md): labels as Kubernetes bounds annotations (256 KiB in
//! all, keys counted), and a process as the kernel bounds `execve(2)`: one
//! string at most `MAX_ARG_STRLEN` (32 pages, its NUL included), and
//! arguments plus environment well under `ARG_MAX`. A process over those
//! would fail at its exec with `argument list too long` anyway; refusing it
//! at create says so before anything is stored.
use std::fmt;

/// Bytes of one label key.
pub const MAX_LABEL_KEY: usize = 1024;
/// Bytes of all of one object's label keys and values together
/// (Kubernetes' `TotalAnnotationSizeLimitB`).
pub const MAX_LABELS_TOTAL: usize = 256 * 1024;
/// Bytes of one argument or `KEY=VALUE`, its terminating NUL included, as
/// `execve(2)` counts it (`MAX_ARG_STRLEN`, include/uapi/linux/binfmts.h).
pub const MAX_ARG_STRLEN: usize = 128 * 1024;
/// Bytes of the arguments and environment of one process, NULs included.
pub const MAX_ARGS_ENV_TOTAL: usize = 1024 * 1024;

/// Characters of a refused value quoted in its error.
const QUOTE: usize = 40;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    #[error("invalid label '{}': the key is {len} bytes, the limit is {MAX_LABEL_KEY}", Quoted(key))]
    LabelKey { key: String, len: usize },
    #[error("invalid labels: {total} bytes of keys and values, the limit is {MAX_LABELS_TOTAL} (256 KiB)")]
    LabelsTotal { total: usize },
    #[error(
        "invalid environment variable '{}': {len} bytes, the limit is {} (MAX_ARG_STRLEN)",
        Quoted(var), MAX_ARG_STRLEN - 1
    )]
    EnvVar { var: String, len: usize },
    #[error("invalid argument '{}': {len} bytes, the limit is {} (MAX_ARG_STRLEN)", Quoted(arg), MAX_ARG_STRLEN - 1)]
    Arg { arg: String, len: usize },
    #[error(
        "argument list too long: the command and environment take {total} bytes, the limit is {MAX_ARGS_ENV_TOTAL} (1 MiB)"
    )]
    ArgsEnvTotal { total: usize },
}

/// The start of a refused value, enough to recognise it.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(QUOTE) {
            Some((cut, _)) => write!(f, "{}...", &self.0[..cut]),
            None => f.write_str(self.0),
        }
    }
}

fn head(s: &str) -> String {
    Quoted(s).to_string()
}

/// Checks one object's labels (a container's, an image's).
pub fn check_labels<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> Result<(), LimitError> {
    let mut total = 0usize;
    for (k, v) in labels {
        if k.len() > MAX_LABEL_KEY {
            return Err(LimitError::LabelKey { key: head(k), len: k.len() });
        }
        total += k.len() + v.len();
    }
    if total > MAX_LABELS_TOTAL {
        return Err(LimitError::LabelsTotal { total });
    }
    Ok(())
}

/// Checks a process's arguments and environment as `execve(2)` would.
pub fn check_process(args: &[String], env: &[String]) -> Result<(), LimitError> {
    let mut total = 0usize;
    for a in args {
        if a.len() + 1 > MAX_ARG_STRLEN {
            return Err(LimitError::Arg { arg: head(a), len: a.len() });
        }
        total += a.len() + 1;
    }
    for e in env {
        if e.len() + 1 > MAX_ARG_STRLEN {
            return Err(LimitError::EnvVar { var: head(e), len: e.len() });
        }
        total += e.len() + 1;
    }
    if total > MAX_ARGS_ENV_TOTAL {
        return Err(LimitError::ArgsEnvTotal { total });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn labels(pairs: &[(String, String)]) -> Result<(), String> {
        let m: HashMap<String, String> = pairs.iter().cloned().collect();
        check_labels(&m).map_err(|e| e.to_string())
    }

    type LabelCase = (Vec<(String, String)>, Result<(), String>);
    type ProcessCase = (Vec<String>, Vec<String>, Result<(), String>);

    fn x(n: usize) -> String {
        "x".repeat(n)
    }

    #[test]
    fn label_limits() {
        let cases: Vec<LabelCase> = vec![
            (vec![], Ok(())),
            (vec![(x(MAX_LABEL_KEY), String::new())], Ok(())),
            (
                vec![(x(MAX_LABEL_KEY + 1), String::new())],
                Err(format!("invalid label '{}...': the key is 1025 bytes, the limit is 1024", x(40))),
            ),
            (vec![("k".into(), x(MAX_LABELS_TOTAL - 1))], Ok(())),
            (
                vec![("k".into(), x(MAX_LABELS_TOTAL))],
                Err("invalid labels: 262145 bytes of keys and values, the limit is 262144 (256 KiB)".into()),
            ),
            (
                vec![("a".into(), x(MAX_LABELS_TOTAL / 2)), ("b".into(), x(MAX_LABELS_TOTAL / 2))],
                Err("invalid labels: 262146 bytes of keys and values, the limit is 262144 (256 KiB)".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(labels(&input), want, "{} labels", input.len());
        }
    }

    #[test]
    fn process_limits() {
        let sh = || vec!["sh".to_owned()];
        let big = format!("A={}", x(MAX_ARG_STRLEN - 3));
        let too_big = format!("A={}", x(MAX_ARG_STRLEN - 2));
        let cases: Vec<ProcessCase> = vec![
            (sh(), vec![big.clone()], Ok(())),
            (
                sh(),
                vec![too_big],
                Err(format!("invalid environment variable 'A={}...': 131072 bytes, the limit is 131071 (MAX_ARG_STRLEN)", x(38))),
            ),
            (
                vec![x(MAX_ARG_STRLEN)],
                vec![],
                Err(format!("invalid argument '{}...': 131072 bytes, the limit is 131071 (MAX_ARG_STRLEN)", x(40))),
            ),
            (sh(), vec![big.clone(); 7], Ok(())),
            (
                sh(),
                vec![big; 8],
                Err("argument list too long: the command and environment take 1048579 bytes, the limit is 1048576 (1 MiB)".into()),
            ),
        ];
        for (args, env, want) in cases {
            assert_eq!(check_process(&args, &env).map_err(|e| e.to_string()), want, "{} env", env.len());
        }
    }

    #[test]
    fn quotes_are_cut_on_a_char_boundary() {
        let key = "é".repeat(MAX_LABEL_KEY);
        let e = check_labels([(&key, &String::new())]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("invalid label '{}...'", "é".repeat(40))), "{e}");
    }
}
