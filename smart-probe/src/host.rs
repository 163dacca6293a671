//! What the host was doing during a block: Linux pressure stall information (PSI) from
//! `/proc/pressure/{cpu,memory,io}`, stolen CPU time and the number of CPUs from `/proc/stat` and
//! the load average from `/proc/loadavg`.
//!
//! A block takes a [`HostSnapshot`] when it starts and when it ends; [`HostSnapshot::pressure`]
//! turns the two into the share of the block's wall time in which some task stalled on each
//! resource (the `total` counters are cumulative microseconds, so the difference over the block is
//! exact, unlike the kernel's 10-second running average) and the share of CPU time stolen by the
//! hypervisor. A figure the kernel does not offer (no PSI before Linux 4.20, or PSI turned off) is
//! `None`, never an error: the judge then simply has no pressure to compare.

use std::time::Instant;

use smart_core::engine::HostPressure;

/// The cumulative counters at one moment.
#[derive(Debug, Clone, Copy)]
pub struct HostSnapshot {
    at: Instant,
    /// `some total=` of cpu, memory and io, in microseconds.
    stalled_us: [Option<u64>; 3],
    /// `(steal, all)` jiffies of the aggregate `cpu` line.
    steal: Option<(u64, u64)>,
    /// The `cpuN` lines of `/proc/stat`: the online CPUs.
    cpus: Option<u32>,
}

impl HostSnapshot {
    /// Reads the counters now (a missing or unreadable file leaves its figure out).
    pub fn read() -> HostSnapshot {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let stat = read("/proc/stat");
        HostSnapshot {
            at: Instant::now(),
            stalled_us: ["cpu", "memory", "io"]
                .map(|r| read(&format!("/proc/pressure/{r}")).and_then(|t| psi_some_total(&t))),
            steal: stat.as_deref().and_then(steal_jiffies),
            cpus: stat.as_deref().and_then(online_cpus),
        }
    }

    /// What the host did between `self` (the block's start) and `end`, with the load average
    /// read now.
    pub fn pressure(&self, end: &HostSnapshot) -> HostPressure {
        let wall_us = end.at.duration_since(self.at).as_secs_f64() * 1e6;
        let share = |i: usize| {
            let (a, b) = (self.stalled_us[i]?, end.stalled_us[i]?);
            (wall_us > 0.0).then(|| (b.saturating_sub(a) as f64 / wall_us * 100.0).min(100.0))
        };
        let steal_pct = self.steal.zip(end.steal).and_then(|((s0, t0), (s1, t1))| {
            let all = t1.saturating_sub(t0);
            (all > 0).then(|| s1.saturating_sub(s0) as f64 / all as f64 * 100.0)
        });
        HostPressure {
            cpu_some_pct: share(0),
            memory_some_pct: share(1),
            io_some_pct: share(2),
            load1: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|t| load1(&t)),
            steal_pct,
            cpus: end.cpus,
        }
    }
}

/// The `total=` of the `some` line of a `/proc/pressure/*` file, in microseconds.
fn psi_some_total(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("some "))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

/// `(steal, all)` jiffies from the aggregate `cpu` line of `/proc/stat`.
fn steal_jiffies(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let steal = *fields.get(7)?;
    Some((steal, fields.iter().take(8).sum()))
}

/// The online CPUs: the `cpuN` lines of `/proc/stat` (`None` when there are none).
fn online_cpus(text: &str) -> Option<u32> {
    let n = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l[3..].starts_with(|c: char| c.is_ascii_digit()))
        .count();
    u32::try_from(n).ok().filter(|&n| n > 0)
}

/// The 1-minute load average from `/proc/loadavg`.
fn load1(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_parsed() {
        let psi = "some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\n\
                   full avg10=0.00 avg60=0.00 avg300=0.00 total=999\n";
        assert_eq!(psi_some_total(psi), Some(123_456));
        assert_eq!(psi_some_total("full avg10=0 total=5\n"), None);
        let stat = "cpu  100 5 50 1000 20 1 2 30 0 0\ncpu0 50 2 25 500 10 0 1 15 0 0\n";
        assert_eq!(steal_jiffies(stat), Some((30, 1208)));
        assert_eq!(online_cpus(stat), Some(1));
        assert_eq!(online_cpus("cpu  1 2 3\nintr 5\n"), None);
        assert_eq!(load1("0.52 0.58 0.59 1/467 12345\n"), Some(0.52));
    }

    #[test]
    fn a_block_on_this_host_gets_figures_within_range() {
        let start = HostSnapshot::read();
        let spin = Instant::now();
        while spin.elapsed().as_millis() < 50 {
            std::hint::black_box(spin.elapsed());
        }
        let p = start.pressure(&HostSnapshot::read());
        for share in [
            p.cpu_some_pct,
            p.memory_some_pct,
            p.io_some_pct,
            p.steal_pct,
        ]
        .into_iter()
        .flatten()
        {
            assert!((0.0..=100.0).contains(&share), "{p:?}");
        }
        if std::path::Path::new("/proc/loadavg").exists() {
            assert!(p.load1.is_some_and(|l| l >= 0.0), "{p:?}");
        }
        if std::path::Path::new("/proc/stat").exists() {
            assert!(p.cpus.is_some_and(|n| n >= 1), "{p:?}");
        }
    }
}
