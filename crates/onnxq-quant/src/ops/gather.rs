//! Gather on a constant float table (embeddings) → `Gather` on the table quantized as an activation
//! (uint8 asymmetric, per tensor, as ONNX Runtime does) + `DequantizeLinear` of the gathered rows.

use onnxq_ir::proto as pb;
use onnxq_ir::{Graph, NodeId};

use crate::Result;
use crate::dynamic::{Layout, NodePlan, PlanCx, Shared, add, node_label, replace_node};
use crate::numerics::QuantType;
use crate::ops::DynamicOp;

/// Gather quantizer.
pub(crate) struct Gather;

impl DynamicOp for Gather {
    fn op_type(&self) -> &'static str {
        "Gather"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        node.inputs()
            .get(1)
            .copied()
            .flatten()
            .ok_or("input indices is missing")?;
        let w = cx
            .weight(
                node,
                0,
                Layout::AsIs,
                |_| None,
                (QuantType::U8, false, false),
            )?
            .ok_or("data is not a constant table")?;
        Ok(NodePlan {
            node: id,
            dynamic: Vec::new(),
            weights: vec![w],
        })
    }

    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String> {
        let node = g
            .node(plan.node)
            .ok_or_else(|| crate::Error::Internal("node vanished".into()))?;
        let name = node_label(g, node);
        let attrs: Vec<pb::AttributeProto> =
            node.attributes.iter().map(|a| a.proto.clone()).collect();
        let indices = node.inputs()[1];
        let out = node
            .outputs()
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| crate::Error::Internal("Gather without output".into()))?;
        let out_name = g.value(out).name().to_owned();
        let [q, scale, zp] = shared.weight(g, &plan.weights[0])?;
        let gathered = add(
            g,
            "Gather",
            "",
            &name,
            &[Some(q), indices],
            &format!("{out_name}_quantized"),
            attrs,
        )?;
        let y = add(
            g,
            "DequantizeLinear",
            "",
            &format!("{out_name}_DequantizeLinear"),
            &[Some(gathered), Some(scale), Some(zp)],
            &out_name,
            Vec::new(),
        )?;
        replace_node(g, shared, plan.node, y)?;
        Ok("Gather + DequantizeLinear".into())
    }
}
