//! The layer pairs cross-layer equalization rescales, read from the graph without editing it: a
//! head (Conv, MatMul or Gemm with a constant float32 weight) whose output channels feed,
//! through only positively homogeneous per-channel ops (Relu, LeakyRelu, MaxPool), the input
//! channels of a tail of the same kind; every tensor between them read by the next node only.
//! A Clip between them is not homogeneous (its bounds do not scale per channel): the pair is
//! skipped, or with `relu6` the Clip is planned to become a Relu.

use onnxq_ir::{Def, Graph, NodeId, Use, ValueId};

use crate::edit::{input, int_attr_of, node_label, output};
use crate::rescale::WeightAxis;
use crate::select::Selection;
use crate::weights::{dims, resolve, scalar_f32};

/// One head → tail pair.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    pub(crate) head: NodeId,
    pub(crate) tail: NodeId,
    /// The head weight's output-channel axis.
    pub(crate) head_axis: WeightAxis,
    /// The tail weight's input-channel axis.
    pub(crate) tail_axis: WeightAxis,
    pub(crate) channels: usize,
    /// The Clips between them that become Relus (relu6 mode).
    pub(crate) clips: Vec<NodeId>,
    /// Bias absorption applies: exactly one Relu (or a Clip made one) between them, and a tail
    /// that reads no padding (a 1x1-style Conv without pads, or a MatMul/Gemm with a bias slot).
    pub(crate) absorbable: bool,
}

/// The rewrite equalization will make.
#[derive(Debug, Clone, Default)]
pub struct EqualizePlan {
    pub(crate) pairs: Vec<Pair>,
    /// Candidate tails left alone, with the reason (node label, reason).
    pub skipped: Vec<(String, String)>,
}

