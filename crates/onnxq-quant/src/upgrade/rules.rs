//! The conversion table: one named rule per default-domain operator change between opset 10 and
//! 21 that is more than a widening of types. The list is ONNX's operator changelog (every
//! version of every op between 11 and 21, checked against the schemas of the `onnx` package and
//! the adapters of ONNX's own version converter); an op or version not listed here only gained
//! types, or gained an attribute or input whose default keeps the old meaning (GRU/LSTM/RNN-14
//! `layout`, LpPool-18 `ceil_mode`, TopK-11 `largest`/`sorted`, Reshape-14 `allowzero`, Pad-18
//! `axes`, Resize-13/18/19, Shape-15 `start`/`end`, ScatterElements-16/18 `reduction`, ...), so
//! its nodes pass unchanged. Two changes ONNX's converter misses are here too: Hardmax-13 (the same
//! axis change as Softmax) and Resize-13 (which dropped `tf_half_pixel_for_nn`).

use onnxq_ir::NodeId;

use super::rewrite::{
    Cx, add, constant, float_like, int64s, ints_input, label, node, rank, rebuild, string_attr,
};
use crate::edit::{input, int_attr, int_attr_of};
use crate::error::{Error, Result};

/// One change of meaning and how a node written for the old version is rewritten.
pub(crate) struct Rule {
    /// The rule's name in reports (`<op>-<version>: what changes`).
    pub(crate) name: &'static str,
    /// The op types it rewrites.
    pub(crate) ops: &'static [&'static str],
    /// The opset whose version of the op changed meaning: the rule applies to a model older than
    /// this, upgraded to this or newer.
    pub(crate) at: i64,
    /// Rewrites node `id`; returns its new id (it may be rebuilt), or `None` if it needed nothing.
    pub(super) apply: fn(&mut Cx<'_>, NodeId) -> Result<Option<NodeId>>,
}

const REDUCE_18: &[&str] = &[
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
];

/// The table, in the order rules apply to one node (older changes first).
pub(crate) const RULES: &[Rule] = &[
    Rule {
        name: "Clip-11: min/max attributes become inputs",
        ops: &["Clip"],
        at: 11,
        apply: clip_11,
    },
    Rule {
        name: "Pad-11: pads/value attributes become inputs",
        ops: &["Pad"],
        at: 11,
        apply: pad_11,
    },
    Rule {
        name: "Resize-11: roi input, coordinate mode explicit (asymmetric)",
        ops: &["Resize"],
        at: 11,
        apply: resize_11,
    },
    // Upsample was deprecated at opset 10, yet ONNX Runtime still runs the opset-9 form there.
    Rule {
        name: "Upsample (deprecated): becomes Resize",
        ops: &["Upsample"],
        at: 11,
        apply: upsample,
    },
    Rule {
        name: "Scatter-11 (deprecated): becomes ScatterElements",
        ops: &["Scatter"],
        at: 11,
        apply: scatter_11,
    },
    Rule {
        name: "Dropout-12: ratio attribute becomes an input",
        ops: &["Dropout"],
        at: 12,
        apply: dropout_12,
    },
    Rule {
        name: "Softmax-13: axis no longer flattens to 2-D",
        ops: &["Softmax", "LogSoftmax", "Hardmax"],
        at: 13,
        apply: softmax_13,
    },
    Rule {
        name: "Split-13: split attribute becomes an input",
        ops: &["Split"],
        at: 13,
        apply: split_13,
    },
    Rule {
        name: "Squeeze-13/Unsqueeze-13/ReduceSum-13: axes attribute becomes an input",
        ops: &["Squeeze", "Unsqueeze", "ReduceSum"],
        at: 13,
        apply: axes_input,
    },
    Rule {
        name: "Resize-13: tf_half_pixel_for_nn removed",
        ops: &["Resize"],
        at: 13,
        apply: resize_13,
    },
    Rule {
        name: "BatchNormalization-14: training outputs only in training mode",
        ops: &["BatchNormalization"],
        at: 14,
        apply: batch_norm_14,
    },
    Rule {
        name: "RoiAlign-16: coordinate mode explicit (output_half_pixel)",
        ops: &["RoiAlign"],
        at: 16,
        apply: roi_align_16,
    },
    Rule {
        name: "Reduce*-18: axes attribute becomes an input",
        ops: REDUCE_18,
        at: 18,
        apply: axes_input,
    },
    Rule {
        name: "Split-18: num_outputs required without a split input",
        ops: &["Split"],
        at: 18,
        apply: split_18,
    },
    Rule {
        name: "GridSample-20: modes renamed (bilinear → linear, bicubic → cubic)",
        ops: &["GridSample"],
        at: 20,
        apply: grid_sample_20,
    },
    Rule {
        name: "DFT-20: axis attribute becomes an input (default 1 → -2)",
        ops: &["DFT"],
        at: 20,
        apply: dft_20,
    },
    Rule {
        name: "GroupNormalization-21: scale and bias per channel",
        ops: &["GroupNormalization"],
        at: 21,
        apply: group_norm_21,
    },
];

