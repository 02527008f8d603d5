//! Gemm → the MatMul pattern plus an `Add` of C, as ONNX Runtime does after rewriting Gemm to
//! MatMul + Add (names `<gemm>_MatMul…`, `<gemm>_Add`). Only `alpha = beta = 1`, `transA = 0` with a
//! constant 2-D B; `transB = 1` stores the quantized B transposed. Unlike ORT, a B shared with other
//! nodes is never transposed in place: this node gets its own `<B>_transposed` copy.

use onnxq_ir::{Graph, NodeId};

use crate::Result;
use crate::dynamic::{Layout, NodePlan, PlanCx, Shared, add, node_label, replace_node, rescale};
use crate::ops::DynamicOp;

/// Gemm quantizer.
pub(crate) struct Gemm;

fn attr_f(node: &onnxq_ir::Node, name: &str, default: f32) -> f32 {
    node.attribute(name)
        .and_then(|a| a.proto.f)
        .unwrap_or(default)
}

fn attr_i(node: &onnxq_ir::Node, name: &str) -> i64 {
    node.attribute(name).and_then(|a| a.proto.i).unwrap_or(0)
}

impl DynamicOp for Gemm {
    fn op_type(&self) -> &'static str {
        "Gemm"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        let (alpha, beta) = (attr_f(node, "alpha", 1.0), attr_f(node, "beta", 1.0));
        let has_c = node.inputs().get(2).copied().flatten().is_some();
        if alpha != 1.0 || (has_c && beta != 1.0) {
            return Err(format!(
                "alpha = {alpha}, beta = {beta}: only alpha = beta = 1 rewrites to MatMul + Add"
            ));
        }
        if attr_i(node, "transA") != 0 {
            return Err("transA = 1 is not rewritten to MatMul".into());
        }
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
        let trans_b = attr_i(node, "transB") != 0;
        let w = cx
            .weight(
                node,
                1,
                if trans_b {
                    Layout::Transposed
                } else {
                    Layout::AsIs
                },
                |rank| o.per_channel.then(|| rank - 1),
                (o.weight_type, o.weight_symmetric(), o.reduce_range),
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
        let node = g
            .node(plan.node)
            .ok_or_else(|| crate::Error::Internal("node vanished".into()))?;
        let label = format!("{}_MatMul", node_label(g, node));
        let gemm = node_label(g, node);
        let c = node.inputs().get(2).copied().flatten();
        let out = node
            .outputs()
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| crate::Error::Internal("Gemm without output".into()))?;
        let out_name = g.value(out).name().to_owned();
        let mm_name = if c.is_some() {
            format!("{out_name}_MatMul")
        } else {
            out_name.clone()
        };
        let [aq, ascale, azp] = shared.dynamic(g, plan.dynamic[0])?;
        let [bq, bscale, bzp] = shared.weight(g, &plan.weights[0])?;
        let int = add(
            g,
            "MatMulInteger",
            "",
            &format!("{label}_quant"),
            &[Some(aq), Some(bq), Some(azp), Some(bzp)],
            &format!("{mm_name}_output_quantized"),
            Vec::new(),
        )?;
        let mut y = rescale(g, &label, int, [ascale, bscale], &mm_name)?;
        if let Some(c) = c {
            y = add(
                g,
                "Add",
                "",
                &format!("{gemm}_Add"),
                &[Some(y), Some(c)],
                &out_name,
                Vec::new(),
            )?;
        }
        replace_node(g, shared, plan.node, y)?;
        Ok("MatMulInteger + Add".into())
    }
}
