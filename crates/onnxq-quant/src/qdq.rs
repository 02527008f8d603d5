//! Static quantization in the QDQ format (ONNX Runtime's `quantize_static` with
//! `QuantFormat.QDQ`): every selected float tensor gets a QuantizeLinear → DequantizeLinear pair
//! whose parameters come from calibrated ranges; constants are stored quantized behind a lone
//! DequantizeLinear; biases become int32 with scale = input scale × weight scale.
//!
//! Two phases, as in ORT: **mark** (each selected node's [`Rule`] records which of its tensors are
//! quantized, as activation or weight, per-channel or sharing another tensor's parameters; the only
//! edit here is folding a removable Relu/Clip into its producer) and **apply** (quantize the marked
//! constants in parallel, then insert the Q/DQ pairs and bias dequantizers). Names follow ORT's
//! (`<T>_QuantizeLinear`, `<W>_quantized`, `<B>_quantized_scale`, ...), so models can be compared.
//!
//! Where ORT's tool writes a wrong model, onnxq does not: a Gemm's `beta` is folded into its int32
//! bias instead of dropped, per-channel axes at opset 11/12 use the `com.microsoft` Q/DQ ops, and
//! constants held in `Constant` nodes are quantized as constants.

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Graph, Model, Node, NodeId, Use, ValueId};
use rayon::prelude::*;

use crate::dynamic::{int_attr, node_label};
use crate::numerics::{
    F32Data, QParams, QuantType, QuantizedTensor, compute_qparams, quantize_with, weight_params,
};
use crate::ops::static_ops::{ON_REQUEST_OPS, Rule, STATIC_OPS, rule};
use crate::options::{StaticOptions, glob_match};
use crate::overrides::{Resolved, ResolvedConvert, resolve_all};
use crate::report::{Entry, Outcome, Report};
use crate::weights::{dims, f32_data, remove_if_unused, resolve};
use crate::{Error, Result};

/// Calibrated ranges by tensor name.
pub type Ranges = BTreeMap<String, (f32, f32)>;

/// How a marked tensor is quantized.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Activation,
    Weight {
        axis: Option<usize>,
    },
    /// Reuses the scale and zero point of another tensor (data-movement ops).
    SameAs(ValueId),
}

/// An int32 bias and what its scale derives from.
#[derive(Debug, Clone)]
struct Bias {
    /// The node reading it (a Gemm's `beta` becomes 1 once the bias holds `beta · C`).
    node: NodeId,
    input: ValueId,
    weight: ValueId,
    /// Gemm's `alpha` (the bias scale is `alpha · s_in · s_w`) and `beta` (folded into the data).
    alpha: f32,
    beta: f32,
}

/// The marking state (ORT's `tensors_to_quantize` and `bias_to_quantize`).
struct Marks<'a> {
    opts: &'a StaticOptions,
    params: &'a BTreeMap<ValueId, (QParams, QuantType)>,
    overridden: &'a BTreeMap<ValueId, Resolved>,
    /// A producer output that took over a folded Relu/Clip's output: its parameters are the
    /// folded output's (range and overrides), as in ORT where the tensor is renamed.
    alias: BTreeMap<ValueId, ValueId>,
    /// Findings for the report.
    notes: Vec<String>,
    /// Relu/Clip nodes kept because their output's parameters would not clip.
    unclipped: Vec<String>,
    /// The quantized nodes reading each tensor, in graph order (for `DedicatedQDQPair`).
    receivers: BTreeMap<ValueId, Vec<NodeId>>,
    order: Vec<ValueId>,
    roles: BTreeMap<ValueId, Role>,
    biases: BTreeMap<ValueId, Bias>,
}

impl Marks<'_> {
    /// A float32 constant (initializer or `Constant` node), or a tensor with a calibrated range.
    fn quantizable(&self, g: &Graph, v: ValueId) -> bool {
        match resolve(g, &[], v) {
            Some(c) => c.tensor.data_type() == 1,
            None => self.params.contains_key(&self.key(v)),
        }
    }

    /// The value whose parameters `v` uses.
    fn key(&self, v: ValueId) -> ValueId {
        self.alias.get(&v).copied().unwrap_or(v)
    }

    fn set(&mut self, v: ValueId, role: Role, overwrite: bool) {
        match self.roles.get_mut(&v) {
            Some(r) if overwrite => *r = role,
            Some(_) => {}
            None => {
                self.order.push(v);
                self.roles.insert(v, role);
            }
        }
    }

    fn activation(&mut self, g: &Graph, v: Option<ValueId>) {
        if let Some(v) = v.filter(|&v| self.quantizable(g, v)) {
            self.set(v, Role::Activation, false);
        }
    }

    /// A weight, per channel along `default_axis` when per-channel applies to it.
    fn weight(&mut self, g: &Graph, v: Option<ValueId>, default_axis: usize) {
        let Some(v) = v.filter(|&v| self.quantizable(g, v)) else {
            return;
        };
        let rank = resolve(g, &[], v).map(|c| c.tensor.dims.len());
        match rank {
            Some(rank) if self.opts.per_channel && default_axis < rank => {
                self.set(
                    v,
                    Role::Weight {
                        axis: Some(default_axis),
                    },
                    true,
                );
            }
            Some(_) => self.set(v, Role::Weight { axis: None }, false),
            // Not a constant: quantized at run time like any activation.
            None => self.set(v, Role::Activation, false),
        }
    }

    fn same_as(&mut self, g: &Graph, out: Option<ValueId>, input: Option<ValueId>) {
        if let (Some(out), Some(input)) = (out, input)
            && self.quantizable(g, out)
        {
            self.set(out, Role::SameAs(input), true);
        }
    }

    /// Output `o` shares input `i`'s parameters (ORT's direct 8-bit rule): `i` is quantized first
    /// when `quantize_input`, else `o` is only quantized if `i` already is.
    fn share_input(
        &mut self,
        g: &Graph,
        i: Option<ValueId>,
        o: Option<ValueId>,
        quantize_input: bool,
        skip_output: bool,
    ) {
        if quantize_input {
            self.activation(g, i);
        }
        if (quantize_input || self.marked(i)) && !skip_output {
            self.same_as(g, o, i);
        }
    }

    fn marked(&self, v: Option<ValueId>) -> bool {
        v.is_some_and(|v| self.roles.contains_key(&v) || self.biases.contains_key(&v))
    }

    fn bias(&mut self, g: &Graph, b: Option<ValueId>, bias: Bias) {
        if let Some(b) = b
            && resolve(g, &[], b).is_some_and(|c| c.tensor.data_type() == 1)
        {
            // A bias with overrides is quantized like any weight, as in ORT.
            if self.overridden.contains_key(&b) {
                self.set(b, Role::Weight { axis: None }, false);
            } else {
                self.biases.entry(b).or_insert(bias);
            }
        }
    }
}

