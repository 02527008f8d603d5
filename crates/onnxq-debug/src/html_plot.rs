//! The "SQNR along the graph" chart of the HTML report: one inline SVG with graph order on x and
//! dB on y. Every figure is one marker carrying its exact value in `data-*` attributes, so a test
//! (`tests/py/check_report_html.py`) can read the plotted points back and compare them with the
//! JSON instead of trusting the drawing.
//!
//! [`escape`] lives here too, although `html` uses it more: this file is the leaf, so the two
//! files never import each other (`scripts/check_layout.py` refuses import cycles).

use std::fmt::{self, Write as _};

use crate::report::Report;

// Canvas geometry in SVG user units; the page scales the SVG to its own width.
const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 52.0;
/// Figures above this (dB) are drawn on the top edge: equal tensors give ≈ 346 dB, which would
/// squash every informative figure into the bottom few pixels.
const CAP_DB: f64 = 120.0;
/// The y range always reaches down to at least this, so 0 dB (signal = noise) is always on the
/// chart and a good model does not look bad through a tight axis.
const FLOOR_DB: f64 = -10.0;
/// Longest tensor name written into the first-drop label; the full name is in its tooltip.
const LABEL_CHARS: usize = 48;

/// The chart's part of the page style. Marker classes are one letter (see `Series::class`) as
/// they repeat on every marker; `c` is a clamped (open) marker.
pub(crate) const STYLE: &str = "
svg.plot{display:block;width:100%;height:auto;--act:#2563eb;--qdq:#93c5fd;--wt:#ea580c;\
--drop:#dc2626}
svg.plot text{font-size:12px;fill:#4b5563}
svg.plot .axis-title{font-size:13px;fill:#374151}
.frame{fill:#fff;stroke:#d1d5db}
.grid{stroke:#eef0f3}.zero{stroke:#9ca3af;stroke-dasharray:4 3}.tick{stroke:#9ca3af}
.line{fill:none;stroke-width:1.5}
.line.lx{stroke:var(--act);opacity:.7}
.line.lq{stroke:var(--qdq);opacity:.8}
.plot .x{fill:var(--act)}
.plot .q{fill:var(--qdq)}
.plot .w{fill:var(--wt);stroke:#fff;stroke-width:.8}
.plot .c{fill:#fff;stroke-width:1.5}
.plot .x.c{stroke:var(--act)}
.plot .q.c{stroke:var(--qdq)}
.plot .w.c{stroke:var(--wt)}
.plot .key.c{stroke:#6b7280}
.drop line,.drop-key{stroke:var(--drop);stroke-width:1.5;stroke-dasharray:6 3}
svg.plot .drop text{fill:var(--drop);font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:4px}
";

/// Escapes text for HTML element content and quoted attribute values alike.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The three plotted series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Series {
    /// `ActivationEntry::xmodel_sqnr_db`.
    Xmodel,
    /// `ActivationEntry::qdq_sqnr_db`.
    Qdq,
    /// `WeightEntry::sqnr_db`.
    Weight,
}

impl Series {
    /// The `data-series` value the checker reads.
    fn attr(self) -> &'static str {
        match self {
            Series::Xmodel => "activation-xmodel",
            Series::Qdq => "activation-qdq",
            Series::Weight => "weight",
        }
    }

    /// The CSS class: one letter, as it is repeated on every marker of a large model.
    fn class(self) -> &'static str {
        match self {
            Series::Xmodel => "x",
            Series::Qdq => "q",
            Series::Weight => "w",
        }
    }

    /// What a marker's tooltip says it is.
    fn short(self) -> &'static str {
        match self {
            Series::Xmodel => "activation, float vs quantized model",
            Series::Qdq => "activation, QDQ pair",
            Series::Weight => "weight",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Series::Xmodel => "activation: float vs quantized model",
            Series::Qdq => "activation: QDQ output vs input",
            Series::Weight => "weight: quantized vs float",
        }
    }
}

/// One plotted figure.
#[derive(Debug, Clone, Copy)]
struct Point<'a> {
    series: Series,
    name: &'a str,
    index: usize,
    db: f64,
}

/// Every figure the chart plots, in drawing order (light series first so the main one is on
/// top). Non-finite figures are left out: JSON cannot carry them (serde_json writes `null`), so
/// the page plots exactly what the JSON holds.
fn points(report: &Report) -> Vec<Point<'_>> {
    type Pick = fn(&crate::report::ActivationEntry) -> Option<f64>;
    let series: [(Series, Pick); 2] = [
        (Series::Qdq, |a| a.qdq_sqnr_db),
        (Series::Xmodel, |a| a.xmodel_sqnr_db),
    ];
    let mut pts = Vec::new();
    for (series, pick) in series {
        for a in &report.activations {
            if let Some(db) = pick(a).filter(|v| v.is_finite()) {
                pts.push(Point {
                    series,
                    name: &a.name,
                    index: a.index,
                    db,
                });
            }
        }
    }
    for w in report.weights.iter().filter(|w| w.sqnr_db.is_finite()) {
        pts.push(Point {
            series: Series::Weight,
            name: &w.name,
            index: w.index,
            db: w.sqnr_db,
        });
    }
    pts
}

/// A linear map from data to pixels.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    px_lo: f64,
    px_hi: f64,
}

impl Scale {
    fn px(&self, v: f64) -> f64 {
        self.px_lo + (v - self.lo) / (self.hi - self.lo) * (self.px_hi - self.px_lo)
    }
}

/// 1, 2 or 5 times a power of ten, the smallest at least `raw`: tick spacing people read easily.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let exp = 10f64.powf(raw.log10().floor());
    let f = raw / exp;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * exp
}

