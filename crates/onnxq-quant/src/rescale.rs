//! Per-channel rescaling of constants, shared by the float-equivalent rewrites (SmoothQuant,
//! cross-layer equalization, bias absorption): which channel an element of a weight belongs to,
//! the largest magnitude per channel, and a new initializer scaled along one axis (the old one
//! may be shared with nodes that are not rewritten; it is removed once nothing reads it).

use onnxq_ir::{Graph, NodeId, ValueId};

use crate::edit::{init, tensor};
use crate::error::{Error, Result};
use crate::weights::f32_values;

/// The axis of a weight (or a parameter) that a per-channel scale runs along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightAxis {
    /// Axis 0 of the weight.
    Zero,
    /// Axis 1 of the weight.
    One,
}

/// The largest `|w|` of each channel along `axis` of the constant `v` (`channels` entries).
pub(crate) fn max_abs(
    g: &Graph,
    v: ValueId,
    axis: WeightAxis,
    channels: usize,
) -> Result<Vec<f32>> {
    let (values, dims) = values_of(g, v)?;
    Ok(max_abs_of(&values, &sizes(&dims), axis, channels))
}

/// [`max_abs`] of values held in memory.
pub(crate) fn max_abs_of(
    values: &[f32],
    dims: &[usize],
    axis: WeightAxis,
    channels: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; channels];
    for (i, x) in values.iter().enumerate() {
        if let Some(m) = out.get_mut(channel_of(i, dims, axis)) {
            *m = m.max(x.abs());
        }
    }
    out
}

/// Multiplies (or divides) `values` of `dims` by `s` along `axis`.
pub(crate) fn scale_in_place(
    values: &mut [f32],
    dims: &[usize],
    axis: WeightAxis,
    s: &[f32],
    divide: bool,
) {
    for (i, x) in values.iter_mut().enumerate() {
        let j = channel_of(i, dims, axis);
        *x = if divide { *x / s[j] } else { *x * s[j] };
    }
}

/// A new initializer: `v` times `s` (or over `s`) along `axis`.
pub(crate) fn along(
    g: &mut Graph,
    v: ValueId,
    axis: WeightAxis,
    s: &[f32],
    divide: bool,
    suffix: &str,
) -> Result<ValueId> {
    let (mut values, dims) = values_of(g, v)?;
    scale_in_place(&mut values, &sizes(&dims), axis, s, divide);
    let name = format!("{}{suffix}", g.value(v).name());
    init(g, &name, tensor(dims, 1, raw(&values)))
}

/// A new initializer: `v`, which broadcasts along the last axis of a `[..., C]` tensor, over `s`
/// along that axis; a last dimension of 1 (or a scalar) becomes `C`.
pub(crate) fn along_last(g: &mut Graph, v: ValueId, s: &[f32], suffix: &str) -> Result<ValueId> {
    let (values, mut dims) = values_of(g, v)?;
    let c = s.len();
    let expand = dims.last().is_none_or(|&d| d as usize != c);
    let out: Vec<f32> = if expand {
        values
            .iter()
            .flat_map(|&x| s.iter().map(move |&sj| x / sj))
            .collect()
    } else {
        values
            .iter()
            .enumerate()
            .map(|(i, &x)| x / s[i % c])
            .collect()
    };
    if expand {
        match dims.last_mut() {
            Some(d) => *d = c as i64,
            None => dims.push(c as i64),
        }
    }
    let name = format!("{}{suffix}", g.value(v).name());
    init(g, &name, tensor(dims, 1, raw(&out)))
}

/// The input channel (or output channel) of element `i` of a row-major tensor of `dims`.
pub(crate) fn channel_of(i: usize, dims: &[usize], axis: WeightAxis) -> usize {
    match axis {
        WeightAxis::Zero => i / dims[1..].iter().product::<usize>().max(1),
        WeightAxis::One => (i / dims[2..].iter().product::<usize>().max(1)) % dims[1].max(1),
    }
}

pub(crate) fn values_of(g: &Graph, v: ValueId) -> Result<(Vec<f32>, Vec<i64>)> {
    f32_values(g, v).ok_or_else(|| {
        Error::Internal(format!(
            "`{}` is no longer a float32 constant",
            g.value(v).name()
        ))
    })
}

pub(crate) fn input_of(g: &Graph, node: NodeId, slot: usize) -> Result<ValueId> {
    g.node(node)
        .and_then(|n| crate::edit::input(n, slot))
        .ok_or_else(|| Error::Internal("a planned input is gone".into()))
}

pub(crate) fn sizes(dims: &[i64]) -> Vec<usize> {
    dims.iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect()
}

pub(crate) fn raw(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A new float32 initializer named from `base` + `suffix`.
pub(crate) fn new_f32(
    g: &mut Graph,
    base: ValueId,
    suffix: &str,
    dims: Vec<i64>,
    values: &[f32],
) -> Result<ValueId> {
    let name = format!("{}{suffix}", g.value(base).name());
    init(g, &name, tensor(dims, 1, raw(values)))
}
