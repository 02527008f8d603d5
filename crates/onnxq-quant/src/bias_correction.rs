//! Empirical bias correction (Nagel et al. 2019, §4.2): rounding a layer's weights shifts the
//! mean of its output, `E[(W − Ŵ) x̂] ≠ 0`; adding that shift per output channel to its bias
//! removes it. [`bias_probes`] adds to the quantized model, for each target, a probe: the layer's
//! own op on its quantized input `x̂` with the weight error `W − Ŵ` (the float weight minus the
//! quantized model's dequantized weight, computed by a Sub in the graph, so every weight pattern
//! works) and no bias. The caller measures each probe's per-channel mean on the calibration
//! data, [`correct_biases`] adds the means to the float model's biases, which is quantized again
//! with the same ranges.
//!
//! Why each layer's own error only, not `E[y] − E[y_q]` between the two models: the latter holds
//! every upstream layer's shift as well, which the upstream corrections already remove, so a deep
//! network corrected that way in one pass over-corrects at every layer (MobileNetV2: top-1
//! agreement 0.62 → 0). The probe is exact for any padding, stride or group, and all layers are
//! measured in one run of the model.
//!
//! A bias is where the layer adds its constant: a Conv's or Gemm's input 2 (made when absent),
//! or the constant `[N]` of the Add after a MatMul (a MatMul without one is skipped: adding an
//! Add would cost a node at inference).

use std::collections::BTreeMap;

use onnxq_ir::{Graph, Model, Node, NodeId, Use, ValueId};

use crate::edit::{input, int_attr_of, node_label, output};
use crate::error::{Error, Result};
use crate::rescale::{new_f32, values_of};
use crate::weights::{dims, resolve};

/// A layer whose output mean is measured and whose bias takes the shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiasTarget {
    /// The node's name (the quantized model keeps it).
    pub node: String,
    /// Its output in the float model.
    pub tensor: String,
    /// A Conv (channels on axis 1), else channels on the last axis.
    pub conv: bool,
    /// Output channels.
    pub channels: usize,
}

/// Where a node's bias lives.
enum Holder {
    /// Input 2 of the node (absent: made).
    Slot(NodeId),
    /// The constant at `slot` of the Add reading the MatMul.
    Add { add: NodeId, slot: usize },
}

/// The Conv / Gemm / MatMul nodes of the main graph whose bias can take a correction, and the
/// candidates that cannot, with the reason. `wanted` says whether the static pass quantizes a
/// node.
pub fn bias_correction_targets(
    model: &Model,
    wanted: &dyn Fn(&onnxq_ir::Node) -> bool,
) -> (Vec<BiasTarget>, Vec<(String, String)>) {
    let g = &model.graph;
    let (mut targets, mut skipped) = (Vec::new(), Vec::new());
    for (id, n) in g.nodes() {
        if !matches!(n.op_type(), "Conv" | "Gemm" | "MatMul") || !wanted(n) {
            continue;
        }
        let label = node_label(g, n);
        if n.name().is_empty() {
            skipped.push((
                label,
                "the node has no name to find it by in the quantized model".into(),
            ));
            continue;
        }
        let Some(channels) = out_channels(g, n) else {
            skipped.push((label, "its weight is not a constant of known layout".into()));
            continue;
        };
        if let Err(why) = holder(g, id, channels) {
            skipped.push((label, why));
            continue;
        }
        let Some(out) = output(n, 0) else { continue };
        targets.push(BiasTarget {
            node: n.name().to_owned(),
            tensor: g.value(out).name().to_owned(),
            conv: n.op_type() == "Conv",
            channels,
        });
    }
    (targets, skipped)
}

/// The quantized model with its probes (see the module doc).
#[derive(Debug)]
pub struct BiasProbes {
    /// The quantized model with one probe output per probed target.
    pub model: Model,
    /// One per probed target.
    pub probes: Vec<Probe>,
    /// Targets that cannot be probed: (node, reason).
    pub skipped: Vec<(String, String)>,
}

/// One target's probe.
#[derive(Debug)]
pub struct Probe {
    /// The target's index.
    pub target: usize,
    /// The probe's output: the layer's own weight error on its quantized input.
    pub probe: String,
    /// The quantized layer's output (its size puts the shift in proportion).
    pub output: String,
}

/// The quantized model `quant` with one probe output per target of `float`'s that it holds.
pub fn bias_probes(float: &Model, quant: &Model, targets: &[BiasTarget]) -> Result<BiasProbes> {
    let mut probe = quant.clone();
    let g = &mut probe.graph;
    let (mut probes, mut skipped) = (Vec::new(), Vec::new());
    let by_name: BTreeMap<String, NodeId> =
        g.nodes().map(|(id, n)| (n.name().to_owned(), id)).collect();
    // Found once: a lookup per target would scan the float graph for each.
    let float_nodes: BTreeMap<&str, NodeId> =
        float.graph.nodes().map(|(id, n)| (n.name(), id)).collect();
    for (i, t) in targets.iter().enumerate() {
        let (Some(&qid), Some(weight)) = (
            by_name.get(&t.node),
            float_nodes
                .get(t.node.as_str())
                .and_then(|&n| float_weight(float, n)),
        ) else {
            skipped.push((t.node.clone(), "not found in the quantized model".into()));
            continue;
        };
        let Some(qn) = g.node(qid).cloned() else {
            continue;
        };
        let (Some(x), Some(wq), Some(y)) = (input(&qn, 0), input(&qn, 1), output(&qn, 0)) else {
            continue;
        };
        if resolve(g, &[], wq).is_some() {
            skipped.push((t.node.clone(), "its weight is not quantized".into()));
            continue;
        }
        let base = format!("{}_bias_probe", t.node);
        let w = g
            .add_initializer(&g.fresh_name(&format!("{base}_w")), weight)
            .map_err(Error::edit)?;
        let dw_name = g.fresh_name(&format!("{base}_dw"));
        let sub = Node::new("Sub", "", Some(g.fresh_name(&format!("{base}_sub"))));
        let (_, dw) = g
            .add_node(sub, &[Some(w), Some(wq)], &[Some(&dw_name)])
            .map_err(Error::edit)?;
        let out = g.fresh_name(&base);
        let mut node = Node::new(qn.op_type(), qn.domain(), Some(g.fresh_name(&base)));
        node.attributes = qn.attributes.clone();
        let (_, outs) = g
            .add_node(node, &[Some(x), dw[0]], &[Some(&out)])
            .map_err(Error::edit)?;
        if let Some(v) = outs[0] {
            g.add_output(v, Default::default()).map_err(Error::edit)?;
        }
        probes.push(Probe {
            target: i,
            probe: out,
            output: g.value(y).name().to_owned(),
        });
    }
    Ok(BiasProbes {
        model: probe,
        probes,
        skipped,
    })
}

