//! Gather on a constant float table (embeddings) → `Gather` on the table quantized as an activation
//! (uint8 asymmetric, per tensor, as ONNX Runtime does) + `DequantizeLinear` of the gathered rows.

use onnxq_ir::{Graph, NodeId};

use crate::dynamic::emit::{Shared, replace_node, target};
use crate::dynamic::ops::quantizer::DynamicOp;
use crate::dynamic::plan::{Layout, NodePlan, PlanCx};
use crate::edit::{add, input};
use crate::error::Result;
use crate::numerics::QuantType;

/// Gather quantizer.
pub(crate) struct Gather;

impl DynamicOp for Gather {
    fn op_type(&self) -> &'static str {
        "Gather"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        input(node, 1).ok_or("input indices is missing")?;
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
        let t = target(g, plan.node)?;
        let [q, scale, zp] = shared.weight(g, &plan.weights[0])?;
        let gathered = add(
            g,
            ("Gather", ""),
            &t.label,
            &[Some(q), t.input(1)],
            &format!("{}_quantized", t.out_name),
            t.attrs.clone(),
        )?;
        let dq_name = format!("{}_DequantizeLinear", t.out_name);
        let y = add(
            g,
            ("DequantizeLinear", ""),
            &dq_name,
            &[Some(gathered), Some(scale), Some(zp)],
            &t.out_name,
            Vec::new(),
        )?;
        replace_node(g, shared, plan.node, y)?;
        Ok("Gather + DequantizeLinear".into())
    }
}
