//! The static pass's guard against broken weights: a marked constant (weight, constant input or
//! bias) holding NaN or ±Inf is unmarked before the constant stage, so it stays float. Quantized,
//! it would get an infinite scale (every code 0 and every output of the model NaN), and a bias's
//! infinite values would also enlarge its weight's scale to infinity (§3.9). ONNX Runtime's tool
//! stops with "scale issue"; onnxq keeps the rest of the model quantized and names the tensor in a
//! warning.

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::{Graph, ValueId};
use rayon::prelude::*;

use crate::edit::node_label;
use crate::numerics::nonfinite_count;
use crate::qdq::plan::{Marks, Role};
use crate::weights::{f32_data, resolve};

/// Unmarks every marked constant and bias holding NaN or infinite values, with the biases of such
/// weights and the tensors sharing their parameters; returns one warning per tensor.
pub(crate) fn unmark_nonfinite(g: &Graph, marks: &mut Marks<'_>) -> Vec<String> {
    let candidates: BTreeSet<ValueId> = marks
        .order
        .iter()
        .flatten()
        .copied()
        .chain(marks.biases.keys().copied())
        .collect();
    let bad: BTreeMap<ValueId, usize> = candidates
        .into_par_iter()
        .filter_map(|v| {
            let data = f32_data(resolve(g, &[], v)?.tensor)?;
            let n = nonfinite_count(data);
            (n > 0).then_some((v, n))
        })
        .collect();
    if bad.is_empty() {
        return Vec::new();
    }
    // The bad tensors, then (in rounds) what shares their parameters.
    let mut gone: BTreeSet<ValueId> = bad.keys().copied().collect();
    loop {
        let sharing: Vec<ValueId> = marks
            .roles
            .iter()
            .filter(|(v, r)| matches!(r, Role::SameAs(p) if gone.contains(p)) && !gone.contains(*v))
            .map(|(v, _)| *v)
            .collect();
        if sharing.is_empty() {
            break;
        }
        gone.extend(sharing);
    }
    for v in &gone {
        marks.roles.remove(v);
        if let Some(i) = marks.slot.remove(v) {
            marks.order[i] = None;
        }
        marks.biases.remove(v);
    }
    // A bias is int32 only with its weight's scale: it stays float with its weight.
    marks.biases.retain(|_, b| !gone.contains(&b.weight));
    bad.iter()
        .map(|(&v, n)| {
            let readers: Vec<String> = g
                .reader_nodes(v)
                .into_iter()
                .filter_map(|id| g.node(id).map(|n| node_label(g, n)))
                .collect();
            format!(
                "constant `{}` (read by {}) holds {n} NaN or infinite value(s): left float \
                 (it has no finite scale, and quantized it would break every output); check the model's \
                 export or training",
                g.value(v).name(),
                readers.join(", ")
            )
        })
        .collect()
}
