//! Constant folding. A main-graph node is folded when its outputs are known: the evaluator
//! (`eval`) computes them from constant inputs (initializers and outputs folded before it), or
//! inference knows them as integers (`Shape` of a tensor with static dims and the shape
//! arithmetic on it). Only the folded values something else still reads become initializers, so
//! a chain folds into its last value; the folded nodes are left to dead-node removal.
//!
//! Bounds: one value over `eval::MAX_ELEMS` elements is never computed, and once the values held
//! pass [`BUDGET`] bytes only small ones are (a model whose every weight goes through a Transpose
//! keeps the rest of them as they are, rather than fold the whole model into memory). Inference's
//! integer contents are not used when a declared shape contradicts inference: contents derived
//! from a wrong declaration would bake it in. A graph output keeps its producer: its name is
//! public and stays a node output.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use onnxq_ir::{Def, Graph, Model, NodeId, Use, ValueId};

use onnxq_infer::eval::{self, Val};
use onnxq_ir::Result;

/// Bytes of evaluated values held at once before only small ones are computed.
const BUDGET: usize = 256 << 20;

/// Values of at most this many elements are computed whatever the budget (shape arithmetic).
const SMALL: usize = 4096;

/// Folds the constant nodes of the main graph and of every subgraph body (where outer
/// constants count too); returns how many nodes were folded.
pub(crate) fn fold_constants(m: &mut Model) -> Result<usize> {
    // IR < 4 lists every initializer among the graph inputs; folding would have to add inputs.
    if m.proto.ir_version() < 4 {
        return Ok(0);
    }
    let opset = m.opset("").unwrap_or(1);
    let inf = onnxq_infer::infer(m)?;
    let facts = inf.conflicts.is_empty().then_some(&inf.facts);
    let mut done = fold_graph(&mut m.graph, &[], opset, facts)?;
    // Inference's facts describe the main graph only; bodies fold what the evaluator computes.
    done += super::bodies::each_body(&mut m.graph, &[], &mut |g, outer| {
        fold_graph(g, outer, opset, None)
    })?;
    Ok(done)
}

/// Folds one graph; `outer` are its enclosing graphs, closest first.
fn fold_graph(
    g: &mut Graph,
    outer: &[&Graph],
    opset: i64,
    facts: Option<&BTreeMap<String, onnxq_infer::Fact>>,
) -> Result<usize> {
    let (known, folded) = evaluate(g, outer, opset, facts)?;
    // A value still read by a node that stays (or a subgraph) becomes an initializer.
    let mut frontier: Vec<ValueId> = known
        .keys()
        .copied()
        .filter(|&v| {
            g.value(v).uses().iter().any(|u| match u {
                Use::Node { node, .. } => !folded.contains(node),
                _ => true,
            })
        })
        .collect();
    frontier.sort_unstable();
    for v in frontier {
        let name = g.fresh_name(&format!("{}_folded", g.value(v).name()));
        let c = g.add_initializer(&name, known[&v].to_tensor())?;
        g.substitute(v, c)?;
    }
    Ok(folded.len())
}

/// Walks the graph in topological order: the known node outputs and the nodes all of whose
/// outputs are known (graph-output producers excluded).
fn evaluate(
    g: &Graph,
    outer: &[&Graph],
    opset: i64,
    facts: Option<&BTreeMap<String, onnxq_infer::Fact>>,
) -> Result<(HashMap<ValueId, Val>, HashSet<NodeId>)> {
    let mut known: HashMap<ValueId, Val> = HashMap::new();
    let mut folded = HashSet::new();
    let mut held = 0usize;
    let graph_outputs: HashSet<ValueId> = g.outputs().iter().map(|p| p.value).collect();
    for id in g.topological_order()? {
        let Some(n) = g.node(id) else { continue };
        let outs: Option<Vec<ValueId>> = n.outputs().iter().copied().collect();
        let Some(outs) = outs.filter(|o| !o.is_empty()) else {
            continue;
        };
        if !matches!(n.domain(), "" | "ai.onnx") || outs.iter().any(|v| graph_outputs.contains(v)) {
            continue;
        }
        // Only an op the evaluator knows, all of whose inputs are constant, is worth reading
        // its inputs for (a weight is copied out of its mapped file to be evaluated).
        let has_body = n.attributes.iter().any(|a| !a.subgraphs.is_empty());
        let constant = |v: &Option<ValueId>| {
            v.is_none_or(|v| known.contains_key(&v) || constant_tensor(g, outer, v).is_some())
        };
        let values =
            if has_body || !eval::OPS.contains(&n.op_type()) || !n.inputs().iter().all(constant) {
                None
            } else {
                inputs(g, outer, n.inputs(), &known).and_then(|ins| {
                    let refs: Vec<Option<&Val>> = ins.iter().map(|v| v.as_deref()).collect();
                    eval::eval(n, &refs, opset)
                })
            };
        let values = values
            .filter(|vs| vs.len() == outs.len())
            .filter(|vs| {
                let size: usize = vs.iter().map(|v| v.len()).sum();
                size <= SMALL || held + bytes(vs) <= BUDGET
            })
            .or_else(|| from_facts(g, &outs, facts?));
        let Some(values) = values else { continue };
        held += bytes(&values);
        for (v, val) in outs.into_iter().zip(values) {
            known.insert(v, val);
        }
        folded.insert(id);
    }
    Ok((known, folded))
}

/// The node's inputs as constants (`None` inside for an absent optional input), or `None` when
/// one is not constant.
fn inputs<'a>(
    g: &'a Graph,
    outer: &[&'a Graph],
    ins: &[Option<ValueId>],
    known: &'a HashMap<ValueId, Val>,
) -> Option<Vec<Option<Cow<'a, Val>>>> {
    ins.iter()
        .map(|v| match v {
            None => Some(None),
            Some(v) => match known.get(v) {
                Some(val) => Some(Some(Cow::Borrowed(val))),
                None => {
                    Val::from_tensor(constant_tensor(g, outer, *v)?).map(|v| Some(Cow::Owned(v)))
                }
            },
        })
        .collect()
}

/// The constant tensor behind `v`: an initializer that is not also a graph input (a default the
/// caller may override), a Constant node's value, or such a constant of an enclosing graph.
fn constant_tensor<'g>(
    g: &'g Graph,
    outer: &[&'g Graph],
    v: ValueId,
) -> Option<&'g onnxq_ir::proto::TensorProto> {
    if matches!(g.value(v).def(), Def::Initializer(_)) && g.inputs().iter().any(|p| p.value == v) {
        return None;
    }
    crate::weights::resolve(g, outer, v).map(|c| c.tensor)
}

/// The outputs as inference knows them: int64/int32 tensors with static dims and known contents.
fn from_facts(
    g: &Graph,
    outs: &[ValueId],
    facts: &BTreeMap<String, onnxq_infer::Fact>,
) -> Option<Vec<Val>> {
    outs.iter()
        .map(|&v| {
            let f = facts.get(g.value(v).name())?;
            // Integer contents only: shape arithmetic on tensors that are not constants.
            matches!(f.elem?, 6 | 7).then(|| f.contents()).flatten()
        })
        .collect()
}

fn bytes(vs: &[Val]) -> usize {
    vs.iter().map(|v| v.len() * 8).sum()
}
