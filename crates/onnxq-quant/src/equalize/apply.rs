//! Equalization's edits: the Clips planned to become Relus, then sweeps of
//! `s_i = sqrt(r1_i / r2_i)` over the pairs in graph order (`r` = per-channel `max |w|` of the
//! head's output channel and of the tail's input channel; Nagel et al. 2019, eq. 7), the
//! head's output channel `i` and bias over `s_i`, the tail's input channel `i` times `s_i`, on
//! weights held in memory until the scales settle; and bias absorption, which moves
//! `c = max(0, min over the data of the head's output)` from the head's bias into the tail's.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, NodeId};

use super::plan::{EqualizePlan, Pair};
use crate::edit::{add, input, output};
use crate::error::{Error, Result};
use crate::rescale::{
    WeightAxis, channel_of, input_of, max_abs_of, new_f32, scale_in_place, sizes, values_of,
};

/// Names of the rewritten constants: `<name>_equalized`.
const SUFFIX: &str = "_equalized";
/// Sweeps stop when no scale moves further than this from 1, or after `MAX_SWEEPS`.
const SETTLED: f32 = 1e-3;
const MAX_SWEEPS: usize = 20;

/// A node's weight and bias while the sweeps run.
struct Held {
    w: Vec<f32>,
    dims: Vec<i64>,
    b: Option<Vec<f32>>,
}

/// Turns each planned Clip into a Relu reading the same input (its output keeps the name).
pub(crate) fn clips_to_relus(g: &mut Graph, plan: &EqualizePlan) -> Result<usize> {
    let mut done = 0;
    for clip in plan.pairs.iter().flat_map(|p| &p.clips) {
        let Some(n) = g.node(*clip) else { continue };
        let (Some(x), Some(y)) = (input(n, 0), output(n, 0)) else {
            continue;
        };
        let name = format!("{}_relu", n.name());
        let out = format!("{}_relu", g.value(y).name());
        let relu = add(g, ("Relu", ""), &name, &[Some(x)], &out, vec![])?;
        g.substitute(y, relu).map_err(Error::edit)?;
        g.remove_node(*clip).map_err(Error::edit)?;
        done += 1;
    }
    Ok(done)
}

/// Runs the sweeps and writes the new weights; returns the sweeps run.
pub(crate) fn equalize(g: &mut Graph, plan: &EqualizePlan) -> Result<usize> {
    let mut held: BTreeMap<NodeId, Held> = BTreeMap::new();
    for p in &plan.pairs {
        for (node, head) in [(p.head, true), (p.tail, false)] {
            if let Some(h) = held.get_mut(&node) {
                if head && h.b.is_none() {
                    h.b = bias_of(g, node)?;
                }
                continue;
            }
            let (w, dims) = values_of(g, input_of(g, node, 1)?)?;
            let b = if head { bias_of(g, node)? } else { None };
            held.insert(node, Held { w, dims, b });
        }
    }
    let mut sweeps = 0;
    while sweeps < MAX_SWEEPS {
        sweeps += 1;
        let mut moved = 0.0f32;
        for p in &plan.pairs {
            moved = moved.max(sweep_pair(&mut held, p));
        }
        if moved < SETTLED {
            break;
        }
    }
    for (node, h) in &held {
        let w = input_of(g, *node, 1)?;
        let nw = new_f32(g, w, SUFFIX, h.dims.clone(), &h.w)?;
        g.set_input(*node, 1, Some(nw)).map_err(Error::edit)?;
        if let (Some(b), Some(old)) = (&h.b, g.node(*node).and_then(|n| input(n, 2))) {
            let nb = new_f32(g, old, SUFFIX, vec![b.len() as i64], b)?;
            g.set_input(*node, 2, Some(nb)).map_err(Error::edit)?;
        }
    }
    Ok(sweeps)
}

