//! com.microsoft `Attention` → `QAttention` (ONNX Runtime's pattern): the input is quantized at run
//! time, the packed QKV weight offline (per tensor, or per channel along its last axis). Inputs:
//! input, weight, bias, input scale, weight scale, mask_index, input zero point, weight zero point,
//! past. Like ORT, nodes with `qkv_hidden_sizes` are left in float (QAttention lacks it).

use onnxq_ir::{Graph, NodeId};

use crate::dynamic::emit::{Shared, replace_with_contrib, target};
use crate::dynamic::ops::quantizer::DynamicOp;
use crate::dynamic::plan::{Layout, NodePlan, PlanCx};
use crate::error::Result;

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
        if node.inputs().len() > 5 {
            return Err("inputs beyond `past` (attention_bias, past_sequence_length) have no QAttention equivalent".into());
        }
        let x = cx.activation(node, 0, "input")?;
        let o = cx.opts;
        let params = (o.weight_type, o.weight_symmetric(), o.reduce_range);
        let w = cx
            .weight(
                node,
                1,
                Layout::AsIs,
                |rank| o.per_channel.then(|| rank - 1),
                params,
            )?
            .ok_or("weight is not a constant")?;
        Ok(NodePlan {
            node: id,
            dynamic: vec![x],
            weights: vec![w],
        })
    }

    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String> {
        let t = target(g, plan.node)?;
        let [xq, xs, xz] = shared.dynamic(g, plan.dynamic[0])?;
        let [wq, ws, wz] = shared.weight(g, &plan.weights[0])?;
        let inputs = [
            Some(xq),
            Some(wq),
            t.input(2),
            Some(xs),
            Some(ws),
            t.input(3),
            Some(xz),
            Some(wz),
            t.input(4),
        ];
        replace_with_contrib(g, shared, plan.node, &t, "QAttention", &[], &inputs)?;
        Ok("QAttention".into())
    }
}
