//! What SmoothQuant will rewrite, read from the graph without editing it: each activation read as
//! input 0 by MatMul / Gemm / Conv nodes with a constant float32 weight (a *group*: one scale per
//! tensor, shared by all of them), the weight axis that holds each one's input channels, and the
//! producer that can absorb `1/s` (else a Mul is inserted). Nodes that cannot be smoothed are
//! listed with the reason.

use onnxq_ir::{Def, Graph, NodeId, Use, ValueId};

use crate::edit::{input, int_attr_of, node_label};
pub(crate) use crate::rescale::WeightAxis;
use crate::select::Selection;
use crate::weights::resolve;

/// Which axis of the activation holds its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// The last axis: a MatMul's or Gemm's `A` (`[..., K]`).
    Last,
    /// Axis 1: a Conv's `X` (`[N, C, ...]`).
    One,
}

/// A node reading the smoothed activation, whose weight takes `s`.
#[derive(Debug, Clone)]
pub(crate) struct Consumer {
    /// The node; its weight is input 1 (read when applied: a node may also be the producer of
    /// another smoothed activation, whose fold scales the same weight along its other axis).
    pub(crate) node: NodeId,
    /// The weight axis of the input channels.
    pub(crate) axis: WeightAxis,
}

/// How a producer absorbs `1/s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fold {
    /// Per-channel parameters at these input slots, each `[C]` (LayerNormalization's scale and
    /// bias, BatchNormalization's and InstanceNormalization's scale and B).
    Params { node: NodeId, slots: Vec<usize> },
    /// A Mul by a constant at `slot`, broadcast along the last axis.
    MulConst { node: NodeId, slot: usize },
    /// An Add of a constant at `slot` (broadcast along the last axis) to the output of a
    /// producer that absorbs the scale itself (a decomposed LayerNorm's `β`, a MatMul's bias).
    AddConst {
        node: NodeId,
        slot: usize,
        inner: Box<Fold>,
    },
    /// A MatMul, Gemm or Conv whose output channels are the activation's channels: its weight
    /// (input 1) along `axis`, and its bias (input 2, broadcast along the last axis or `[C]`) if
    /// it has one.
    Weight { node: NodeId, axis: WeightAxis },
}

/// One activation and the nodes that read it.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) value: ValueId,
    pub(crate) tensor: String,
    pub(crate) axis: Axis,
    pub(crate) channels: usize,
    /// The activation's rank where known (a Conv input's is its weight's).
    pub(crate) rank: Option<usize>,
    pub(crate) consumers: Vec<Consumer>,
    /// The producer that absorbs `1/s`; `None`: a Mul is inserted.
    pub(crate) fold: Option<Fold>,
    /// Why no fold, for the report.
    pub(crate) no_fold: Option<String>,
}

/// The rewrite SmoothQuant will make.
#[derive(Debug, Clone, Default)]
pub struct SmoothPlan {
    pub(crate) groups: Vec<Group>,
    /// Candidate nodes left alone, with the reason (node label, reason).
    pub skipped: Vec<(String, String)>,
}

impl SmoothPlan {
    /// The activations whose per-channel `max |x|` the scales need: (tensor, axis, channels).
    pub fn targets(&self) -> Vec<(String, Axis, usize)> {
        self.groups
            .iter()
            .map(|g| (g.tensor.clone(), g.axis, g.channels))
            .collect()
    }
}

/// A candidate node's channel layout: (activation axis, channel count, weight axis, rank).
type Layout = (Axis, usize, WeightAxis, Option<usize>);

/// The plan for the main graph of `g`: nodes of the selected op types, in graph order.
pub(crate) fn plan(g: &Graph, sel: &Selection<'_>, folding: bool) -> SmoothPlan {
    let mut out = SmoothPlan::default();
    // Activation → its candidate consumers, in the order their first reader appears.
    let mut groups: Vec<Group> = Vec::new();
    for (id, n) in g.nodes() {
        if !matches!(n.op_type(), "MatMul" | "Gemm" | "Conv")
            || !matches!(n.domain(), "" | "ai.onnx")
        {
            continue;
        }
        let label = node_label(g, n);
        if let Err(why) = sel.check(n.op_type(), n.name()) {
            out.skipped.push((label, why));
            continue;
        }
        let (Some(x), Some(w)) = (input(n, 0), input(n, 1)) else {
            continue;
        };
        if resolve(g, &[], x).is_some() {
            continue; // a constant input: nothing to smooth
        }
        let layout = match layout(g, id, w) {
            Ok(l) => l,
            Err(why) => {
                out.skipped.push((label, why));
                continue;
            }
        };
        let (axis, channels, waxis, rank) = layout;
        let consumer = Consumer {
            node: id,
            axis: waxis,
        };
        match groups.iter_mut().find(|gr| gr.value == x) {
            Some(gr) if gr.axis != axis || gr.channels != channels => out.skipped.push((
                label,
                format!(
                    "its input `{}` is also read by nodes with another channel layout",
                    gr.tensor
                ),
            )),
            Some(gr) => gr.consumers.push(consumer),
            None => groups.push(Group {
                value: x,
                tensor: g.value(x).name().to_owned(),
                axis,
                channels,
                rank,
                consumers: vec![consumer],
                fold: None,
                no_fold: None,
            }),
        }
    }
    for gr in &mut groups {
        match fold_of(g, gr, folding) {
            Ok(f) => gr.fold = Some(f),
            Err(why) => gr.no_fold = Some(why),
        }
    }
    out.groups = groups;
    out
}

