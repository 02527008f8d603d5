//! The graph clean-ups of `preprocess`, one named rule each in [`RULES`], run in table order over
//! the main graph. Each returns how many places it changed; none changes what the model computes
//! (tested per rule in ONNX Runtime). Adding a clean-up is one function and one row.

use std::collections::BTreeMap;

use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Graph, Model, NodeId, Use, ValueId};

use crate::edit::{input, output};
use crate::weights::remove_unread_constants;
use onnxq_ir::Result;

/// A clean-up rule: its name (in the report) and what it does.
pub(crate) type Rule = fn(&mut Model) -> Result<usize>;

/// The clean-ups, in the order they run.
pub(crate) const RULES: &[(&str, Rule)] = &[
    ("constant_to_initializer", constants_to_initializers),
    ("remove_identity_dropout", remove_identity_and_dropout),
    ("fold_constants", super::fold::fold_constants),
    ("fold_conv_batchnorm", super::conv_bn::fold_conv_bn),
    ("fold_conv_mul_add", super::conv_affine::fold_conv_mul_add),
    ("fuse_matmul_add_gemm", super::gemm::fuse_matmul_add),
    ("merge_duplicate_initializers", merge_duplicate_initializers),
    ("remove_dead_nodes", remove_dead_nodes),
];

fn default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// Whether `v` can be replaced by another value: no graph output and no read from inside a
/// subgraph (those follow the name).
fn replaceable(g: &Graph, v: ValueId) -> bool {
    g.value(v)
        .uses()
        .iter()
        .all(|u| matches!(u, Use::Node { .. }))
}

/// Constant nodes with a dense tensor value become initializers of the same name (ONNX Runtime
/// does the same at load; quantizers and folding then see one kind of constant). Skipped for
/// IR < 4, where every initializer must also be a graph input.
fn constants_to_initializers(m: &mut Model) -> Result<usize> {
    if m.proto.ir_version() < 4 {
        return Ok(0);
    }
    let g = &mut m.graph;
    let found: Vec<(NodeId, ValueId, pb::TensorProto)> = g
        .nodes()
        .filter(|(_, n)| n.op_type() == "Constant" && default_domain(n.domain()))
        .filter_map(|(id, n)| {
            let t = n.attribute("value")?.proto.t.clone()?;
            Some((id, output(n, 0)?, t))
        })
        .collect();
    let mut done = 0;
    for (id, out, t) in found {
        let fresh = g.fresh_name(&format!("{}_init", g.value(out).name()));
        let v = g.add_initializer(&fresh, t)?;
        g.substitute(out, v)?;
        g.remove_node(id)?;
        done += 1;
    }
    Ok(done)
}

/// Identity nodes, and Dropout nodes in inference mode (no training input, mask unused), whose
/// output can be replaced by their input.
fn remove_identity_and_dropout(m: &mut Model) -> Result<usize> {
    let g = &mut m.graph;
    let found: Vec<(NodeId, ValueId, ValueId)> = g
        .nodes()
        .filter(|(_, n)| default_domain(n.domain()))
        .filter(|(_, n)| match n.op_type() {
            "Identity" => true,
            "Dropout" => {
                input(n, 2).is_none()
                    && output(n, 1).is_none_or(|mask| g.value(mask).uses().is_empty())
            }
            _ => false,
        })
        .filter_map(|(id, n)| Some((id, input(n, 0)?, output(n, 0)?)))
        .filter(|&(_, _, out)| replaceable(g, out))
        .collect();
    for &(id, inp, out) in &found {
        g.replace_uses(out, inp, |_| false)?;
        g.remove_node(id)?;
    }
    Ok(found.len())
}

/// Initializers equal in type, dims and bytes are merged into the first (exported models repeat
/// shape constants and tied weights); only tensors of the same type and dims are compared.
fn merge_duplicate_initializers(m: &mut Model) -> Result<usize> {
    let g = &mut m.graph;
    let listed_as_inputs: Vec<ValueId> = g.inputs().iter().map(|p| p.value).collect();
    let mut groups: BTreeMap<(i32, Vec<i64>), Vec<ValueId>> = BTreeMap::new();
    for v in g.initializers() {
        let Def::Initializer(t) = g.value(v).def() else {
            continue;
        };
        if t.raw_data.is_none() || listed_as_inputs.contains(&v) || !replaceable(g, v) {
            continue;
        }
        groups
            .entry((t.data_type(), t.dims.clone()))
            .or_default()
            .push(v);
    }
    let bytes = |g: &Graph, v: ValueId| match g.value(v).def() {
        Def::Initializer(t) => t.raw_data.clone().unwrap_or_default(),
        _ => Default::default(),
    };
    let mut merged = 0;
    for (_, vs) in groups.into_iter().filter(|(_, vs)| vs.len() > 1) {
        let mut kept: Vec<ValueId> = Vec::new();
        for v in vs {
            let b = bytes(g, v);
            match kept.iter().find(|&&k| bytes(g, k) == b) {
                Some(&k) => {
                    g.replace_uses(v, k, |_| false)?;
                    g.remove_initializer(v)?;
                    merged += 1;
                }
                None => kept.push(v),
            }
        }
    }
    Ok(merged)
}

/// Nodes none of whose outputs is read (graph outputs count as reads), repeatedly, and then the
/// constants nothing reads: in the bodies first (so an outer weight a folded body no longer reads
/// goes too), then in the main graph.
fn remove_dead_nodes(m: &mut Model) -> Result<usize> {
    let in_bodies = super::bodies::each_body(&mut m.graph, &[], &mut |g, _| remove_dead(g))?;
    Ok(in_bodies + remove_dead(&mut m.graph)?)
}

fn remove_dead(g: &mut Graph) -> Result<usize> {
    let mut removed = 0;
    loop {
        let dead: Vec<NodeId> = g
            .nodes()
            .filter(|(_, n)| {
                n.outputs()
                    .iter()
                    .flatten()
                    .all(|&v| g.value(v).uses().is_empty())
            })
            .map(|(id, _)| id)
            .collect();
        if dead.is_empty() {
            break;
        }
        removed += dead.len();
        g.remove_nodes(&dead)?;
    }
    let before = g.initializers().len();
    remove_unread_constants(g)?;
    Ok(removed + before - g.initializers().len())
}
