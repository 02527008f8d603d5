//! Static quantization in the QDQ format (ONNX Runtime's `quantize_static` with
//! `QuantFormat.QDQ`): every selected float tensor gets a QuantizeLinear → DequantizeLinear pair
//! whose parameters come from calibrated ranges; constants are stored quantized behind a lone
//! DequantizeLinear; biases become int32 with scale = input scale × weight scale.
//!
//! This file is the driver, a sequence of named stages as in ORT: **select** (op types and names,
//! here), **activation parameters** (`params.rs`: ranges after ORT's adjustments, overrides),
//! **mark** (`mark.rs`: each selected node's rule from `rules.rs` records which of its tensors are
//! quantized, as activation or weight, per channel or sharing another tensor's parameters; the only
//! edit is folding a removable Relu/Clip into its producer), **quantize constants** (`constants.rs`,
//! in parallel), **emit** (`emit.rs`: stored constants, Q/DQ pairs, int32 biases), then the report
//! and the opset import. Shared state lives in `plan.rs`; overrides are validated in
//! `overrides.rs`. Names follow ORT's (`<T>_QuantizeLinear`, `<W>_quantized`,
//! `<B>_quantized_scale`, ...), so models can be compared.
//!
//! Where ORT's tool writes a wrong model, onnxq does not: a Gemm's `beta` is folded into its int32
//! bias instead of dropped, per-channel axes at opset 11/12 use the `com.microsoft` Q/DQ ops, and
//! constants held in `Constant` nodes are quantized as constants.

mod constants;
mod emit;
mod mark;
mod nonfinite;
pub mod overrides;
mod params;
mod plan;
pub mod rounding;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::{Graph, Model, Node, ValueId};

pub use plan::Ranges;

use crate::edit::{input, node_label, output};
use crate::error::{Error, Result};
use crate::numerics::QuantType;
use crate::options::StaticOptions;
use crate::report::Report;
use crate::select::{Scope, Selection, has_subgraphs};
use emit::Cx;
use overrides::{Resolved, resolve_all};
use plan::{Marks, ParamMap, Params, consumers};
use rules::STATIC_OPS;

/// The op types quantized: the selection given, else every registered one.
fn op_types(opts: &StaticOptions) -> Vec<String> {
    if opts.op_types.is_empty() {
        STATIC_OPS.iter().map(|(t, _)| (*t).to_owned()).collect()
    } else {
        opts.op_types.clone()
    }
}

/// Whether node `n` is selected for quantization, or why not.
fn selection(n: &Node, op_types: &[String], opts: &StaticOptions) -> Result<(), String> {
    if !n.domain().is_empty() && n.op_type() != "EmbedLayerNormalization" {
        return Err(format!("domain `{}` is not quantized", n.domain()));
    }
    let names = Selection {
        op_types,
        include: &opts.include,
        exclude: &opts.exclude,
    };
    names.check(n.op_type(), n.name())
}

/// The tensors whose calibrated ranges [`quantize_qdq`] can read with `opts`: the inputs and
/// outputs of selected nodes, less a Relu's or Clip's sole-consumer input (it takes the output's
/// range). Calibrating only these gives the same model in less time: on a transformer most float
/// tensors feed ops that are not quantized.
pub fn calibration_targets(model: &Model, opts: &StaticOptions) -> BTreeSet<String> {
    let g = &model.graph;
    let op_types = op_types(opts);
    let mut targets = BTreeSet::new();
    let mut from_output = BTreeSet::new();
    for (_, n) in g.nodes() {
        if selection(n, &op_types, opts).is_err() {
            continue;
        }
        for v in n.inputs().iter().chain(n.outputs()).flatten() {
            targets.insert(g.value(*v).name().to_owned());
        }
        if matches!(n.op_type(), "Relu" | "Clip")
            && let Some(i) = input(n, 0)
            && consumers(g, i) == 1
        {
            from_output.insert(g.value(i).name().to_owned());
        }
    }
    &targets - &from_output
}