fn input(n: &Node, i: usize) -> Option<ValueId> {
    n.inputs().get(i).copied().flatten()
}

fn output(n: &Node, i: usize) -> Option<ValueId> {
    n.outputs().get(i).copied().flatten()
}

fn float_attr(n: &Node, name: &str, default: f32) -> f32 {
    n.attribute(name).and_then(|a| a.proto.f).unwrap_or(default)
}

fn int_attr_of(n: &Node, name: &str, default: i64) -> i64 {
    n.attribute(name).and_then(|a| a.proto.i).unwrap_or(default)
}

/// Beyond this magnitude a calibrated bound is a sentinel (an attention mask of `finfo.min`), not
/// a value seen in use.
const SENTINEL: f32 = 1e30;

fn usable(bound: f32) -> bool {
    bound.is_finite() && bound.abs() < SENTINEL
}

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
    if !op_types.iter().any(|t| t == n.op_type()) {
        return Err("op type not selected (--op-types)".into());
    }
    if let Some(p) = opts.exclude.iter().find(|p| glob_match(p, n.name())) {
        return Err(format!("excluded by `{p}`"));
    }
    if !opts.include.is_empty() && !opts.include.iter().any(|p| glob_match(p, n.name())) {
        return Err("not matched by --include".into());
    }
    Ok(())
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
    check_selection(&model.graph, opts)?;
    let g = &mut model.graph;
    let op_types = op_types(opts);
    let selected = |n: &Node| selection(n, &op_types, opts);

    // Activation parameters, from the ranges after ORT's adjustments: a Relu/Clip input that feeds
    // only it takes the output's range (the producer's Q/DQ then clips), a Softmax output is [0, 1].
    let mut range: BTreeMap<ValueId, (f32, f32)> = ranges
        .iter()
        .filter_map(|(name, r)| g.value_by_name(name).map(|v| (v, *r)))
        .collect();
    for (_, n) in g.nodes() {
        if selected(n).is_err() {
            continue;
        }
        match n.op_type() {
            "Relu" | "Clip" => {
                // (An input left out of calibration, see `calibration_targets`, counts as ranged.)
                if let (Some(i), Some(o)) = (input(n, 0), output(n, 0))
                    && consumers(g, i) == 1
                    && (range.contains_key(&i) || resolve(g, &[], i).is_none())
                    && let Some(&r) = range.get(&o)
                {
                    range.insert(i, r);
                }
            }
            "Softmax" => {
                if let Some(o) = output(n, 0) {
                    range.insert(o, (0.0, 1.0));
                }
            }
            _ => {}
        }
    }
    // Overrides (validated in full first), then parameters of every activation with a range or
    // fixed override parameters.
    let overrides: BTreeMap<ValueId, Resolved> = resolve_all(g, opts)?
        .into_iter()
        .filter_map(|(name, r)| g.value_by_name(&name).map(|v| (v, r)))
        .collect();
    let mut params: BTreeMap<ValueId, (QParams, QuantType)> = BTreeMap::new();
    // Mixed precision: the second parameters of a tensor with a `convert` override.
    let mut converted: BTreeMap<ValueId, (QParams, QuantType)> = BTreeMap::new();
    let mut infinite = Vec::new();
    let params_for = |lo: f32, hi: f32, qtype: QuantType, symmetric: bool| {
        let qrange = qtype.qrange(false, symmetric);
        if opts.restricted_asymmetric && qtype == QuantType::U8 && !symmetric {
            snap_to_uint8(lo, hi, qrange, opts.min_real_range)
        } else {
            compute_qparams(lo, hi, qrange, symmetric, opts.min_real_range)
        }
    };
    // ORT's QLinearSoftmax output parameters are fixed.
    let softmax_outputs: Vec<ValueId> = if opts.qoperator {
        g.nodes()
            .filter(|(_, n)| n.op_type() == "Softmax" && selected(n).is_ok())
            .filter_map(|(_, n)| output(n, 0))
            .collect()
    } else {
        Vec::new()
    };
    for (&v, &(calibrated_lo, calibrated_hi)) in &range {
        let (lo, hi) = (calibrated_lo, calibrated_hi);
        if softmax_outputs.contains(&v) && !overrides.contains_key(&v) {
            let qtype = opts.activation_type;
            let p = QParams {
                scale: 1.0 / 256.0,
                zero_point: qtype.full_range().0,
            };
            params.insert(v, (p, qtype));
            continue;
        }
        let o = overrides.get(&v);
        let qtype = o.and_then(|o| o.quant_type).unwrap_or(opts.activation_type);
        let symmetric = o
            .and_then(|o| o.symmetric)
            .unwrap_or(opts.activation_symmetric);
        let (lo, hi) = o.map_or((lo, hi), |o| {
            (o.range.0.unwrap_or(lo), o.range.1.unwrap_or(hi))
        });
        // An infinite range (an additive -inf attention mask), or one reaching a sentinel such as
        // torch's `finfo.min` mask, has no usable scale: every real value would land on the zero
        // point (ORT's tool quantizes it anyway and the model degrades badly); the tensor stays
        // float instead.
        if !(usable(lo) && usable(hi)) {
            infinite.push(g.value(v).name().to_owned());
            continue;
        }
        params.insert(v, (params_for(lo, hi, qtype, symmetric), qtype));
        // The converted parameters come from the calibrated range and the `convert` keys alone.
        if let Some(c) = o.and_then(|o| o.convert.as_ref()) {
            let p = match c.params {
                Some(p) => p,
                None => {
                    let lo = c.range.0.unwrap_or(calibrated_lo);
                    let hi = c.range.1.unwrap_or(calibrated_hi);
                    if !(usable(lo) && usable(hi)) {
                        return Err(Error::Selection(format!(
                            "TensorQuantOverrides `{}` convert: the calibrated range is not finite or reaches a mask sentinel; give rmin and rmax",
                            g.value(v).name()
                        )));
                    }
                    let symmetric = c.symmetric.unwrap_or(opts.activation_symmetric);
                    params_for(lo, hi, c.quant_type, symmetric)
                }
            };
            converted.insert(v, (p, c.quant_type));
        }
    }
    for (&v, o) in &overrides {
        if let Some(p) = &o.params
            && resolve(g, &[], v).is_none()
        {
            params.insert(v, (p[0], o.quant_type.unwrap_or(opts.activation_type)));
            if let Some(c) = &o.convert
                && let Some(p) = c.params
            {
                converted.insert(v, (p, c.quant_type));
            }
        }
    }

    // Mark, node by node in graph order.
    let mut marks = Marks {
        opts,
        params: &params,
        overridden: &overrides,
        alias: BTreeMap::new(),
        notes: Vec::new(),
        unclipped: Vec::new(),
        receivers: BTreeMap::new(),
        order: Vec::new(),
        roles: BTreeMap::new(),
        biases: BTreeMap::new(),
    };
    let mut report = Report {
        mode: "static-qdq".into(),
        nodes: Vec::new(),
        opset: (opset, opset),
        notes: Vec::new(),
    };
    let ids: Vec<NodeId> = g.nodes().map(|(id, _)| id).collect();
    for id in ids {
        let Some(n) = g.node(id) else { continue };
        let known = STATIC_OPS
            .iter()
            .chain(ON_REQUEST_OPS)
            .any(|(t, _)| *t == n.op_type());
        let wanted = op_types.iter().any(|t| t == n.op_type());
        if !known && !wanted {
            continue;
        }
        let label = node_label(g, n);
        let op_type = n.op_type().to_owned();
        let outcome = match selected(n) {
            Err(reason) => Outcome::Skipped { reason },
            Ok(()) => match mark_node(g, id, opset, &mut marks)? {
                false if opts.dedicated_qdq_pair => {
                    let n = g
                        .node(id)
                        .ok_or_else(|| Error::Internal("marked node vanished".into()))?;
                    for v in n.inputs().iter().flatten() {
                        let r = marks.receivers.entry(*v).or_default();
                        if !r.contains(&id) {
                            r.push(id);
                        }
                    }
                    outcome_of(g, id, &marks)?
                }
                true => Outcome::Quantized {
                    pattern: "removed (its range clips the producer's output)".into(),
                },
                false => outcome_of(g, id, &marks)?,
            },
        };
        report.nodes.push(Entry {
            graph: "main".into(),
            node: label,
            op_type,
            outcome,
            weight_sqnr_db: None,
        });
    }

    // Q/DQ nodes go to com.microsoft where the opset lacks what the types or axes need.
    let per_channel = opts.per_channel || overrides.values().any(|o| o.axis.is_some());
    let contrib = opts.contrib_ops
        || (per_channel && opset < 13)
        || ([opts.activation_type, opts.weight_type]
            .into_iter()
            .chain(overrides.values().filter_map(|o| o.quant_type))
            .chain(converted.values().map(|c| c.1))
            .any(|t| t.storage_bits() != 8)
            && opset < 21);
    let domain = if contrib { "com.microsoft" } else { "" };
    report.notes.append(&mut marks.notes);
    let nested: Vec<String> = g
        .nodes()
        .filter(|(_, n)| n.attributes.iter().any(|a| !a.subgraphs.is_empty()))
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
    let params = Params {
        own: &params,
        converted: &converted,
    };
    apply(g, &marks, params, &overrides, opts, &mut report, domain)?;
    if contrib {
        crate::import_domain(model, "com.microsoft");
    }
    model
        .graph
        .validate()
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(report)
}

