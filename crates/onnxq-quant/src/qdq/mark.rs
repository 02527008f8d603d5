//! The static pass's mark stage, ORT's rules in graph order: each selected node's [`Rule`] records
//! which of its tensors are quantized (as activation or weight, per channel, or sharing another
//! tensor's parameters) and which inputs become int32 biases. The only edit is ORT's: a removable
//! Relu/Clip is folded into its producer, because the rules of later nodes depend on it.

use onnxq_ir::{Def, Graph, Node, NodeId, ValueId};

use crate::dtypes::{all_non_float, known_types};
use crate::edit::{bytes_attr, float_attr, input, int_attr_of, node_label, output};
use crate::error::{Error, Result};
use crate::numerics::{QParams, QuantType};
use crate::qdq::plan::{Bias, Marks, Role, consumers};
use crate::qdq::rules::{Rule, known, rule_for};
use crate::report::{Entry, Outcome};
use crate::weights::{resolve, scalar_f32};

impl Marks<'_> {
    /// A float32 constant (initializer or `Constant` node), or a tensor with a calibrated range.
    fn quantizable(&self, g: &Graph, v: ValueId) -> bool {
        match resolve(g, &[], v) {
            Some(c) => c.tensor.data_type() == 1,
            None => self.params.contains_key(&self.key(v)),
        }
    }

    fn set(&mut self, v: ValueId, role: Role, overwrite: bool) {
        match self.roles.get_mut(&v) {
            Some(r) if overwrite => *r = role,
            Some(_) => {}
            None => {
                self.slot.insert(v, self.order.len());
                self.order.push(Some(v));
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

/// Marks every node of a known or selected op type in graph order and returns its report entry:
/// the reason from `selected` when it is not selected, else what marking made of it.
pub(crate) fn mark_graph(
    g: &mut Graph,
    opset: i64,
    op_types: &[String],
    selected: &dyn Fn(&Node) -> Result<(), String>,
    m: &mut Marks<'_>,
) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    // Topological order, which is the file's for a sorted model; nodes a rewrite before this pass
    // appended (equalization's Relus, SmoothQuant's Muls) come before their readers.
    let ids: Vec<NodeId> = g.topological_order().map_err(Error::edit)?;
    // Read before any edit: the folds below only remove nodes and move uses.
    let types = known_types(g);
    for id in ids {
        let Some(n) = g.node(id) else { continue };
        let wanted = op_types.iter().any(|t| t == n.op_type());
        if !known(n.op_type()) && !wanted {
            continue;
        }
        // Integer shape arithmetic is no candidate (marked all the same: its rule finds nothing).
        let candidate = !all_non_float(n, &types);
        let label = node_label(g, n);
        let op_type = n.op_type().to_owned();
        let outcome = match selected(n) {
            Err(reason) => Outcome::Skipped { reason },
            Ok(()) => match mark_node(g, id, opset, m)? {
                false if m.opts.dedicated_qdq_pair => {
                    let n = g
                        .node(id)
                        .ok_or_else(|| Error::Internal("marked node vanished".into()))?;
                    for v in n.inputs().iter().flatten() {
                        let r = m.receivers.entry(*v).or_default();
                        if !r.contains(&id) {
                            r.push(id);
                        }
                    }
                    outcome_of(g, id, m)?
                }
                true => Outcome::Quantized {
                    pattern: "removed (its range clips the producer's output)".into(),
                },
                false => outcome_of(g, id, m)?,
            },
        };
        if candidate {
            entries.push(Entry::new("main", label, &op_type, outcome));
        }
    }
    Ok(entries)
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
        Outcome::skipped("input not quantized, or no calibrated range")
    })
}

/// The node being marked, read before any edit.
struct At {
    id: NodeId,
    opset: i64,
    /// Its op type's outputs get no Q/DQ (`OpTypesToExcludeOutputQuantization`).
    skip_output: bool,
    i0: Option<ValueId>,
    o0: Option<ValueId>,
}

