//! Conv → `DynamicQuantizeLinear` + `ConvInteger` + `Cast` + `Mul` + `Mul`, and with a bias
//! `Reshape(bias, [1, -1, 1, …])` + `Add` (ONNX Runtime's pattern and names). ORT quantizes the
//! weight per tensor (its ConvInteger kernel takes a scalar weight zero point). With
//! `conv_per_channel`, onnxq quantizes symmetric weights per output channel instead: the zero point
//! stays a scalar 0 and the `[C, 1, …]` scales apply in the float `Mul` after the integer product.

use onnxq_ir::{Graph, NodeId};

use crate::dynamic::emit::{Shared, replace_node, rescale, target};
use crate::dynamic::ops::quantizer::DynamicOp;
use crate::dynamic::plan::{Layout, NodePlan, PlanCx};
use crate::edit::{add, init, tensor};
use crate::error::Result;

/// Conv quantizer.
pub(crate) struct Conv;

impl DynamicOp for Conv {
    fn op_type(&self) -> &'static str {
        "Conv"
    }

    fn plan(&self, cx: &PlanCx<'_>, id: NodeId) -> Result<NodePlan, String> {
        let node = cx.graph.node(id).ok_or("node was removed")?;
        let x = cx.activation(node, 0, "X")?;
        let o = cx.opts;
        let per_channel = o.conv_per_channel && o.weight_symmetric();
        if o.conv_per_channel && !per_channel {
            return Err("per-channel Conv weights need symmetric weights (ConvInteger takes one zero point)".into());
        }
        let layout = if per_channel {
            Layout::ConvChannels
        } else {
            Layout::AsIs
        };
        let params = (o.weight_type, o.weight_symmetric(), o.reduce_range);
        let w = cx
            .weight(node, 1, layout, |_| per_channel.then_some(0), params)?
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
        let t = target(g, plan.node)?;
        let bias = t.input(2);
        let [xq, xscale, xzp] = shared.dynamic(g, plan.dynamic[0])?;
        let w = &plan.weights[0];
        let [wq, wscale, wzp] = shared.weight(g, w)?;
        let inputs = [Some(xq), Some(wq), Some(xzp), Some(wzp)];
        let out = &t.out_name;
        let int = add(
            g,
            ("ConvInteger", ""),
            &format!("{}_quant", t.label),
            &inputs,
            &format!("{out}_output_quantized"),
            t.attrs.clone(),
        )?;
        let scaled = if bias.is_some() {
            format!("{out}quant_scaled_output")
        } else {
            out.clone()
        };
        let mut y = rescale(g, &t.label, int, [xscale, wscale], &scaled)?;
        if let Some(b) = bias {
            let mut shape = vec![1i64, -1];
            shape.resize(w.dims.len(), 1);
            let shape_bytes = shape.iter().flat_map(|v| v.to_le_bytes()).collect();
            let shape_t = tensor(vec![shape.len() as i64], 7, shape_bytes);
            let shape_v = init(g, &format!("{out}_bias_reshape_shape"), shape_t)?;
            let reshaped = add(
                g,
                ("Reshape", ""),
                &format!("{out}_bias_reshape"),
                &[Some(b), Some(shape_v)],
                &format!("{out}_bias_reshape_output"),
                Vec::new(),
            )?;
            y = add(
                g,
                ("Add", ""),
                &format!("{out}_bias_add"),
                &[Some(y), Some(reshaped)],
                out,
                Vec::new(),
            )?;
        }
        replace_node(g, shared, plan.node, y)?;
        Ok(if w.key.axis.is_some() {
            "ConvInteger (per-channel scales)"
        } else {
            "ConvInteger"
        }
        .into())
    }
}
