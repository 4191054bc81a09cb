//! Docker-like output: aligned tables, human durations and sizes.
use crate::out::outln;

/// Prints rows under headers, columns padded to their widest cell and
/// separated by three spaces, as `docker ps` does.
pub fn print(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    for line in render(headers, rows) {
        outln!("{line}")?;
    }
    Ok(())
}

/// The lines `print` prints.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.trim_end().to_owned()
    };
    std::iter::once(line(headers.to_vec()))
        .chain(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())))
        .collect()
}

/// Docker's human duration: `Less than a second`, `3 seconds`, `About a
/// minute`, `5 minutes`, `About an hour`, `3 hours`, `2 days`, `3 weeks`,
/// `4 months`, `2 years`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

/// Seconds since a unix-nanosecond time.
pub fn ago_nanos(nanos: i64) -> i64 {
    (now_nanos() - nanos) / 1_000_000_000
}

pub fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Docker's `units.HumanSize`: decimal units, four significant digits
/// (`999B`, `1kB`, `1.235MB`), as its pull progress and `cp` show sizes.
pub fn human_size_4(n: u64) -> String {
    scaled(n, 1000.0, &["B", "kB", "MB", "GB", "TB"], 4)
}

/// Docker's `units.BytesSize`: binary units, four significant digits
/// (`1.5MiB`, `1.944GiB`), as `stats` shows memory.
pub fn binary_size(n: u64) -> String {
    scaled(n, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"], 4)
}

/// `n` in the largest of `units` (each `base` times the one before) that
/// keeps it at least 1, with `digits` significant digits and no trailing
/// zeros, as Go's `%.Ng`.
fn scaled(n: u64, base: f64, units: &[&str], digits: usize) -> String {
    let mut v = n as f64;
    let mut u = 0;
    while v >= base && u + 1 < units.len() {
        v /= base;
        u += 1;
    }
    if u == 0 {
        return format!("{n}{}", units[0]);
    }
    let whole = if v >= 1000.0 {
        4
    } else if v >= 100.0 {
        3
    } else if v >= 10.0 {
        2
    } else {
        1
    };
    let decimals = digits.saturating_sub(whole);
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}{}", units[u])
}

/// Decimal sizes with three significant digits, as Docker: `4.26MB`.
pub fn human_size(bytes: u64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 3)
}

/// `"sh -c 'echo hi'"`, cut to Docker's 20 characters with an ellipsis.
pub fn command(args: &[String], trunc: bool) -> String {
    let full = args.join(" ");
    let shown = if trunc && full.chars().count() > 20 {
        let cut: String = full.chars().take(19).collect();
        format!("{cut}…")
    } else {
        full
    };
    format!("\"{shown}\"")
}

/// RFC 3339 in UTC with seconds, for JSON output and `-t`.
pub fn rfc3339(nanos: i64, with_nanos: bool) -> String {
    let t = chrono::DateTime::from_timestamp(nanos.div_euclid(1_000_000_000), nanos.rem_euclid(1_000_000_000) as u32)
        .unwrap_or_default();
    if with_nanos {
        t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (12, "12 seconds"),
            (60, "About a minute"),
            (150, "2 minutes"),
            (3600, "About an hour"),
            (3 * 3600, "3 hours"),
            (3 * 86400, "3 days"),
            (20 * 86400, "2 weeks"),
            (100 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn sizes() {
        for (b, want) in [
            (0, "0B"),
            (999, "999B"),
            (1234, "1.23kB"),
            (4_260_000, "4.26MB"),
            (12_345_678, "12.3MB"),
            (123_456_789, "123MB"),
            (2_000_000_000, "2GB"),
        ] {
            assert_eq!(human_size(b), want, "{b}");
        }
    }

    #[test]
    fn commands() {
        assert_eq!(command(&["sh".into()], true), "\"sh\"");
        assert_eq!(
            command(&["sh".into(), "-c".into(), "echo hello world forever".into()], true),
            "\"sh -c echo hello wo…\""
        );
    }
}
