//! LSTM → `com.microsoft.DynamicQuantizeLSTM` (ONNX Runtime's pattern): W `[D, 4H, I]` and R
//! `[D, 4H, H]` quantized to int8 (ORT forces int8 whatever the weight type) with one scale per
//! direction, or per gate row with `per_channel`, and stored transposed as `[D, I, 4H]` /
//! `[D, H, 4H]`. Inputs: X, W, R, B, sequence_lens, initial_h, initial_c, P, then W and R scales and
//! zero points; the `layout` attribute does not exist on the contrib op, so `layout = 1` is skipped.

use onnxq_ir::{Graph, NodeId};

use crate::dynamic::emit::{Shared, replace_with_contrib, target};
use crate::dynamic::ops::quantizer::DynamicOp;
use crate::dynamic::plan::{Layout, NodePlan, PlanCx};
use crate::edit::int_attr_of;
use crate::error::Result;
use crate::numerics::QuantType;

/// LSTM quantizer.
pub(crate) struct Lstm;

impl DynamicOp for Lstm {
    fn op_type(&self) -> &'static str {
        "LSTM"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        if int_attr_of(node, "layout", 0) != 0 {
            return Err("layout = 1 has no DynamicQuantizeLSTM equivalent".into());
        }
        cx.activation(node, 0, "X")?;
        let o = cx.opts;
        let layout = Layout::Lstm {
            per_channel: o.per_channel,
        };
        let params = (QuantType::I8, o.weight_symmetric(), o.reduce_range);
        let mut weights = Vec::new();
        for (slot, what) in [(1, "W"), (2, "R")] {
            weights.push(
                cx.weight(node, slot, layout, |_| Some(0), params)?
                    .ok_or(format!("weight {what} is not a constant"))?,
            );
        }
        Ok(NodePlan {
            node: id,
            dynamic: Vec::new(),
            weights,
        })
    }

    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String> {
        let t = target(g, plan.node)?;
        let [wq, ws, wz] = shared.weight(g, &plan.weights[0])?;
        let [rq, rs, rz] = shared.weight(g, &plan.weights[1])?;
        let mut inputs: Vec<_> = (0..8).map(|i| t.input(i)).collect();
        inputs[1] = Some(wq);
        inputs[2] = Some(rq);
        inputs.extend([Some(ws), Some(wz), Some(rs), Some(rz)]);
        replace_with_contrib(
            g,
            shared,
            plan.node,
            &t,
            "DynamicQuantizeLSTM",
            &["layout"],
            &inputs,
        )?;
        Ok("DynamicQuantizeLSTM".into())
    }
}
