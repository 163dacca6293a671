//! Plain-English reasons, with the numbers behind them, for every verdict.

use smart_core::experiment::Metric;

use crate::host::{
    LeftOut, STARVED_CPU_PCT, STARVED_LOAD_PER_CPU, STARVED_MEMORY_PCT, STARVED_STEAL_PCT,
};
use crate::report::{Interval, Verdict};
use crate::sample::BlockStats;

/// What a report's reasons are written from.
#[derive(Debug, Clone)]
pub(crate) struct Facts<'a> {
    pub(crate) metric: Metric,
    pub(crate) verdict: Verdict,
    pub(crate) min_improvement_pct: f64,
    pub(crate) max_error_increase_pp: f64,
    pub(crate) max_p99_increase_pct: Option<f64>,
    pub(crate) metric_change: Option<Interval>,
    /// Whether `metric_change` holds the exact (sign-flip) bounds; otherwise the normal-theory
    /// ones, shown until the exact test can bound anything.
    pub(crate) exact: bool,
    /// The estimate of the metric's change (percent), also when no bound is possible yet.
    pub(crate) metric_estimate: Option<f64>,
    /// Cycles the keep test used.
    pub(crate) usable_cycles: usize,
    /// The first usable cycle after which the exact test can keep at all.
    pub(crate) first_possible: Option<u32>,
    pub(crate) error_change: Option<Interval>,
    pub(crate) max_error_ratio: f64,
    /// Upper bound of `variant rate − max_error_ratio × baseline rate`, in pp.
    pub(crate) ratio_excess_pp: Option<f64>,
    pub(crate) ratio_floor_pp: f64,
    /// Requests of the baseline and of the variant in blocks that count.
    pub(crate) requests: (u64, u64),
    pub(crate) min_requests: u64,
    /// Cycles left out of the keep test for host interference.
    pub(crate) disturbed: LeftOut,
    pub(crate) p99_change: Option<f64>,
    pub(crate) guardrail: Option<String>,
    pub(crate) cycles: u32,
    pub(crate) decided_at: Option<u32>,
    pub(crate) max_cycles: u32,
    pub(crate) pairs: usize,
    pub(crate) planned_pairs: usize,
    pub(crate) confidence: f64,
    pub(crate) stopped_equivalent: bool,
    pub(crate) stopped_max: bool,
    pub(crate) running: bool,
    pub(crate) winner: Option<(&'a str, f64)>,
}

/// The metric's name as users write it.
pub(crate) fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::P50 => "p50",
        Metric::P90 => "p90",
        Metric::P99 => "p99",
        Metric::Mean => "mean latency",
    }
}

/// The reason recorded when a variant block's error rate passes the abort limit.
pub(crate) fn error_guardrail(block: &BlockStats, limit: f64) -> String {
    format!(
        "guardrail: a variant block had {:.1} % errors ({} of {} requests), above the {:.1} % limit",
        block.error_rate() * 100.0,
        block.errors,
        block.requests,
        limit * 100.0
    )
}

/// The reason recorded when the variant's p99 rises past the guardrail at its confidence bound.
pub(crate) fn p99_guardrail(change_pct: f64, lower_pct: f64, limit_pct: f64) -> String {
    format!(
        "guardrail: the variant's p99 is {change_pct:+.1} % against the baseline's, at least \
         {lower_pct:+.1} % at the confidence bound, above the +{limit_pct:.0} % limit"
    )
}

fn interval_pct(i: &Interval) -> String {
    format!(
        "{:+.1} % (bounds {:+.1} % to {:+.1} %)",
        i.estimate, i.lower, i.upper
    )
}

fn interval_pp(i: &Interval) -> String {
    format!(
        "{:+.2} pp (bounds {:+.2} to {:+.2} pp)",
        i.estimate, i.lower, i.upper
    )
}

