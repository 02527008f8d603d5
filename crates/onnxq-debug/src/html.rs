//! The self-contained HTML page of a comparison [`Report`] (`onnxq compare --html`).
//!
//! One file a user can mail or attach to an issue: inline CSS, an inline SVG chart and a few lines
//! of inline script that only sort tables. Nothing is loaded from the network (no external
//! `src`/`href`, no web fonts), and the output is a pure function of the report (no timestamps),
//! so the same comparison always gives the same bytes. Every table cell holding a number carries
//! the exact figure in `data-v` (sorting reads it); the text shows it rounded.

use std::fmt::{self, Write as _};

use crate::html_cells::{card, cos, db, fixed, general, num, pct, text, tfoot, thead};
use crate::html_plot::{STYLE as PLOT_STYLE, escape, sqnr_plot};
use crate::report::{Quantization, Ranked, Report};

/// Renders the report as one HTML page.
pub fn render(report: &Report) -> String {
    // About 1 kB per tensor between the chart and the table, so a 1000-tensor model does not
    // reallocate all the way up.
    let tensors = report.weights.len() + report.activations.len();
    let mut out = String::with_capacity(16 * 1024 + 1024 * tensors);
    // Writing into a String cannot fail: the only error source of fmt::Write is the sink.
    let _ = page(&mut out, report);
    out
}

/// The page, section by section.
fn page(out: &mut String, r: &Report) -> fmt::Result {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>onnxq compare: {}</title>\n<style>{STYLE}{PLOT_STYLE}</style>\n</head>\n<body>\n<main>",
        escape(&r.quant_model)
    )?;
    header(out, r)?;
    section(out, "outputs", "Model outputs", |o| outputs(o, r))?;
    section(out, "graph", "SQNR along the graph", |o| {
        writeln!(
            o,
            "<p class=\"muted\">Higher is better. Hover a marker for its tensor; the table at the \
             end lists every figure.</p>"
        )?;
        sqnr_plot(o, r)
    })?;
    section(out, "ranking", "Where the error starts", |o| ranking(o, r))?;
    section(out, "suggestions", "Measured exclusions", |o| {
        suggestions(o, r)
    })?;
    if !r.notes.is_empty() {
        section(out, "notes", "Notes", |o| {
            writeln!(o, "<ul class=\"notes\">")?;
            for n in &r.notes {
                writeln!(o, "<li>{}</li>", escape(n))?;
            }
            writeln!(o, "</ul>")
        })?;
    }
    if let Some(q) = &r.quantization {
        section(out, "quantization", "Quantization", |o| quantization(o, q))?;
    }
    section(out, "tensors", "All tensors", |o| tensors(o, r))?;
    writeln!(out, "</main>\n<script>{SCRIPT}</script>\n</body>\n</html>")
}

/// A titled section around what `body` writes.
fn section(
    out: &mut String,
    id: &str,
    title: &str,
    body: impl FnOnce(&mut String) -> fmt::Result,
) -> fmt::Result {
    writeln!(out, "<section id=\"{id}\">\n<h2>{title}</h2>")?;
    body(out)?;
    writeln!(out, "</section>")
}

/// Title, what was compared, and the headline figures a reader wants before any table.
fn header(out: &mut String, r: &Report) -> fmt::Result {
    writeln!(
        out,
        "<header>\n<h1>Quantization comparison</h1>\n<dl class=\"kv\">"
    )?;
    let samples = r.samples.to_string();
    let tensors = format!(
        "{} weights, {} activations",
        r.weights.len(),
        r.activations.len()
    );
    for (k, v) in [
        ("Float model", r.float_model.as_str()),
        ("Quantized model", &r.quant_model),
        ("Format", &r.format),
        ("Engine", &r.engine),
        ("Samples", &samples),
        ("Tensors", &tensors),
        ("Schema", &r.schema),
    ] {
        writeln!(out, "<dt>{k}</dt><dd>{}</dd>", escape(v))?;
    }
    writeln!(out, "</dl>\n<div class=\"cards\">")?;
    let low_sqnr = r.outputs.iter().map(|o| o.sqnr_db).reduce(f64::min);
    let low_cos = r.outputs.iter().map(|o| o.cosine).reduce(f64::min);
    card(
        out,
        "Lowest output SQNR",
        &low_sqnr.map_or("—".into(), |v| format!("{v:.2} dB")),
        false,
    )?;
    card(
        out,
        "Lowest output cosine",
        &low_cos.map_or("—".into(), |v| format!("{v:.6}")),
        false,
    )?;
    let start = r
        .ranking
        .first_drop
        .as_ref()
        .map_or("—", |f| f.name.as_str());
    card(out, "Error starts at", start, start != "—")?;
    let best = r.best.as_ref().map_or("none measured".into(), |b| {
        let s = b.output_sqnr_db;
        format!("{:.2} → {:.2} dB", s.before, s.after)
    });
    card(out, "Best exclusion (output SQNR)", &best, false)?;
    writeln!(out, "</div>\n</header>")
}

