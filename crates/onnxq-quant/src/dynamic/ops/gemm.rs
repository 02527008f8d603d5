//! Gemm → the MatMul pattern plus an `Add` of C, as ONNX Runtime does after rewriting Gemm to
//! MatMul + Add (names `<gemm>_MatMul…`, `<gemm>_Add`). Only `alpha = beta = 1`, `transA = 0` with a
//! constant 2-D B; `transB = 1` stores the quantized B transposed. Unlike ORT, a B shared with other
//! nodes is never transposed in place: this node gets its own `<B>_transposed` copy.

use onnxq_ir::{Graph, NodeId};

use crate::dynamic::emit::{Shared, replace_node, rescale, target};
use crate::dynamic::ops::quantizer::DynamicOp;
use crate::dynamic::plan::{Layout, NodePlan, PlanCx};
use crate::edit::{add, float_attr, input, int_attr_of};
use crate::error::Result;

/// Gemm quantizer.
pub(crate) struct Gemm;

impl DynamicOp for Gemm {
    fn op_type(&self) -> &'static str {
        "Gemm"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        let (alpha, beta) = (
            float_attr(node, "alpha", 1.0),
            float_attr(node, "beta", 1.0),
        );
        let has_c = input(node, 2).is_some();
        if alpha != 1.0 || (has_c && beta != 1.0) {
            return Err(format!(
                "alpha = {alpha}, beta = {beta}: only alpha = beta = 1 rewrites to MatMul + Add"
            ));
        }
        if int_attr_of(node, "transA", 0) != 0 {
            return Err("transA = 1 is not rewritten to MatMul".into());
        }
        let a = cx.activation(node, 0, "A")?;
        let o = cx.opts;
        let layout = if int_attr_of(node, "transB", 0) != 0 {
            Layout::Transposed
        } else {
            Layout::AsIs
        };
        let params = (o.weight_type, o.weight_symmetric(), o.reduce_range);
        let w = cx
            .weight(
                node,
                1,
                layout,
                |rank| o.per_channel.then(|| rank - 1),
                params,
            )?
            .ok_or("input B is not a constant")?;
        if w.dims.len() != 2 {
            return Err(format!("B has rank {}, Gemm needs 2", w.dims.len()));
        }
        Ok(NodePlan {
            node: id,
            dynamic: vec![a],
            weights: vec![w],
        })
    }

    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String> {
        let t = target(g, plan.node)?;
        let label = format!("{}_MatMul", t.label);
        let c = t.input(2);
        let mm_name = if c.is_some() {
            format!("{}_MatMul", t.out_name)
        } else {
            t.out_name.clone()
        };
        let [aq, ascale, azp] = shared.dynamic(g, plan.dynamic[0])?;
        let [bq, bscale, bzp] = shared.weight(g, &plan.weights[0])?;
        let inputs = [Some(aq), Some(bq), Some(azp), Some(bzp)];
        let int = add(
            g,
            ("MatMulInteger", ""),
            &format!("{label}_quant"),
            &inputs,
            &format!("{mm_name}_output_quantized"),
            Vec::new(),
        )?;
        let mut y = rescale(g, &label, int, [ascale, bscale], &mm_name)?;
        if let Some(c) = c {
            y = add(
                g,
                ("Add", ""),
                &format!("{}_Add", t.label),
                &[Some(y), Some(c)],
                &t.out_name,
                Vec::new(),
            )?;
        }
        replace_node(g, shared, plan.node, y)?;
        Ok("MatMulInteger + Add".into())
    }
}
