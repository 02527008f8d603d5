//! com.microsoft `Attention` → `QAttention` (ONNX Runtime's pattern): the input is quantized at run
//! time, the packed QKV weight offline (per tensor, or per channel along its last axis). Inputs:
//! input, weight, bias, input scale, weight scale, mask_index, input zero point, weight zero point,
//! past. Like ORT, nodes with `qkv_hidden_sizes` are left in float (QAttention lacks it).

use onnxq_ir::{Graph, NodeId};

use crate::Result;
use crate::dynamic::{Layout, NodePlan, PlanCx, Shared, node_label, replace_node_outputs};
use crate::ops::DynamicOp;

/// Attention quantizer.
pub(crate) struct Attention;

impl DynamicOp for Attention {
    fn op_type(&self) -> &'static str {
        "Attention"
    }

    fn domain(&self) -> &'static str {
        "com.microsoft"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        if node.attribute("qkv_hidden_sizes").is_some() {
            return Err("qkv_hidden_sizes is set; QAttention has no such attribute".into());
        }
        let x = node
            .inputs()
            .first()
            .copied()
            .flatten()
            .ok_or("input is missing")?;
        if cx.is_constant(x) {
            return Err("input is a constant".into());
        }
        if node.inputs().len() > 5 {
            return Err("inputs beyond `past` (attention_bias, past_sequence_length) have no QAttention equivalent".into());
        }
        let o = cx.opts;
        let w = cx
            .weight(
                node,
                1,
                Layout::AsIs,
                |rank| o.per_channel.then(|| rank - 1),
                (o.weight_type, o.weight_symmetric(), o.reduce_range),
            )?
            .ok_or("weight is not a constant")?;
        Ok(NodePlan {
            node: id,
            dynamic: vec![x],
            weights: vec![w],
        })
    }

    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String> {
        let node = g
            .node(plan.node)
            .ok_or_else(|| crate::Error::Internal("node vanished".into()))?;
        let name = (!node.name().is_empty()).then(|| format!("{}_quant", node_label(g, node)));
        let attrs: Vec<_> = node.attributes.iter().map(|a| a.proto.clone()).collect();
        let old_inputs = node.inputs().to_vec();
        let input = |i: usize| old_inputs.get(i).copied().flatten();
        let outputs = node.outputs().len();
        let [xq, xs, xz] = shared.dynamic(g, plan.dynamic[0])?;
        let [wq, ws, wz] = shared.weight(g, &plan.weights[0])?;
        let inputs = [
            Some(xq),
            Some(wq),
            input(2),
            Some(xs),
            Some(ws),
            input(3),
            Some(xz),
            Some(wz),
            input(4),
        ];
        let mut q = onnxq_ir::Node::new("QAttention", "com.microsoft", name);
        q.attributes = attrs.into_iter().map(onnxq_ir::Attribute::new).collect();
        replace_node_outputs(g, shared, plan.node, q, &inputs, outputs)?;
        shared.require_domain("com.microsoft");
        Ok("QAttention".into())
    }
}
