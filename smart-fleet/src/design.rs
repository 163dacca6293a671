//! The crossover design, pure: the balanced random split of the hosts into two arms, the order
//! of each pair of periods, the promotion stages, and the judge's positions of each block.

/// SplitMix64's output function (as smart-core's private `mix`): a well-mixed 64-bit hash, enough
/// for a seeded shuffle and a fair bit per pair.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One of the two host groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The first group of the split.
    A,
    /// The second.
    B,
}

impl Group {
    /// The other group.
    pub fn other(self) -> Group {
        match self {
            Group::A => Group::B,
            Group::B => Group::A,
        }
    }
}

/// Splits `hosts` at random into two groups whose sizes differ by at most one (a seeded
/// Fisher-Yates shuffle, then halves; each half sorted for readable logs).
///
/// ```
/// let hosts: Vec<String> = ["web1", "web2", "web3", "web4", "web5"].map(String::from).to_vec();
/// let (a, b) = smart_fleet::split(&hosts, 42);
/// assert_eq!((a.len(), b.len()), (3, 2));
/// assert!(a.iter().all(|h| !b.contains(h)));
/// ```
pub fn split(hosts: &[String], seed: u64) -> (Vec<String>, Vec<String>) {
    let mut shuffled = hosts.to_vec();
    let mut state = seed;
    for i in (1..shuffled.len()).rev() {
        state = splitmix64(state);
        let j = (state % (i as u64 + 1)) as usize;
        shuffled.swap(i, j);
    }
    let half = shuffled.len().div_ceil(2);
    let mut b = shuffled.split_off(half);
    let mut a = shuffled;
    a.sort();
    b.sort();
    (a, b)
}

/// Which group runs the variant in the first period of pair `pair`: a fair coin per pair, so
/// the sign of each pair's contrast is randomised (the sign-flip test's premise); the second
/// period swaps.
pub fn first_variant(seed: u64, pair: u32) -> Group {
    if splitmix64(seed ^ splitmix64(u64::from(pair) + 0x5eed)) & 1 == 0 {
        Group::A
    } else {
        Group::B
    }
}

/// The judge's position of group `group`'s block in period `period` (0 or 1) of a pair: the two
/// blocks of one period are neighbours (0-1, 2-3), so the judge pairs blocks measured over the
/// same window.
pub fn position(period: u32, group: Group) -> u32 {
    2 * period + u32::from(group == Group::B)
}

/// The cumulative number of the `rest` hosts promoted at each stage of `stages_pct`, without
/// repeats (25 % of 2 hosts and 50 % of them are both 1 host: one stage).
pub fn stage_counts(rest: usize, stages_pct: &[f64]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for pct in stages_pct {
        let n = ((pct / 100.0) * rest as f64).ceil() as usize;
        let n = n.clamp(1, rest.max(1)).min(rest);
        if n > 0 && out.last() != Some(&n) {
            out.push(n);
        }
    }
    out
}

/// `hosts` as a PromQL regex alternation, each escaped for RE2 inside a double-quoted PromQL
/// string (a `.` becomes `\\.`, so that `web.1` never matches `web11`).
///
/// ```
/// let hosts = ["web.1".to_string(), "web2".to_string()];
/// assert_eq!(smart_fleet::hosts_regex(&hosts), r"web\\.1|web2");
/// ```
pub fn hosts_regex(hosts: &[String]) -> String {
    hosts
        .iter()
        .map(|h| {
            let mut out = String::with_capacity(h.len());
            for c in h.chars() {
                if "\\.+*?()|[]{}^$".contains(c) {
                    out.push_str("\\\\");
                }
                if c == '"' {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        })
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("h{i:03}")).collect()
    }

    #[test]
    fn the_split_is_balanced_complete_and_varies_with_the_seed() {
        for n in [2, 3, 4, 5, 20, 201] {
            let hosts = names(n);
            let (a, b) = split(&hosts, 7);
            assert_eq!(a.len(), n.div_ceil(2));
            assert_eq!(b.len(), n / 2);
            let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
            all.sort();
            assert_eq!(all, hosts);
        }
        let hosts = names(20);
        let splits: std::collections::BTreeSet<Vec<String>> =
            (0..20).map(|seed| split(&hosts, seed).0).collect();
        assert!(splits.len() > 15, "the seed should change the split");
        assert_eq!(split(&hosts, 3), split(&hosts, 3));
    }

    #[test]
    fn the_first_arm_of_each_pair_is_a_fair_coin() {
        let a = (0..4000)
            .filter(|p| first_variant(11, *p) == Group::A)
            .count();
        assert!((1800..2200).contains(&a), "{a} of 4000");
    }

    #[test]
    fn blocks_of_one_period_are_neighbours() {
        assert_eq!(position(0, Group::A), 0);
        assert_eq!(position(0, Group::B), 1);
        assert_eq!(position(1, Group::A), 2);
        assert_eq!(position(1, Group::B), 3);
    }

    #[test]
    fn stages_are_cumulative_and_never_repeat() {
        let check = |rest, expected: &[usize]| {
            assert_eq!(stage_counts(rest, &[25.0, 50.0, 100.0]), expected, "{rest}");
        };
        check(2, &[1, 2]);
        check(1, &[1]);
        check(100, &[25, 50, 100]);
        check(10, &[3, 5, 10]);
        check(0, &[]);
    }

    #[test]
    fn host_names_are_escaped_for_promql() {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(hosts_regex(&h(&["web1", "web2"])), "web1|web2");
        assert_eq!(
            hosts_regex(&h(&["127.0.0.1:9100"])),
            "127\\\\.0\\\\.0\\\\.1:9100"
        );
    }
}
