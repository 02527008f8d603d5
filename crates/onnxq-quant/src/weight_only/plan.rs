//! The planning stage of weight-only quantization: which nodes can be rewritten and with what
//! weight, or why not (a report entry). Reads the graph, never edits it.

use onnxq_ir::{Graph, Node, NodeId, ValueId};

use super::options::Settings;
use crate::edit::{input, int_attr_of};
use crate::numerics::gather_blocks::AxisShape;
use crate::weights::{Const, Source, dims, resolve};

/// The element types a weight-only weight may have (ONNX data type numbers).
pub(crate) const FLOAT: i32 = 1;
pub(crate) const FLOAT16: i32 = 10;
pub(crate) const BFLOAT16: i32 = 16;

/// How a weight is quantized: the distinct (weight, kind) pairs are quantized once each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// MatMul's B `[K, N]` (leading unit dims dropped), blocked along K.
    MatMul { k: usize, n: usize },
    /// A Gather table blocked along `axis`.
    Gather { axis: usize, shape: AxisShape },
}

/// A node whose constant weight is rewritten.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The node.
    pub(crate) node: NodeId,
    /// The input reading the weight (possibly through Identity or from an enclosing graph).
    pub(crate) weight_input: ValueId,
    /// The node's other input: MatMul's A, Gather's indices.
    pub(crate) other: ValueId,
    /// The weight.
    pub(crate) weight: Source,
    /// The weight tensor's name, a base for the quantized tensors' names.
    pub(crate) weight_name: String,
    /// The weight's dims as stored.
    pub(crate) dims: Vec<usize>,
    /// The weight's element type.
    pub(crate) dtype: i32,
    /// How it is quantized.
    pub(crate) kind: Kind,
    /// With which bits, block size and symmetry.
    pub(crate) settings: Settings,
    /// A bias Add folded into MatMulNBits' bias input (with `--fold-bias`).
    pub(crate) bias: Option<Bias>,
    /// The weight's rank, when MatMulNBits' output must be reshaped to MatMul's (`rank.rs`).
    pub(crate) restore_rank: Option<usize>,
}

/// `Add(MatMul(A, B), b)` with a constant `b` of shape `[N]`, the MatMul's only reader.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bias {
    /// The Add node.
    pub(crate) add: NodeId,
    /// Its bias input.
    pub(crate) value: ValueId,
}

/// What makes two quantizations of a weight the same: the weight, its layout, its settings.
pub(crate) type Key = (Source, Kind, Settings);

impl Plan {
    /// The key of the weight's quantization.
    pub(crate) fn key(&self) -> Key {
        (self.weight, self.kind, self.settings)
    }
}

/// The constant float weight behind input `slot` of `node`, or why there is none.
fn float_weight<'g>(
    g: &'g Graph,
    outer: &[&'g Graph],
    node: &Node,
    slot: usize,
    what: &str,
) -> Result<(ValueId, Const<'g>), String> {
    let v = input(node, slot).ok_or_else(|| format!("input {what} is missing"))?;
    let c = resolve(g, outer, v).ok_or_else(|| {
        format!("input {what} is not a constant (weight-only quantization rewrites constant weights only)")
    })?;
    if !matches!(c.tensor.data_type(), FLOAT | FLOAT16 | BFLOAT16) {
        return Err(format!(
            "weight `{}` is not float32, float16 or bfloat16",
            c.name
        ));
    }
    if dims(c.tensor).contains(&0) {
        return Err(format!("weight `{}` is empty", c.name));
    }
    Ok((v, c))
}

fn plan_of(
    (node, v, other): (NodeId, ValueId, ValueId),
    c: &Const<'_>,
    kind: Kind,
    settings: Settings,
) -> Plan {
    Plan {
        settings,
        bias: None,
        restore_rank: None,
        node,
        weight_input: v,
        other,
        weight: c.source,
        weight_name: c.name.to_owned(),
        dims: dims(c.tensor),
        dtype: c.tensor.data_type(),
        kind,
    }
}

