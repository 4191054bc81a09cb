//! The container log: its record format and how much of it is kept
//! ([`LogLimits`]), shared by the shim (writer) and berthd (reader). One
//! record a line, as the CRI logging format:
//!
//! ```text
//! 2026-11-22T14:03:07.123456789Z stdout F hello world
//! ```
//!
//! `F` marks a record that ended with a newline in the output, `P` a partial
//! one (a line longer than the buffer, or the output's last bytes with no
//! newline). The newline itself is not part of the content.
use serde::{Deserialize, Serialize};

/// How much log one container keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimits {
    /// Largest size of one file in bytes; more than 0.
    pub max_size: u64,
    /// Most files kept, `container.log` included; 1 to [`Self::MAX_FILES`].
    pub max_files: u32,
}

impl LogLimits {
    /// 10 MiB a file, 3 files: at most 30 MiB a container when nothing is
    /// asked for. (Docker's `json-file` keeps everything by default, and a
    /// chatty container fills the disk.)
    pub const DEFAULT: Self = Self { max_size: 10 * 1024 * 1024, max_files: 3 };

    /// The most files a container may keep: every rotation renames each of
    /// them, and a reader holds them all open at once.
    pub const MAX_FILES: u32 = 100;

    /// Whether the values are in range.
    pub fn valid(&self) -> bool {
        self.max_size > 0 && (1..=Self::MAX_FILES).contains(&self.max_files)
    }

    /// How many rotated files are kept besides `container.log`.
    pub fn kept_rotations(&self) -> u32 {
        self.max_files.saturating_sub(1)
    }
}

impl Default for LogLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Unix nanoseconds.
    pub time: i64,
    pub stream: &'a str,
    /// The bytes, with the newline restored for full (`F`) records.
    pub partial: bool,
    pub content: &'a [u8],
}

/// Appends one record to `out`. `content` must not contain a newline.
pub fn encode(out: &mut Vec<u8>, time_nanos: i64, stream: &str, partial: bool, content: &[u8]) {
    format_time(out, time_nanos);
    out.push(b' ');
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// Parses one line (without its newline). `None` for a malformed line.
pub fn decode(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = parse_time(std::str::from_utf8(parts.next()?).ok()?)?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let content = parts.next().unwrap_or(b"");
    Some(Record { time, stream, partial, content })
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 with nanoseconds, UTC. Written by hand: the shim stays small.
pub fn format_time(out: &mut Vec<u8>, nanos: i64) {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let s = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z", sod / 3600, (sod / 60) % 60, sod % 60);
    out.extend_from_slice(s.as_bytes());
}

/// Parses what [`format_time`] writes.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 30 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[29] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let secs = days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    Some(secs * 1_000_000_000 + num(20..29)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        let t = 1_795_000_000_123_456_789;
        encode(&mut out, t, "stderr", false, b"hello world");
        encode(&mut out, t + 1, "stdout", true, b"");
        let text = String::from_utf8(out.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(" stderr F hello world"), "{}", lines[0]);
        let r = decode(lines[0].as_bytes()).unwrap();
        assert_eq!((r.time, r.stream, r.partial, r.content), (t, "stderr", false, &b"hello world"[..]));
        let r = decode(lines[1].as_bytes()).unwrap();
        assert_eq!((r.time, r.partial, r.content), (t + 1, true, &b""[..]));
    }

    #[test]
    fn known_time() {
        let mut out = Vec::new();
        format_time(&mut out, 0);
        assert_eq!(out, b"1970-01-01T00:00:00.000000000Z");
        let mut out = Vec::new();
        format_time(&mut out, 951_782_400_000_000_001); // 2000-02-29
        assert_eq!(out, b"2000-02-29T00:00:00.000000001Z");
        assert_eq!(parse_time("2000-02-29T00:00:00.000000001Z"), Some(951_782_400_000_000_001));
        assert_eq!(decode(b"garbage"), None);
    }
}
