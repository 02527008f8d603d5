//! LSTM → `com.microsoft.DynamicQuantizeLSTM` (ONNX Runtime's pattern): W `[D, 4H, I]` and R
//! `[D, 4H, H]` quantized to int8 (ORT forces int8 whatever the weight type) with one scale per
//! direction, or per gate row with `per_channel`, and stored transposed as `[D, I, 4H]` /
//! `[D, H, 4H]`. Inputs: X, W, R, B, sequence_lens, initial_h, initial_c, P, then W and R scales and
//! zero points; the `layout` attribute does not exist on the contrib op, so `layout = 1` is skipped.

use onnxq_ir::{Graph, NodeId};

use crate::Result;
use crate::dynamic::{Layout, NodePlan, PlanCx, Shared, node_label, replace_node_outputs};
use crate::numerics::QuantType;
use crate::ops::DynamicOp;

/// LSTM quantizer.
pub(crate) struct Lstm;

impl DynamicOp for Lstm {
    fn op_type(&self) -> &'static str {
        "LSTM"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        if node
            .attribute("layout")
            .and_then(|a| a.proto.i)
            .unwrap_or(0)
            != 0
        {
            return Err("layout = 1 has no DynamicQuantizeLSTM equivalent".into());
        }
        let x = node
            .inputs()
            .first()
            .copied()
            .flatten()
            .ok_or("input X is missing")?;
        if cx.is_constant(x) {
            return Err("input X is a constant".into());
        }
        let o = cx.opts;
        let layout = Layout::Lstm {
            per_channel: o.per_channel,
        };
        let params = (QuantType::I8, o.weight_symmetric(), o.reduce_range);
        let mut weights = Vec::new();
        for (slot, what) in [(1, "W"), (2, "R")] {
            let w = cx
                .weight(node, slot, layout, |_| Some(0), params)?
                .ok_or(format!("weight {what} is not a constant"))?;
            weights.push(w);
        }
        Ok(NodePlan {
            node: id,
            dynamic: Vec::new(),
            weights,
        })
    }

    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String> {
        let node = g
            .node(plan.node)
            .ok_or_else(|| crate::Error::Internal("node vanished".into()))?;
        let label = node_label(g, node);
        let attrs: Vec<_> = node
            .attributes
            .iter()
            .filter(|a| a.name() != "layout")
            .map(|a| a.proto.clone())
            .collect();
        let mut inputs: Vec<Option<onnxq_ir::ValueId>> = node.inputs().to_vec();
        inputs.resize(8, None);
        let outputs = node.outputs().len();
        let [wq, ws, wz] = shared.weight(g, &plan.weights[0])?;
        let [rq, rs, rz] = shared.weight(g, &plan.weights[1])?;
        inputs[1] = Some(wq);
        inputs[2] = Some(rq);
        inputs.extend([Some(ws), Some(wz), Some(rs), Some(rz)]);
        let mut q = onnxq_ir::Node::new(
            "DynamicQuantizeLSTM",
            "com.microsoft",
            Some(format!("{label}_quant")),
        );
        q.attributes = attrs.into_iter().map(onnxq_ir::Attribute::new).collect();
        replace_node_outputs(g, shared, plan.node, q, &inputs, outputs)?;
        shared.require_domain("com.microsoft");
        Ok("DynamicQuantizeLSTM".into())
    }
}