/// One pair rescaled in memory; returns how far its scales were from 1.
fn sweep_pair(held: &mut BTreeMap<NodeId, Held>, p: &Pair) -> f32 {
    let c = p.channels;
    let r = |held: &BTreeMap<NodeId, Held>, node, axis| {
        held.get(&node)
            .map(|h| max_abs_of(&h.w, &sizes(&h.dims), axis, c))
    };
    let (Some(r1), Some(r2)) = (r(held, p.head, p.head_axis), r(held, p.tail, p.tail_axis)) else {
        return 0.0;
    };
    let s: Vec<f32> = r1
        .iter()
        .zip(&r2)
        .map(|(&a, &b)| {
            let s = (a / b).sqrt();
            // A dead channel (zero range on either side) or a non-finite range keeps its scale.
            if a > 0.0 && b > 0.0 && s.is_finite() {
                s
            } else {
                1.0
            }
        })
        .collect();
    if let Some(h) = held.get_mut(&p.head) {
        scale_in_place(&mut h.w, &sizes(&h.dims), p.head_axis, &s, true);
        if let Some(b) = &mut h.b {
            for (x, si) in b.iter_mut().zip(&s) {
                *x /= si;
            }
        }
    }
    if let Some(h) = held.get_mut(&p.tail) {
        scale_in_place(&mut h.w, &sizes(&h.dims), p.tail_axis, &s, false);
    }
    s.iter().map(|x| (x - 1.0).abs()).fold(0.0, f32::max)
}

fn bias_of(g: &Graph, node: NodeId) -> Result<Option<Vec<f32>>> {
    match g.node(node).and_then(|n| input(n, 2)) {
        Some(b) => values_of(g, b).map(|(v, _)| Some(v)),
        None => Ok(None),
    }
}

/// Bias absorption on the absorbable pairs, from each head output's per-channel minimum
/// (`mins`, by tensor name): `c = max(0, min)`, the head's bias less `c`, the tail's bias plus
/// `W2 · c` (summed over the kernel). Exact on the data: there the head's output is never below
/// `c`, so `relu(h - c) + c = relu(h)`. Returns the pairs changed.
pub(crate) fn absorb(
    g: &mut Graph,
    plan: &EqualizePlan,
    mins: &BTreeMap<String, Vec<f32>>,
) -> Result<usize> {
    let mut done = 0;
    for p in plan.pairs.iter().filter(|p| p.absorbable) {
        let Some(out) = g.node(p.head).and_then(|n| output(n, 0)) else {
            continue;
        };
        let Some(min) = mins.get(g.value(out).name()) else {
            continue;
        };
        let c: Vec<f32> = min
            .iter()
            .map(|&m| if m.is_finite() { m.max(0.0) } else { 0.0 })
            .collect();
        if c.len() != p.channels || c.iter().all(|&x| x == 0.0) {
            continue;
        }
        let (w2, d2) = values_of(g, input_of(g, p.tail, 1)?)?;
        let d2u = sizes(&d2);
        // The tail's output axis: a Conv's axis 0; a Gemm's other axis.
        let out_axis = match (g.node(p.tail).map(|n| n.op_type()), p.tail_axis) {
            (Some("Gemm"), WeightAxis::Zero) => WeightAxis::One,
            _ => WeightAxis::Zero,
        };
        let outs = match out_axis {
            WeightAxis::Zero => d2u[0],
            WeightAxis::One => d2u[1],
        };
        let mut delta = vec![0.0f64; outs];
        for (e, &w) in w2.iter().enumerate() {
            let j = channel_of(e, &d2u, p.tail_axis);
            delta[channel_of(e, &d2u, out_axis)] += f64::from(c[j]) * f64::from(w);
        }
        let b2 = bias_of(g, p.tail)?.unwrap_or_else(|| vec![0.0; outs]);
        if b2.len() != outs {
            continue;
        }
        let b2: Vec<f32> = b2.iter().zip(&delta).map(|(b, d)| b + *d as f32).collect();
        let b1 = bias_of(g, p.head)?.unwrap_or_else(|| vec![0.0; p.channels]);
        let b1: Vec<f32> = b1.iter().zip(&c).map(|(b, c)| b - c).collect();
        set_bias(g, p.head, &b1)?;
        set_bias(g, p.tail, &b2)?;
        done += 1;
    }
    Ok(done)
}

/// Points input 2 of `node` at a new `[len]` bias named after its weight.
fn set_bias(g: &mut Graph, node: NodeId, b: &[f32]) -> Result<()> {
    let base = match g.node(node).and_then(|n| input(n, 2)) {
        Some(old) => old,
        None => input_of(g, node, 1)?,
    };
    let suffix = if base == input_of(g, node, 1)? {
        "_absorbed_bias"
    } else {
        "_absorbed"
    };
    let v = new_f32(g, base, suffix, vec![b.len() as i64], b)?;
    g.set_input(node, 2, Some(v)).map_err(Error::edit)
}
