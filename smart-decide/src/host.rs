//! Host interference: which cycles ran on a host too disturbed to carry a keep. Two rules, both
//! from the host figures the probe records per block (see docs/statistics.md, "Interference"):
//! a block whose host was **starved** in absolute terms, and partner blocks whose host pressure
//! **differed** (a neighbour's burst hit one pair and not the other).

use smart_core::engine::HostPressure;

use crate::sample::BlockStats;

/// Partner blocks whose CPU, memory or I/O pressure (percent of the block stalled) differ by more
/// than this many points, and by more than [`DISTURBED_RATIO`] times, were measured on different
/// hosts, in effect: their cycle carries no keep. (In an ABBA cycle: the two pairs' differences
/// disagree by more than this.) Not less: on a busy host, background work moves CPU pressure by
/// 60 points and more from one block to the next (on the real-nginx bench with builds running
/// beside it, A/A cycles whose pairs disagreed by up to 60 points were no noisier than the
/// others), and at 20 points 8 of 12 cycles of a clear win were left out.
pub(crate) const DISTURBED_PRESSURE_PP: f64 = 60.0;
/// Partner blocks whose stolen CPU share differs by more than this many points (and the ratio):
/// the same.
pub(crate) const DISTURBED_STEAL_PP: f64 = 10.0;
/// How many times one partner's pressure must exceed the other's (below 1 % counts as 1 %) for a
/// difference to count: on a host that is busy all the time (70 % against 90 % stalled) both
/// blocks share the contention, and a burst that hits one partner alone (2 % against 40 %) is
/// what biases a pair.
pub(crate) const DISTURBED_RATIO: f64 = 2.0;

/// A block is CPU-starved when some task waited for a CPU during at least this share of it
/// (percent) ...
pub(crate) const STARVED_CPU_PCT: f64 = 80.0;
/// ... and the 1-minute load average was at least this many runnable tasks per CPU. CPU pressure
/// alone cannot tell a busy host from a starved one: on a 2-CPU machine running builds beside
/// the real-nginx bench at load 1.5–5 (under 2.5 per CPU), some task waited for a CPU 85–100 % of
/// many blocks while nginx's medians stayed at 2–5 ms; a build at load 25 on the same two CPUs
/// (12 per CPU) gave the same figure and made block medians swing 2–700 ms.
pub(crate) const STARVED_LOAD_PER_CPU: f64 = 4.0;
/// A block is memory-starved when some task waited for memory (reclaim, swap-in) during at least
/// this share of it (percent): a server that is paging.
pub(crate) const STARVED_MEMORY_PCT: f64 = 20.0;
/// A block is starved when the hypervisor stole at least this share of all CPU time (percent).
pub(crate) const STARVED_STEAL_PCT: f64 = 20.0;

/// Why a cycle is left out of the keep test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Disturbance {
    /// A block of the cycle ran on a starved host (the figure, in plain English).
    Starved(String),
    /// Partner blocks ran under very different host pressure (the strongest difference).
    Differed(String),
}

/// Cycles left out of the keep test for host interference, by rule, each with its count and the
/// latest reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LeftOut {
    /// Cycles with a block on a starved host.
    pub(crate) starved: (u32, Option<String>),
    /// Cycles whose partner blocks ran under very different host pressure.
    pub(crate) differed: (u32, Option<String>),
}

impl LeftOut {
    /// Counts one cycle left out, for `why`.
    pub(crate) fn record(&mut self, why: Disturbance) {
        let (count, reason) = match why {
            Disturbance::Starved(reason) => (&mut self.starved, reason),
            Disturbance::Differed(reason) => (&mut self.differed, reason),
        };
        count.0 += 1;
        count.1 = Some(reason);
    }
}

/// Whether the host was starved during a block, in absolute terms (whatever its partner saw):
/// the figure that says so, in plain English; `None` when it was not, or without figures.
///
/// I/O pressure is not a starvation figure: a database server waits on its disks as part of its
/// work, and a burst of it that hits one block is what the partner rule catches.
pub(crate) fn starvation(h: &HostPressure) -> Option<String> {
    if let (Some(cpu), Some(load), Some(cpus)) = (h.cpu_some_pct, h.load1, h.cpus)
        && cpu >= STARVED_CPU_PCT
        && load >= STARVED_LOAD_PER_CPU * f64::from(cpus)
    {
        return Some(format!(
            "CPU pressure {cpu:.0} % at load {load:.1} on {cpus} CPU(s)"
        ));
    }
    if let Some(memory) = h.memory_some_pct.filter(|&m| m >= STARVED_MEMORY_PCT) {
        return Some(format!("memory pressure {memory:.0} %"));
    }
    if let Some(steal) = h.steal_pct.filter(|&s| s >= STARVED_STEAL_PCT) {
        return Some(format!("stolen CPU {steal:.0} %"));
    }
    None
}

/// Why a cycle whose partner blocks are `partners` ((baseline, variant) pairs, left to right)
/// carries no keep: a starved block first, then partner blocks under very different pressure.
/// Both rules look at the cycle's blocks whatever their arms, so the selection is the same under
/// every sign pattern and the sign-flip test stays exact.
pub(crate) fn cycle_disturbance(partners: &[(&BlockStats, &BlockStats)]) -> Option<Disturbance> {
    let starved = partners
        .iter()
        .flat_map(|&(b, v)| [b, v])
        .filter_map(|block| block.host.as_ref().and_then(starvation))
        .next();
    if let Some(reason) = starved {
        return Some(Disturbance::Starved(reason));
    }
    let differed = match partners {
        [first, second] => disagreement(*first, *second),
        [(base, var)] => difference(base, var),
        _ => None,
    };
    differed.map(|d| Disturbance::Differed(d.1))
}

