//! Conv → `DynamicQuantizeLinear` + `ConvInteger` + `Cast` + `Mul` + `Mul`, and with a bias
//! `Reshape(bias, [1, -1, 1, …])` + `Add` (ONNX Runtime's pattern and names). ORT quantizes the
//! weight per tensor (its ConvInteger kernel takes a scalar weight zero point). With
//! `conv_per_channel`, onnxq quantizes symmetric weights per output channel instead: the zero point
//! stays a scalar 0 and the `[C, 1, …]` scales apply in the float `Mul` after the integer product.

use onnxq_ir::proto as pb;
use onnxq_ir::{Graph, NodeId};

use crate::Result;
use crate::dynamic::{Layout, NodePlan, PlanCx, Shared, add, node_label, replace_node, rescale};
use crate::ops::DynamicOp;

/// Conv quantizer.
pub(crate) struct Conv;

impl DynamicOp for Conv {
    fn op_type(&self) -> &'static str {
        "Conv"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        let x = node
            .inputs()
            .first()
            .copied()
            .flatten()
            .ok_or("input X is missing")?;
        if cx.is_constant(x) {
            return Err("input X is a constant; fold it instead".into());
        }
        let o = cx.opts;
        let per_channel = o.conv_per_channel && o.weight_symmetric();
        if o.conv_per_channel && !per_channel {
            return Err("per-channel Conv weights need symmetric weights (ConvInteger takes one zero point)".into());
        }
        let axis = |_| per_channel.then_some(0);
        let w = cx
            .weight(
                node,
                1,
                if per_channel {
                    Layout::ConvChannels
                } else {
                    Layout::AsIs
                },
                axis,
                (o.weight_type, o.weight_symmetric(), o.reduce_range),
            )?
            .ok_or("weight W is not a constant")?;
        if w.dims.len() < 3 {
            return Err(format!(
                "weight `{}` has rank {}, Conv needs 3 or more",
                w.name,
                w.dims.len()
            ));
        }
        Ok(NodePlan {
            node: id,
            dynamic: vec![x],
            weights: vec![w],
        })
    }

    fn apply(&self, g: &mut Graph, plan: &NodePlan, shared: &mut Shared) -> Result<String> {
        let node = g
            .node(plan.node)
            .ok_or_else(|| crate::Error::Internal("node vanished".into()))?;
        let label = node_label(g, node);
        let attrs: Vec<pb::AttributeProto> =
            node.attributes.iter().map(|a| a.proto.clone()).collect();
        let bias = node.inputs().get(2).copied().flatten();
        let out = node
            .outputs()
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| crate::Error::Internal("Conv without output".into()))?;
        let out_name = g.value(out).name().to_owned();
        let [xq, xscale, xzp] = shared.dynamic(g, plan.dynamic[0])?;
        let w = &plan.weights[0];
        let rank = w.dims.len();
        let [wq, wscale, wzp] = shared.weight(g, w)?;
        let int = add(
            g,
            "ConvInteger",
            "",
            &format!("{label}_quant"),
            &[Some(xq), Some(wq), Some(xzp), Some(wzp)],
            &format!("{out_name}_output_quantized"),
            attrs,
        )?;
        let scaled_name = if bias.is_some() {
            format!("{out_name}quant_scaled_output")
        } else {
            out_name.clone()
        };
        let mut y = rescale(g, &label, int, [xscale, wscale], &scaled_name)?;
        if let Some(b) = bias {
            let mut shape = vec![1i64, -1];
            shape.resize(rank, 1);
            let shape_name = g.fresh_name(&format!("{out_name}_bias_reshape_shape"));
            let shape_t = pb::TensorProto {
                dims: vec![rank as i64],
                data_type: Some(7),
                raw_data: Some(
                    shape
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect::<Vec<u8>>()
                        .into(),
                ),
                ..Default::default()
            };
            let shape_v = g
                .add_initializer(&shape_name, shape_t)
                .map_err(|e| crate::Error::Internal(e.to_string()))?;
            let reshaped = add(
                g,
                "Reshape",
                "",
                &format!("{out_name}_bias_reshape"),
                &[Some(b), Some(shape_v)],
                &format!("{out_name}_bias_reshape_output"),
                Vec::new(),
            )?;
            y = add(
                g,
                "Add",
                "",
                &format!("{out_name}_bias_add"),
                &[Some(y), Some(reshaped)],
                &out_name,
                Vec::new(),
            )?;
        }
        replace_node(g, shared, plan.node, y)?;
        Ok(if plan.weights[0].key.axis.is_some() {
            "ConvInteger (per-channel scales)"
        } else {
            "ConvInteger"
        }
        .into())
    }
}
