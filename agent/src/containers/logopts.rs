//! `--log-opt KEY=VALUE`: the rotation a person asks for, checked with
//! Docker's units and turned into the shim's [`LogLimits`]. What is not
//! given takes [`LogLimits::DEFAULT`] (10 MiB, 3 files): unlike Docker's
//! `json-file`, a container's log is never unbounded.
use std::collections::HashMap;

use berth_contract::log::LogLimits;

use super::InvalidError;
use crate::error::{AgentError, Result};

const MAX_SIZE: &str = "max-size";
const MAX_FILE: &str = "max-file";
/// What the unknown-option error names.
const KNOWN: &str = "max-size and max-file";

/// Checks the options and fills in the defaults.
pub fn parse(opts: &HashMap<String, String>) -> Result<LogLimits> {
    let mut limits = LogLimits::DEFAULT;
    // Sorted, so that of several bad options the same one is named each time.
    let mut keys: Vec<&String> = opts.keys().collect();
    keys.sort();
    for key in keys {
        let value = &opts[key];
        match key.as_str() {
            MAX_SIZE => {
                limits.max_size = parse_size(value)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| AgentError::from(InvalidError::LogSize { key: MAX_SIZE, value: value.clone() }))?;
            }
            MAX_FILE => {
                limits.max_files =
                    value.trim().parse().ok().filter(|n| (1..=LogLimits::MAX_FILES).contains(n)).ok_or_else(|| {
                        AgentError::from(InvalidError::LogFiles {
                            key: MAX_FILE,
                            value: value.clone(),
                            max: LogLimits::MAX_FILES,
                        })
                    })?;
            }
            _ => return Err(AgentError::from(InvalidError::LogOption { key: key.clone(), known: KNOWN })),
        }
    }
    Ok(limits)
}

/// The options as `inspect` shows them (`max-size` in the largest unit that
/// divides it), so they can be given back to `--log-opt`.
pub fn to_opts(limits: &LogLimits) -> HashMap<String, String> {
    HashMap::from([
        (MAX_SIZE.to_owned(), format_size(limits.max_size)),
        (MAX_FILE.to_owned(), limits.max_files.to_string()),
    ])
}

/// Docker's sizes: a number (a fraction allowed), then optionally `k`, `m`,
/// `g` or `t` with an optional `i` and `b` in any case; binary multiples
/// (`1k` is 1024 bytes). `None` for anything else.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(end);
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "ki" | "kib" => 10,
        "m" | "mb" | "mi" | "mib" => 20,
        "g" | "gb" | "gi" | "gib" => 30,
        "t" | "tb" | "ti" | "tib" => 40,
        _ => return None,
    };
    let unit = 1u64 << shift;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut bytes = whole.parse::<u64>().ok()?.checked_mul(unit)?;
    if !fraction.is_empty() {
        // Digits after the point, exactly: `1.5k` is 1536, rounded down.
        let digits = &fraction[..fraction.len().min(12)];
        let scale = 10u128.pow(digits.len() as u32);
        let part = digits.parse::<u128>().ok()? * u128::from(unit) / scale;
        bytes = bytes.checked_add(u64::try_from(part).ok()?)?;
    }
    Some(bytes)
}

/// `10485760` → `10m`; sizes that no unit divides stay in bytes.
fn format_size(n: u64) -> String {
    for (shift, suffix) in [(40, "t"), (30, "g"), (20, "m"), (10, "k")] {
        if n >= 1 << shift && n.trailing_zeros() >= shift {
            return format!("{}{suffix}", n >> shift);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sizes_in_dockers_units() {
        for (input, want) in [
            ("1", Some(1)),
            ("1024", Some(1024)),
            ("10k", Some(10 * 1024)),
            ("10K", Some(10 * 1024)),
            ("10kb", Some(10 * 1024)),
            ("10KiB", Some(10 * 1024)),
            ("10m", Some(10 << 20)),
            ("10 MB", Some(10 << 20)),
            ("1g", Some(1 << 30)),
            ("2t", Some(2 << 40)),
            ("1.5k", Some(1536)),
            ("0.5m", Some(512 * 1024)),
            ("7b", Some(7)),
            (" 3m ", Some(3 << 20)),
            ("0", Some(0)),
            ("", None),
            ("m", None),
            ("-1", None),
            ("10x", None),
            ("10mm", None),
            ("1.2.3k", None),
            (".5k", None),
            ("1e3", None),
            ("99999999999999999999", None),
            ("20000000t", None),
        ] {
            assert_eq!(parse_size(input), want, "{input:?}");
        }
    }

    #[test]
    fn sizes_shown_in_the_largest_unit() {
        for (n, want) in [(10 << 20, "10m"), (102_400, "100k"), (1 << 30, "1g"), (1536, "1536"), (1, "1"), (0, "0")] {
            assert_eq!(format_size(n), want);
            if n > 0 {
                assert_eq!(parse_size(want), Some(n));
            }
        }
    }

    #[test]
    fn options_and_their_defaults() {
        assert_eq!(parse(&opts(&[])).unwrap(), LogLimits::DEFAULT);
        assert_eq!(parse(&opts(&[("max-size", "100k")])).unwrap(), LogLimits { max_size: 102_400, max_files: 3 });
        assert_eq!(parse(&opts(&[("max-file", "1")])).unwrap(), LogLimits { max_size: 10 << 20, max_files: 1 });
        assert_eq!(
            parse(&opts(&[("max-size", "1g"), ("max-file", "100")])).unwrap(),
            LogLimits { max_size: 1 << 30, max_files: 100 }
        );
        assert_eq!(to_opts(&LogLimits::DEFAULT), opts(&[("max-size", "10m"), ("max-file", "3")]));
    }

    #[test]
    fn bad_options_are_refused_with_what_to_give() {
        for (pairs, want) in [
            (&[("max-size", "0")][..], "invalid max-size '0': want a size above 0 such as 100k, 10m or 1g"),
            (&[("max-size", "-1")][..], "invalid max-size '-1'"),
            (&[("max-size", "ten")][..], "invalid max-size 'ten'"),
            (&[("max-file", "0")][..], "invalid max-file '0': want a number of files from 1 to 100"),
            (&[("max-file", "101")][..], "invalid max-file '101'"),
            (&[("max-file", "two")][..], "invalid max-file 'two'"),
            (&[("mode", "non-blocking")][..], "unknown log opt 'mode': berth's log takes max-size and max-file"),
            (&[("max-size", "1m"), ("compress", "true")][..], "unknown log opt 'compress'"),
        ] {
            let err = parse(&opts(pairs)).unwrap_err();
            assert!(
                matches!(err, AgentError::Container(super::super::ContainerError::Invalid(_))),
                "{pairs:?}: {err:?}"
            );
            assert!(err.to_string().contains(want), "{pairs:?}: {err}");
        }
    }
}