/// A marked node's report outcome: quantized when one of its tensors is.
fn outcome_of(g: &Graph, id: NodeId, marks: &Marks<'_>) -> Result<Outcome> {
    let n = g
        .node(id)
        .ok_or_else(|| Error::Internal("marked node vanished".into()))?;
    let marked = |vs: &[Option<ValueId>]| vs.iter().any(|v| marks.marked(*v));
    Ok(if marked(n.outputs()) {
        Outcome::Quantized {
            pattern: "QDQ".into(),
        }
    } else if marked(n.inputs()) {
        Outcome::Quantized {
            pattern: "QDQ (inputs only)".into(),
        }
    } else {
        Outcome::Skipped {
            reason: "input not quantized, or no calibrated range".into(),
        }
    })
}

/// How many nodes of this graph read `v`, or more than one if anything else (a graph output, a
/// subgraph) reads it too. ORT counts a node reading it twice as two; that differs only for
/// multi-input readers, never for the sole-consumer checks of a Relu/Clip this serves.
fn consumers(g: &Graph, v: ValueId) -> usize {
    if g.value(v)
        .uses()
        .iter()
        .any(|u| !matches!(u, Use::Node { .. }))
    {
        return usize::MAX;
    }
    g.reader_nodes(v).len()
}

/// Applies `id`'s rule; returns whether the node was removed (a folded Relu/Clip).
fn mark_node(g: &mut Graph, id: NodeId, opset: i64, m: &mut Marks<'_>) -> Result<bool> {
    let Some(n) = g.node(id) else {
        return Ok(false);
    };
    let opts = m.opts;
    let skip_output = opts
        .exclude_output_quantization
        .iter()
        .any(|t| t == n.op_type());
    let (i0, o0) = (input(n, 0), output(n, 0));
    // ORT's QOperator format has no quantized form of these: they stay float.
    const QDQ_ONLY: &[&str] = &[
        "ConvTranspose",
        "Slice",
        "TopK",
        "CumSum",
        "GatherElements",
        "InstanceNormalization",
        "LayerNormalization",
        "BatchNormalization",
    ];
    if opts.qoperator && QDQ_ONLY.contains(&n.op_type()) {
        return Ok(false);
    }
    let rule = match n.op_type() {
        // ORT's QOperator AveragePool (QLinearAveragePool) has its own output parameters.
        "AveragePool" if opts.qoperator => Rule::Generic,
        op => rule(op),
    };
    match rule {
        Rule::Generic => {
            let (ins, outs) = (n.inputs().to_vec(), n.outputs().to_vec());
            for v in ins {
                m.activation(g, v);
            }
            if !skip_output {
                for v in outs {
                    m.activation(g, v);
                }
            }
        }
        Rule::Conv { weight_axis } => {
            m.activation(g, i0);
            if !skip_output {
                m.activation(g, o0);
            }
            m.weight(g, input(n, 1), weight_axis);
            if let (Some(x), Some(w)) = (i0, input(n, 1)) {
                m.bias(
                    g,
                    input(n, 2),
                    Bias {
                        node: id,
                        input: x,
                        weight: w,
                        alpha: 1.0,
                        beta: 1.0,
                    },
                );
            }
        }
        Rule::Gemm => {
            m.activation(g, i0);
            if !skip_output {
                m.activation(g, o0);
            }
            let axis = if int_attr_of(n, "transB", 0) != 0 {
                0
            } else {
                1
            };
            m.weight(g, input(n, 1), axis);
            let (alpha, beta) = (float_attr(n, "alpha", 1.0), float_attr(n, "beta", 1.0));
            if let (Some(x), Some(w), Some(b)) = (i0, input(n, 1), input(n, 2))
                && resolve(g, &[], b).is_some()
            {
                m.bias(
                    g,
                    Some(b),
                    Bias {
                        node: id,
                        input: x,
                        weight: w,
                        alpha,
                        beta,
                    },
                );
            }
        }
        Rule::MatMul => {
            let ins = n.inputs().to_vec();
            for v in ins {
                if v.is_some_and(|v| resolve(g, &[], v).is_some()) {
                    m.weight(g, v, 1);
                } else {
                    m.activation(g, v);
                }
            }
            if !skip_output {
                m.activation(g, o0);
            }
        }
        Rule::Removable => {
            if !m.marked(i0) {
                return Ok(false);
            }
            let (Some(u), Some(r)) = (i0, o0) else {
                return Ok(false);
            };
            let converts = |v: ValueId| m.overridden.get(&v).is_some_and(|o| o.convert.is_some());
            let candidate = !opts.activation_symmetric
                && !opts.keep_removable_activations
                && !converts(u)
                && !converts(r)
                && m.params.contains_key(&r)
                && consumers(g, u) == 1
                && matches!(g.value(u).def(), Def::Node { .. });
            // Folding is only right when the output's parameters saturate at the node's bounds:
            // a symmetric or percentile range (or one from an override) does not clip at 0.
            let symmetric = m
                .overridden
                .get(&r)
                .and_then(|o| o.symmetric)
                .unwrap_or(false);
            let clips = m.params.get(&r).is_some_and(|&(p, qtype)| {
                clip_bounds(g, n, opset)
                    .is_some_and(|bounds| saturates_within(p, qtype, symmetric, bounds))
            });
            if candidate && !clips {
                m.unclipped.push(node_label(g, n));
            }
            let foldable = candidate && clips;
            if foldable {
                if m.overridden.contains_key(&u) {
                    m.notes.push(format!(
                        "the override of `{}` does not apply: the tensor became `{}` when the {} was folded",
                        g.value(u).name(),
                        g.value(r).name(),
                        n.op_type()
                    ));
                }
                // The producer now writes the activation's output: `u` takes `r`'s uses, and its
                // name too unless names are kept (a graph output always keeps its name).
                let is_output = g.outputs().iter().any(|p| p.value == r);
                if opts.qoperator && !is_output {
                    g.replace_uses(r, u, |_| false)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                } else {
                    g.substitute(r, u)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                }
                g.remove_node(id)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                m.roles.remove(&u);
                m.order.retain(|&v| v != u);
                m.alias.insert(u, r);
                if !skip_output {
                    m.activation(g, Some(u));
                }
                return Ok(true);
            }
            m.activation(g, Some(u));
            if !skip_output {
                m.activation(g, Some(r));
            }
        }
        Rule::Direct8Bit { min_opset } => {
            if opset < min_opset {
                return Ok(false);
            }
            m.share_input(g, i0, o0, opts.force_quantize_no_input_check, skip_output);
        }
        Rule::Split => {
            if !m.marked(i0) {
                m.activation(g, i0);
            }
            if !skip_output {
                for o in n.outputs().to_vec() {
                    m.same_as(g, o, i0);
                }
            }
        }
        Rule::Gather => {
            let constant = i0.is_some_and(|v| resolve(g, &[], v).is_some());
            // ORT's QOperator Gather only quantizes constant data.
            if opts.qoperator && !constant {
                return Ok(false);
            }
            let quantize_input = constant || opts.force_quantize_no_input_check;
            m.share_input(g, i0, o0, quantize_input, skip_output);
        }
        Rule::Where => {
            let (a, b) = (input(n, 1), input(n, 2));
            // ORT's QOperator format makes QLinearWhere only with ForceQuantizeNoInputCheck.
            if opts.qoperator && !opts.force_quantize_no_input_check {
                return Ok(false);
            }
            if opts.force_quantize_no_input_check {
                m.activation(g, a);
                m.activation(g, b);
                if !skip_output {
                    m.activation(g, o0);
                }
            } else if m.marked(a) && m.marked(b) && !skip_output {
                m.activation(g, o0);
            }
        }
        Rule::Normalization => {
            m.activation(g, i0);
            let scale = input(n, 1);
            // The scale is per channel along axis 1 where it has one (ORT's default axis).
            m.weight(g, scale, 1);
            if let (Some(x), Some(s)) = (i0, scale)
                && n.op_type() != "BatchNormalization"
            {
                m.bias(
                    g,
                    input(n, 2),
                    Bias {
                        node: id,
                        input: x,
                        weight: s,
                        alpha: 1.0,
                        beta: 1.0,
                    },
                );
            }
            if !skip_output {
                for o in n.outputs().to_vec() {
                    m.activation(g, o);
                }
            }
        }
        Rule::Pad => {
            let mode = n
                .attribute("mode")
                .and_then(|a| a.proto.s.as_ref())
                .map(|s| s.to_vec())
                .unwrap_or_else(|| b"constant".to_vec());
            let zero_pad = match mode.as_slice() {
                b"reflect" | b"edge" | b"wrap" => true,
                _ if opset < 11 => float_attr(n, "value", 0.0) == 0.0,
                _ => match input(n, 2) {
                    None => true,
                    Some(c) => resolve(g, &[], c)
                        .and_then(|c| f32_data(c.tensor).filter(|d| d.len() == 1))
                        .is_some_and(|d| d.get(0) == 0.0),
                },
            };
            for v in n.inputs().to_vec() {
                m.activation(g, v);
            }
            if !skip_output {
                if zero_pad {
                    m.same_as(g, o0, i0);
                } else {
                    m.activation(g, o0);
                }
            }
        }
    }
    Ok(false)
}