fn outputs(out: &mut String, r: &Report) -> fmt::Result {
    if r.outputs.is_empty() {
        return writeln!(
            out,
            "<p class=\"muted\">No model outputs were compared.</p>"
        );
    }
    let cols = [
        ("Output", false),
        ("SQNR (dB)", true),
        ("Cosine", true),
        ("Max abs err", true),
        ("Mean abs err", true),
        ("Top-1 agreement", true),
    ];
    thead(out, true, &cols)?;
    for o in &r.outputs {
        write!(out, "<tr>")?;
        text(out, &o.name, "name")?;
        num(out, Some(o.sqnr_db), db)?;
        num(out, Some(o.cosine), cos)?;
        num(out, Some(o.max_abs_err), general)?;
        num(out, Some(o.mean_abs_err), general)?;
        num(out, o.top1_agreement, pct)?;
        writeln!(out, "</tr>")?;
    }
    tfoot(out)
}

/// The first-drop statement, then the worst tensors.
fn ranking(out: &mut String, r: &Report) -> fmt::Result {
    let t = r.ranking.threshold_db;
    match &r.ranking.first_drop {
        Some(f) => writeln!(
            out,
            "<p class=\"statement\">The error starts at {} <code>{}</code>{}: its SQNR is {:.2} dB{} \
             (threshold {t} dB).</p>",
            escape(&f.kind),
            escape(&f.name),
            node_phrase(f),
            f.sqnr_db,
            f.drop_db
                .map(|d| format!(", {d:.2} dB below its worst input"))
                .unwrap_or_default(),
        )?,
        None => writeln!(
            out,
            "<p class=\"statement\">No activation is more than {t} dB below its inputs: the error \
             builds up gradually rather than starting at one node.</p>"
        )?,
    }
    if r.ranking.worst.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h3>Worst tensors</h3>")?;
    let cols = [
        ("#", true),
        ("Kind", false),
        ("Tensor", false),
        ("Node", false),
        ("SQNR (dB)", true),
        ("Drop (dB)", true),
    ];
    thead(out, false, &cols)?;
    for (i, w) in r.ranking.worst.iter().enumerate() {
        write!(out, "<tr><td class=\"num\">{}</td>", i + 1)?;
        text(out, &w.kind, "")?;
        text(out, &w.name, "name")?;
        text(out, w.node.as_deref().unwrap_or("—"), "name")?;
        num(out, Some(w.sqnr_db), db)?;
        num(out, w.drop_db, db)?;
        writeln!(out, "</tr>")?;
    }
    tfoot(out)
}

fn node_phrase(f: &Ranked) -> String {
    f.node
        .as_ref()
        .map(|n| format!(" (node <code>{}</code>)", escape(n)))
        .unwrap_or_default()
}

/// Names as a list of code spans, the form they are pasted in.
fn names(names: &[String]) -> String {
    let list: Vec<String> = names
        .iter()
        .map(|n| format!("<code>{}</code>", escape(n)))
        .collect();
    list.join(", ")
}

