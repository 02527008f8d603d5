//! The cells and tables of the HTML page (`html.rs`): headline cards, numeric cells carrying the
//! exact figure in `data-v` for sorting, text cells, table heads and feet, number formats.

use std::fmt::{self, Write as _};

use crate::html_plot::escape;

/// A headline figure; `name` sets a tensor name in a smaller monospace (they run long).
pub(crate) fn card(out: &mut String, label: &str, value: &str, name: bool) -> fmt::Result {
    let class = if name { "value name" } else { "value" };
    writeln!(
        out,
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"{class}\">{}</div></div>",
        escape(label),
        escape(value)
    )
}

/// A number with `d` decimals.
pub(crate) fn fixed(v: f64, d: usize) -> String {
    format!("{v:.d$}")
}

/// About four significant digits, in scientific notation when tiny or huge (errors span many
/// orders of magnitude).
pub(crate) fn general(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&a) {
        let d = (3.0 - a.log10().floor()).clamp(0.0, 6.0) as usize;
        format!("{v:.d$}")
    } else {
        format!("{v:.3e}")
    }
}

/// A numeric cell: the exact figure in `data-v` (sorting reads it, the style right-aligns by it),
/// rounded as text; an empty `data-v` for a missing figure (sorted last).
pub(crate) fn num(out: &mut String, v: Option<f64>, show: fn(f64) -> String) -> fmt::Result {
    match v {
        Some(v) => write!(out, "<td data-v=\"{v}\">{}</td>", show(v)),
        None => write!(out, "<td data-v=\"\">—</td>"),
    }
}

pub(crate) fn db(v: f64) -> String {
    fixed(v, 2)
}

pub(crate) fn cos(v: f64) -> String {
    fixed(v, 6)
}

pub(crate) fn pct(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

/// A text cell; `class` "name" sets tensor and node names in monospace (they are identifiers).
pub(crate) fn text(out: &mut String, v: &str, class: &str) -> fmt::Result {
    if class.is_empty() {
        write!(out, "<td>{}</td>", escape(v))
    } else {
        write!(out, "<td class=\"{class}\">{}</td>", escape(v))
    }
}

/// A table head; `sortable` tables get the click-to-sort script.
pub(crate) fn thead(out: &mut String, sortable: bool, cols: &[(&str, bool)]) -> fmt::Result {
    let class = if sortable { " class=\"sortable\"" } else { "" };
    write!(out, "<div class=\"scroll\"><table{class}>\n<thead><tr>")?;
    for (c, numeric) in cols {
        let class = if *numeric { " class=\"num\"" } else { "" };
        write!(out, "<th{class}>{}</th>", escape(c))?;
    }
    writeln!(out, "</tr></thead>\n<tbody>")
}

pub(crate) fn tfoot(out: &mut String) -> fmt::Result {
    writeln!(out, "</tbody>\n</table></div>")
}