/// Applies `id`'s rule; returns whether the node was removed (a folded Relu/Clip).
fn mark_node(g: &mut Graph, id: NodeId, opset: i64, m: &mut Marks<'_>) -> Result<bool> {
    let Some(n) = g.node(id) else {
        return Ok(false);
    };
    let skip_output = m
        .opts
        .exclude_output_quantization
        .iter()
        .any(|t| t == n.op_type());
    let at = At {
        id,
        opset,
        skip_output,
        i0: input(n, 0),
        o0: output(n, 0),
    };
    let Some(rule) = rule_for(n.op_type(), m.opts.qoperator) else {
        return Ok(false);
    };
    match rule {
        Rule::Generic => mark_generic(g, n, &at, m),
        Rule::Conv { weight_axis } => mark_conv(g, n, &at, weight_axis, m),
        Rule::Gemm => mark_gemm(g, n, &at, m),
        Rule::MatMul => mark_matmul(g, n, &at, m),
        Rule::Removable => return mark_removable(g, &at, m),
        Rule::Direct8Bit { min_opset } => {
            if opset >= min_opset {
                let force = m.opts.force_quantize_no_input_check;
                m.share_input(g, at.i0, at.o0, force, skip_output);
            }
        }
        Rule::Split => {
            if !m.marked(at.i0) {
                m.activation(g, at.i0);
            }
            if !skip_output {
                for o in n.outputs() {
                    m.same_as(g, *o, at.i0);
                }
            }
        }
        Rule::Gather => {
            let constant = at.i0.is_some_and(|v| resolve(g, &[], v).is_some());
            // ORT's QOperator Gather only quantizes constant data.
            if constant || !m.opts.qoperator {
                let quantize_input = constant || m.opts.force_quantize_no_input_check;
                m.share_input(g, at.i0, at.o0, quantize_input, skip_output);
            }
        }
        Rule::Where => mark_where(g, n, &at, m),
        Rule::Normalization => mark_normalization(g, n, &at, m),
        Rule::Pad => mark_pad(g, n, &at, m),
    }
    Ok(false)
}

/// Every float input and output, as activations.
fn mark_generic(g: &Graph, n: &Node, at: &At, m: &mut Marks<'_>) {
    for v in n.inputs() {
        m.activation(g, *v);
    }
    if !at.skip_output {
        for v in n.outputs() {
            m.activation(g, *v);
        }
    }
}

/// Conv/ConvTranspose: input and output as activations, the weight, the int32 bias.
fn mark_conv(g: &Graph, n: &Node, at: &At, weight_axis: usize, m: &mut Marks<'_>) {
    m.activation(g, at.i0);
    if !at.skip_output {
        m.activation(g, at.o0);
    }
    m.weight(g, input(n, 1), weight_axis);
    if let (Some(x), Some(w)) = (at.i0, input(n, 1)) {
        let bias = Bias {
            node: at.id,
            input: x,
            weight: w,
            alpha: 1.0,
            beta: 1.0,
        };
        m.bias(g, input(n, 2), bias);
    }
}

/// Gemm: like Conv, with the weight axis from `transB` and the bias only when it is a constant.
fn mark_gemm(g: &Graph, n: &Node, at: &At, m: &mut Marks<'_>) {
    m.activation(g, at.i0);
    if !at.skip_output {
        m.activation(g, at.o0);
    }
    let axis = if int_attr_of(n, "transB", 0) != 0 {
        0
    } else {
        1
    };
    m.weight(g, input(n, 1), axis);
    let (alpha, beta) = (float_attr(n, "alpha", 1.0), float_attr(n, "beta", 1.0));
    if let (Some(x), Some(w), Some(b)) = (at.i0, input(n, 1), input(n, 2))
        && resolve(g, &[], b).is_some()
    {
        let bias = Bias {
            node: at.id,
            input: x,
            weight: w,
            alpha,
            beta,
        };
        m.bias(g, Some(b), bias);
    }
}

/// MatMul: constant inputs as weights (per channel along axis 1), others as activations.
fn mark_matmul(g: &Graph, n: &Node, at: &At, m: &mut Marks<'_>) {
    for &v in n.inputs() {
        if v.is_some_and(|v| resolve(g, &[], v).is_some()) {
            m.weight(g, v, 1);
        } else {
            m.activation(g, v);
        }
    }
    if !at.skip_output {
        m.activation(g, at.o0);
    }
}