fn suggestions(out: &mut String, r: &Report) -> fmt::Result {
    if r.suggestions.is_empty() {
        writeln!(
            out,
            "<p class=\"muted\">No exclusion was measured (see the notes).</p>"
        )?;
    } else {
        writeln!(
            out,
            "<p class=\"muted\">Each row re-quantized with the nodes kept in float and ran on the \
             same samples; figures are the lowest over the model outputs.</p>"
        )?;
        let cols = [
            ("Exclude", false),
            ("SQNR before", true),
            ("SQNR after", true),
            ("Gain (dB)", true),
            ("Cosine before", true),
            ("Cosine after", true),
            ("Reason", false),
        ];
        thead(out, false, &cols)?;
        for s in &r.suggestions {
            let (q, c) = (s.output_sqnr_db, s.output_cosine);
            write!(out, "<tr><td class=\"name\">{}</td>", names(&s.exclude))?;
            num(out, Some(q.before), db)?;
            num(out, Some(q.after), db)?;
            num(out, Some(q.after - q.before), db)?;
            num(out, Some(c.before), cos)?;
            num(out, Some(c.after), cos)?;
            text(out, &s.reason, "")?;
            writeln!(out, "</tr>")?;
        }
        tfoot(out)?;
    }
    let Some(b) = &r.best else {
        return Ok(());
    };
    writeln!(
        out,
        "<div class=\"best\">\n<h3>Best measured set</h3>\n<p>Keeping {} in float takes the lowest \
         output SQNR from {:.2} dB to {:.2} dB.</p>\n<p class=\"label\">Command-line flag for \
         <code>onnxq quantize</code></p>\n<pre><code>{}</code></pre>\n<p class=\"label\">Config \
         line</p>\n<pre><code>{}</code></pre>\n</div>",
        names(&b.exclude),
        b.output_sqnr_db.before,
        b.output_sqnr_db.after,
        escape(&b.flag),
        escape(&b.config)
    )
}

fn quantization(out: &mut String, q: &Quantization) -> fmt::Result {
    let settings =
        serde_json::to_string_pretty(&q.settings).unwrap_or_else(|_| q.settings.to_string());
    writeln!(
        out,
        "<h3>Settings</h3>\n<pre><code>{}</code></pre>",
        escape(&settings)
    )?;
    if q.nodes.is_empty() {
        return writeln!(
            out,
            "<p class=\"muted\">The quantize report's nodes are not at hand (pass \
             <code>--quant-report</code> to include them).</p>"
        );
    }
    let quantized = q.nodes.iter().filter(|n| n.status == "quantized").count();
    writeln!(
        out,
        "<h3>Nodes</h3>\n<p class=\"muted\">{quantized} quantized, {} not.</p>",
        q.nodes.len() - quantized
    )?;
    let cols = [
        ("Node", false),
        ("Op", false),
        ("Status", false),
        ("Detail", false),
    ];
    thead(out, true, &cols)?;
    for n in &q.nodes {
        write!(out, "<tr>")?;
        text(out, &n.node, "name")?;
        text(out, &n.op_type, "")?;
        let class = if n.status == "quantized" {
            "ok"
        } else {
            "skip"
        };
        write!(
            out,
            "<td><span class=\"badge {class}\">{}</span></td>",
            escape(&n.status)
        )?;
        text(out, &n.detail, "")?;
        writeln!(out, "</tr>")?;
    }
    tfoot(out)
}

/// One row of the all-tensors table.
struct Row<'a> {
    kind: &'static str,
    index: usize,
    name: &'a str,
    node: &'a str,
    op: &'a str,
    sqnr: Option<f64>,
    qdq: Option<f64>,
    cosine: Option<f64>,
    max_err: Option<f64>,
    drop: Option<f64>,
    /// A second, small line under the name (a weight's codes and shape).
    sub: String,
    /// The name cell's tooltip: the quantized model's tensor it was compared with.
    hover: Option<&'a str>,
}

fn rows(r: &Report) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = r
        .weights
        .iter()
        .map(|w| Row {
            kind: "weight",
            index: w.index,
            name: &w.name,
            node: w.consumer.as_deref().unwrap_or(&w.node),
            op: &w.op,
            sqnr: Some(w.sqnr_db),
            qdq: None,
            cosine: None,
            max_err: Some(w.max_abs_err),
            drop: None,
            sub: format!("{} {} {:?}", w.dtype, w.granularity, w.shape),
            hover: Some(w.quantized.as_str()).filter(|q| !q.is_empty()),
        })
        .collect();
    rows.extend(r.activations.iter().map(|a| Row {
        kind: "activation",
        index: a.index,
        name: &a.name,
        node: a.producer.as_deref().unwrap_or("(graph input)"),
        op: a.op.as_deref().unwrap_or(""),
        sqnr: a.xmodel_sqnr_db,
        qdq: a.qdq_sqnr_db,
        cosine: a.xmodel_cosine,
        max_err: a.xmodel_max_abs_err,
        drop: a.drop_db,
        sub: String::new(),
        hover: a.quant_tensor.as_deref(),
    }));
    // Graph order; at one index the weights come first, as the node reads them before it writes.
    rows.sort_by_key(|row| (row.index, row.kind != "weight"));
    rows
}

