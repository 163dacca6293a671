//! The four charts: the latency CDF, p50 and error rate per block, and the trend across runs.

use std::fmt::Write as _;

use super::*;

/// Latency distributions of the baseline and each variant as cumulative curves on a log axis.
/// `None` when no series has a sample.
pub(crate) fn cdf(id: &str, series: &[Distribution]) -> Option<String> {
    let min = series.iter().filter_map(|d| d.latencies.min()).min()?;
    let max = series.iter().filter_map(|d| d.latencies.max()).max()?;
    let mut frame = Frame {
        top: 0.0,
        x: Axis::log_latency(min as f64, max as f64, "latency (ms, log scale)"),
        y: Axis {
            min: 0.0,
            max: 100.0,
            log: false,
            ticks: (0..=4)
                .map(|i| (i as f64 * 25.0, format!("{}", i * 25)))
                .collect(),
            title: "requests at or below (%)",
        },
    };
    let legend: Vec<LegendItem> = series
        .iter()
        .map(|d| LegendItem {
            name: format!(
                "{} (n = {})",
                d.series.name,
                format::count(d.latencies.len())
            ),
            style: d.series.style,
            marker: false,
            line: true,
            hollow: false,
        })
        .collect();
    let mut out = String::new();
    open(
        &mut out,
        id,
        "Latency distribution: baseline versus each variant",
        "Cumulative share of successful requests answered within a given latency, one curve per arm, measured test blocks only. A curve further left is faster.",
        &legend,
        &mut frame,
    );
    out.push_str(r#"<g class="data">"#);
    for d in series {
        let n = d.latencies.len();
        if n == 0 {
            continue;
        }
        let steps = n.min(200);
        let step_q = |i: u64| i as f64 / steps as f64;
        let ranks = (0..=steps).map(|i| ((step_q(i) * (n - 1) as f64).round() as u64).min(n - 1));
        let mut points = String::new();
        for (i, value) in d.latencies.at_ranks(ranks).enumerate() {
            let _ = write!(
                points,
                "{:.1},{:.1} ",
                frame.px(value as f64),
                frame.py(step_q(i as u64) * 100.0)
            );
        }
        let _ = write!(
            out,
            r#"<polyline class="line {}" points="{}"><title>{}</title></polyline>"#,
            class(d.series.style),
            points.trim_end(),
            escape(&d.series.name)
        );
    }
    out.push_str("</g></svg>");
    Some(out)
}

/// The median latency of every block in time order, one marker style per arm (soak blocks
/// hollow), so drift and the interleaving are visible. `None` without blocks.
pub(crate) fn block_p50(id: &str, series: &[Series], blocks: &[BlockPoint]) -> Option<String> {
    let last = blocks.iter().map(|b| b.index).max()?;
    let max = blocks.iter().filter_map(|b| b.p50_us).max().unwrap_or(0) as f64;
    let mut frame = Frame {
        top: 0.0,
        x: block_axis(last),
        y: Axis::linear(max, 1000.0, "p50 latency (ms)"),
    };
    let mut legend = legend_of(series, true, false);
    if blocks.iter().any(|b| b.soak) {
        legend.push(LegendItem {
            name: "soak block (hollow)".to_owned(),
            style: series.iter().map(|s| s.style).max().unwrap_or(1),
            marker: true,
            line: false,
            hollow: true,
        });
    }
    let mut out = String::new();
    open(
        &mut out,
        id,
        "Median latency per block, in time order",
        "Each marker is one block's p50 latency, placed in the order the blocks ran, styled by the arm that was live.",
        &legend,
        &mut frame,
    );
    out.push_str(r#"<g class="data"><polyline class="trace" points=""#);
    let mut first = true;
    for b in blocks {
        if let Some(p50) = b.p50_us {
            let _ = write!(
                out,
                "{}{:.1},{:.1}",
                if first { "" } else { " " },
                frame.px(f64::from(b.index)),
                frame.py(p50 as f64)
            );
            first = false;
        }
    }
    out.push_str(r#""/>"#);
    for b in blocks {
        if let Some(p50) = b.p50_us {
            out.push_str(&marker(
                b.style,
                b.soak,
                frame.px(f64::from(b.index)),
                frame.py(p50 as f64),
                &b.label,
            ));
        }
    }
    out.push_str("</g></svg>");
    Some(out)
}

/// The error rate of every block in time order, as bars styled by arm. `None` without blocks.
pub(crate) fn block_errors(id: &str, series: &[Series], blocks: &[BlockPoint]) -> Option<String> {
    let last = blocks.iter().map(|b| b.index).max()?;
    let max = blocks.iter().map(|b| b.error_pct).fold(0.0, f64::max);
    let mut frame = Frame {
        top: 0.0,
        x: block_axis(last),
        y: Axis::linear(if max > 0.0 { max } else { 1.0 }, 1.0, "error rate (%)"),
    };
    let legend = legend_of(series, true, false);
    let mut out = String::new();
    open(
        &mut out,
        id,
        "Error rate per block, in time order",
        "Each bar is the share of a block's requests that failed (bad status, timeout or transport error), styled by the arm that was live.",
        &legend,
        &mut frame,
    );
    out.push_str(r#"<g class="data">"#);
    let slot = (frame.px(2.0) - frame.px(1.0)).abs();
    let width = (slot * 0.6).clamp(2.0, 18.0);
    let base = frame.py(0.0);
    if max <= 0.0 {
        let _ = write!(
            out,
            r#"<text class="note" x="{:.1}" y="{:.1}">no errors in any block</text>"#,
            (LEFT + WIDTH - RIGHT) / 2.0,
            frame.top + PLOT_HEIGHT / 2.0
        );
    }
    for b in blocks {
        let x = frame.px(f64::from(b.index)) - width / 2.0;
        let top = frame.py(b.error_pct);
        let height = (base - top).max(if b.error_pct > 0.0 { 1.0 } else { 0.0 });
        let _ = write!(
            out,
            r#"<rect class="bar {}{}" x="{x:.1}" y="{:.1}" width="{width:.1}" height="{height:.1}"><title>{}</title></rect>"#,
            class(b.style),
            if b.soak { " hollow" } else { "" },
            base - height,
            escape(&b.label)
        );
    }
    out.push_str("</g></svg>");
    Some(out)
}

/// The p50 of the configuration that was live, run after run: each run's baseline, and the
/// variant when one was kept. `None` without points.
pub(crate) fn trend(id: &str, points: &[TrendPoint]) -> Option<String> {
    let first = points.iter().map(|p| p.at).fold(f64::INFINITY, f64::min);
    let last = points
        .iter()
        .map(|p| p.at)
        .fold(f64::NEG_INFINITY, f64::max);
    if !first.is_finite() {
        return None;
    }
    let (lo, hi) = if last > first {
        (first, last)
    } else {
        (first - 3600.0, first + 3600.0)
    };
    let pad = (hi - lo) * 0.03;
    let (lo, hi) = (lo - pad, hi + pad);
    let ticks = (0..5)
        .map(|i| {
            let t = lo + (hi - lo) * (0.05 + 0.225 * i as f64);
            (t, format::tick_time(t, hi - lo))
        })
        .collect();
    let max = points.iter().map(|p| p.p50_us).fold(0.0, f64::max);
    let mut frame = Frame {
        top: 0.0,
        x: Axis {
            min: lo,
            max: hi,
            log: false,
            ticks,
            title: "time (UTC)",
        },
        y: Axis::linear(max, 1000.0, "p50 latency (ms)"),
    };
    let legend = vec![
        LegendItem {
            name: "live config before each run (its baseline)".to_owned(),
            style: 0,
            marker: true,
            line: true,
            hollow: false,
        },
        LegendItem {
            name: "after a kept change (the variant)".to_owned(),
            style: 1,
            marker: true,
            line: false,
            hollow: false,
        },
    ];
    let mut out = String::new();
    open(
        &mut out,
        id,
        "p50 latency of the live configuration across runs",
        "Each run measured the configuration that was live before it (circles); when a variant was kept, its p50 becomes the new live level (squares). Markers link to the run's page.",
        &legend,
        &mut frame,
    );
    let mut sorted: Vec<&TrendPoint> = points.iter().collect();
    sorted.sort_by(|a, b| a.at.total_cmp(&b.at));
    out.push_str(r#"<g class="data"><polyline class="line s0" points=""#);
    for (i, p) in sorted.iter().enumerate() {
        let _ = write!(
            out,
            "{}{:.1},{:.1}",
            if i == 0 { "" } else { " " },
            frame.px(p.at),
            frame.py(p.p50_us)
        );
    }
    out.push_str(r#""/>"#);
    let r = if sorted.len() > 40 { 3.0 } else { 4.5 };
    // Kept squares are drawn last and a little larger: the next run's baseline usually measures
    // the kept configuration moments later, at the same level, and would otherwise cover it.
    let (kept, baselines): (Vec<&TrendPoint>, Vec<&TrendPoint>) =
        sorted.iter().partition(|p| p.kept);
    for p in baselines.into_iter().chain(kept) {
        let _ = write!(out, r#"<a href="{}">"#, escape(&p.href));
        out.push_str(&sized_marker(
            usize::from(p.kept),
            false,
            frame.px(p.at),
            frame.py(p.p50_us),
            if p.kept { r * 1.4 } else { r },
            &p.label,
        ));
        out.push_str("</a>");
    }
    out.push_str("</g></svg>");
    Some(out)
}

fn block_axis(last: u32) -> Axis {
    let last = last.max(1);
    let step = nice_step(f64::from(last) / 8.0).max(1.0).round();
    let mut ticks = vec![(1.0, "1".to_owned())];
    let mut v = step;
    while v <= f64::from(last) {
        if v > 1.0 {
            ticks.push((v, format::tick(v)));
        }
        v += step;
    }
    Axis {
        min: 0.5,
        max: f64::from(last) + 0.5,
        log: false,
        ticks,
        title: "block (in the order run)",
    }
}

fn legend_of(series: &[Series], marker: bool, line: bool) -> Vec<LegendItem> {
    series
        .iter()
        .map(|s| LegendItem {
            name: s.name.clone(),
            style: s.style,
            marker,
            line,
            hollow: false,
        })
        .collect()
}