/// The reasons for a verdict, most important first.
pub(crate) fn explain(f: &Facts<'_>) -> Vec<String> {
    let mut out = explain_result(f);
    // When host pressure is why no keep was possible and the estimate looked like a win of the
    // required size, that is the first thing to say (the console shows a decision's first
    // reason); otherwise it goes before the closing line on when the test stopped.
    if let Some(line) = disturbed_host_blocked_keep(f) {
        let looked_like_a_win = f
            .metric_estimate
            .or(f.metric_change.map(|m| m.estimate))
            .is_some_and(|e| e <= -f.min_improvement_pct);
        let at = if looked_like_a_win {
            0
        } else {
            out.len().saturating_sub(1)
        };
        out.insert(at, line);
    }
    out
}

/// The reasons of [`explain`] about the result itself, in order.
fn explain_result(f: &Facts<'_>) -> Vec<String> {
    let name = metric_name(f.metric);
    let level = if f.exact {
        format!(
            "each bound {:.2} % one-sided, exact over the cycles' random orders, held over all \
             looks",
            f.confidence * 100.0
        )
    } else {
        format!(
            "normal-theory bounds, {:.2} % one-sided; the exact test that decides a keep cannot \
             bound the change yet{}",
            f.confidence * 100.0,
            f.first_possible.map_or_else(String::new, |c| format!(
                " (first after cycle {c} of {})",
                f.max_cycles
            ))
        )
    };
    let mut out = Vec::new();
    if let Some(g) = &f.guardrail {
        out.push(g.clone());
    }
    let Some(m) = f.metric_change else {
        if f.guardrail.is_some() {
            // The guardrail is the reason; a shortage of data it caused says nothing more.
            out.push(when(f));
            return out;
        }
        match f.metric_estimate {
            Some(estimate) => out.push(format!(
                "{name} {estimate:+.1} %: no confidence bound yet: the exact test over {} usable \
                 cycle(s) cannot reach {:.2} %{}",
                f.usable_cycles,
                f.confidence * 100.0,
                f.first_possible.map_or_else(
                    || " with this schedule at all (more cycles are needed)".to_string(),
                    |c| format!(" before cycle {c} of {}", f.max_cycles)
                )
            )),
            None => out.push(format!(
                "too little data: {} usable block pairs of {} planned (a block counts when it \
                 ran to its end with at least 30 answered requests)",
                f.pairs, f.planned_pairs
            )),
        }
        disturbed(f, &mut out);
        out.push(when(f));
        return out;
    };
    let need = f.min_improvement_pct;
    match f.verdict {
        Verdict::Keep => {
            out.push(format!(
                "{name} {}: at least {:.1} % faster, meeting the required {need:.0} % ({level})",
                interval_pct(&m),
                -m.upper
            ));
        }
        _ if f.exact && m.lower > 0.0 => out.push(format!(
            "{name} {}: significantly slower than the baseline ({level})",
            interval_pct(&m)
        )),
        _ if m.upper <= -need => out.push(format!(
            "{name} {}: at least {:.1} % faster, meeting the required {need:.0} % ({level})",
            interval_pct(&m),
            -m.upper
        )),
        _ if f.stopped_equivalent => out.push(format!(
            "{name} {}: confidently between a {need:.0} % win and a {need:.0} % loss, so no win \
             of the required size ({level})",
            interval_pct(&m)
        )),
        _ if m.upper < 0.0 => out.push(format!(
            "{name} {}: the win could be as small as {:.1} %, short of the required {need:.0} % \
             ({level})",
            interval_pct(&m),
            -m.upper
        )),
        _ => out.push(format!(
            "{name} {}: it could even be a {:.1} % slowdown, so no win of the required {need:.0} % \
             is shown ({level})",
            interval_pct(&m),
            m.upper
        )),
    }
    let max_err = f.max_error_increase_pp;
    match f.error_change {
        Some(e) if e.lower > max_err => out.push(format!(
            "error rate {}: more than the allowed +{max_err:.1} pp",
            interval_pp(&e)
        )),
        Some(e) if e.upper <= max_err => out.push(format!(
            "error rate {}: within the allowed +{max_err:.1} pp",
            interval_pp(&e)
        )),
        Some(e) => out.push(format!(
            "error rate {}: could exceed the allowed +{max_err:.1} pp",
            interval_pp(&e)
        )),
        None => out.push("error rate: too few block pairs to bound it".to_string()),
    }
    if let Some(excess) = f.ratio_excess_pp
        && excess > f.ratio_floor_pp
    {
        out.push(format!(
            "errors could be more than {:.1}× the baseline's (the variant's rate minus {:.1}× the \
             baseline's is up to {excess:+.2} pp, more than the {:.2} pp allowed): no keep",
            f.max_error_ratio, f.max_error_ratio, f.ratio_floor_pp
        ));
    }
    if f.requests.0.min(f.requests.1) < f.min_requests {
        out.push(format!(
            "too few requests to keep: {} baseline and {} variant requests in blocks that count, \
             at least {} each are needed",
            f.requests.0, f.requests.1, f.min_requests
        ));
    }
    disturbed(f, &mut out);
    if let (Some(p99), Some(limit), None) = (f.p99_change, f.max_p99_increase_pct, &f.guardrail) {
        out.push(format!(
            "p99 {p99:+.1} %: within the +{limit:.0} % guardrail"
        ));
    }
    if let Some((winner, change)) = f.winner {
        out.push(format!(
            "it passed too, but {winner} was faster ({name} {change:+.1} % against {:+.1} %): \
             only the best variant is kept",
            m.estimate
        ));
    }
    out.push(when(f));
    out
}