fn tensors(out: &mut String, r: &Report) -> fmt::Result {
    writeln!(
        out,
        "<p class=\"muted\">Click a column to sort. SQNR is the float model's tensor against the \
         quantized model's (weights: float against dequantized); QDQ SQNR is a Q/DQ pair's output \
         against its input. Rows whose drop exceeds the {} dB threshold are highlighted.</p>",
        r.ranking.threshold_db
    )?;
    let cols = [
        ("Kind", false),
        ("Index", true),
        ("Tensor", false),
        ("Node / producer", false),
        ("Op", false),
        ("SQNR (dB)", true),
        ("QDQ SQNR (dB)", true),
        ("Cosine", true),
        ("Max abs err", true),
        ("Drop (dB)", true),
    ];
    thead(out, true, &cols)?;
    for row in rows(r) {
        let hot = row.drop.is_some_and(|d| d > r.ranking.threshold_db);
        write!(out, "{}", if hot { "<tr class=\"hot\">" } else { "<tr>" })?;
        text(out, row.kind, "")?;
        num(out, Some(row.index as f64), |v| fixed(v, 0))?;
        name_cell(out, &row)?;
        text(out, row.node, "name")?;
        text(out, row.op, "")?;
        num(out, row.sqnr, db)?;
        num(out, row.qdq, db)?;
        num(out, row.cosine, cos)?;
        num(out, row.max_err, general)?;
        num(out, row.drop, db)?;
        writeln!(out, "</tr>")?;
    }
    tfoot(out)
}

/// The tensor's name, with the quantized tensor it was compared with as the tooltip (those names
/// are long and rarely needed, so they do not get a column of their own).
fn name_cell(out: &mut String, row: &Row<'_>) -> fmt::Result {
    match row.hover {
        Some(h) => write!(
            out,
            "<td class=\"name\" title=\"quantized: {}\">",
            escape(h)
        )?,
        None => write!(out, "<td class=\"name\">")?,
    }
    write!(out, "{}", escape(row.name))?;
    if !row.sub.is_empty() {
        write!(out, "<div class=\"sub\">{}</div>", escape(&row.sub))?;
    }
    write!(out, "</td>")
}