/// A Relu's or Clip's bounds, where they are known constants (a Clip below opset 11 has them as
/// attributes; a missing bound is infinite).
fn clip_bounds(g: &Graph, n: &Node, opset: i64) -> Option<(f32, f32)> {
    match n.op_type() {
        "Relu" => Some((0.0, f32::INFINITY)),
        "Clip" if opset < 11 => Some((
            float_attr(n, "min", f32::NEG_INFINITY),
            float_attr(n, "max", f32::INFINITY),
        )),
        "Clip" => {
            let bound = |i: usize, none: f32| match input(n, i) {
                None => Some(none),
                Some(v) => resolve(g, &[], v)
                    .and_then(|c| f32_data(c.tensor).filter(|d| d.len() == 1))
                    .map(|d| d.get(0)),
            };
            Some((bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?))
        }
        _ => None,
    }
}

/// Whether values quantized with `p` saturate inside `(lo, hi)` (within half a step), so that the
/// Q/DQ pair does the clipping.
fn saturates_within(p: QParams, qtype: QuantType, symmetric: bool, (lo, hi): (f32, f32)) -> bool {
    let (qmin, qmax) = qtype.qrange(false, symmetric);
    let half = p.scale / 2.0;
    let lowest = p.scale * (qmin - p.zero_point) as f32;
    let highest = p.scale * (qmax - p.zero_point) as f32;
    lowest >= lo - half && highest <= hi + half
}