/// The notes on cycles left out of the keep test for host interference.
fn disturbed(f: &Facts<'_>, out: &mut Vec<String>) {
    let LeftOut { starved, differed } = &f.disturbed;
    if let (n @ 1.., Some(reason)) = (starved.0, &starved.1) {
        out.push(format!(
            "{n} cycle(s) left out of the keep test: the host was starved (latest: {reason}; a \
             block counts as starved at {STARVED_CPU_PCT:.0} % CPU pressure with a load of \
             {STARVED_LOAD_PER_CPU:.0} per CPU, {STARVED_MEMORY_PCT:.0} % memory pressure or \
             {STARVED_STEAL_PCT:.0} % stolen CPU)"
        ));
    }
    if let (n @ 1.., Some(reason)) = (differed.0, &differed.1) {
        out.push(format!(
            "{n} cycle(s) left out of the keep test: partner blocks ran under very different host \
             pressure (latest: {reason})"
        ));
    }
}

/// When host pressure, not the schedule, is why an inconclusive test could not keep (without the
/// cycles it left out, a keep would have been possible): a line that says so, with the counts.
fn disturbed_host_blocked_keep(f: &Facts<'_>) -> Option<String> {
    let LeftOut { starved, differed } = &f.disturbed;
    let usable = f.usable_cycles as u32;
    let first = f.first_possible?;
    (f.verdict == Verdict::Inconclusive
        && usable < first
        && first <= usable + starved.0 + differed.0)
        .then(|| {
            format!(
                "no keep on a disturbed host: host pressure left {usable} of {} cycles for the \
                 keep test, and a keep needs {first}; run when the host is quieter, or with more \
                 cycles",
                f.cycles
            )
        })
}

fn when(f: &Facts<'_>) -> String {
    let at = f.decided_at.unwrap_or(f.cycles);
    if f.running {
        format!(
            "judged after cycle {} of {}, before the test ended",
            f.cycles, f.max_cycles
        )
    } else if f.stopped_max {
        format!("all {} cycles used", f.max_cycles)
    } else if at < f.cycles {
        format!(
            "decided on the look after cycle {at} (measured {} of {} cycles)",
            f.cycles, f.max_cycles
        )
    } else {
        format!("stopped after cycle {} of {}", f.cycles, f.max_cycles)
    }
}