/// The page style: a system font stack (no web fonts), tables with sticky heads.
const STYLE: &str = "
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--head:#f3f4f6}
*{box-sizing:border-box}
body{margin:0;background:#f6f7f9;color:var(--fg);\
font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}
main{max-width:1280px;margin:0 auto;padding:24px 28px 48px}
code,pre,.name{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace}
h1{font-size:24px;margin:0 0 12px}
h2{font-size:18px;margin:0 0 12px}
h3{font-size:15px;margin:18px 0 8px}
header,section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 22px;\
margin:0 0 18px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 18px;margin:0 0 14px}
.kv dt{color:var(--muted)}.kv dd{margin:0;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 200px;border:1px solid var(--line);border-radius:6px;padding:10px 14px;\
background:#fafafa}
.card .label,p.label{color:var(--muted);font-size:12px;margin:8px 0 4px}
.card .label{margin:0}
.card .value{font-size:18px;font-weight:600;overflow-wrap:anywhere}
.card .value.name{font-size:14px;padding-top:4px}
.muted{color:var(--muted);margin:0 0 10px}
.statement{font-size:15px}
.scroll{max-height:70vh;overflow:auto;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{position:sticky;top:0;background:var(--head);font-weight:600;white-space:nowrap}
tbody tr:last-child td{border-bottom:none}
tbody tr:hover td{background:#f9fafb}
.num,td[data-v]{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{font-size:12px;overflow-wrap:anywhere;min-width:16em}
td .sub{font-family:system-ui,sans-serif;font-size:11px;color:var(--muted)}
tr.hot td{background:#fef2f2}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:hover{background:#e5e7eb}
th[data-dir=asc]::after{content:' \\25B2';font-size:10px}
th[data-dir=desc]::after{content:' \\25BC';font-size:10px}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px}
.badge.ok{background:#dcfce7;color:#166534}.badge.skip{background:#fef3c7;color:#92400e}
pre{background:#f3f4f6;border:1px solid var(--line);border-radius:6px;padding:10px 12px;\
overflow:auto;font-size:12px;margin:0 0 8px}
.best{border-left:4px solid #16a34a;padding:2px 0 2px 14px;margin-top:18px}
.notes li{margin:2px 0}
";

/// Click-to-sort for `table.sortable`: numbers by their exact `data-v` (missing ones last in
/// either direction), text case-insensitively. Only sorting: the page reads fine without it.
const SCRIPT: &str = "
(function(){
function key(td){var v=td.getAttribute('data-v');
if(v!==null){return v===''?null:parseFloat(v);}return td.textContent.trim().toLowerCase();}
document.querySelectorAll('table.sortable').forEach(function(t){
var ths=t.tHead.rows[0].cells;
Array.prototype.forEach.call(ths,function(th,i){th.title='Click to sort';
th.addEventListener('click',function(){
var dir=th.getAttribute('data-dir')==='asc'?'desc':'asc',s=dir==='asc'?1:-1;
Array.prototype.forEach.call(ths,function(h){h.removeAttribute('data-dir');});
th.setAttribute('data-dir',dir);
var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
rows.sort(function(x,y){var a=key(x.cells[i]),c=key(y.cells[i]);
if(a===null||c===null){return a===c?0:(a===null?1:-1);}
return a<c?-s:(a>c?s:0);});
rows.forEach(function(r){b.appendChild(r);});});});});
})();
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ActivationEntry, Ranked, WeightEntry};

    fn sample() -> Report {
        let activations = (0..5)
            .map(|i| ActivationEntry {
                name: format!("act<{i}>&\"'"),
                index: i,
                producer: Some(format!("node{i}")),
                op: Some("Conv".into()),
                // Some figures missing, one NaN: neither may be plotted.
                qdq_sqnr_db: (i % 2 == 0).then_some(40.0 - i as f64),
                xmodel_sqnr_db: if i == 3 {
                    Some(f64::NAN)
                } else {
                    Some(346.0 - 100.0 * i as f64)
                },
                ..Default::default()
            })
            .collect();
        let weights = (0..3)
            .map(|i| WeightEntry {
                name: format!("w{i}"),
                index: i + 1,
                sqnr_db: -5.0 + i as f64,
                ..Default::default()
            })
            .collect();
        let mut r = Report {
            activations,
            weights,
            ..Default::default()
        };
        r.ranking.first_drop = Some(Ranked {
            kind: "activation".into(),
            name: "act<2>&\"'".into(),
            ..Default::default()
        });
        r
    }

    #[test]
    fn escapes_all_five() {
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
        let html = render(&sample());
        assert!(!html.contains("act<"), "a raw name leaked");
        assert!(html.contains("act&lt;2&gt;&amp;&quot;&#39;"));
    }

    #[test]
    fn one_point_per_finite_figure() {
        let r = sample();
        let html = render(&r);
        let expected = r.weights.len()
            + r.activations
                .iter()
                .filter(|a| a.qdq_sqnr_db.is_some())
                .count()
            + r.activations
                .iter()
                .filter(|a| a.xmodel_sqnr_db.is_some_and(f64::is_finite))
                .count();
        assert_eq!(html.matches(" data-series=\"").count(), expected);
        assert_eq!(html.matches("data-series=\"weight\"").count(), 3);
        // Exact figures, clamped or not.
        assert!(html.contains("data-sqnr=\"346\""));
        assert!(html.contains("data-sqnr=\"-5\""));
        assert!(html.contains("class=\"x c\" data-series=\"activation-xmodel\""));
    }

    #[test]
    fn nothing_from_the_network_and_deterministic() {
        let r = sample();
        let html = render(&r);
        assert!(!html.to_lowercase().contains("http"));
        assert!(!html.contains("@import"));
        assert_eq!(html, render(&r));
        // An empty report still renders a whole page.
        let empty = render(&Report::default());
        assert!(empty.contains("No SQNR figures to plot") && empty.ends_with("</html>\n"));
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(general(0.0), "0");
        assert_eq!(general(12.34567), "12.35");
        assert_eq!(general(0.001234), "0.001234");
        assert_eq!(general(1.5e-7), "1.500e-7");
    }
}
