//! `stats`: what containers use, read from their cgroups once per interval
//! and sent as batches, with CPU % computed over the interval as Docker
//! computes it (the container's CPU time delta over the host's, times the
//! online CPUs). Reading costs a few small file reads per container; nothing
//! is kept between calls.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{ContainerRecord, Manager};
use crate::cgroups::stats::{host_cpu, net_io};
use crate::error::Result;

/// Which containers, how often.
#[derive(Clone, Debug)]
pub struct StatsOptions {
    /// Resolved container IDs; empty: the running ones (all with `all`),
    /// looked up again at each batch.
    pub ids: Vec<String>,
    pub all: bool,
    /// A batch per interval; false: one batch, then the end.
    pub stream: bool,
    pub interval: Duration,
}

/// One container's reading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub cpu_percent: f64,
    pub cpu_ns: u64,
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    pub memory: u64,
    pub memory_limit: u64,
    pub memory_percent: f64,
    pub memory_cache: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

/// Every selected container at one moment.
#[derive(Clone, Debug, Default)]
pub struct StatsBatch {
    pub read_at: i64,
    pub containers: Vec<ContainerStats>,
}

/// Docker's CPU %: the container's share of the host's CPU time over the
/// interval, scaled so one busy CPU is 100.
pub fn cpu_percent(cpu_delta: u64, system_delta: u64, cpus: u32) -> f64 {
    if cpu_delta == 0 || system_delta == 0 {
        return 0.0;
    }
    cpu_delta as f64 / system_delta as f64 * f64::from(cpus) * 100.0
}

impl Manager {
    /// The IDs of `keys` (ID, prefix or name); NOT_FOUND for any unknown.
    pub fn stats_ids(&self, keys: &[String]) -> Result<Vec<String>> {
        keys.iter().map(|k| self.lookup(k).map(|r| r.id)).collect()
    }

    /// Sends batches to `tx` as `opts` says, until the receiver goes (or
    /// after one without `stream`).
    pub async fn stats(self: &Arc<Self>, opts: StatsOptions, tx: mpsc::Sender<StatsBatch>) -> Result<()> {
        let interval = opts.interval.max(Duration::from_millis(100));
        // The first reading is the base of the first batch's CPU %.
        let mut prev = self.read_stats(&opts, &HashMap::new()).await?;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = tx.closed() => return Ok(()),
            }
            let base: HashMap<String, (u64, u64)> =
                prev.containers.iter().map(|c| (c.id.clone(), (c.cpu_ns, c.system_cpu_ns))).collect();
            let batch = self.read_stats(&opts, &base).await?;
            if tx.send(batch.clone()).await.is_err() || !opts.stream {
                return Ok(());
            }
            prev = batch;
        }
    }

    /// The records `opts` selects now, in `ps` order for a selection by
    /// state, in the caller's order for named ones (a removed one drops out).
    fn stats_records(&self, opts: &StatsOptions) -> Result<Vec<ContainerRecord>> {
        if !opts.ids.is_empty() {
            return Ok(opts.ids.iter().filter_map(|id| self.get_record(id).ok().flatten()).collect());
        }
        let mut recs = if opts.all { self.all_records()? } else { self.live_records()? };
        recs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(recs)
    }

    /// One batch; CPU % against `base` (container ID to its CPU and the
    /// host's CPU time at the previous reading).
    async fn read_stats(
        self: &Arc<Self>,
        opts: &StatsOptions,
        base: &HashMap<String, (u64, u64)>,
    ) -> Result<StatsBatch> {
        let recs = self.stats_records(opts)?;
        let (cgroups, host_memory, base) = (self.cgroups.clone(), self.host.memory, base.clone());
        crate::blocking::run(move || {
            let (system_cpu_ns, online_cpus) = host_cpu();
            let read_at = berth_contract::now_nanos();
            let containers = recs
                .into_iter()
                .map(|rec| {
                    let mut s = ContainerStats { id: rec.id.clone(), name: rec.name.clone(), ..Default::default() };
                    let usage = rec.state.status.is_live().then(|| cgroups.usage(&rec.id)).flatten();
                    let Some(u) = usage else { return s };
                    s.running = true;
                    s.cpu_ns = u.cpu_ns;
                    s.system_cpu_ns = system_cpu_ns;
                    s.online_cpus = online_cpus;
                    if let Some(&(cpu0, sys0)) = base.get(&rec.id) {
                        s.cpu_percent =
                            cpu_percent(u.cpu_ns.saturating_sub(cpu0), system_cpu_ns.saturating_sub(sys0), online_cpus);
                    }
                    s.memory = u.memory_without_cache();
                    s.memory_cache = u.inactive_file;
                    s.memory_limit =
                        u.memory_limit.map_or(host_memory, |l| if host_memory > 0 { l.min(host_memory) } else { l });
                    if s.memory_limit > 0 {
                        s.memory_percent = s.memory as f64 / s.memory_limit as f64 * 100.0;
                    }
                    (s.net_rx, s.net_tx) = net_io(rec.state.pid);
                    (s.block_read, s.block_write, s.pids) = (u.block_read, u.block_write, u.pids);
                    s
                })
                .collect();
            Ok(StatsBatch { read_at, containers })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::cpu_percent;

    #[test]
    fn cpu_percent_is_the_share_of_the_hosts_time_times_its_cpus() {
        // Half of the host's time on a 2-CPU host: one CPU, 100 %.
        assert_eq!(cpu_percent(500, 1000, 2), 100.0);
        assert_eq!(cpu_percent(250, 1000, 2), 50.0);
        assert_eq!(cpu_percent(0, 1000, 2), 0.0);
        assert_eq!(cpu_percent(10, 0, 2), 0.0, "no host time passed: no figure");
    }
}
