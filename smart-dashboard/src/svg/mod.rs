//! The charts, drawn as inline SVG by our own code so they need no script and no outside file:
//! the latency distribution (CDF on a log axis), p50 and error rate per block in time order, and
//! the trend of the live configuration's p50 across runs.
//!
//! Every piece of text that comes from records (names, labels) goes through [`escape`]. Colours
//! and line styles come from classes (`s0` … `s5`: the Okabe–Ito palette in the CSS file, with a
//! dark-mode variant); series differ by marker shape and dash pattern too, so no chart relies on
//! colour alone.
//!
//! This file holds the drawing kit (axes, frames, legends, markers); [`charts`] the four charts; [`search`] a search's response curves.

mod charts;
mod search;

use std::fmt::Write as _;

use smart_core::records::LatencyDistribution;

use crate::format;

pub(crate) use charts::{block_errors, block_p50, cdf, trend};
pub(crate) use search::response_curve;

/// Width of every chart's view box; the CSS scales it to the page.
const WIDTH: f64 = 720.0;
/// Space for the y tick labels and the y axis title.
const LEFT: f64 = 66.0;
const RIGHT: f64 = 16.0;
/// Space for the x tick labels and the x axis title.
const BOTTOM: f64 = 48.0;
const PLOT_HEIGHT: f64 = 200.0;
/// Height of one legend row.
const LEGEND_ROW: f64 = 20.0;
/// Colour classes before they repeat (with another marker shape).
const PALETTE: usize = 6;

/// Escapes text for HTML and SVG, in element content and in quoted attributes alike.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A named series: its legend text and its style index (0 is the baseline).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// The legend text.
    pub(crate) name: String,
    /// The style index: picks the colour class, the marker shape and the dash pattern.
    pub(crate) style: usize,
}

/// One series of a latency distribution: its latencies in µs, pooled in bounded memory.
#[derive(Debug, Clone)]
pub(crate) struct Distribution {
    /// The series.
    pub(crate) series: Series,
    /// The latencies (exact below 512 µs, within 0.2 % above: well under a pixel).
    pub(crate) latencies: LatencyDistribution,
}

/// One block, for the per-block charts.
#[derive(Debug, Clone)]
pub(crate) struct BlockPoint {
    /// Its 1-based index in the run (time order).
    pub(crate) index: u32,
    /// Style index of its arm.
    pub(crate) style: usize,
    /// A soak block (drawn hollow).
    pub(crate) soak: bool,
    /// Its median latency.
    pub(crate) p50_us: Option<u64>,
    /// Its error rate in percent.
    pub(crate) error_pct: f64,
    /// Tooltip text.
    pub(crate) label: String,
}

/// One point of the live configuration's trend.
#[derive(Debug, Clone)]
pub(crate) struct TrendPoint {
    /// Unix time.
    pub(crate) at: f64,
    /// The live configuration's p50, µs.
    pub(crate) p50_us: f64,
    /// Measured on a variant that was then kept (otherwise on the baseline).
    pub(crate) kept: bool,
    /// Tooltip text.
    pub(crate) label: String,
    /// The run page it links to.
    pub(crate) href: String,
}

/// A chart's axis: range, scale, ticks and title.
struct Axis {
    min: f64,
    max: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
    title: &'static str,
}

impl Axis {
    fn fraction(&self, value: f64) -> f64 {
        let (v, lo, hi) = if self.log {
            (
                value.max(self.min).log10(),
                self.min.log10(),
                self.max.log10(),
            )
        } else {
            (value, self.min, self.max)
        };
        if hi > lo {
            ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.5
        }
    }

    /// A linear axis from 0 to a round number at or above `max`, with about five ticks; `scale`
    /// divides values for the labels (1000 for µs shown as ms).
    fn linear(max: f64, scale: f64, title: &'static str) -> Axis {
        let max = if max > 0.0 { max } else { scale };
        let step = nice_step(max / 4.0);
        let top = (max / step).ceil() * step;
        let count = (top / step).round() as usize;
        let ticks = (0..=count)
            .map(|i| {
                let v = step * i as f64;
                (v, format::tick(v / scale))
            })
            .collect();
        Axis {
            min: 0.0,
            max: top,
            log: false,
            ticks,
            title,
        }
    }

    /// A log axis from the 1-2-5 step at or below `min` to the one at or above `max` (in µs,
    /// labelled in ms), with a tick at every 1-2-5 step between.
    fn log_latency(min: f64, max: f64, title: &'static str) -> Axis {
        let steps = |e: i32| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e));
        let lo_exp = min.max(1.0).log10().floor() as i32;
        let hi_exp = max.max(1.0).log10().ceil() as i32;
        let all: Vec<f64> = (lo_exp..=hi_exp).flat_map(steps).collect();
        let lo = all
            .iter()
            .rev()
            .find(|&&v| v <= min.max(1.0))
            .copied()
            .unwrap_or(all[0]);
        let mut hi = all
            .iter()
            .find(|&&v| v >= max.max(1.0))
            .copied()
            .unwrap_or(10f64.powi(hi_exp));
        if hi <= lo {
            hi = lo * 2.0;
        }
        let ticks = all
            .iter()
            .filter(|&&v| v >= lo && v <= hi)
            .map(|&v| (v, format::tick(v / 1000.0)))
            .collect();
        Axis {
            min: lo,
            max: hi,
            log: true,
            ticks,
            title,
        }
    }
}

