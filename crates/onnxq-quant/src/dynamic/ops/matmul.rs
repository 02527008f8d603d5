//! MatMul → `DynamicQuantizeLinear` + `MatMulInteger` + `Cast` + `Mul` (scales) + `Mul` (ONNX
//! Runtime's pattern and names). B is quantized offline when constant (int8 symmetric by default,
//! per channel along the last axis with `per_channel`); otherwise, with `MatMulConstBOnly` off, at
//! run time like A. MatMulInteger exists from opset 10, DynamicQuantizeLinear from 11.

use onnxq_ir::{Graph, NodeId};

use crate::dynamic::emit::{Shared, replace_node, rescale, target};
use crate::dynamic::ops::quantizer::DynamicOp;
use crate::dynamic::plan::{Layout, NodePlan, PlanCx};
use crate::edit::add;
use crate::error::Result;

/// MatMul quantizer.
pub(crate) struct MatMul;

impl DynamicOp for MatMul {
    fn op_type(&self) -> &'static str {
        "MatMul"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        let a = cx.activation(node, 0, "A")?;
        let o = cx.opts;
        let params = (o.weight_type, o.weight_symmetric(), o.reduce_range);
        match cx.weight(
            node,
            1,
            Layout::AsIs,
            |rank| o.per_channel.then(|| rank - 1),
            params,
        )? {
            Some(w) => Ok(NodePlan {
                node: id,
                dynamic: vec![a],
                weights: vec![w],
            }),
            None if o.matmul_const_b_only => {
                Err("input B is not a constant (MatMulConstBOnly is on)".into())
            }
            None => Ok(NodePlan {
                node: id,
                dynamic: vec![a, cx.activation(node, 1, "B")?],
                weights: Vec::new(),
            }),
        }
    }

    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String> {
        let t = target(g, plan.node)?;
        let [aq, ascale, azp] = shared.dynamic(g, plan.dynamic[0])?;
        let [bq, bscale, bzp] = match plan.weights.first() {
            Some(w) => shared.weight(g, w)?,
            None => shared.dynamic(g, plan.dynamic[1])?,
        };
        let inputs = [Some(aq), Some(bq), Some(azp), Some(bzp)];
        let int = add(
            g,
            ("MatMulInteger", ""),
            &format!("{}_quant", t.label),
            &inputs,
            &format!("{}_output_quantized", t.out_name),
            Vec::new(),
        )?;
        let y = rescale(g, &t.label, int, [ascale, bscale], &t.out_name)?;
        replace_node(g, shared, plan.node, y)?;
        Ok("MatMulInteger".into())
    }
}