/// The strongest difference in host pressure between two partner blocks that passes the limits.
fn difference(a: &BlockStats, b: &BlockStats) -> Option<(f64, String)> {
    let (ha, hb) = (a.host?, b.host?);
    let figures = [
        (
            "CPU",
            ha.cpu_some_pct,
            hb.cpu_some_pct,
            DISTURBED_PRESSURE_PP,
        ),
        (
            "memory",
            ha.memory_some_pct,
            hb.memory_some_pct,
            DISTURBED_PRESSURE_PP,
        ),
        ("I/O", ha.io_some_pct, hb.io_some_pct, DISTURBED_PRESSURE_PP),
        ("steal", ha.steal_pct, hb.steal_pct, DISTURBED_STEAL_PP),
    ];
    figures
        .iter()
        .filter_map(|&(name, x, y, limit)| {
            let (x, y) = (x?, y?);
            let excess = (x - y).abs() / limit;
            let ratio = x.max(y) / x.min(y).max(1.0);
            (excess > 1.0 && ratio > DISTURBED_RATIO).then(|| {
                let what = if name == "steal" {
                    "stolen CPU".to_string()
                } else {
                    format!("{name} pressure")
                };
                (excess, format!("{what} {x:.0} % against {y:.0} %"))
            })
        })
        .max_by(|p, q| p.0.total_cmp(&q.0))
}

/// For an ABBA cycle's two pairs: the strongest disagreement between the pairs' host-pressure
/// differences (variant minus baseline). A variant that itself changes the server's CPU use
/// (gzip off saves CPU, so its blocks stall less) shifts both pairs alike and is not flagged; a
/// neighbour's burst that hits one block shifts one pair only. Flipping the cycle's order negates
/// both differences, so this, like the spread weights, is the same under every sign pattern.
fn disagreement(
    (b1, v1): (&BlockStats, &BlockStats),
    (b2, v2): (&BlockStats, &BlockStats),
) -> Option<(f64, String)> {
    pressure_disagreement([b1.host?, v1.host?, b2.host?, v2.host?])
}

/// [`disagreement`] on the host figures of an ABBA cycle's blocks as (baseline, variant) of the
/// first pair, then (baseline, variant) of the second.
pub(crate) fn pressure_disagreement(hosts: [HostPressure; 4]) -> Option<(f64, String)> {
    let figure = |f: fn(&HostPressure) -> Option<f64>| -> Option<[f64; 4]> {
        Some([f(&hosts[0])?, f(&hosts[1])?, f(&hosts[2])?, f(&hosts[3])?])
    };
    let figures = [
        (
            "CPU pressure",
            figure(|h| h.cpu_some_pct),
            DISTURBED_PRESSURE_PP,
        ),
        (
            "memory pressure",
            figure(|h| h.memory_some_pct),
            DISTURBED_PRESSURE_PP,
        ),
        (
            "I/O pressure",
            figure(|h| h.io_some_pct),
            DISTURBED_PRESSURE_PP,
        ),
        ("stolen CPU", figure(|h| h.steal_pct), DISTURBED_STEAL_PP),
    ];
    figures
        .iter()
        .filter_map(|&(name, values, limit)| {
            let [b1, v1, b2, v2] = values?;
            let (d1, d2) = (v1 - b1, v2 - b2);
            let excess = (d1 - d2).abs() / limit;
            (excess > 1.0).then(|| {
                (
                    excess,
                    format!(
                        "{name} variant minus baseline {d1:+.0} points in one pair, {d2:+.0} in \
                         the other"
                    ),
                )
            })
        })
        .max_by(|p, q| p.0.total_cmp(&q.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(cpu: f64, load: f64, cpus: u32, memory: f64, steal: f64) -> HostPressure {
        HostPressure {
            cpu_some_pct: Some(cpu),
            memory_some_pct: Some(memory),
            io_some_pct: Some(90.0),
            load1: Some(load),
            steal_pct: Some(steal),
            cpus: Some(cpus),
        }
    }

    fn check(h: HostPressure, want: Option<&str>) {
        assert_eq!(starvation(&h).as_deref(), want, "{h:?}");
    }

    #[test]
    fn a_starved_host_is_told_from_a_busy_one() {
        // The kept no-op of the real-nginx bench: a build at load 25 on two CPUs.
        check(
            host(97.0, 25.3, 2, 0.0, 0.0),
            Some("CPU pressure 97 % at load 25.3 on 2 CPU(s)"),
        );
        // Two CPU-bound background jobs on two CPUs: CPU pressure as high, the run queue short.
        check(host(96.0, 2.5, 2, 0.0, 0.0), None);
        // The same load on 32 CPUs is light.
        check(host(96.0, 25.3, 32, 0.0, 0.0), None);
        // A long run queue that does not stall the CPUs (tasks waiting on disks count in the load).
        check(host(30.0, 25.3, 2, 0.0, 0.0), None);
        // Paging, heavy steal; I/O pressure alone (90 % in every case here) never starves.
        check(host(10.0, 1.0, 2, 35.0, 0.0), Some("memory pressure 35 %"));
        check(host(10.0, 1.0, 2, 0.0, 25.0), Some("stolen CPU 25 %"));
        check(host(10.0, 1.0, 2, 19.0, 19.0), None);
        // Without the CPU count the load cannot be read.
        check(
            HostPressure {
                cpus: None,
                ..host(97.0, 25.3, 2, 0.0, 0.0)
            },
            None,
        );
    }
}
