//! MatMul → `DynamicQuantizeLinear` + `MatMulInteger` + `Cast` + `Mul` (scales) + `Mul` (ONNX
//! Runtime's pattern and names). B is quantized offline when constant (int8 symmetric by default,
//! per channel along the last axis with `per_channel`); otherwise, with `MatMulConstBOnly` off, at
//! run time like A. MatMulInteger exists from opset 10, DynamicQuantizeLinear from 11.

use onnxq_ir::{Graph, NodeId};

use crate::Result;
use crate::dynamic::{Layout, NodePlan, PlanCx, Shared, add, node_label, replace_node, rescale};
use crate::ops::DynamicOp;

/// MatMul quantizer.
pub(crate) struct MatMul;

impl DynamicOp for MatMul {
    fn op_type(&self) -> &'static str {
        "MatMul"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        let a = node
            .inputs()
            .first()
            .copied()
            .flatten()
            .ok_or("input A is missing")?;
        if cx.is_constant(a) {
            return Err("input A is a constant; fold it instead".into());
        }
        let o = cx.opts;
        let weight = cx.weight(
            node,
            1,
            Layout::AsIs,
            |rank| o.per_channel.then(|| rank - 1),
            (o.weight_type, o.weight_symmetric(), o.reduce_range),
        )?;
        match weight {
            Some(w) => Ok(NodePlan {
                node: id,
                dynamic: vec![a],
                weights: vec![w],
            }),
            None if o.matmul_const_b_only => {
                Err("input B is not a constant (MatMulConstBOnly is on)".into())
            }
            None => {
                let b = node
                    .inputs()
                    .get(1)
                    .copied()
                    .flatten()
                    .ok_or("input B is missing")?;
                Ok(NodePlan {
                    node: id,
                    dynamic: vec![a, b],
                    weights: Vec::new(),
                })
            }
        }
    }

    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String> {
        let node = g
            .node(plan.node)
            .ok_or_else(|| crate::Error::Internal("node vanished".into()))?;
        let label = node_label(g, node);
        let out = node
            .outputs()
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| crate::Error::Internal("MatMul without output".into()))?;
        let out_name = g.value(out).name().to_owned();
        let [aq, ascale, azp] = shared.dynamic(g, plan.dynamic[0])?;
        let [bq, bscale, bzp] = match plan.weights.first() {
            Some(w) => shared.weight(g, w)?,
            None => shared.dynamic(g, plan.dynamic[1])?,
        };
        let int = add(
            g,
            "MatMulInteger",
            "",
            &format!("{label}_quant"),
            &[Some(aq), Some(bq), Some(azp), Some(bzp)],
            &format!("{out_name}_output_quantized"),
            Vec::new(),
        )?;
        let y = rescale(g, &label, int, [ascale, bscale], &out_name)?;
        replace_node(g, shared, plan.node, y)?;
        Ok("MatMulInteger".into())
    }
}