/// Multiples of `step` within [lo, hi], computed by multiplication so they do not drift.
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// The dB axis: from the lower of `FLOOR_DB` and the lowest figure to the higher figure capped
/// at `CAP_DB`, widened to whole ticks. Returns the scale and its tick step.
fn y_scale(pts: &[Point<'_>]) -> (Scale, f64) {
    let lowest = pts.iter().map(|p| p.db).fold(f64::INFINITY, f64::min);
    let highest = pts.iter().map(|p| p.db).fold(f64::NEG_INFINITY, f64::max);
    let lo = FLOOR_DB.min(lowest);
    let hi = highest.min(CAP_DB).max(lo + 10.0);
    let step = nice_step((hi - lo) / 7.0);
    let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    let scale = Scale {
        lo,
        hi,
        px_lo: HEIGHT - BOTTOM,
        px_hi: TOP,
    };
    (scale, step)
}

/// The graph-order axis over every plotted index (and the first drop), padded by 1 % (at least
/// half an index) so markers at the ends are not cut by the frame.
fn x_scale(pts: &[Point<'_>], extra: Option<usize>) -> (Scale, f64) {
    let idx = pts.iter().map(|p| p.index).chain(extra);
    let lo = idx.clone().min().unwrap_or(0) as f64;
    let hi = idx.max().unwrap_or(1) as f64;
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let step = nice_step((hi - lo) / 12.0).max(1.0);
    let pad = ((hi - lo) * 0.01).max(0.5);
    let scale = Scale {
        lo: lo - pad,
        hi: hi + pad,
        px_lo: LEFT,
        px_hi: WIDTH - RIGHT,
    };
    (scale, step)
}

/// A tick label: as many decimals as the step needs, never "-0".
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_owned()
    } else {
        s
    }
}

/// Writes the chart (or a sentence saying there is nothing to plot).
pub(crate) fn sqnr_plot(out: &mut String, report: &Report) -> fmt::Result {
    let pts = points(report);
    if pts.is_empty() {
        return writeln!(out, "<p class=\"muted\">No SQNR figures to plot.</p>");
    }
    let drop = first_drop_index(report);
    let (x, xstep) = x_scale(&pts, drop.map(|d| d.0));
    let (y, ystep) = y_scale(&pts);
    writeln!(
        out,
        "<svg class=\"plot\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"SQNR in dB along the graph order\">"
    )?;
    axes(out, x, xstep, y, ystep)?;
    if let Some((index, name, drop_db)) = drop {
        drop_marker(out, x, index, name, drop_db)?;
    }
    for series in [Series::Qdq, Series::Xmodel] {
        line(out, &pts, series, x, y)?;
    }
    // Smaller markers where there are more indices than about 3 px each, so a 1000-node model
    // stays a line of dots instead of one blot.
    let size = if x.hi - x.lo > 360.0 { 0.7 } else { 1.0 };
    for p in &pts {
        marker(out, p, x, y, size)?;
    }
    let clamped = pts
        .iter()
        .any(|p| p.db > y.hi)
        .then(|| tick_label(y.hi, ystep));
    legend(out, &pts, drop.is_some(), clamped)?;
    writeln!(out, "</svg>")
}