/// The layout of a candidate with weight `w`, or why it is not smoothed.
fn layout(g: &Graph, id: NodeId, w: ValueId) -> Result<Layout, String> {
    let n = g.node(id).ok_or("no node")?;
    let c = resolve(g, &[], w).ok_or("its weight is not a constant")?;
    if c.tensor.data_type() != 1 {
        return Err("its weight is not float32".into());
    }
    let dims: Vec<usize> = crate::weights::dims(c.tensor);
    match n.op_type() {
        "MatMul" if dims.len() == 2 => Ok((Axis::Last, dims[0], WeightAxis::Zero, None)),
        "MatMul" => Err(format!("its weight has rank {}, not 2", dims.len())),
        "Gemm" if int_attr_of(n, "transA", 0) != 0 => Err("Gemm with transA".into()),
        "Gemm" if dims.len() == 2 => Ok(if int_attr_of(n, "transB", 0) != 0 {
            (Axis::Last, dims[1], WeightAxis::One, Some(2))
        } else {
            (Axis::Last, dims[0], WeightAxis::Zero, Some(2))
        }),
        "Gemm" => Err(format!("its weight has rank {}, not 2", dims.len())),
        "Conv" if dims.len() >= 3 => {
            let group = usize::try_from(int_attr_of(n, "group", 1)).unwrap_or(0);
            let rank = Some(dims.len());
            if group == 1 {
                Ok((Axis::One, dims[1], WeightAxis::One, rank))
            } else if dims[1] == 1 && dims[0] == group {
                // Depthwise without a channel multiplier: output channel c reads input channel c.
                Ok((Axis::One, group, WeightAxis::Zero, rank))
            } else {
                Err(format!(
                    "grouped Conv (group {group}) other than depthwise with one output per channel"
                ))
            }
        }
        _ => Err(format!("its weight has rank {}", dims.len())),
    }
}

/// The producer fold for `gr`, or why there is none.
fn fold_of(g: &Graph, gr: &Group, folding: bool) -> Result<Fold, String> {
    if !folding {
        return Err("folding is off (--smooth-quant-folding false)".into());
    }
    let v = g.value(gr.value);
    let Def::Node { node, .. } = v.def() else {
        return Err(format!("`{}` is a graph input", gr.tensor));
    };
    // Every reader of the activation must take the smoothed tensor.
    let readers = v.uses().iter().all(|u| match u {
        Use::Node { node, slot } => *slot == 0 && gr.consumers.iter().any(|c| c.node == *node),
        _ => false,
    });
    if !readers {
        return Err(format!(
            "`{}` is also read by nodes that are not smoothed (or is a graph output)",
            gr.tensor
        ));
    }
    fold_at(g, *node, gr.axis, gr.channels)
}