/// The scale and zero-point values standing for a quantized tensor.
#[derive(Debug, Clone, Copy)]
struct Quantized {
    scale: ValueId,
    zero_point: ValueId,
    params: QParams,
}

/// A marked constant after quantization.
struct DoneWeight {
    value: ValueId,
    qtype: QuantType,
    q: QuantizedTensor,
    dims: Vec<usize>,
}

/// Activation parameters: each tensor's own, and the second set of a mixed-precision `convert`.
#[derive(Clone, Copy)]
struct Params<'a> {
    own: &'a BTreeMap<ValueId, (QParams, QuantType)>,
    converted: &'a BTreeMap<ValueId, (QParams, QuantType)>,
}

fn apply(
    g: &mut Graph,
    marks: &Marks<'_>,
    params: Params<'_>,
    overrides: &BTreeMap<ValueId, Resolved>,
    opts: &StaticOptions,
    report: &mut Report,
    domain: &str,
) -> Result<()> {
    let weight_symmetric = opts
        .weight_symmetric
        .unwrap_or_else(|| opts.weight_type.signed());
    // Constants: quantize each in parallel, with the int32-bias scale adjustment (§3.9).
    let constants: Vec<(ValueId, QuantType, Option<usize>, bool)> = marks
        .order
        .iter()
        .filter(|v| resolve(g, &[], **v).is_some())
        .filter_map(|&v| {
            let in_constant_node = !matches!(g.value(v).def(), Def::Initializer(_));
            let (qtype, axis, symmetric) = match marks.roles[&v] {
                // ORT quantizes a weight held in a Constant node as an activation (activation type
                // and symmetry, calibrated range = its min/max); per tensor onnxq does the same,
                // per channel it quantizes it as the weight it is.
                Role::Weight { axis: None } if in_constant_node => {
                    (opts.activation_type, None, opts.activation_symmetric)
                }
                Role::Weight { axis } => {
                    (opts.weight_type, axis, axis.is_some() || weight_symmetric)
                }
                // ORT's QOperator quirk: the weight symmetry when the two types are equal.
                Role::Activation
                    if opts.qoperator
                        && opts.activation_type == opts.weight_type
                        && matches!(g.value(v).def(), Def::Initializer(_)) =>
                {
                    (opts.activation_type, None, weight_symmetric)
                }
                Role::Activation => (opts.activation_type, None, opts.activation_symmetric),
                Role::SameAs(_) => return None,
            };
            Some(match overrides.get(&v) {
                None => (v, qtype, axis, symmetric),
                Some(o) => {
                    let axis = o.axis.or(axis);
                    (
                        v,
                        o.quant_type.unwrap_or(qtype),
                        axis,
                        o.symmetric.unwrap_or(symmetric || axis.is_some()),
                    )
                }
            })
        })
        .collect();
    // The scale `consumer` reads `v` with.
    let scale_of = |v: ValueId, consumer: NodeId| -> Option<f32> {
        let key = marks.key(v);
        if overrides
            .get(&key)
            .and_then(|o| o.convert.as_ref())
            .is_some_and(|c| c.receives(consumer))
            && let Some(p) = params.converted.get(&key)
        {
            return Some(p.0.scale);
        }
        let mut v = v;
        while let Some(Role::SameAs(p)) = marks.roles.get(&v) {
            v = *p;
        }
        params.own.get(&marks.key(v)).map(|p| p.0.scale)
    };
    let done: Vec<DoneWeight> = {
        let g = &*g;
        constants
            .par_iter()
            .map(|&(v, qtype, axis, symmetric)| {
                let c = resolve(g, &[], v)
                    .ok_or_else(|| Error::Internal("marked constant vanished".into()))?;
                let data = f32_data(c.tensor)
                    .ok_or_else(|| Error::Internal("marked constant is not float32".into()))?;
                let d = dims(c.tensor);
                let o = overrides.get(&v);
                // QOperator quantizes constants in the activation role without reduced range.
                let activation_role = matches!(marks.roles[&v], Role::Activation)
                    || (matches!(marks.roles[&v], Role::Weight { axis: None })
                        && !matches!(g.value(v).def(), Def::Initializer(_)));
                let reduce_range = o
                    .and_then(|o| o.reduce_range)
                    .unwrap_or(opts.reduce_range && !(opts.qoperator && activation_role));
                let mut p = match o {
                    Some(Resolved {
                        params: Some(fixed),
                        ..
                    }) => match (axis, fixed.len()) {
                        (Some(a), 1) => vec![fixed[0]; d[a]],
                        _ => fixed.clone(),
                    },
                    Some(Resolved {
                        range: (lo, hi), ..
                    }) if axis.is_none() && (lo.is_some() || hi.is_some()) => {
                        let (min, max) = crate::numerics::min_max(data);
                        let qrange = qtype.qrange(reduce_range, symmetric);
                        vec![compute_qparams(
                            lo.unwrap_or(min),
                            hi.unwrap_or(max),
                            qrange,
                            symmetric,
                            opts.min_real_range,
                        )]
                    }
                    _ => weight_params(
                        data,
                        &d,
                        axis,
                        qtype,
                        symmetric,
                        reduce_range,
                        opts.min_real_range,
                    ),
                };
                if !opts.disable_weight_adjust
                    && matches!(qtype, QuantType::I8 | QuantType::I16)
                    && p.iter().all(|p| p.zero_point == 0)
                    && let Some((b, bias)) = marks.biases.iter().find(|(_, b)| b.weight == v)
                    && let Some(s_in) = scale_of(bias.input, bias.node)
                    && let Some(bc) = resolve(g, &[], *b)
                    && let Some(bd) = f32_data(bc.tensor)
                {
                    adjust_for_bias(&mut p, s_in, bd, bias.beta);
                }
                let q = quantize_with(data, &d, axis, p, qtype);
                Ok(DoneWeight {
                    value: v,
                    qtype,
                    q,
                    dims: d,
                })
            })
            .collect::<Result<_>>()?
    };

    // Quantized constants, stored behind a lone DequantizeLinear each.
    let mut quantized: BTreeMap<ValueId, Quantized> = BTreeMap::new();
    let mut weights: BTreeMap<ValueId, (ValueId, Vec<QParams>)> = BTreeMap::new();
    let mut sqnr: BTreeMap<String, f64> = BTreeMap::new();
    for w in done {
        let name = g.value(w.value).name().to_owned();
        let pdims: Vec<i64> = match w.q.axis {
            Some(_) => vec![w.q.params.len() as i64],
            None => Vec::new(),
        };
        let data = tensor(
            w.dims.iter().map(|&d| d as i64).collect(),
            w.qtype.onnx_type(),
            w.q.data,
        );
        let (scale, zp) = param_tensors(&w.q.params, w.qtype, pdims);
        let (sv, zv, dq) = stored_quantized(
            g,
            &name,
            [("_quantized", data), ("_scale", scale), ("_zero_point", zp)],
            w.q.axis,
            domain,
        )?;
        if let Some(db) = w.q.sqnr_db {
            for u in g.value(w.value).uses() {
                if let Use::Node { node, .. } = u
                    && let Some(n) = g.node(*node)
                {
                    let e = sqnr.entry(node_label(g, n)).or_insert(db);
                    *e = e.min(db);
                }
            }
        }
        g.replace_uses(w.value, dq, |_| false)
            .map_err(|e| Error::Internal(e.to_string()))?;
        if w.q.params.len() == 1 {
            quantized.insert(
                w.value,
                Quantized {
                    scale: sv,
                    zero_point: zv,
                    params: w.q.params[0],
                },
            );
        }
        weights.insert(w.value, (sv, w.q.params));
        remove_if_unused(g, w.value);
    }

    // Activations with parameters of their own, then those sharing another tensor's.
    let runtime: Vec<ValueId> = marks
        .order
        .iter()
        .copied()
        .filter(|v| !weights.contains_key(v))
        .collect();
    let mut unranged = Vec::new();
    let mut conversions: BTreeMap<ValueId, (Quantized, &ResolvedConvert)> = BTreeMap::new();
    for &v in &runtime {
        if marks.roles[&v] != Role::Activation {
            continue;
        }
        let Some(&(p, qtype)) = params.own.get(&marks.key(v)) else {
            unranged.push(g.value(v).name().to_owned());
            continue;
        };
        let name = g.value(v).name().to_owned();
        let (scale, zp) = param_tensors(&[p], qtype, Vec::new());
        let sv = init(g, &format!("{name}_scale"), scale)?;
        let zv = init(g, &format!("{name}_zero_point"), zp)?;
        let q = Quantized {
            scale: sv,
            zero_point: zv,
            params: p,
        };
        match conversion(g, overrides, params, marks.key(v), v)? {
            None => pair(g, marks, opts, v, q, domain)?,
            Some(c) => {
                converted_pair(g, v, q, c, domain)?;
                conversions.insert(v, c);
            }
        }
        quantized.insert(v, q);
    }
    // What `consumer` reads of quantized tensor `v`: the converted parameters where it receives
    // them.
    let for_consumer = |quantized: &BTreeMap<ValueId, Quantized>,
                        conversions: &BTreeMap<ValueId, (Quantized, &ResolvedConvert)>,
                        v: ValueId,
                        consumer: Option<NodeId>| {
        match conversions.get(&v) {
            Some((q2, c)) if consumer.is_some_and(|n| c.receives(n)) => Some(*q2),
            _ => quantized.get(&v).copied(),
        }
    };
    let mut pending: Vec<(ValueId, ValueId)> = runtime
        .iter()
        .filter_map(|&v| match marks.roles[&v] {
            Role::SameAs(p) => Some((v, p)),
            _ => None,
        })
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut left = Vec::new();
        for (v, p) in pending {
            let producer = match g.value(v).def() {
                Def::Node { node, .. } => Some(*node),
                _ => None,
            };
            match for_consumer(&quantized, &conversions, p, producer) {
                Some(q) => {
                    match conversion(g, overrides, params, v, v)? {
                        None => pair(g, marks, opts, v, q, domain)?,
                        Some(c) => {
                            converted_pair(g, v, q, c, domain)?;
                            conversions.insert(v, c);
                        }
                    }
                    quantized.insert(v, q);
                }
                None if marks
                    .roles
                    .get(&p)
                    .is_some_and(|r| matches!(r, Role::SameAs(_))) =>
                {
                    left.push((v, p))
                }
                // The provider was never quantized (no range): this tensor stays float too.
                None => {}
            }
        }
        if left.len() == before {
            break;
        }
        pending = left;
    }

    // Biases: int32 with scale alpha · s_in · s_w, dequantized under the bias's own name.
    for (&b, bias) in &marks.biases {
        if !opts.quantize_bias {
            break;
        }
        let (Some(x), Some((_, w_params))) = (
            for_consumer(&quantized, &conversions, bias.input, Some(bias.node)),
            weights.get(&bias.weight),
        ) else {
            continue;
        };
        let Some(c) = resolve(g, &[], b) else {
            continue;
        };
        let Some(data) = f32_data(c.tensor) else {
            continue;
        };
        let name = c.name.to_owned();
        let bdims = c.tensor.dims.clone();
        let n = data.len();
        let scales: Vec<f32> = w_params
            .iter()
            .map(|w| bias.alpha * (x.params.scale * w.scale))
            .collect();
        if scales.len() != 1 && scales.len() != n {
            continue;
        }
        let q: Vec<i32> = (0..n)
            .map(|i| {
                let s = scales[if scales.len() == 1 { 0 } else { i }];
                let v = f64::from(bias.beta * data.get(i)) / f64::from(s);
                v.round_ties_even()
                    .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
            })
            .collect();
        let per_channel = scales.len() > 1;
        let qt = tensor(bdims, 6, q.iter().flat_map(|v| v.to_le_bytes()).collect());
        let st = tensor(
            vec![scales.len() as i64],
            1,
            scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        let zt = tensor(
            if per_channel {
                vec![scales.len() as i64]
            } else {
                Vec::new()
            },
            6,
            vec![0; 4 * if per_channel { scales.len() } else { 1 }],
        );
        let (_, _, dq) = stored_quantized(
            g,
            &name,
            [
                ("_quantized", qt),
                ("_quantized_scale", st),
                ("_quantized_zero_point", zt),
            ],
            per_channel.then_some(0),
            domain,
        )?;
        g.substitute(b, dq)
            .map_err(|e| Error::Internal(e.to_string()))?;
        remove_if_unused(g, b);
        // The int32 bias holds beta · C (ORT keeps C and drops beta: a wrong model for beta != 1).
        if let Some(n) = g.node_mut(bias.node) {
            for a in &mut n.attributes {
                if a.name() == "beta" {
                    a.proto.f = Some(1.0);
                }
            }
        }
    }

    for e in &mut report.nodes {
        e.weight_sqnr_db = sqnr.get(&e.node).copied();
    }
    if !unranged.is_empty() {
        report.notes.push(format!(
            "left in float for lack of a calibrated range: {}",
            unranged.join(", ")
        ));
    }
    Ok(())
}