/// Frame, grid, tick labels and axis titles.
fn axes(out: &mut String, x: Scale, xstep: f64, y: Scale, ystep: f64) -> fmt::Result {
    let (top, bottom) = (TOP, HEIGHT - BOTTOM);
    writeln!(
        out,
        "<rect class=\"frame\" x=\"{LEFT}\" y=\"{top}\" width=\"{:.1}\" height=\"{:.1}\"/>",
        WIDTH - RIGHT - LEFT,
        bottom - top
    )?;
    for v in ticks(y.lo, y.hi, ystep) {
        let py = y.px(v);
        let class = if v == 0.0 { "zero" } else { "grid" };
        writeln!(
            out,
            "<line class=\"{class}\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 8.0,
            py + 4.0,
            tick_label(v, ystep)
        )?;
    }
    for v in ticks(x.lo, x.hi, xstep) {
        let px = x.px(v);
        writeln!(
            out,
            "<line class=\"tick\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{bottom}\" y2=\"{:.1}\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 5.0,
            bottom + 19.0,
            tick_label(v, xstep)
        )?;
    }
    writeln!(
        out,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">graph order \
         (index of the node output; a weight sits at the node reading it)</text>\
         <text class=\"axis-title\" transform=\"translate(16 {:.1}) rotate(-90)\" \
         text-anchor=\"middle\">SQNR (dB)</text>",
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 10.0,
        (top + bottom) / 2.0
    )
}

/// The first drop's index, name and drop, when the ranking has one and it names an activation.
fn first_drop_index(report: &Report) -> Option<(usize, &str, Option<f64>)> {
    let fd = report.ranking.first_drop.as_ref()?;
    let index = report
        .activations
        .iter()
        .find(|a| a.name == fd.name)
        .map(|a| a.index)
        .or_else(|| {
            report
                .weights
                .iter()
                .find(|w| w.name == fd.name)
                .map(|w| w.index)
        })?;
    Some((index, fd.name.as_str(), fd.drop_db))
}

/// The vertical line at the first drop, labelled on the side with more room.
fn drop_marker(
    out: &mut String,
    x: Scale,
    index: usize,
    name: &str,
    drop_db: Option<f64>,
) -> fmt::Result {
    let px = x.px(index as f64);
    let short: String = if name.chars().count() > LABEL_CHARS {
        let head: String = name.chars().take(LABEL_CHARS - 1).collect();
        format!("{head}…")
    } else {
        name.to_owned()
    };
    let drop = drop_db
        .map(|d| format!(", drops {d:.1} dB"))
        .unwrap_or_default();
    let (anchor, tx) = if px > (LEFT + WIDTH - RIGHT) / 2.0 {
        ("end", px - 6.0)
    } else {
        ("start", px + 6.0)
    };
    writeln!(
        out,
        "<g class=\"drop\"><title>first drop: {} (index {index}){}</title>\
         <line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/>\
         <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">first drop: {}{}</text></g>",
        escape(name),
        escape(&drop),
        HEIGHT - BOTTOM,
        TOP + 30.0,
        escape(&short),
        escape(&drop)
    )
}

