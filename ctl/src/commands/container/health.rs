//! `--health-*` and `--no-healthcheck` of `run`/`create`, with Docker's
//! durations (`30s`, `1m30s`, `500ms`) and refusals.
use anyhow::{bail, Result};
use berth_proto::v1 as pb;
use clap::Args;

#[derive(Args, Debug, Clone, Default)]
pub struct HealthOpts {
    /// Command to run to check health (run by /bin/sh -c in the container)
    #[arg(long, value_name = "CMD")]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 30s)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    health_interval: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 30s)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    health_timeout: Option<i64>,
    /// Consecutive failures needed to report unhealthy (default 3)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    health_retries: Option<i32>,
    /// Start period for the container to initialize before failures count (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    health_start_period: Option<i64>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    no_healthcheck: bool,
}

impl HealthOpts {
    /// The request's check; `None` leaves the image's as it is.
    pub fn message(&self) -> Result<Option<pb::HealthConfig>> {
        let any = self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some();
        if self.no_healthcheck {
            if any {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(pb::HealthConfig { test: vec!["NONE".into()], ..Default::default() }));
        }
        if !any {
            return Ok(None);
        }
        let checks = [
            ("--health-interval", self.health_interval),
            ("--health-timeout", self.health_timeout),
            ("--health-start-period", self.health_start_period),
            ("--health-retries", self.health_retries.map(i64::from)),
        ];
        for (flag, v) in checks {
            if v.is_some_and(|v| v < 0) {
                bail!("{flag} cannot be negative");
            }
        }
        Ok(Some(pb::HealthConfig {
            test: self.health_cmd.iter().flat_map(|c| ["CMD-SHELL".to_owned(), c.clone()]).collect(),
            interval_ns: self.health_interval.unwrap_or(0),
            timeout_ns: self.health_timeout.unwrap_or(0),
            start_period_ns: self.health_start_period.unwrap_or(0),
            retries: self.health_retries.unwrap_or(0),
        }))
    }
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers each with a
/// unit (`ns`, `us`, `ms`, `s`, `m`, `h`), an optional sign; `0` alone.
/// Nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration \"{text}\"");
    let (neg, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{text}\"")),
            _ => return Err(format!("time: unknown unit \"{unit}\" in duration \"{text}\"")),
        };
        total += value * scale;
        rest = next;
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_parses_them() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("-1s"), Ok(-1_000_000_000));
        assert_eq!(parse_duration("10"), Err("time: missing unit in duration \"10\"".into()));
        assert_eq!(parse_duration("3d"), Err("time: unknown unit \"d\" in duration \"3d\"".into()));
        assert!(parse_duration("").is_err() && parse_duration("s").is_err());
    }

    #[test]
    fn flags_make_dockers_healthcheck_and_refusals() {
        let o = HealthOpts {
            health_cmd: Some("test -e /ok".into()),
            health_interval: Some(1_000_000_000),
            ..Default::default()
        };
        let m = o.message().unwrap().unwrap();
        assert_eq!(m.test, ["CMD-SHELL", "test -e /ok"]);
        assert_eq!((m.interval_ns, m.retries), (1_000_000_000, 0));
        assert!(HealthOpts::default().message().unwrap().is_none(), "nothing given: the image's");
        let none = HealthOpts { no_healthcheck: true, ..Default::default() };
        assert_eq!(none.message().unwrap().unwrap().test, ["NONE"]);
        let both = HealthOpts { no_healthcheck: true, health_retries: Some(2), ..Default::default() };
        assert_eq!(both.message().unwrap_err().to_string(), "--no-healthcheck conflicts with --health-* options");
        let neg = HealthOpts { health_retries: Some(-1), ..Default::default() };
        assert_eq!(neg.message().unwrap_err().to_string(), "--health-retries cannot be negative");
    }
}