/// Quantizes `model` statically in the QDQ format with `ranges` (float tensors without a range
/// stay float) and reports what happened to every node of a selected op type.
pub fn quantize_qdq(model: &mut Model, ranges: &Ranges, opts: &StaticOptions) -> Result<Report> {
    let opset = crate::opset::require(model, 11)?;
    let op_types = op_types(opts);
    let entries = Selection {
        op_types: &op_types,
        include: &opts.include,
        exclude: &opts.exclude,
    };
    entries.check_entries(&model.graph, Scope::MainGraph)?;
    let g = &mut model.graph;
    let selected = |n: &Node| selection(n, &op_types, opts);

    // Activation parameters: from the adjusted ranges and the overrides (validated in full first).
    let range = params::adjusted_ranges(g, ranges, &|n| selected(n).is_ok());
    let overrides: BTreeMap<ValueId, Resolved> = resolve_all(g, opts)?
        .into_iter()
        .filter_map(|(name, r)| g.value_by_name(&name).map(|v| (v, r)))
        .collect();
    let softmax = qoperator_softmax_outputs(g, opts, &|n| selected(n).is_ok());
    let act = params::activation_params(g, &range, &overrides, opts, &softmax)?;

    // Mark, node by node in graph order.
    let mut marks = Marks::new(opts, &act.own, &overrides);
    let mut report = Report {
        mode: "static-qdq".into(),
        nodes: Vec::new(),
        opset: (opset, opset),
        notes: Vec::new(),
        ..Default::default()
    };
    report.nodes = mark::mark_graph(g, opset, &op_types, &selected, &mut marks)?;
    let contrib = needs_contrib(opts, opset, &overrides, &act.converted);
    report.notes.append(&mut marks.notes);
    marking_notes(g, &marks, &act.infinite, &mut report);
    report.warnings = nonfinite::unmark_nonfinite(g, &mut marks);

    // Quantize the marked constants in parallel, then emit.
    let params = Params {
        own: &act.own,
        converted: &act.converted,
    };
    let specs = constants::specs(g, &marks, &overrides, opts);
    let done = constants::quantize(g, &marks, params, &overrides, &specs)?;
    report.notes.extend(rounding::notes(g, &done));
    let cx = Cx {
        marks: &marks,
        params,
        overrides: &overrides,
        opts,
        domain: if contrib { "com.microsoft" } else { "" },
    };
    let (mut emitted, sqnr) = emit::store_constants(g, &cx, done)?;
    let unranged = emit::emit_activations(g, &cx, &mut emitted)?;
    emit::emit_biases(g, &cx, &emitted)?;

    for e in &mut report.nodes {
        e.weight_sqnr_db = sqnr.get(&e.node).copied();
    }
    if !unranged.is_empty() {
        report.notes.push(format!(
            "left in float for lack of a calibrated range: {}",
            unranged.join(", ")
        ));
    }
    // The float constants the stored quantized ones replaced (and any the model carried unread).
    crate::weights::remove_unread_constants(&mut model.graph).map_err(Error::edit)?;
    if contrib {
        crate::opset::import_domain(model, "com.microsoft");
    }
    model.graph.validate().map_err(Error::edit)?;
    Ok(report)
}

/// With `qoperator`, the outputs of selected Softmax nodes: ORT's QLinearSoftmax output
/// parameters are fixed.
fn qoperator_softmax_outputs(
    g: &Graph,
    opts: &StaticOptions,
    selected: &dyn Fn(&Node) -> bool,
) -> BTreeSet<ValueId> {
    if !opts.qoperator {
        return BTreeSet::new();
    }
    g.nodes()
        .filter(|(_, n)| n.op_type() == "Softmax" && selected(n))
        .filter_map(|(_, n)| output(n, 0))
        .collect()
}

/// Whether Q/DQ nodes go to com.microsoft: asked for, or the opset lacks what the types or axes
/// need.
fn needs_contrib(
    opts: &StaticOptions,
    opset: i64,
    overrides: &BTreeMap<ValueId, Resolved>,
    converted: &ParamMap,
) -> bool {
    let per_channel = opts.per_channel || overrides.values().any(|o| o.axis.is_some());
    let not_8_bit = [opts.activation_type, opts.weight_type]
        .into_iter()
        .chain(overrides.values().filter_map(|o| o.quant_type))
        .chain(converted.values().map(|c| c.1))
        .any(|t: QuantType| t.storage_bits() != 8);
    opts.contrib_ops || (per_channel && opset < 13) || (not_8_bit && opset < 21)
}

/// The report's notes on what marking left float: subgraphs, Relu/Clip that do not clip,
/// tensors with unusable ranges.
fn marking_notes(g: &Graph, marks: &Marks<'_>, infinite: &[String], report: &mut Report) {
    let nested: Vec<String> = g
        .nodes()
        .filter(|(_, n)| has_subgraphs(n))
        .map(|(_, n)| node_label(g, n))
        .collect();
    if !nested.is_empty() {
        report.notes.push(format!(
            "the subgraphs of {} stay float: static mode calibrates and quantizes the main graph only, \
             as ONNX Runtime's tool does (dynamic mode reaches them with --extra EnableSubgraph=true)",
            nested.join(", ")
        ));
    }
    if !marks.unclipped.is_empty() {
        report.notes.push(format!(
            "kept {} Relu/Clip node(s) whose output range does not clip (ORT's tool removes them and lets \
             values outside the bounds through): {}",
            marks.unclipped.len(),
            marks.unclipped.join(", ")
        ));
    }
    if !infinite.is_empty() {
        report.notes.push(format!(
            "left in float, their calibrated range is not finite or reaches ±1e30 (a mask sentinel): {}",
            infinite.join(", ")
        ));
    }
}