/// A tensor proto from raw little-endian bytes.
fn tensor(dims: Vec<i64>, data_type: i32, raw: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        dims,
        data_type: Some(data_type),
        raw_data: Some(raw.into()),
        ..Default::default()
    }
}

/// Scale (float32) and zero-point (`qtype`) tensors of shape `dims` for `params`.
fn param_tensors(
    params: &[QParams],
    qtype: QuantType,
    dims: Vec<i64>,
) -> (pb::TensorProto, pb::TensorProto) {
    let scales = params.iter().flat_map(|p| p.scale.to_le_bytes()).collect();
    let zps: Vec<i32> = params.iter().map(|p| p.zero_point).collect();
    (
        tensor(dims.clone(), 1, scales),
        tensor(
            dims,
            qtype.onnx_type(),
            crate::numerics::to_storage(&zps, qtype),
        ),
    )
}

/// A constant stored quantized: initializers `<name><suffix>` for the data, scale and zero point
/// (in that order) read by `<name>_DequantizeLinear` (per `axis` if given); returns the scale,
/// the zero point and the DequantizeLinear's output.
fn stored_quantized(
    g: &mut Graph,
    name: &str,
    tensors: [(&str, pb::TensorProto); 3],
    axis: Option<usize>,
    domain: &str,
) -> Result<(ValueId, ValueId, ValueId)> {
    let mut ids = Vec::with_capacity(3);
    for (suffix, t) in tensors {
        ids.push(init(g, &format!("{name}{suffix}"), t)?);
    }
    let attrs = axis
        .map(|a| vec![int_attr("axis", a as i64)])
        .unwrap_or_default();
    let (_, dq) = add(
        g,
        ("DequantizeLinear", domain),
        &format!("{name}_DequantizeLinear"),
        &[Some(ids[0]), Some(ids[1]), Some(ids[2])],
        &format!("{name}_DequantizeLinear_Output"),
        attrs,
    )?;
    Ok((ids[1], ids[2], dq))
}

