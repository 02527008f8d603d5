//! The apply stage of weight-only quantization, in ONNX Runtime's names (the tensors come
//! encoded from `encode.rs`): a MatMul
//! becomes `com.microsoft.MatMulNBits` (`<B>_Q{bits}`, `<B>_scales`, `<B>_zero_points`, node
//! `<MatMul>_Q{bits}`), a Gather `com.microsoft.GatherBlockQuantized` (`<E>_Q4` INT4/UINT4,
//! `<E>_scales`, `<E>_zero_points`, node `<Gather>_Q4`). A weight read by several nodes the same
//! way is stored once.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, Node, NodeId, ValueId};

use super::encode::Encoded;
use super::options::WeightOnlyOptions;
use super::plan::{Key, Kind, Plan};
use crate::edit::{init, int_attr};
use crate::error::{Error, Result};

/// What the apply stage has done so far: the quantized tensors added, by weight and kind, and
/// the outputs of replaced nodes with the values that took them over (a later plan may read one:
/// a MatMul after a quantized Gather).
#[derive(Default)]
pub(crate) struct Stored {
    tensors: BTreeMap<Key, Vec<Option<ValueId>>>,
    replaced: BTreeMap<ValueId, ValueId>,
}

impl Stored {
    /// The value now standing for `v`.
    fn current(&self, v: ValueId) -> ValueId {
        self.replaced.get(&v).copied().unwrap_or(v)
    }
}

/// Replaces `p`'s node by the quantized op reading `q`; returns the pattern for the report.
pub(crate) fn apply(
    g: &mut Graph,
    store: &mut Stored,
    p: &Plan,
    e: &Encoded,
    opts: &WeightOnlyOptions,
) -> Result<String> {
    let t = match store.tensors.get(&p.key()) {
        Some(t) => t.clone(),
        None => add_tensors(g, p, e)?,
    };
    store.tensors.insert(p.key(), t.clone());
    match p.kind {
        Kind::MatMul { k, n } => {
            let bits = e.bits;
            let mut attrs = vec![int_attr("K", k as i64), int_attr("N", n as i64)];
            if opts.accuracy_level > 0 {
                attrs.push(int_attr("accuracy_level", i64::from(opts.accuracy_level)));
            }
            attrs.push(int_attr("bits", i64::from(bits)));
            attrs.push(int_attr("block_size", p.settings.block_size as i64));
            let mut inputs = vec![Some(store.current(p.other))];
            inputs.extend(t);
            if let Some(b) = p.bias {
                // Inputs 3 and 4 (zero points, g_idx) may be absent; bias is input 5.
                inputs.resize(5, None);
                inputs.push(Some(store.current(b.value)));
            }
            let r = Replacement {
                node: p.node,
                op: "MatMulNBits",
                suffix: format!("_Q{bits}"),
                inputs,
                attrs,
                tail: p.bias.map(|b| b.add),
                restore_rank: p.restore_rank,
            };
            replace(g, store, r)?;
            Ok(match p.bias {
                Some(_) => format!("MatMulNBits {bits}-bit + bias"),
                None => format!("MatMulNBits {bits}-bit"),
            })
        }
        Kind::Gather { axis, .. } => {
            let node = g
                .node(p.node)
                .ok_or_else(|| Error::Internal("planned node vanished".into()))?;
            let rank = p.dims.len() as i64;
            let gather_axis = crate::edit::int_attr_of(node, "axis", 0).rem_euclid(rank.max(1));
            // Sorted by name, as onnx.helper.make_node writes ORT's; `bits` only at 8 (4 is the
            // op's default, and ORT's tool writes none).
            let mut attrs = Vec::new();
            if e.bits != 4 {
                attrs.push(int_attr("bits", i64::from(e.bits)));
            }
            attrs.extend([
                int_attr("block_size", p.settings.block_size as i64),
                int_attr("gather_axis", gather_axis),
                int_attr("quantize_axis", axis as i64),
            ]);
            let mut inputs = vec![t[0], Some(store.current(p.other)), t[1]];
            inputs.extend(t.get(2).copied());
            let r = Replacement {
                node: p.node,
                op: "GatherBlockQuantized",
                suffix: format!("_Q{}", e.bits),
                inputs,
                attrs,
                tail: None,
                restore_rank: None,
            };
            replace(g, store, r)?;
            Ok(format!("GatherBlockQuantized {}-bit", e.bits))
        }
    }
}

/// Adds `e`'s tensors as initializers named after the weight.
fn add_tensors(g: &mut Graph, p: &Plan, e: &Encoded) -> Result<Vec<Option<ValueId>>> {
    e.tensors
        .iter()
        .map(|b| {
            let t = onnxq_ir::proto::TensorProto {
                dims: b.dims.clone(),
                data_type: Some(b.dtype),
                raw_data: Some(b.bytes.clone()),
                ..Default::default()
            };
            Ok(Some(init(g, &format!("{}{}", p.weight_name, b.suffix), t)?))
        })
        .collect()
}

/// A node's replacement by a `com.microsoft` op.
struct Replacement {
    /// The node replaced.
    node: NodeId,
    op: &'static str,
    /// The new node is named `<name><suffix>` (unnamed for an unnamed original, as ORT does).
    suffix: String,
    inputs: Vec<Option<ValueId>>,
    attrs: Vec<onnxq_ir::proto::AttributeProto>,
    /// A node after it that the new node absorbs (a bias Add): its output is taken over instead.
    tail: Option<NodeId>,
    /// The weight's rank, when the output is reshaped to MatMul's rank (`rank.rs`).
    restore_rank: Option<usize>,
}

/// Replaces `r.node` (and its tail) by the new node, writing the output of the last replaced one.
fn replace(g: &mut Graph, store: &mut Stored, r: Replacement) -> Result<()> {
    let vanished = || Error::Internal("planned node vanished".into());
    let old = g.node(r.node).ok_or_else(vanished)?;
    let name = (!old.name().is_empty()).then(|| format!("{}{}", old.name(), r.suffix));
    let last = g.node(r.tail.unwrap_or(r.node)).ok_or_else(vanished)?;
    let out = last
        .outputs()
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| Error::Internal(format!("`{}` has no output", last.name())))?;
    let mut node = Node::new(r.op, "com.microsoft", name);
    node.attributes = r.attrs.into_iter().map(onnxq_ir::Attribute::new).collect();
    let tmp = g.fresh_name(&format!("{}_{}", g.value(out).name(), r.op));
    let (_, outs) = g
        .add_node(node, &r.inputs, &[Some(&tmp)])
        .map_err(Error::edit)?;
    let mut new = outs[0].ok_or_else(|| Error::Internal(format!("{} without output", r.op)))?;
    if let Some(rank) = r.restore_rank {
        let base = g.value(out).name().to_owned();
        new = super::rank::restore_rank(g, new, rank, &base)?;
    }
    g.substitute(out, new).map_err(Error::edit)?;
    store.replaced.insert(out, new);
    if let Some(tail) = r.tail {
        g.remove_node(tail).map_err(Error::edit)?;
    }
    g.remove_node(r.node).map_err(Error::edit)?;
    Ok(())
}