/// A refusal naming the node and its op.
fn refuse(cx: &Cx<'_>, id: NodeId, what: &str, hint: &'static str) -> Error {
    let (label, op) = match cx.g.node(id) {
        Some(n) => (crate::edit::node_label(cx.g, n), n.op_type().to_owned()),
        None => (String::new(), String::new()),
    };
    Error::Upgrade {
        message: format!("node `{label}` ({op}) cannot be converted: {what}"),
        hint,
    }
}

fn has_attr(cx: &Cx<'_>, id: NodeId, name: &str) -> Result<bool> {
    Ok(node(cx.g, id)?.attribute(name).is_some())
}

fn string_attr_of(cx: &Cx<'_>, id: NodeId, name: &str) -> Result<Option<String>> {
    Ok(crate::edit::bytes_attr(node(cx.g, id)?, name)
        .map(|b| String::from_utf8_lossy(b).into_owned()))
}

fn first_input(cx: &Cx<'_>, id: NodeId) -> Result<onnxq_ir::ValueId> {
    input(node(cx.g, id)?, 0).ok_or_else(|| {
        refuse(
            cx,
            id,
            "its first input is missing",
            "the model is invalid; fix its export",
        )
    })
}

fn clip_11(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    if !has_attr(cx, id, "min")? && !has_attr(cx, id, "max")? {
        return Ok(None);
    }
    let (l, x) = (label(cx.g, id)?, first_input(cx, id)?);
    rebuild(cx, id, |cx, p| {
        for (slot, name) in [(1, "min"), (2, "max")] {
            if let Some(a) = p.take(name) {
                let v = float_like(cx, &l, name, a.f(), x)?;
                p.set_input(slot, Some(v));
            }
        }
        Ok(())
    })
    .map(Some)
}

fn pad_11(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    if !has_attr(cx, id, "pads")? {
        return Err(refuse(
            cx,
            id,
            "a Pad before opset 11 needs its `pads` attribute",
            "the model is invalid; fix its export",
        ));
    }
    let (l, x) = (label(cx.g, id)?, first_input(cx, id)?);
    let constant_mode = string_attr_of(cx, id, "mode")?.is_none_or(|m| m == "constant");
    rebuild(cx, id, |cx, p| {
        let pads = ints_input(cx, &l, p, "pads")?;
        p.set_input(1, pads);
        if let Some(a) = p.take("value") {
            // Only the constant mode reads the value (and its default, 0, needs no input).
            if constant_mode {
                let v = float_like(cx, &l, "constant_value", a.f(), x)?;
                p.set_input(2, Some(v));
            }
        }
        Ok(())
    })
    .map(Some)
}

/// Resize-10 and Upsample-9 (X, scales) as Resize-11+ (X, no roi, scales) with the old
/// coordinate arithmetic made explicit: `x_in = x_out / scale`, nearest pixel by floor.
fn resize_from_10(cx: &mut Cx<'_>, id: NodeId) -> Result<NodeId> {
    let nearest = string_attr_of(cx, id, "mode")?.is_none_or(|m| m == "nearest");
    rebuild(cx, id, |_, p| {
        p.op_type = "Resize".into();
        let scales = p.inputs.get(1).copied().flatten();
        p.inputs.truncate(1);
        p.set_input(2, scales);
        p.set(string_attr("coordinate_transformation_mode", "asymmetric"));
        if nearest {
            p.set(string_attr("nearest_mode", "floor"));
        }
        Ok(())
    })
}

fn resize_11(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    resize_from_10(cx, id).map(Some)
}

