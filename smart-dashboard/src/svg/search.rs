//! A search's response curve for one param: each judged move along it, from the value it was
//! judged against (on the zero line) to the candidate's value at its measured change, with the
//! judge's interval as a bar; kept moves in one style, the others in another.

use std::fmt::Write as _;

use smart_search::Curve;

use super::{Axis, Frame, LegendItem, marker, nice_step, open};
use crate::format;

/// The chart of `curve`; `None` when it has no measured move.
pub(crate) fn response_curve(id: &str, curve: &Curve) -> Option<String> {
    if curve.moves.is_empty() {
        return None;
    }
    let xs = curve.moves.iter().flat_map(|m| [m.from, m.to]);
    let (lo, hi) = xs.fold((i64::MAX, i64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (lo, hi) = (lo as f64, hi as f64);
    let pad = ((hi - lo) * 0.06).max(0.5);
    let ys = curve
        .moves
        .iter()
        .flat_map(|m| [m.change_pct.lower, m.change_pct.upper, 0.0]);
    let (ylo, yhi) = ys.fold((0.0f64, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    let step = nice_step(((yhi - ylo) / 4.0).max(0.5));
    let (ylo, yhi) = ((ylo / step).floor() * step, (yhi / step).ceil() * step);
    let count = ((yhi - ylo) / step).round() as usize;
    let y_ticks = (0..=count)
        .map(|i| {
            let v = ylo + step * i as f64;
            (v, format::tick(v))
        })
        .collect();
    let x_step = nice_step(((hi - lo) / 5.0).max(1.0));
    let mut x_ticks = Vec::new();
    let mut v = (lo / x_step).ceil() * x_step;
    while v <= hi {
        x_ticks.push((v, format::tick(v)));
        v += x_step;
    }
    let mut frame = Frame {
        top: 0.0,
        x: Axis {
            min: lo - pad,
            max: hi + pad,
            log: false,
            ticks: x_ticks,
            title: "value",
        },
        y: Axis {
            min: ylo,
            max: yhi,
            log: false,
            ticks: y_ticks,
            title: "change of the objective (%)",
        },
    };
    let legend = vec![
        LegendItem {
            name: "kept (proven better than what it was judged against)".to_owned(),
            style: 1,
            marker: true,
            line: true,
            hollow: false,
        },
        LegendItem {
            name: "not kept".to_owned(),
            style: 2,
            marker: true,
            line: true,
            hollow: true,
        },
    ];
    let mut out = String::new();
    open(
        &mut out,
        id,
        &format!("response of the objective to {}", curve.param),
        &format!(
            "Each judged move of {} (every other param unchanged): from the value it was judged against, on the zero line, to the candidate's value at the change the judge measured, with its confidence interval. Negative is faster.",
            curve.param
        ),
        &legend,
        &mut frame,
    );
    out.push_str(r#"<g class="data">"#);
    let zero = frame.py(0.0);
    for m in &curve.moves {
        let style = if m.kept { 1 } else { 2 };
        let (x0, x1) = (frame.px(m.from as f64), frame.px(m.to as f64));
        let y = frame.py(m.change_pct.estimate);
        let _ = write!(
            out,
            r#"<line class="line s{style}" x1="{x0:.1}" x2="{x1:.1}" y1="{zero:.1}" y2="{y:.1}"/><line class="line s{style}" x1="{x1:.1}" x2="{x1:.1}" y1="{:.1}" y2="{:.1}"/>"#,
            frame.py(m.change_pct.lower),
            frame.py(m.change_pct.upper)
        );
        let tip = format!(
            "{} {} → {}: {:+.1} % [{:+.1}, {:+.1}], {}",
            curve.param,
            m.from,
            m.to,
            m.change_pct.estimate,
            m.change_pct.lower,
            m.change_pct.upper,
            if m.kept { "kept" } else { "not kept" }
        );
        out.push_str(&marker(style, !m.kept, x1, y, &tip));
    }
    out.push_str("</g></svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use smart_search::{ChangePct, Curve, Move};

    use super::response_curve;

    fn change(estimate: f64) -> ChangePct {
        ChangePct {
            estimate,
            lower: estimate - 2.0,
            upper: estimate + 2.0,
        }
    }

    #[test]
    fn a_curve_draws_every_move_with_its_interval_and_none_without_moves() {
        let curve = Curve {
            param: "level".to_owned(),
            moves: vec![
                Move {
                    from: 1,
                    to: 5,
                    change_pct: change(-9.0),
                    kept: true,
                },
                Move {
                    from: 5,
                    to: 9,
                    change_pct: change(5.0),
                    kept: false,
                },
            ],
        };
        let svg = response_curve("curve-level", &curve).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("response of the objective to level"));
        assert!(
            svg.contains("level 1 → 5: -9.0 % [-11.0, -7.0], kept"),
            "{svg}"
        );
        assert!(
            svg.contains("level 5 → 9: +5.0 % [+3.0, +7.0], not kept"),
            "{svg}"
        );
        assert_eq!(svg.matches(r#"<line class="line s1""#).count(), 2 + 1);
        let empty = Curve {
            param: "level".to_owned(),
            moves: Vec::new(),
        };
        assert_eq!(response_curve("x", &empty), None);
    }
}
