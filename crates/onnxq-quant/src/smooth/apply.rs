//! SmoothQuant's edits, from a plan and the activations' per-channel maxima: the scales, each
//! consumer's weight times `s` along its input channels, and `1/s` folded into the producer or
//! applied by an inserted Mul. Every changed constant is a new initializer (an input weight may
//! be shared with nodes that are not smoothed); the replaced ones are removed once unread.

use onnxq_ir::Graph;

use super::plan::{Axis, Fold, Group};
use crate::edit::{add, init, tensor};
use crate::error::{Error, Result};
use crate::rescale::{WeightAxis, input_of, max_abs, raw};

/// Names of the rescaled constants: `<name>_smoothed`.
const SUFFIX: &str = "_smoothed";

fn along(
    g: &mut Graph,
    v: onnxq_ir::ValueId,
    axis: WeightAxis,
    s: &[f32],
    divide: bool,
) -> Result<onnxq_ir::ValueId> {
    crate::rescale::along(g, v, axis, s, divide, SUFFIX)
}

fn along_last(g: &mut Graph, v: onnxq_ir::ValueId, s: &[f32]) -> Result<onnxq_ir::ValueId> {
    crate::rescale::along_last(g, v, s, SUFFIX)
}

/// Neural Compressor's floor of the weight term and of the scale (`1e-5`).
const FLOOR: f32 = 1e-5;

/// The scale of each channel: `s_j = max(max|X_j|^α / max(max|W_j|^(1−α), 1e-5), 1e-5)`, as
/// Neural Compressor computes it, with `max|W_j|` over every consumer's weight. A channel that
/// was zero on all the data (or whose weights are all zero, or not finite) keeps `s = 1`:
/// Neural Compressor gives it `1e-5`, which multiplies the channel by 1e5 before quantization
/// wherever it is not zero at inference.
pub(crate) fn scales(g: &Graph, gr: &Group, x_max: &[f32], alpha: f32) -> Result<Vec<f32>> {
    let mut w_max = vec![0.0f32; gr.channels];
    for c in &gr.consumers {
        let m = max_abs(g, input_of(g, c.node, 1)?, c.axis, gr.channels)?;
        for (w, x) in w_max.iter_mut().zip(m) {
            *w = w.max(x);
        }
    }
    Ok(x_max
        .iter()
        .zip(&w_max)
        .map(|(&x, &w)| {
            if x > 0.0 && w > 0.0 && x.is_finite() && w.is_finite() {
                (x.powf(alpha) / w.powf(1.0 - alpha).max(FLOOR)).max(FLOOR)
            } else {
                1.0
            }
        })
        .collect())
}

/// Applies `s` to the group: consumers' weights times `s`, the producer's parameters over `s`
/// (or a Mul by `1/s`, whose node name is returned).
pub(crate) fn apply(g: &mut Graph, gr: &Group, s: &[f32]) -> Result<Option<String>> {
    for c in &gr.consumers {
        let w = input_of(g, c.node, 1)?;
        let new = along(g, w, c.axis, s, false)?;
        g.set_input(c.node, 1, Some(new)).map_err(Error::edit)?;
    }
    match &gr.fold {
        Some(f) => fold(g, f, s).map(|()| None),
        None => insert_mul(g, gr, s).map(Some),
    }
}

/// `1/s` absorbed by the producer's parameters.
fn fold(g: &mut Graph, f: &Fold, s: &[f32]) -> Result<()> {
    match f {
        Fold::Params { node, slots } => {
            for &slot in slots {
                let v = input_of(g, *node, slot)?;
                let new = along(g, v, WeightAxis::Zero, s, true)?;
                g.set_input(*node, slot, Some(new)).map_err(Error::edit)?;
            }
        }
        Fold::MulConst { node, slot } => {
            let v = input_of(g, *node, *slot)?;
            let new = along_last(g, v, s)?;
            g.set_input(*node, *slot, Some(new)).map_err(Error::edit)?;
        }
        Fold::AddConst { node, slot, inner } => {
            let v = input_of(g, *node, *slot)?;
            let new = along_last(g, v, s)?;
            g.set_input(*node, *slot, Some(new)).map_err(Error::edit)?;
            fold(g, inner, s)?;
        }
        Fold::Weight { node, axis } => {
            let w = input_of(g, *node, 1)?;
            let new = along(g, w, *axis, s, true)?;
            g.set_input(*node, 1, Some(new)).map_err(Error::edit)?;
            let bias = g.node(*node).and_then(|n| crate::edit::input(n, 2));
            if let Some(b) = bias {
                let new = along_last(g, b, s)?;
                g.set_input(*node, 2, Some(new)).map_err(Error::edit)?;
            }
        }
    }
    Ok(())
}

/// A Mul by `1/s` after the activation, read by the group's consumers in its place.
fn insert_mul(g: &mut Graph, gr: &Group, s: &[f32]) -> Result<String> {
    let inv: Vec<f32> = s.iter().map(|v| 1.0 / v).collect();
    let c = i64::try_from(gr.channels).map_err(|_| Error::Internal("channel count".into()))?;
    let dims = match gr.axis {
        Axis::Last => vec![c],
        // `[C, 1, ...]` broadcasts along axis 1 of `[N, C, ...]`.
        Axis::One => {
            let rank = gr
                .rank
                .ok_or_else(|| Error::Internal("Conv input rank".into()))?;
            std::iter::once(c)
                .chain(std::iter::repeat_n(1, rank.saturating_sub(2)))
                .collect()
        }
    };
    // The node's name goes into the static pass's exclusions, which take globs: keep it literal.
    let base: String = gr
        .tensor
        .chars()
        .map(|ch| if matches!(ch, '*' | '?') { '_' } else { ch })
        .collect();
    let scale = init(
        g,
        &format!("{base}_smooth_scale"),
        tensor(dims, 1, raw(&inv)),
    )?;
    let name = g.fresh_name(&format!("{base}_smooth_mul"));
    let out = add(
        g,
        ("Mul", ""),
        &name,
        &[Some(gr.value), Some(scale)],
        &format!("{base}_smooth_output"),
        vec![],
    )?;
    for c in &gr.consumers {
        g.set_input(c.node, 0, Some(out)).map_err(Error::edit)?;
    }
    Ok(name)
}