fn upsample(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    let n = node(cx.g, id)?;
    if input(n, 1).is_none() {
        let scales: Option<Vec<f32>> = n.attribute("scales").map(|a| a.proto.floats.clone());
        let Some(scales) = scales else {
            return Err(refuse(
                cx,
                id,
                "it has neither a scales input nor a scales attribute",
                "the model is invalid; fix its export",
            ));
        };
        // The opset-7 form: the scales attribute becomes the input first.
        let l = label(cx.g, id)?;
        let t = onnxq_ir::proto::TensorProto {
            dims: vec![scales.len() as i64],
            data_type: Some(super::rewrite::FLOAT),
            raw_data: Some(
                scales
                    .iter()
                    .flat_map(|s| s.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            ..Default::default()
        };
        let c = constant(cx, &format!("{l}_scales"), t)?;
        let id = rebuild(cx, id, |_, p| {
            p.take("scales");
            p.set_input(1, Some(c));
            Ok(())
        })?;
        return resize_from_10(cx, id).map(Some);
    }
    resize_from_10(cx, id).map(Some)
}

fn scatter_11(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    rebuild(cx, id, |_, p| {
        p.op_type = "ScatterElements".into();
        Ok(())
    })
    .map(Some)
}

fn dropout_12(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    // Measured: ONNX Runtime's Dropout-10 writes an all-false mask in inference, Dropout-12 an
    // all-true one (as its definition says); the old one has no defined value to keep.
    let mask = node(cx.g, id)?.outputs().get(1).copied().flatten();
    if mask.is_some_and(|m| !cx.g.value(m).uses().is_empty()) {
        return Err(refuse(
            cx,
            id,
            "its mask output is read, and an inference-mode mask changes value at opset 12 (ONNX Runtime writes \
             all false before, all true from 12)",
            "remove the Dropout (it is an identity in inference) or stop reading its mask, and run onnxq again",
        ));
    }
    if !has_attr(cx, id, "ratio")? {
        // Dropout-12's ratio input defaults to 0.5, the old attribute's default.
        return Ok(None);
    }
    let l = label(cx.g, id)?;
    rebuild(cx, id, |cx, p| {
        let ratio = p.take("ratio").map(|a| a.f()).unwrap_or(0.5);
        let v = constant(
            cx,
            &format!("{l}_ratio"),
            super::rewrite::float_scalar(ratio),
        )?;
        p.set_input(1, Some(v));
        Ok(())
    })
    .map(Some)
}

/// Before 13, Softmax, LogSoftmax and Hardmax flattened the input to 2-D at `axis` (default 1)
/// and worked along the second dim; since 13 they work along `axis` (default -1). The same
/// meaning where the axis is the last one; elsewhere `Flatten(axis) → op(axis=-1) →
/// Reshape(Shape(x))`, which needs no rank.
fn softmax_13(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    let n = node(cx.g, id)?;
    let axis = int_attr_of(n, "axis", 1);
    let x = first_input(cx, id)?;
    let r = rank(cx.g, x).map(|r| r as i64);
    let last = axis == -1 || r.is_some_and(|r| axis.rem_euclid(r.max(1)) == r - 1);
    if last {
        // Written out, since the default changed from 1 to -1.
        if has_attr(cx, id, "axis")? {
            return Ok(None);
        }
        return rebuild(cx, id, |_, p| {
            p.set(int_attr("axis", -1));
            Ok(())
        })
        .map(Some);
    }
    let l = label(cx.g, id)?;
    let shape = add(cx, "Shape", &l, &[Some(x)], vec![])?;
    let flat = add(cx, "Flatten", &l, &[Some(x)], vec![int_attr("axis", axis)])?;
    let id = rebuild(cx, id, |_, p| {
        p.set(int_attr("axis", -1));
        p.inputs[0] = Some(flat);
        p.keep_outputs = 1;
        Ok(())
    })?;
    let out = node(cx.g, id)?.outputs()[0]
        .ok_or_else(|| Error::Internal("softmax without output".into()))?;
    // The op's output keeps the name; its readers move to the reshaped value.
    let reshaped = add(cx, "Reshape", &l, &[None, Some(shape)], vec![])?;
    cx.g.substitute(out, reshaped).map_err(Error::edit)?;
    let reshape =
        cx.g.producer(reshaped)
            .ok_or_else(|| Error::Internal("reshape vanished".into()))?;
    cx.g.set_input(reshape, 0, Some(out)).map_err(Error::edit)?;
    Ok(Some(id))
}

fn split_13(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    if !has_attr(cx, id, "split")? {
        return Ok(None);
    }
    let l = label(cx.g, id)?;
    rebuild(cx, id, |cx, p| {
        let split = ints_input(cx, &l, p, "split")?;
        p.set_input(1, split);
        Ok(())
    })
    .map(Some)
}

/// `axes` moves from an attribute to input 1 (absent stays absent: all axes, as before).
fn axes_input(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    if !has_attr(cx, id, "axes")? {
        return Ok(None);
    }
    let l = label(cx.g, id)?;
    rebuild(cx, id, |cx, p| {
        let axes = ints_input(cx, &l, p, "axes")?;
        p.set_input(1, axes);
        Ok(())
    })
    .map(Some)
}

fn resize_13(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    if string_attr_of(cx, id, "coordinate_transformation_mode")?.as_deref()
        == Some("tf_half_pixel_for_nn")
    {
        return Err(refuse(
            cx,
            id,
            "its coordinate_transformation_mode `tf_half_pixel_for_nn` no longer exists at opset 13",
            "re-export the model with opset 13 or newer (TensorFlow's converter then writes an equivalent Resize)",
        ));
    }
    Ok(None)
}

fn batch_norm_14(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    let outs = node(cx.g, id)?.outputs().to_vec();
    if outs.len() <= 1 {
        return Ok(None);
    }
    if outs[1..]
        .iter()
        .flatten()
        .any(|v| !cx.g.value(*v).uses().is_empty())
    {
        return Err(refuse(
            cx,
            id,
            "it uses the running mean/variance outputs, which opset 14 writes in training mode only",
            "export the model in inference mode (BatchNormalization with one output)",
        ));
    }
    rebuild(cx, id, |_, p| {
        p.keep_outputs = 1;
        Ok(())
    })
    .map(Some)
}

fn roi_align_16(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    if has_attr(cx, id, "coordinate_transformation_mode")? {
        return Ok(None);
    }
    rebuild(cx, id, |_, p| {
        p.set(string_attr(
            "coordinate_transformation_mode",
            "output_half_pixel",
        ));
        Ok(())
    })
    .map(Some)
}

fn split_18(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    let n = node(cx.g, id)?;
    if input(n, 1).is_some() || n.attribute("num_outputs").is_some() {
        return Ok(None);
    }
    let count = n.outputs().len() as i64;
    rebuild(cx, id, |_, p| {
        p.set(int_attr("num_outputs", count));
        Ok(())
    })
    .map(Some)
}

fn grid_sample_20(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    let new = match string_attr_of(cx, id, "mode")?.as_deref() {
        Some("bilinear") => "linear",
        Some("bicubic") => "cubic",
        _ => return Ok(None),
    };
    rebuild(cx, id, |_, p| {
        p.set(string_attr("mode", new));
        Ok(())
    })
    .map(Some)
}

fn dft_20(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    let l = label(cx.g, id)?;
    rebuild(cx, id, |cx, p| {
        let axis = p.take("axis").map(|a| a.i()).unwrap_or(1);
        let v = constant(cx, &format!("{l}_axis"), int64s(vec![], &[axis]))?;
        p.set_input(2, Some(v));
        Ok(())
    })
    .map(Some)
}

fn group_norm_21(cx: &mut Cx<'_>, id: NodeId) -> Result<Option<NodeId>> {
    Err(refuse(
        cx,
        id,
        "GroupNormalization-18 takes one scale and bias per group, opset 21 one per channel, and onnxq does not expand them yet",
        "convert the model with `onnx.version_converter.convert_version(model, 21)` first, or re-export it at opset 21",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules apply oldest change first, each to a version the converter spans, under a unique name.
    #[test]
    fn table_is_ordered_and_in_range() {
        let mut names = std::collections::BTreeSet::new();
        for w in RULES.windows(2) {
            assert!(w[0].at <= w[1].at, "{} before {}", w[0].name, w[1].name);
        }
        for r in RULES {
            assert!((11..=21).contains(&r.at), "{}", r.name);
            assert!(names.insert(r.name), "{} twice", r.name);
        }
    }
}
