//! The planning stage of weight-only quantization: which nodes can be rewritten and with what
//! weight, or why not (a report entry). Reads the graph, never edits it.

use onnxq_ir::{Graph, Node, NodeId, ValueId};

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
}

impl Plan {
    /// The key of the weight's quantization.
    pub(crate) fn key(&self) -> (Source, Kind) {
        (self.weight, self.kind)
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

fn plan_of(node: NodeId, v: ValueId, other: ValueId, c: &Const<'_>, kind: Kind) -> Plan {
    Plan {
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
    if d.len() > 2 {
        // MatMulNBits' output is A's batch dims + [N]: equal to MatMul's only when A has at least
        // B's rank (ORT then adds no reshape either).
        let rank_a = g
            .declared_type(a)
            .and_then(|t| t.shape.as_ref())
            .map(|s| s.dim.len());
        if rank_a.is_none_or(|r| r < d.len()) {
            return Err(format!(
                "weight `{}` has rank {} and input A's rank is unknown or lower: the output \
                 reshape this needs is not supported yet",
                c.name,
                d.len()
            ));
        }
    }
    let kind = Kind::MatMul { k: kn[0], n: kn[1] };
    Ok(plan_of(id, b, a, &c, kind))
}

/// Plans a Gather on a constant table blocked along `axis` (negative counts from the end), or
/// says why it stays float.
pub(crate) fn plan_gather(
    g: &Graph,
    outer: &[&Graph],
    id: NodeId,
    node: &Node,
    axis: i64,
    bits: u32,
) -> Result<Plan, String> {
    if bits != 4 {
        return Err(format!(
            "GatherBlockQuantized is written with 4 bits (as ORT's tool does), not {bits}; give \
             --bits 4 or leave Gather out of --op-types"
        ));
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
    Ok(plan_of(id, data, indices, &c, Kind::Gather { axis, shape }))
}