/// Adds an initializer under a fresh name built from `name`.
fn init(g: &mut Graph, name: &str, t: pb::TensorProto) -> Result<ValueId> {
    let name = g.fresh_name(name);
    g.add_initializer(&name, t)
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Adds a one-output node named `name` (made unique) writing a fresh value named from `output`.
fn add(
    g: &mut Graph,
    (op, domain): (&str, &str),
    name: &str,
    inputs: &[Option<ValueId>],
    output: &str,
    attrs: Vec<pb::AttributeProto>,
) -> Result<(NodeId, ValueId)> {
    let mut node = Node::new(op, domain, Some(name.to_owned()));
    node.attributes = attrs.into_iter().map(onnxq_ir::Attribute::new).collect();
    let out = g.fresh_name(output);
    let (id, outs) = g
        .add_node(node, inputs, &[Some(&out)])
        .map_err(|e| Error::Internal(e.to_string()))?;
    let v = outs[0].ok_or_else(|| Error::Internal("node without output".into()))?;
    Ok((id, v))
}

/// The `<T>_scale_convert` / `<T>_zero_point_convert` initializers of `v` when its override
/// (under `key`) converts it, with the `convert` entry.
fn conversion<'o>(
    g: &mut Graph,
    overrides: &'o BTreeMap<ValueId, Resolved>,
    params: Params<'_>,
    key: ValueId,
    v: ValueId,
) -> Result<Option<(Quantized, &'o ResolvedConvert)>> {
    let Some(c) = overrides.get(&key).and_then(|o| o.convert.as_ref()) else {
        return Ok(None);
    };
    let name = g.value(v).name().to_owned();
    let &(p, qtype) = params.converted.get(&key).ok_or_else(|| {
        Error::Selection(format!(
            "TensorQuantOverrides `{name}` convert: the tensor has no calibrated range; give the convert's scale and zero_point"
        ))
    })?;
    let (scale, zp) = param_tensors(&[p], qtype, Vec::new());
    let sv = init(g, &format!("{name}_scale_convert"), scale)?;
    let zv = init(g, &format!("{name}_zero_point_convert"), zp)?;
    let q = Quantized {
        scale: sv,
        zero_point: zv,
        params: p,
    };
    Ok(Some((q, c)))
}

/// Mixed precision, ORT's layout: `T → Q1 → DQ1 → (consumers of T's own type)` and
/// `Q1 → DQ1' → Q2 → DQ2 → (consumers of the converted type)`; when every consumer reads the
/// converted type, `Q1 → DQ1 → Q2 → DQ2`. A graph output keeps its name on DQ1, or on DQ2 when
/// every consumer (or none) reads the converted type.
fn converted_pair(
    g: &mut Graph,
    v: ValueId,
    q: Quantized,
    (q2, convert): (Quantized, &ResolvedConvert),
    domain: &str,
) -> Result<()> {
    let name = g.value(v).name().to_owned();
    let readers = g.reader_nodes(v);
    let all_converted = readers.iter().all(|&n| convert.receives(n));
    let is_output = g.outputs().iter().any(|p| p.value == v);
    let (q1_node, dq1) = add_pair(g, v, q, domain, "")?;
    let q1_out = g
        .node(q1_node)
        .and_then(|n| n.outputs()[0])
        .ok_or_else(|| Error::Internal("QuantizeLinear without output".into()))?;
    let q2_in = if all_converted {
        dq1
    } else {
        add(
            g,
            ("DequantizeLinear", domain),
            &format!("{name}_convert_clone_DequantizeLinear"),
            &[Some(q1_out), Some(q.scale), Some(q.zero_point)],
            &format!("{name}_convert_QuantizeLinear_Input"),
            Vec::new(),
        )?
        .1
    };
    let (_, q2_out) = add(
        g,
        ("QuantizeLinear", domain),
        &format!("{name}_convert_QuantizeLinear"),
        &[Some(q2_in), Some(q2.scale), Some(q2.zero_point)],
        &format!("{name}_convert_QuantizeLinear_Output"),
        Vec::new(),
    )?;
    let (_, dq2) = add(
        g,
        ("DequantizeLinear", domain),
        &format!("{name}_convert_DequantizeLinear"),
        &[Some(q2_out), Some(q2.scale), Some(q2.zero_point)],
        &format!("{name}_convert_DequantizeLinear_Output"),
        Vec::new(),
    )?;
    for node in readers {
        let target = if convert.receives(node) { dq2 } else { dq1 };
        redirect(g, node, v, target)?;
    }
    if is_output {
        let last = if all_converted { dq2 } else { dq1 };
        hand_output(g, v, q1_node, last)?;
    }
    Ok(())
}