/// Plans a MatMul, or says why it stays float.
pub(crate) fn plan_matmul(
    g: &Graph,
    outer: &[&Graph],
    id: NodeId,
    node: &Node,
    settings: Settings,
    inferred_rank: impl Fn(ValueId) -> Option<usize>,
) -> Result<Plan, String> {
    let a = input(node, 0).ok_or("input A is missing")?;
    let (b, c) = float_weight(g, outer, node, 1, "B")?;
    let d = dims(c.tensor);
    if d.len() < 2 {
        return Err(format!("weight `{}` has fewer than 2 dimensions", c.name));
    }
    let (lead, kn) = d.split_at(d.len() - 2);
    if lead.iter().any(|&x| x != 1) {
        return Err(format!(
            "weight `{}` has batch dimensions {lead:?} (only [1, ..., 1, K, N] weights are quantized)",
            c.name
        ));
    }
    // MatMulNBits' output is A's batch dims + [N]: MatMul's only when A has at least B's rank
    // (ORT then adds no reshape either); otherwise a reshape restores MatMul's rank.
    let rank_a = g
        .declared_type(a)
        .and_then(|t| t.shape.as_ref())
        .map(|s| s.dim.len())
        .or_else(|| inferred_rank(a));
    let restore_rank = (d.len() > 2 && rank_a.is_none_or(|r| r < d.len())).then_some(d.len());
    let kind = Kind::MatMul { k: kn[0], n: kn[1] };
    let mut plan = plan_of((id, b, a), &c, kind, settings);
    plan.restore_rank = restore_rank;
    Ok(plan)
}

/// Plans a Gather on a constant table blocked along `axis` (negative counts from the end), or
/// says why it stays float.
pub(crate) fn plan_gather(
    g: &Graph,
    outer: &[&Graph],
    id: NodeId,
    node: &Node,
    axis: i64,
    settings: Settings,
) -> Result<Plan, String> {
    let bits = settings.bits;
    if bits == 2 {
        return Err(
            "GatherBlockQuantized takes 4 or 8 bits, not 2; give the Gather its own bits in the \
             config's customized_weight_config, or leave Gather out of --op-types"
                .into(),
        );
    }
    let indices = input(node, 1).ok_or("input indices is missing")?;
    let (data, c) = float_weight(g, outer, node, 0, "data")?;
    let d = dims(c.tensor);
    let rank = d.len() as i64;
    if !(-rank..rank).contains(&axis) {
        return Err(format!(
            "quantize axis {axis} is outside table `{}` of rank {rank}",
            c.name
        ));
    }
    let axis = axis.rem_euclid(rank) as usize;
    let gather_axis = int_attr_of(node, "axis", 0).rem_euclid(rank.max(1)) as usize;
    if gather_axis == axis {
        return Err(format!(
            "the quantize axis {axis} of table `{}` is its gather axis; GatherBlockQuantized needs them to differ",
            c.name
        ));
    }
    let shape = AxisShape {
        m: d[..axis].iter().product(),
        k: d[axis],
        n: d[axis + 1..].iter().product(),
    };
    let kind = Kind::Gather { axis, shape };
    Ok(plan_of((id, data, indices), &c, kind, settings))
}

/// The bias Add after MatMul `node` that MatMulNBits can take as its bias input, if any: the
/// MatMul's output is read by that Add alone (not a graph output), and the Add's other input is a
/// constant `[N]` of the weight's type (which is A's: MatMul takes one type).
pub(crate) fn bias_of(g: &Graph, outer: &[&Graph], node: &Node, p: &Plan) -> Option<Bias> {
    let Kind::MatMul { n, .. } = p.kind else {
        return None;
    };
    let out = crate::edit::output(node, 0)?;
    let [onnxq_ir::Use::Node { node: add, slot }] = g.value(out).uses() else {
        return None;
    };
    let add_node = g.node(*add)?;
    if add_node.op_type() != "Add" || !add_node.domain().is_empty() {
        return None;
    }
    let other = match slot {
        0 => 1,
        1 => 0,
        _ => return None,
    };
    let value = input(add_node, other)?;
    let c = resolve(g, outer, value)?;
    if dims(c.tensor) != [n] || c.tensor.data_type() != p.dtype {
        return None;
    }
    Some(Bias { add: *add, value })
}
