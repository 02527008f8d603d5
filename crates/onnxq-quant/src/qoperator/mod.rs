//! The QOperator format (ONNX Runtime's `QuantFormat.QOperator`) as a lowering of the QDQ model:
//! named pattern rules replace `DequantizeLinear → op → QuantizeLinear` by one quantized operator
//! (QLinearConv, QLinearMatMul, QGemm, QLinearAdd, ...) reading and writing the quantized tensors,
//! and data-movement ops whose input and output share parameters run on the quantized data
//! directly. Where no rule applies the QDQ form stays (ONNX Runtime fuses it at load time).
//!
//! The rules only read what the QDQ pass wrote, so the parameters are the QDQ pass's (ORT's exact
//! math); names follow ORT's QOperator scheme (`<node>_quant`, `<T>_quantized`).
//!
//! This file is the driver: each node with a rule in `rules.rs` is lowered by `lower.rs` in graph
//! order, then dequantizers nothing reads are removed and quantized tensors renamed.

mod lower;
mod rules;

use std::collections::BTreeMap;

use onnxq_ir::{Graph, Model, NodeId, ValueId};

use crate::edit::node_label;
use crate::error::{Error, Result};
use crate::report::{Outcome, Report};
use crate::weights::remove_if_unused;
use lower::{lower_direct, lower_linear, lower_reads_quantized};
use rules::{Lowering, RULES};

/// Lowers every matching pattern of the (QDQ-quantized) model and updates the report entries.
pub fn lower_qoperator(model: &mut Model, report: &mut Report) -> Result<()> {
    let opset = model.opset("").unwrap_or(0);
    let g = &mut model.graph;
    let ids: Vec<NodeId> = g.nodes().map(|(id, _)| id).collect();
    let mut lowered: Vec<(String, &'static str)> = Vec::new();
    let mut contrib = false;
    for id in ids {
        let Some(n) = g.node(id) else { continue };
        if !n.domain().is_empty() {
            continue;
        }
        let Some((_, rule)) = RULES.iter().find(|(t, _)| *t == n.op_type()) else {
            continue;
        };
        let label = node_label(g, n);
        let done = match *rule {
            Lowering::Linear {
                op,
                domain,
                lead,
                inputs,
                output_first,
                bias,
            } => lower_linear(g, opset, id, op, domain, (lead, inputs), output_first, bias)?.then(
                || {
                    contrib |= !domain.is_empty();
                    op
                },
            ),
            Lowering::Direct => lower_direct(g, opset, id)?.then_some("direct 8-bit"),
            Lowering::ReadsQuantized => {
                lower_reads_quantized(g, id)?.then_some("on quantized data")
            }
        };
        if let Some(op) = done {
            lowered.push((label, op));
        }
    }
    cleanup(g)?;
    rename_quantized(g)?;
    // Report entries by node label, so each lowered node finds its own without a scan of all.
    let mut entries: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in report.nodes.iter().enumerate() {
        entries.entry(e.node.clone()).or_default().push(i);
    }
    for (label, op) in lowered {
        for &i in entries.get(&label).into_iter().flatten() {
            report.nodes[i].outcome = Outcome::Quantized {
                pattern: op.to_owned(),
            };
        }
    }
    report.mode = "static-qoperator".into();
    if contrib {
        crate::opset::import_domain(model, "com.microsoft");
    }
    model.graph.validate().map_err(Error::edit)
}

/// Removes DequantizeLinear nodes nothing reads any more, then initializers nothing reads.
fn cleanup(g: &mut Graph) -> Result<()> {
    loop {
        let dead: Vec<NodeId> = g
            .nodes()
            .filter(|(_, n)| {
                n.op_type() == "DequantizeLinear"
                    && n.outputs()
                        .iter()
                        .flatten()
                        .all(|v| g.value(*v).uses().is_empty())
            })
            .map(|(id, _)| id)
            .collect();
        if dead.is_empty() {
            break;
        }
        for id in dead {
            let inputs: Vec<ValueId> = g
                .node(id)
                .map(|n| n.inputs().iter().flatten().copied().collect())
                .unwrap_or_default();
            g.remove_node(id).map_err(Error::edit)?;
            for v in inputs {
                remove_if_unused(g, v);
            }
        }
    }
    // What the QDQ pass left unread was removed there; this catches constants only the removed
    // DequantizeLinear nodes' Identity chains kept alive.
    crate::weights::remove_unread_constants(g).map_err(Error::edit)
}

/// Quantized tensors get ORT's QOperator names: `<T>_quantized` for the output of a
/// QuantizeLinear of T or of a lowered node that stands for T (`<T>quantized`, without the
/// underscore, for Split's outputs as in ORT).
fn rename_quantized(g: &mut Graph) -> Result<()> {
    let mut renames = Vec::new();
    for (_, n) in g.nodes() {
        let suffix = if n.op_type() == "Split" {
            "quantized"
        } else {
            "_quantized"
        };
        for &out in n.outputs().iter().flatten() {
            if let Some(t) = g.value(out).name().strip_suffix("_QuantizeLinear_Output") {
                renames.push((out, t.to_owned(), suffix));
            }
        }
    }
    for (v, base, suffix) in renames {
        let base = base.strip_suffix("_QuantizeLinear_Input").unwrap_or(&base);
        let name = g.fresh_name(&format!("{base}{suffix}"));
        g.rename(v, &name).map_err(Error::edit)?;
    }
    Ok(())
}
