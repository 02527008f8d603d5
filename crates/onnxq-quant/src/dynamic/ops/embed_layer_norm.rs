//! com.microsoft `EmbedLayerNormalization` → `QEmbedLayerNormalization` (ONNX Runtime's pattern):
//! the word, position and segment tables and gamma/beta are quantized offline as activations
//! (uint8 asymmetric, per tensor). Inputs: input_ids, segment_ids, the five quantized tensors, mask,
//! their five scales, their five zero points. Nodes with a third output or `position_ids` stay float.

use onnxq_ir::{Graph, NodeId};

use crate::dynamic::emit::{Shared, replace_with_contrib, target};
use crate::dynamic::ops::quantizer::DynamicOp;
use crate::dynamic::plan::{Layout, NodePlan, PlanCx};
use crate::edit::input;
use crate::error::Result;
use crate::numerics::QuantType;

/// EmbedLayerNormalization quantizer.
pub(crate) struct EmbedLayerNorm;

const TABLES: [(usize, &str); 5] = [
    (2, "word_embedding"),
    (3, "position_embedding"),
    (4, "segment_embedding"),
    (5, "gamma"),
    (6, "beta"),
];

impl DynamicOp for EmbedLayerNorm {
    fn op_type(&self) -> &'static str {
        "EmbedLayerNormalization"
    }

    fn domain(&self) -> &'static str {
        "com.microsoft"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        if node.outputs().len() > 2 {
            return Err(
                "a third output (embedding_sum) has no QEmbedLayerNormalization equivalent".into(),
            );
        }
        if input(node, 8).is_some() {
            return Err("position_ids has no QEmbedLayerNormalization equivalent".into());
        }
        let mut weights = Vec::new();
        for (slot, what) in TABLES {
            weights.push(
                cx.weight(
                    node,
                    slot,
                    Layout::AsIs,
                    |_| None,
                    (QuantType::U8, false, false),
                )?
                .ok_or(format!("{what} is not a constant"))?,
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
        let mut made = Vec::new();
        for w in &plan.weights {
            made.push(shared.weight(g, w)?);
        }
        let mut inputs = vec![t.input(0), t.input(1)];
        for part in [0, 1, 2] {
            inputs.extend(made.iter().map(|m| Some(m[part])));
            if part == 0 {
                inputs.push(t.input(7));
            }
        }
        replace_with_contrib(
            g,
            shared,
            plan.node,
            &t,
            "QEmbedLayerNormalization",
            &[],
            &inputs,
        )?;
        Ok("QEmbedLayerNormalization".into())
    }
}