/// The float weight (input 1) of node `id` of `model`, when it is a constant.
fn float_weight(model: &Model, id: NodeId) -> Option<onnxq_ir::proto::TensorProto> {
    let g = &model.graph;
    let n = g.node(id)?;
    resolve(g, &[], input(n, 1)?).map(|w| w.tensor.clone())
}

/// Adds `shifts` (per target node name, one per output channel; NaN: no change) to the biases.
/// Returns the nodes corrected.
pub fn correct_biases(model: &mut Model, shifts: &BTreeMap<String, Vec<f64>>) -> Result<usize> {
    let g = &mut model.graph;
    let by_name: BTreeMap<String, NodeId> = g
        .nodes()
        .filter(|(_, n)| shifts.contains_key(n.name()))
        .map(|(id, n)| (n.name().to_owned(), id))
        .collect();
    let mut done = 0;
    for (name, id) in by_name {
        let shift = &shifts[&name];
        let Some(n) = g.node(id) else { continue };
        let Some(c) = out_channels(g, n) else {
            continue;
        };
        if shift.len() != c || shift.iter().all(|d| !d.is_finite() || *d == 0.0) {
            continue;
        }
        let (node, slot, old) = match holder(g, id, c).map_err(Error::Internal)? {
            Holder::Slot(node) => (node, 2, g.node(node).and_then(|n| input(n, 2))),
            Holder::Add { add, slot } => (add, slot, g.node(add).and_then(|n| input(n, slot))),
        };
        let base = match old {
            Some(b) => b,
            None => crate::rescale::input_of(g, id, 1)?,
        };
        let mut b = match old {
            Some(b) => values_of(g, b)?.0,
            None => vec![0.0; c],
        };
        for (x, d) in b.iter_mut().zip(shift) {
            if d.is_finite() {
                *x = (f64::from(*x) + d) as f32;
            }
        }
        let v = new_f32(g, base, "_bias_corrected", vec![c as i64], &b)?;
        g.set_input(node, slot, Some(v)).map_err(Error::edit)?;
        done += 1;
    }
    crate::weights::remove_unread_constants(g).map_err(Error::edit)?;
    Ok(done)
}

/// Output channels of a Conv / Gemm / MatMul with a constant float32 weight.
fn out_channels(g: &Graph, n: &onnxq_ir::Node) -> Option<usize> {
    let w = resolve(g, &[], input(n, 1)?)?;
    if w.tensor.data_type() != 1 {
        return None;
    }
    let d = dims(w.tensor);
    match n.op_type() {
        "Conv" if d.len() >= 3 => Some(d[0]),
        "Gemm" if d.len() == 2 && int_attr_of(n, "transB", 0) != 0 => Some(d[0]),
        "Gemm" | "MatMul" if d.len() == 2 => Some(d[1]),
        _ => None,
    }
}

/// Where the bias of node `id` (with `c` output channels) lives, or why it has none to correct.
fn holder(g: &Graph, id: NodeId, c: usize) -> std::result::Result<Holder, String> {
    let n = g.node(id).ok_or("no node")?;
    let is_vec = |v: ValueId| {
        resolve(g, &[], v).is_some_and(|t| t.tensor.data_type() == 1 && dims(t.tensor) == [c])
    };
    match n.op_type() {
        "Conv" | "Gemm" => match input(n, 2) {
            None => Ok(Holder::Slot(id)),
            Some(b) if is_vec(b) => {
                let beta = n.attribute("beta").and_then(|a| a.proto.f).unwrap_or(1.0);
                if n.op_type() == "Gemm" && beta != 1.0 {
                    return Err("Gemm with beta ≠ 1".into());
                }
                Ok(Holder::Slot(id))
            }
            Some(_) => Err("its bias is not a constant per output channel".into()),
        },
        _ => {
            let out = output(n, 0).ok_or("no output")?;
            let [Use::Node { node: add, slot }] = g.value(out).uses() else {
                return Err("a MatMul whose output is not read by one Add (no bias)".into());
            };
            let a = g.node(*add).ok_or("no node")?;
            let other = 1 - slot;
            match (a.op_type(), input(a, other)) {
                ("Add", Some(b)) if is_vec(b) => Ok(Holder::Add {
                    add: *add,
                    slot: other,
                }),
                _ => Err("a MatMul not followed by an Add of a constant [N] bias".into()),
            }
        }
    }
}