/// A line through one activation series in graph order (the eye follows the error along the
/// graph better than through scattered dots), broken at clamped figures: a jump to the top edge
/// and back would draw a spike that is an artefact of the clamp, not of the model.
fn line(out: &mut String, pts: &[Point<'_>], series: Series, x: Scale, y: Scale) -> fmt::Result {
    let mut sel: Vec<&Point<'_>> = pts.iter().filter(|p| p.series == series).collect();
    sel.sort_by_key(|p| p.index);
    let mut d = String::new();
    let mut pen_down = false;
    for p in sel {
        if p.db > y.hi {
            pen_down = false;
            continue;
        }
        let cmd = if pen_down { 'L' } else { 'M' };
        write!(d, "{cmd}{:.1},{:.1}", x.px(p.index as f64), y.px(p.db))?;
        pen_down = true;
    }
    if d.is_empty() {
        return Ok(());
    }
    writeln!(out, "<path class=\"line l{}\" d=\"{d}\"/>", series.class())
}

/// One figure: a circle for activations, a diamond for weights (`size` times the usual); open
/// when clamped.
fn marker(out: &mut String, p: &Point<'_>, x: Scale, y: Scale, size: f64) -> fmt::Result {
    let clamped = p.db > y.hi;
    let (px, py) = (x.px(p.index as f64), y.px(p.db.min(y.hi)));
    let class = if clamped { " c" } else { "" };
    let name = escape(p.name);
    // `{}` of f64 is the shortest string that parses back to the same f64, the figure exactly.
    let data = format!(
        "class=\"{c}{class}\" data-series=\"{s}\" data-name=\"{name}\" data-index=\"{i}\" data-sqnr=\"{v}\"",
        c = p.series.class(),
        s = p.series.attr(),
        i = p.index,
        v = p.db
    );
    match p.series {
        Series::Weight => {
            let h = 4.5 * size;
            write!(
                out,
                "<path {data} d=\"M{px:.1},{:.1}l{h:.2},{h:.2}l-{h:.2},{h:.2}l-{h:.2},-{h:.2}z\">",
                py - h
            )?
        }
        Series::Qdq => write!(
            out,
            "<circle {data} cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"{:.2}\">",
            2.2 * size
        )?,
        Series::Xmodel => write!(
            out,
            "<circle {data} cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"{:.2}\">",
            3.0 * size
        )?,
    }
    writeln!(
        out,
        "<title>{name}\n{} · index {} · {:.2} dB</title></{}>",
        p.series.short(),
        p.index,
        p.db,
        if p.series == Series::Weight {
            "path"
        } else {
            "circle"
        }
    )
}

/// The legend above the frame: one entry per series present, the first drop, the clamp.
fn legend(
    out: &mut String,
    pts: &[Point<'_>],
    has_drop: bool,
    clamped: Option<String>,
) -> fmt::Result {
    let mut lx = LEFT;
    let ly = 22.0;
    writeln!(out, "<g class=\"legend\">")?;
    for series in [Series::Xmodel, Series::Qdq, Series::Weight] {
        if !pts.iter().any(|p| p.series == series) {
            continue;
        }
        let class = series.class();
        match series {
            Series::Weight => write!(
                out,
                "<path class=\"{class}\" d=\"M{:.1},{:.1}l4.5,4.5l-4.5,4.5l-4.5,-4.5z\"/>",
                lx + 6.0,
                ly - 4.5
            )?,
            _ => write!(
                out,
                "<line class=\"line l{class}\" x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{ly}\" y2=\"{ly}\"/>\
                 <circle class=\"{class}\" cx=\"{:.1}\" cy=\"{ly}\" r=\"3\"/>",
                lx + 12.0,
                lx + 6.0
            )?,
        }
        lx = key_text(out, lx, series.label())?;
    }
    if has_drop {
        write!(
            out,
            "<line class=\"drop-key\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            lx + 6.0,
            lx + 6.0,
            ly - 7.0,
            ly + 7.0
        )?;
        lx = key_text(out, lx, "first drop")?;
    }
    if let Some(cap) = clamped {
        // Says where the off-scale figures went, so a marker on the edge is not read as the cap.
        write!(
            out,
            "<circle class=\"key c\" cx=\"{:.1}\" cy=\"{ly}\" r=\"3\"/>",
            lx + 6.0
        )?;
        key_text(out, lx, &format!("above {cap} dB, drawn on the top edge"))?;
    }
    writeln!(out, "</g>")
}

/// A legend entry's text after its 12-unit swatch at `lx`; returns where the next entry starts.
fn key_text(out: &mut String, lx: f64, label: &str) -> Result<f64, fmt::Error> {
    writeln!(
        out,
        "<text x=\"{:.1}\" y=\"26\">{}</text>",
        lx + 18.0,
        escape(label)
    )?;
    // A system sans-serif averages about 6.4 units per character at 12 px.
    Ok(lx + 18.0 + label.chars().count() as f64 * 6.4 + 26.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(db: f64) -> Point<'static> {
        Point {
            series: Series::Xmodel,
            name: "t",
            index: 0,
            db,
        }
    }

    #[test]
    fn y_range_is_clamped_and_reaches_below_zero() {
        // Equal tensors (≈ 346 dB) must not stretch the axis; the floor shows 0 dB.
        let (y, step) = y_scale(&[pt(346.0), pt(35.0), pt(-4.0)]);
        assert_eq!((y.lo, y.hi, step), (-20.0, 120.0, 20.0));
        let (y, _) = y_scale(&[pt(30.0), pt(25.0)]);
        assert!(y.lo <= -10.0 && (30.0..=40.0).contains(&y.hi), "{y:?}");
        // All figures off the scale: a usable axis still.
        let (y, _) = y_scale(&[pt(346.0)]);
        assert!(y.lo < y.hi && y.hi <= CAP_DB, "{y:?}");
        let (y, _) = y_scale(&[pt(-250.5)]);
        assert!(y.lo <= -250.5 && y.hi > y.lo, "{y:?}");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(17.0), 20.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(ticks(-20.0, 120.0, 20.0).len(), 8);
        assert_eq!(tick_label(-0.0, 20.0), "0");
        assert_eq!(tick_label(2.5, 0.5), "2.5");
    }
}