/// How the node `id`, whose only output is the activation (or feeds only the next fold), absorbs
/// `1/s` along `axis` of `c` channels.
fn fold_at(g: &Graph, id: NodeId, axis: Axis, c: usize) -> Result<Fold, String> {
    let p = g.node(id).ok_or("no producer")?;
    let node = &id;
    let what = format!("its producer {} `{}`", p.op_type(), node_label(g, p));
    if p.outputs().iter().flatten().count() != 1 || !matches!(p.domain(), "" | "ai.onnx") {
        return Err(format!("{what} cannot absorb the scale"));
    }
    let constant = |slot: usize| input(p, slot).filter(|&v| is_f32_const(g, v));
    // Per-channel parameters at `slots`, each a constant `[c]`.
    let params = |slots: Vec<usize>| {
        let ok = slots
            .iter()
            .all(|&s| constant(s).is_some_and(|v| has_len(g, v, c)));
        ok.then_some(Fold::Params { node: *node, slots })
            .ok_or(format!(
                "{what}'s scale and bias are not constant [{c}] tensors"
            ))
    };
    match (p.op_type(), axis) {
        ("LayerNormalization", Axis::Last) if int_attr_of(p, "axis", -1) == -1 => {
            let slots: Vec<usize> = (1..p.inputs().len())
                .filter(|&s| input(p, s).is_some())
                .collect();
            params(slots)
        }
        ("BatchNormalization" | "InstanceNormalization", Axis::One) => params(vec![1, 2]),
        ("Mul", Axis::Last) => {
            let slot = (0..2)
                .find(|&s| constant(s).is_some_and(|v| last_dim_fits(g, v, c)))
                .ok_or(format!("{what} has no constant factor along the last axis"))?;
            Ok(Fold::MulConst { node: *node, slot })
        }
        ("Add", Axis::Last) => {
            let slot = (0..2)
                .find(|&s| constant(s).is_some_and(|v| last_dim_fits(g, v, c)))
                .ok_or(format!("{what} adds no constant along the last axis"))?;
            // `(y + b) / s = y / s + b / s`: the other addend's producer must absorb it too.
            let other = input(p, 1 - slot).ok_or(format!("{what} has one input"))?;
            let Def::Node { node: inner, .. } = g.value(other).def() else {
                return Err(format!("{what} adds a constant to a graph input"));
            };
            if g.value(other).uses().len() != 1 {
                return Err(format!(
                    "{what} adds a constant to a tensor read elsewhere too"
                ));
            }
            let inner = fold_at(g, *inner, axis, c).map_err(|why| format!("{what}: {why}"))?;
            Ok(Fold::AddConst {
                node: *node,
                slot,
                inner: Box::new(inner),
            })
        }
        ("MatMul" | "Gemm", Axis::Last) => weight_fold(g, *node, c, &what),
        ("Conv", Axis::One) => weight_fold(g, *node, c, &what),
        _ => Err(format!("{what} cannot absorb the scale")),
    }
}

/// A MatMul / Gemm / Conv producer whose constant weight's output channels are the `c`
/// channels; its bias is scaled too.
fn weight_fold(g: &Graph, node: NodeId, c: usize, what: &str) -> Result<Fold, String> {
    let p = g.node(node).ok_or("no producer")?;
    let w = input(p, 1)
        .filter(|&v| is_f32_const(g, v))
        .ok_or(format!("{what} has no constant float32 weight"))?;
    let dims = const_dims(g, w);
    let axis = match p.op_type() {
        "MatMul" if dims.len() == 2 && dims[1] == c => WeightAxis::One,
        "Gemm" if int_attr_of(p, "transA", 0) == 0 && dims.len() == 2 => {
            match int_attr_of(p, "transB", 0) {
                0 if dims[1] == c => WeightAxis::One,
                0 => return Err(format!("{what}'s weight does not have {c} output columns")),
                _ if dims[0] == c => WeightAxis::Zero,
                _ => return Err(format!("{what}'s weight does not have {c} output rows")),
            }
        }
        "Conv" if dims.first() == Some(&c) => WeightAxis::Zero,
        _ => return Err(format!("{what}'s weight does not have {c} output channels")),
    };
    let bias = input(p, 2);
    if let Some(b) = bias {
        let fits = is_f32_const(g, b)
            && if p.op_type() == "Conv" {
                has_len(g, b, c)
            } else {
                last_dim_fits(g, b, c)
            };
        if !fits {
            return Err(format!(
                "{what}'s bias is not a constant along its output channels"
            ));
        }
    }
    Ok(Fold::Weight { node, axis })
}

fn is_f32_const(g: &Graph, v: ValueId) -> bool {
    resolve(g, &[], v).is_some_and(|c| c.tensor.data_type() == 1)
}

fn const_dims(g: &Graph, v: ValueId) -> Vec<usize> {
    resolve(g, &[], v).map_or_else(Vec::new, |c| crate::weights::dims(c.tensor))
}

/// A `[c]` tensor.
fn has_len(g: &Graph, v: ValueId, c: usize) -> bool {
    const_dims(g, v) == [c]
}

/// A constant that broadcasts along the last axis of a `[..., c]` tensor: a scalar, or a last
/// dimension of 1 or `c` (scaling it gives it a last dimension of `c`, which leaves the
/// broadcast result's shape unchanged).
fn last_dim_fits(g: &Graph, v: ValueId, c: usize) -> bool {
    let d = const_dims(g, v);
    d.last().is_none_or(|&l| l == 1 || l == c)
}