/// The smallest of 1, 2, 2.5 and 5 × 10^k at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw > 0.0 { raw } else { 1.0 };
    let base = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|&s| s >= raw * 0.999_999)
        .unwrap_or(10.0 * base)
}

/// The drawing area of one chart, below its legend.
struct Frame {
    top: f64,
    x: Axis,
    y: Axis,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        LEFT + self.x.fraction(x) * (WIDTH - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        self.top + (1.0 - self.y.fraction(y)) * PLOT_HEIGHT
    }

    fn height(&self) -> f64 {
        self.top + PLOT_HEIGHT + BOTTOM
    }
}

/// Starts a chart: the `<svg>` element, its accessible title and description, the legend, grid,
/// axes and axis titles; the caller adds the data and closes it with `</svg>`.
fn open(
    out: &mut String,
    id: &str,
    title: &str,
    desc: &str,
    legend: &[LegendItem],
    frame: &mut Frame,
) {
    let rows = legend_rows(legend);
    frame.top = 12.0 + rows.len() as f64 * LEGEND_ROW + if rows.is_empty() { 0.0 } else { 6.0 };
    let id = escape(id);
    let _ = write!(
        out,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {h}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{t}</title><desc id="{id}-d">{d}</desc>"#,
        h = frame.height(),
        t = escape(title),
        d = escape(desc),
    );
    if !rows.is_empty() {
        out.push_str(r#"<g class="legend">"#);
        for (r, row) in rows.iter().enumerate() {
            let y = 12.0 + r as f64 * LEGEND_ROW + 8.0;
            for (x, item) in row {
                out.push_str(&legend_swatch(item, *x, y));
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                    x + 26.0,
                    y + 4.0,
                    escape(&item.name)
                );
            }
        }
        out.push_str("</g>");
    }
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let (y0, y1) = (frame.top + PLOT_HEIGHT, frame.top);
    out.push_str(r#"<g class="grid">"#);
    for (v, _) in &frame.y.ticks {
        let y = frame.py(*v);
        let _ = write!(
            out,
            r#"<line x1="{x0}" x2="{x1}" y1="{y:.1}" y2="{y:.1}"/>"#
        );
    }
    for (v, _) in &frame.x.ticks {
        let x = frame.px(*v);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{y0:.1}" y2="{y1:.1}"/>"#
        );
    }
    out.push_str("</g>");
    out.push_str(r#"<g class="axis">"#);
    let _ = write!(
        out,
        r#"<line x1="{x0}" x2="{x1}" y1="{y0:.1}" y2="{y0:.1}"/><line x1="{x0}" x2="{x0}" y1="{y0:.1}" y2="{y1:.1}"/>"#
    );
    for (v, label) in &frame.y.ticks {
        let _ = write!(
            out,
            r#"<text class="ty" x="{:.1}" y="{:.1}">{}</text>"#,
            x0 - 6.0,
            frame.py(*v) + 4.0,
            escape(label)
        );
    }
    for (v, label) in &frame.x.ticks {
        let _ = write!(
            out,
            r#"<text class="tx" x="{:.1}" y="{:.1}">{}</text>"#,
            frame.px(*v),
            y0 + 16.0,
            escape(label)
        );
    }
    let _ = write!(
        out,
        r#"<text class="title-x" x="{:.1}" y="{:.1}">{}</text><text class="title-y" transform="translate(14 {:.1}) rotate(-90)">{}</text></g>"#,
        (x0 + x1) / 2.0,
        y0 + 40.0,
        frame.x.title,
        (y0 + y1) / 2.0,
        frame.y.title
    );
}

/// A legend entry: a marker and/or a line sample in the series' style.
struct LegendItem {
    name: String,
    style: usize,
    marker: bool,
    line: bool,
    hollow: bool,
}

/// Lays legend items out left to right, wrapping rows at the chart's width.
fn legend_rows(items: &[LegendItem]) -> Vec<Vec<(f64, &LegendItem)>> {
    let mut rows: Vec<Vec<(f64, &LegendItem)>> = Vec::new();
    let mut x = LEFT;
    for item in items {
        let width = 26.0 + 7.0 * item.name.chars().count().min(60) as f64 + 18.0;
        if rows.is_empty() || (x + width > WIDTH - RIGHT && x > LEFT) {
            rows.push(Vec::new());
            x = LEFT;
        }
        rows.last_mut().expect("a row was pushed").push((x, item));
        x += width;
    }
    rows
}

fn legend_swatch(item: &LegendItem, x: f64, y: f64) -> String {
    let class = class(item.style);
    let mut out = String::new();
    if item.line {
        let _ = write!(
            out,
            r#"<line class="line {class}" x1="{x:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/>"#,
            x + 20.0
        );
    }
    if item.marker {
        out.push_str(&marker(item.style, item.hollow, x + 10.0, y, ""));
    }
    out
}

/// The colour class of a style index.
fn class(style: usize) -> String {
    format!("s{}", style % PALETTE)
}

/// A marker whose shape depends on the style index (circle, square, triangle, diamond, down
/// triangle, cross), with an optional tooltip.
fn marker(style: usize, hollow: bool, x: f64, y: f64, tooltip: &str) -> String {
    sized_marker(style, hollow, x, y, 4.5, tooltip)
}

/// A [`marker`] of radius `r` (smaller where many points crowd a chart).
fn sized_marker(style: usize, hollow: bool, x: f64, y: f64, r: f64, tooltip: &str) -> String {
    let class = format!(
        "mark {}{}",
        class(style),
        if hollow { " hollow" } else { "" }
    );
    let title = if tooltip.is_empty() {
        String::new()
    } else {
        format!("<title>{}</title>", escape(tooltip))
    };
    let shape = match style % 6 {
        0 => {
            return format!(
                r#"<circle class="{class}" cx="{x:.1}" cy="{y:.1}" r="{r}">{title}</circle>"#
            );
        }
        1 => format!(
            "M{:.1} {:.1}h{:.1}v{:.1}h{:.1}z",
            x - r,
            y - r,
            2.0 * r,
            2.0 * r,
            -2.0 * r
        ),
        2 => format!(
            "M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}z",
            y - r - 1.0,
            x + r + 0.5,
            y + r,
            x - r - 0.5,
            y + r
        ),
        3 => format!(
            "M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}z",
            y - r - 1.0,
            x + r + 1.0,
            y + r + 1.0,
            x - r - 1.0
        ),
        4 => format!(
            "M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}z",
            y + r + 1.0,
            x + r + 0.5,
            y - r,
            x - r - 0.5,
            y - r
        ),
        _ => format!(
            "M{:.1} {:.1}h{:.1}v{:.1}h{:.1}v{:.1}h{:.1}v{:.1}h{:.1}v{:.1}h{:.1}v{:.1}z",
            x - 1.5,
            y - r,
            3.0,
            r - 1.5,
            r - 1.5,
            3.0,
            -(r - 1.5),
            r - 1.5,
            -3.0,
            -(r - 1.5),
            -(r - 1.5),
            -3.0
        ),
    };
    format!(r#"<path class="{class}" d="{shape}">{title}</path>"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn nice_steps_are_round() {
        for (raw, want) in [
            (0.3, 0.5),
            (1.0, 1.0),
            (1.2, 2.0),
            (2.2, 2.5),
            (7.0, 10.0),
            (1800.0, 2000.0),
        ] {
            assert_eq!(nice_step(raw), want, "{raw}");
        }
    }

    #[test]
    fn log_axis_covers_the_data_in_1_2_5_steps() {
        let axis = Axis::log_latency(350.0, 42_000.0, "t");
        assert_eq!((axis.min, axis.max), (200.0, 50_000.0));
        let labels: Vec<&str> = axis.ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["0.2", "0.5", "1", "2", "5", "10", "20", "50"]);
        let narrow = Axis::log_latency(1500.0, 4000.0, "t");
        let labels: Vec<&str> = narrow.ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["1", "2", "5"]);
        let exact = Axis::log_latency(2000.0, 2000.0, "t");
        assert_eq!((exact.min, exact.max), (2000.0, 4000.0));
    }

    #[test]
    fn charts_without_data_are_left_out() {
        assert!(cdf("c", &[]).is_none());
        assert!(block_p50("c", &[], &[]).is_none());
        assert!(trend("c", &[]).is_none());
    }

    #[test]
    fn legend_text_and_tooltips_are_escaped() {
        let series = [Series {
            name: "<b>&\"".to_owned(),
            style: 1,
        }];
        let blocks = [BlockPoint {
            index: 1,
            style: 1,
            soak: false,
            p50_us: Some(1000),
            error_pct: 1.0,
            label: "<i>'".to_owned(),
        }];
        let svg = block_p50("c", &series, &blocks).unwrap();
        assert!(svg.contains("&lt;b&gt;&amp;&quot;"), "{svg}");
        assert!(svg.contains("&lt;i&gt;&#39;"), "{svg}");
        assert!(!svg.contains("<b>") && !svg.contains("<i>"));
    }
}