/// Relu/Clip after a quantized input: folded into the producer when the output's parameters clip
/// at its bounds (the producer's Q/DQ then does its work), else input and output as activations.
/// Returns whether the node was removed.
fn mark_removable(g: &mut Graph, at: &At, m: &mut Marks<'_>) -> Result<bool> {
    if !m.marked(at.i0) {
        return Ok(false);
    }
    let (Some(u), Some(r)) = (at.i0, at.o0) else {
        return Ok(false);
    };
    let Some(n) = g.node(at.id) else {
        return Ok(false);
    };
    let opts = m.opts;
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
        clip_bounds(g, n, at.opset)
            .is_some_and(|bounds| saturates_within(p, qtype, symmetric, bounds))
    });
    if candidate && !clips {
        m.unclipped.push(node_label(g, n));
    }
    if !(candidate && clips) {
        m.activation(g, Some(u));
        if !at.skip_output {
            m.activation(g, Some(r));
        }
        return Ok(false);
    }
    if m.overridden.contains_key(&u) {
        m.notes.push(format!(
            "the override of `{}` does not apply: the tensor became `{}` when the {} was folded",
            g.value(u).name(),
            g.value(r).name(),
            n.op_type()
        ));
    }
    // The producer now writes the activation's output: `u` takes `r`'s uses, and its name too
    // unless names are kept (a graph output always keeps its name).
    let is_output = g.outputs().iter().any(|p| p.value == r);
    if opts.qoperator && !is_output {
        g.replace_uses(r, u, |_| false).map_err(Error::edit)?;
    } else {
        g.substitute(r, u).map_err(Error::edit)?;
    }
    g.remove_node(at.id).map_err(Error::edit)?;
    m.roles.remove(&u);
    if let Some(i) = m.slot.remove(&u) {
        m.order[i] = None;
    }
    m.alias.insert(u, r);
    if !at.skip_output {
        m.activation(g, Some(u));
    }
    Ok(true)
}

/// Where: the output quantized when both value inputs are.
fn mark_where(g: &Graph, n: &Node, at: &At, m: &mut Marks<'_>) {
    let (a, b) = (input(n, 1), input(n, 2));
    let force = m.opts.force_quantize_no_input_check;
    // ORT's QOperator format makes QLinearWhere only with ForceQuantizeNoInputCheck.
    if m.opts.qoperator && !force {
        return;
    }
    if force {
        m.activation(g, a);
        m.activation(g, b);
        if !at.skip_output {
            m.activation(g, at.o0);
        }
    } else if m.marked(a) && m.marked(b) && !at.skip_output {
        m.activation(g, at.o0);
    }
}

/// Instance/Layer/BatchNormalization: input 0 as activation, the scale as weight, the bias int32
/// (not for BatchNormalization), the outputs as activations.
fn mark_normalization(g: &Graph, n: &Node, at: &At, m: &mut Marks<'_>) {
    m.activation(g, at.i0);
    let scale = input(n, 1);
    // The scale is per channel along axis 1 where it has one (ORT's default axis).
    m.weight(g, scale, 1);
    if let (Some(x), Some(s)) = (at.i0, scale)
        && n.op_type() != "BatchNormalization"
    {
        let bias = Bias {
            node: at.id,
            input: x,
            weight: s,
            alpha: 1.0,
            beta: 1.0,
        };
        m.bias(g, input(n, 2), bias);
    }
    if !at.skip_output {
        for o in n.outputs() {
            m.activation(g, *o);
        }
    }
}

/// Pad: the inputs as activations; the output shares input 0's parameters when padding adds no
/// new value (reflect/edge/wrap, or a constant 0).
fn mark_pad(g: &Graph, n: &Node, at: &At, m: &mut Marks<'_>) {
    let zero_pad = match bytes_attr(n, "mode").unwrap_or(b"constant") {
        b"reflect" | b"edge" | b"wrap" => true,
        _ if at.opset < 11 => float_attr(n, "value", 0.0) == 0.0,
        _ => match input(n, 2) {
            None => true,
            Some(c) => scalar_f32(g, c).is_some_and(|v| v == 0.0),
        },
    };
    for v in n.inputs() {
        m.activation(g, *v);
    }
    if !at.skip_output {
        if zero_pad {
            m.same_as(g, at.o0, at.i0);
        } else {
            m.activation(g, at.o0);
        }
    }
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
                Some(v) => scalar_f32(g, v),
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
