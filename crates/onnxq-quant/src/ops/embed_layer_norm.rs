//! com.microsoft `EmbedLayerNormalization` → `QEmbedLayerNormalization` (ONNX Runtime's pattern):
//! the word, position and segment tables and gamma/beta are quantized offline as activations
//! (uint8 asymmetric, per tensor). Inputs: input_ids, segment_ids, the five quantized tensors, mask,
//! their five scales, their five zero points. Nodes with a third output or `position_ids` stay float.

use onnxq_ir::{Graph, NodeId};

use crate::Result;
use crate::dynamic::{Layout, NodePlan, PlanCx, Shared, node_label, replace_node_outputs};
use crate::numerics::QuantType;
use crate::ops::DynamicOp;

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
        if node.inputs().get(8).copied().flatten().is_some() {
            return Err("position_ids has no QEmbedLayerNormalization equivalent".into());
        }
        let mut weights = Vec::new();
        for (slot, what) in TABLES {
            let w = cx
                .weight(
                    node,
                    slot,
                    Layout::AsIs,
                    |_| None,
                    (QuantType::U8, false, false),
                )?
                .ok_or(format!("{what} is not a constant"))?;
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
        let name = (!node.name().is_empty()).then(|| format!("{}_quant", node_label(g, node)));
        let attrs: Vec<_> = node.attributes.iter().map(|a| a.proto.clone()).collect();
        let old_inputs = node.inputs().to_vec();
        let input = |i: usize| old_inputs.get(i).copied().flatten();
        let outputs = node.outputs().len();
        let mut made = Vec::new();
        for w in &plan.weights {
            made.push(shared.weight(g, w)?);
        }
        let mut inputs = vec![input(0), input(1)];
        inputs.extend(made.iter().map(|m| Some(m[0])));
        inputs.push(input(7));
        inputs.extend(made.iter().map(|m| Some(m[1])));
        inputs.extend(made.iter().map(|m| Some(m[2])));
        let mut q = onnxq_ir::Node::new("QEmbedLayerNormalization", "com.microsoft", name);
        q.attributes = attrs.into_iter().map(onnxq_ir::Attribute::new).collect();
        replace_node_outputs(g, shared, plan.node, q, &inputs, outputs)?;
        shared.require_domain("com.microsoft");
        Ok("QEmbedLayerNormalization".into())
    }
}