impl EqualizePlan {
    /// The head outputs whose per-channel minimum bias absorption needs: (tensor, Conv-like
    /// (channel axis 1) or not (last axis), channels).
    pub fn absorption_targets(&self, g: &Graph) -> Vec<(String, bool, usize)> {
        self.pairs
            .iter()
            .filter(|p| p.absorbable)
            .filter_map(|p| {
                let n = g.node(p.head)?;
                let out = output(n, 0)?;
                Some((
                    g.value(out).name().to_owned(),
                    n.op_type() == "Conv",
                    p.channels,
                ))
            })
            .collect()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no pair was found.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// The pairs of the main graph, tails in graph order.
pub(crate) fn plan(g: &Graph, sel: &Selection<'_>, relu6: bool) -> EqualizePlan {
    let mut out = EqualizePlan::default();
    for (tail, n) in g.nodes() {
        let Some((tail_axis, channels, conv)) = tail_layout(g, tail) else {
            continue;
        };
        let Some(x) = input(n, 0) else { continue };
        match walk_up(g, x, conv, relu6) {
            Ok(Some((head, clips, relus))) => {
                let label = node_label(g, n);
                let (Some((head_axis, c, head_conv)), Some(h)) =
                    (head_layout(g, head), g.node(head))
                else {
                    continue;
                };
                if head_conv != conv || c != channels {
                    continue;
                }
                if let Err(why) = sel
                    .check(n.op_type(), n.name())
                    .and_then(|()| sel.check(h.op_type(), h.name()))
                {
                    out.skipped.push((label, why));
                    continue;
                }
                let absorbable =
                    relus == 1 && reads_no_padding(g, tail) && unit_gemm(h) && unit_gemm(n);
                out.pairs.push(Pair {
                    head,
                    tail,
                    head_axis,
                    tail_axis,
                    channels,
                    clips,
                    absorbable,
                });
            }
            Ok(None) => {}
            Err(why) => out.skipped.push((node_label(g, n), why)),
        }
    }
    out
}

/// Counted for a node between head and tail that is not a Relu: absorption needs exactly one.
const ONLY_RELU: usize = 2;

/// From the tail's input up to a head: the head, the Clips to turn into Relus, and the number of
/// Relu-like nodes passed (Relus and those Clips); `Ok(None)` when no head is there.
fn walk_up(
    g: &Graph,
    mut x: ValueId,
    conv: bool,
    relu6: bool,
) -> Result<Option<(NodeId, Vec<NodeId>, usize)>, String> {
    let (mut clips, mut relus) = (Vec::new(), 0);
    loop {
        let v = g.value(x);
        let Def::Node { node, .. } = v.def() else {
            return Ok(None);
        };
        // The tensor must be read by the next node alone (it changes scale).
        if v.uses().len() != 1 || !matches!(v.uses()[0], Use::Node { slot: 0, .. }) {
            return Ok(None);
        }
        let p = g.node(*node).ok_or("no producer")?;
        if !matches!(p.domain(), "" | "ai.onnx") {
            return Ok(None);
        }
        match p.op_type() {
            "Conv" | "MatMul" | "Gemm" => return Ok(Some((*node, clips, relus))),
            "Relu" => relus += 1,
            // Homogeneous too, but bias absorption's identity holds for a lone Relu only.
            "LeakyRelu" => relus += ONLY_RELU,
            "MaxPool" if conv && p.outputs().iter().flatten().count() == 1 => relus += ONLY_RELU,
            "Clip" if clip_from_zero(g, p) => {
                if !relu6 {
                    return Err(format!(
                        "Clip `{}` between it and the layer before is not scale-homogeneous (its \
                         bound does not scale per channel); --equalize relu6 makes it a Relu, as \
                         Nagel et al. and AIMET do (a change of the float model)",
                        node_label(g, p)
                    ));
                }
                clips.push(*node);
                relus += 1;
            }
            _ => return Ok(None),
        }
        x = input(p, 0).ok_or("no input")?;
    }
}

/// A Clip whose lower bound is 0 (ReLU6 and its kin).
fn clip_from_zero(g: &Graph, n: &onnxq_ir::Node) -> bool {
    match input(n, 1) {
        Some(v) => scalar_f32(g, v) == Some(0.0),
        None => n
            .attribute("min")
            .and_then(|a| a.proto.f)
            .is_some_and(|m| m == 0.0),
    }
}

/// A tail's input-channel axis, channel count, and whether it is a Conv.
fn tail_layout(g: &Graph, id: NodeId) -> Option<(WeightAxis, usize, bool)> {
    let n = g.node(id)?;
    let d = weight_dims(g, n)?;
    match n.op_type() {
        "Conv" => {
            let group = usize::try_from(int_attr_of(n, "group", 1)).ok()?;
            if group == 1 {
                Some((WeightAxis::One, d[1], true))
            } else if d[1] == 1 && d[0] == group {
                Some((WeightAxis::Zero, group, true))
            } else {
                None
            }
        }
        "MatMul" => Some((WeightAxis::Zero, d[0], false)),
        "Gemm" if int_attr_of(n, "transA", 0) == 0 => Some(if int_attr_of(n, "transB", 0) == 0 {
            (WeightAxis::Zero, d[0], false)
        } else {
            (WeightAxis::One, d[1], false)
        }),
        _ => None,
    }
}

/// A head's output-channel axis, channel count, and whether it is a Conv; a bias it has must be a
/// constant `[channels]`.
fn head_layout(g: &Graph, id: NodeId) -> Option<(WeightAxis, usize, bool)> {
    let n = g.node(id)?;
    let d = weight_dims(g, n)?;
    let layout = match n.op_type() {
        "Conv" => (WeightAxis::Zero, d[0], true),
        "MatMul" => (WeightAxis::One, d[1], false),
        "Gemm" if int_attr_of(n, "transA", 0) == 0 => {
            if int_attr_of(n, "transB", 0) == 0 {
                (WeightAxis::One, d[1], false)
            } else {
                (WeightAxis::Zero, d[0], false)
            }
        }
        _ => return None,
    };
    if let Some(b) = input(n, 2) {
        let c = resolve(g, &[], b)?;
        if c.tensor.data_type() != 1 || dims(c.tensor) != [layout.1] {
            return None;
        }
    }
    Some(layout)
}

/// The dims of a node's constant float32 weight (input 1): rank 2 for MatMul/Gemm, at least 3
/// for Conv.
fn weight_dims(g: &Graph, n: &onnxq_ir::Node) -> Option<Vec<usize>> {
    if !matches!(n.domain(), "" | "ai.onnx") {
        return None;
    }
    let c = resolve(g, &[], input(n, 1)?)?;
    let d = dims(c.tensor);
    let rank_ok = if n.op_type() == "Conv" {
        d.len() >= 3
    } else {
        d.len() == 2
    };
    (c.tensor.data_type() == 1 && rank_ok).then_some(d)
}

/// Not a Gemm, or one with `alpha = beta = 1` (absorption moves biases as they are added).
fn unit_gemm(n: &onnxq_ir::Node) -> bool {
    let one = |a: &str| {
        n.attribute(a)
            .and_then(|a| a.proto.f)
            .is_none_or(|v| v == 1.0)
    };
    n.op_type() != "Gemm" || (one("alpha") && one("beta"))
}

/// Whether the tail sees no padding (bias absorption's `W·c` is exact only then), and can take
/// a bias: a Conv with zero pads and no auto_pad, or a Gemm; a MatMul has no bias slot.
fn reads_no_padding(g: &Graph, id: NodeId) -> bool {
    let Some(n) = g.node(id) else { return false };
    match n.op_type() {
        "Conv" => {
            let pads_zero = n
                .attribute("pads")
                .is_none_or(|a| a.proto.ints.iter().all(|&p| p == 0));
            let auto = n
                .attribute("auto_pad")
                .and_then(|a| a.proto.s.as_deref())
                .is_none_or(|s| s == b"NOTSET" || s == b"VALID");
            pads_zero && auto
        }
        "Gemm" => true,
        _ => false,
    }
}