/// The Q/DQ pair(s) of activation `v`: one shared by every consumer, or with `DedicatedQDQPair` one
/// per quantized consumer when there are several (suffixes `_1`, `_2`, ...; other readers keep
/// the float tensor).
fn pair(
    g: &mut Graph,
    marks: &Marks<'_>,
    opts: &StaticOptions,
    v: ValueId,
    q: Quantized,
    domain: &str,
) -> Result<()> {
    let receivers = marks.receivers.get(&v).map_or(&[][..], Vec::as_slice);
    if !opts.dedicated_qdq_pair || receivers.len() < 2 {
        return qdq_pair(g, v, q, domain);
    }
    for (i, &node) in receivers.iter().enumerate() {
        let (_, dq) = add_pair(g, v, q, domain, &format!("_{}", i + 1))?;
        redirect(g, node, v, dq)?;
    }
    Ok(())
}

/// Makes `node` read `to` wherever it read `from`.
fn redirect(g: &mut Graph, node: NodeId, from: ValueId, to: ValueId) -> Result<()> {
    g.replace_uses(
        from,
        to,
        |u| !matches!(u, Use::Node { node: n, .. } if *n == node),
    )
    .map_err(|e| Error::Internal(e.to_string()))
}

/// Adds `QuantizeLinear(v)` → `DequantizeLinear` with ORT's names plus `suffix`; returns the
/// QuantizeLinear node and the DequantizeLinear's output.
fn add_pair(
    g: &mut Graph,
    v: ValueId,
    q: Quantized,
    domain: &str,
    suffix: &str,
) -> Result<(NodeId, ValueId)> {
    let name = g.value(v).name().to_owned();
    let params = [Some(q.scale), Some(q.zero_point)];
    let (q_node, qv) = add(
        g,
        ("QuantizeLinear", domain),
        &format!("{name}_QuantizeLinear{suffix}"),
        &[Some(v), params[0], params[1]],
        &format!("{name}_QuantizeLinear_Output{suffix}"),
        Vec::new(),
    )?;
    let (_, dq) = add(
        g,
        ("DequantizeLinear", domain),
        &format!("{name}_DequantizeLinear{suffix}"),
        &[Some(qv), params[0], params[1]],
        &format!("{name}_DequantizeLinear_Output{suffix}"),
        Vec::new(),
    )?;
    Ok((q_node, dq))
}

/// `T → QuantizeLinear → DequantizeLinear → (every node that read T)`. A graph output keeps its
/// name: the DequantizeLinear writes it and the producer's tensor becomes `<T>_QuantizeLinear_Input`.
fn qdq_pair(g: &mut Graph, v: ValueId, q: Quantized, domain: &str) -> Result<()> {
    let (q_node, dq) = add_pair(g, v, q, domain, "")?;
    if g.outputs().iter().any(|p| p.value == v) {
        return hand_output(g, v, q_node, dq);
    }
    g.replace_uses(
        v,
        dq,
        |u| matches!(u, Use::Node { node, .. } if *node == q_node),
    )
    .map_err(|e| Error::Internal(e.to_string()))
}

/// Graph output `v` (and reads of it from subgraphs, and any reader left) moves to `last`, the
/// DequantizeLinear that stands for it, which takes its name; `v` stays the input of `q_node`
/// under the name `<T>_QuantizeLinear_Input`.
fn hand_output(g: &mut Graph, v: ValueId, q_node: NodeId, last: ValueId) -> Result<()> {
    let edit = |e: onnxq_ir::Error| Error::Internal(e.to_string());
    let name = g.value(v).name().to_owned();
    g.substitute(v, last).map_err(edit)?;
    g.set_input(q_node, 0, Some(v)).map_err(edit)?;
    let input_name = g.fresh_name(&format!("{name}_QuantizeLinear_Input"));
    g.rename(v, &input_name).map_err(edit)
}

/// ORT's `ActivationRestrictedAsymmetric` parameters (reference §3.6): the zero point is the
/// lowest level for a non-negative range, else the middle one (128), and the scale the smallest
/// that covers the range from there; computed in float64 like ORT.
fn snap_to_uint8(
    rmin: f32,
    rmax: f32,
    (qmin, qmax): (i32, i32),
    min_real_range: Option<f32>,
) -> QParams {
    let rmin = rmin.min(0.0);
    let mut rmax = rmax.max(0.0);
    if let Some(m) = min_real_range {
        rmax = rmax.max(rmin + m);
    }
    let (lo, hi) = (f64::from(rmin), f64::from(rmax));
    let (qmin_f, qmax_f) = (f64::from(qmin), f64::from(qmax));
    let mid = (qmin + qmax + 1) / 2;
    let mid_f = f64::from(mid);
    let (zero_point, mut scale) = if hi <= lo {
        // Both bounds are 0: an all-zero tensor.
        let zero_point = if lo >= 0.0 { qmin } else { mid };
        let absmax = lo.abs().max(hi.abs());
        let denominator = if zero_point == qmin {
            qmax_f - qmin_f
        } else {
            f64::from(((qmax - qmin) / 2).max(1))
        };
        (
            zero_point,
            if absmax > 0.0 { absmax } else { 1.0 } / denominator,
        )
    } else if lo >= 0.0 {
        (qmin, hi / (qmax_f - qmin_f))
    } else {
        (mid, (-lo / (mid_f - qmin_f)).max(hi / (qmax_f - mid_f)))
    };
    if let Some(m) = min_real_range {
        scale = scale.max(f64::from(m) / (qmax_f - qmin_f));
    }
    QParams {
        scale: scale as f32,
        zero_point,
    }
}

/// ORT's weight-scale enlargement for int32 biases (§3.9): where `s_in · s_w` is below what the
/// bias needs to fit int32 (`1.0001 · 2 · |bias| / (2^32 - 2)`), the weight scale grows to it.
fn adjust_for_bias(p: &mut [QParams], s_in: f32, bias: F32Data<'_>, beta: f32) {
    const QRANGE: f64 = 4_294_967_294.0;
    let per_channel = p.len() > 1 && p.len() == bias.len();
    let absmax = |range: std::ops::Range<usize>| {
        range
            .map(|i| f64::from((beta * bias.get(i)).abs()))
            .fold(0.0, f64::max)
    };
    for (i, w) in p.iter_mut().enumerate() {
        let a = if per_channel {
            absmax(i..i + 1)
        } else {
            absmax(0..bias.len())
        };
        let smallest = 1.0001 * 2.0 * a / QRANGE;
        let candidate = f64::from(s_in) * f64::from(w.scale);
        if candidate > 0.0 && candidate < smallest {
            w.scale = (f64::from(w.scale) * (smallest / candidate)) as f32;
        }
    }
}

/// Fails on an include or exclude entry that matches no node.
fn check_selection(g: &Graph, opts: &StaticOptions) -> Result<()> {
    for (flag, list) in [("--include", &opts.include), ("--exclude", &opts.exclude)] {
        for p in list {
            if !g.nodes().any(|(_, n)| glob_match(p, n.name())) {
                return Err(Error::Selection(format!(
                    "{flag} `{p}` matches no node of the model"
                )));
            }
        }
    }
    Ok(())
}
