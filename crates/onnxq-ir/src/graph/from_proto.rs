//! `GraphProto` → [`Graph`]. Conversion is lossless: every field the IR does not model is kept in
//! the `proto` remainder of the graph, node or attribute and put back by `to_proto.rs`.
//!
//! This is the one writer of the wiring besides the editing verbs: a file may list a node before
//! the producers of its inputs, so values are defined in one stage and uses recorded in the next,
//! which no verb allows. The driver ends with the topological check that rejects real cycles.

use std::collections::{BTreeSet, HashSet};

use onnxq_proto as pb;

use super::types::{Attribute, Def, Graph, Node, NodeId, Port, Use, ValueId};
use crate::error::Error;

/// Names visible from enclosing graphs, innermost last.
pub(crate) type Scope<'a> = Vec<&'a HashSet<String>>;

/// Builds a graph from its proto. `outer` holds the names the enclosing graphs define. Errors name
/// the offending node or value; the caller adds the file.
pub(crate) fn graph_from_proto(mut g: pb::GraphProto, outer: &Scope<'_>) -> Result<Graph, String> {
    let mut graph = Graph::default();
    let nodes = std::mem::take(&mut g.node);
    let inputs = std::mem::take(&mut g.input);
    let outputs = std::mem::take(&mut g.output);
    let value_info = std::mem::take(&mut g.value_info);
    let initializers = std::mem::take(&mut g.initializer);
    let sparse = std::mem::take(&mut g.sparse_initializer);
    let where_ = match g.name() {
        "" => String::new(),
        n => format!(" in graph `{n}`"),
    };

    add_initializers(&mut graph, initializers, &where_)?;
    add_sparse_initializers(&mut graph, sparse, &where_)?;
    add_inputs(&mut graph, inputs, &where_)?;
    // Outputs first, so a node may read a value produced later in an unsorted file; the topological
    // check below rejects real cycles.
    let node_protos = add_node_outputs(&mut graph, nodes, &where_)?;

    let own: HashSet<String> = graph.names.keys().cloned().collect();
    let mut scope = outer.clone();
    scope.push(&own);
    for (i, (mut n, label)) in node_protos.into_iter().enumerate() {
        let id = NodeId(i as u32);
        let input = std::mem::take(&mut n.input);
        let ins = wire_inputs(&mut graph, id, input, &label, outer, &where_)?;
        let attributes = lift_attributes(std::mem::take(&mut n.attribute), &scope, &label)?;
        record_subgraph_reads(&mut graph, id, &attributes)?;
        let node = graph.nodes[i]
            .as_mut()
            .unwrap_or_else(|| unreachable!("pushed by add_node_outputs"));
        node.inputs = ins;
        node.attributes = attributes;
        node.proto = n;
    }

    add_outputs(&mut graph, outputs, outer, &where_)?;
    add_value_info(&mut graph, value_info)?;
    graph.proto = g;
    graph.topological_order().map_err(|e| match e {
        Error::Invalid { reason, .. } => format!("{reason}{where_}"),
        other => other.to_string(),
    })?;
    Ok(graph)
}

/// Whether an enclosing graph defines `name`.
fn visible_outside(outer: &Scope<'_>, name: &str) -> bool {
    outer.iter().any(|s| s.contains(name))
}

fn add_initializers(
    graph: &mut Graph,
    initializers: Vec<pb::TensorProto>,
    where_: &str,
) -> Result<(), String> {
    for mut t in initializers {
        let name = t.name.take().unwrap_or_default();
        if name.is_empty() {
            return Err(format!("an initializer has no name{where_}"));
        }
        let id = graph
            .new_value(name.clone(), Def::Initializer(Box::new(t)))
            .map_err(|_| format!("initializer `{name}` is defined twice{where_}"))?;
        graph.initializers.push(id);
    }
    Ok(())
}

fn add_sparse_initializers(
    graph: &mut Graph,
    sparse: Vec<pb::SparseTensorProto>,
    where_: &str,
) -> Result<(), String> {
    for mut t in sparse {
        let name = t
            .values
            .as_mut()
            .and_then(|v| v.name.take())
            .unwrap_or_default();
        if name.is_empty() {
            return Err(format!("a sparse initializer has no name{where_}"));
        }
        let id = graph
            .new_value(name.clone(), Def::SparseInitializer(Box::new(t)))
            .map_err(|_| format!("sparse initializer `{name}` is defined twice{where_}"))?;
        graph.sparse_initializers.push(id);
    }
    Ok(())
}

fn add_inputs(
    graph: &mut Graph,
    inputs: Vec<pb::ValueInfoProto>,
    where_: &str,
) -> Result<(), String> {
    // Values already declared as inputs: an IR < 4 model lists every initializer there, so a scan
    // of the inputs so far per input would be quadratic.
    let mut declared = std::collections::HashSet::new();
    for mut info in inputs {
        let name = info.name.take().unwrap_or_default();
        if name.is_empty() {
            return Err(format!("a graph input has no name{where_}"));
        }
        let value = match graph.value_by_name(&name) {
            // IR < 4 lists initializers among the inputs too.
            Some(id)
                if matches!(
                    graph.value(id).def(),
                    Def::Initializer(_) | Def::SparseInitializer(_)
                ) && !declared.contains(&id) =>
            {
                id
            }
            Some(_) => return Err(format!("graph input `{name}` is declared twice{where_}")),
            None => graph
                .new_value(name, Def::Input)
                .map_err(|e| e.to_string())?,
        };
        declared.insert(value);
        graph.inputs.push(Port { value, info });
    }
    Ok(())
}

/// Pushes one node per proto with its outputs defined and nothing else yet; returns the protos
/// (outputs taken) with their labels for [`wire_inputs`] and the rest of the driver's loop.
fn add_node_outputs(
    graph: &mut Graph,
    nodes: Vec<pb::NodeProto>,
    where_: &str,
) -> Result<Vec<(pb::NodeProto, String)>, String> {
    let mut node_protos = Vec::with_capacity(nodes.len());
    for (i, mut n) in nodes.into_iter().enumerate() {
        let id = NodeId(i as u32);
        let label = node_label(&n, i);
        let mut outs = Vec::with_capacity(n.output.len());
        for (slot, name) in std::mem::take(&mut n.output).into_iter().enumerate() {
            if name.is_empty() {
                outs.push(None);
                continue;
            }
            let v = graph
                .new_value(name.clone(), Def::Node { node: id, slot })
                .map_err(|_| {
                    format!(
                        "value `{name}` (output of node {label}) is defined more than once{where_}"
                    )
                })?;
            outs.push(Some(v));
        }
        graph.nodes.push(Some(Node {
            inputs: Vec::new(),
            outputs: outs,
            attributes: Vec::new(),
            proto: pb::NodeProto::default(),
        }));
        node_protos.push((n, label));
    }
    Ok(node_protos)
}

/// Resolves node `id`'s input names (to this graph's values or, for names an enclosing graph
/// defines, new `Def::Outer` values) and records their uses.
fn wire_inputs(
    graph: &mut Graph,
    id: NodeId,
    input: Vec<String>,
    label: &str,
    outer: &Scope<'_>,
    where_: &str,
) -> Result<Vec<Option<ValueId>>, String> {
    let mut ins = Vec::with_capacity(input.len());
    for (slot, name) in input.into_iter().enumerate() {
        if name.is_empty() {
            ins.push(None);
            continue;
        }
        let v = match graph.value_by_name(&name) {
            Some(v) => v,
            None if visible_outside(outer, &name) => graph
                .new_value(name, Def::Outer)
                .map_err(|e| e.to_string())?,
            None => {
                return Err(format!(
                    "node {label} reads `{name}`, which no node, initializer or graph input defines{where_}"
                ));
            }
        };
        graph.values[v.index()]
            .uses
            .push(Use::Node { node: id, slot });
        ins.push(Some(v));
    }
    Ok(ins)
}

/// Lifts the `GRAPH`/`GRAPHS` bodies of a node's attributes into nested graphs, which see `scope`
/// (the enclosing graphs' names plus this graph's).
fn lift_attributes(
    protos: Vec<pb::AttributeProto>,
    scope: &Scope<'_>,
    label: &str,
) -> Result<Vec<Attribute>, String> {
    let mut attributes = Vec::with_capacity(protos.len());
    for mut a in protos {
        let mut bodies = Vec::new();
        let in_g = a.g.is_some();
        if let Some(body) = a.g.take() {
            bodies.push(body);
        }
        bodies.append(&mut a.graphs);
        let subgraphs = bodies
            .into_iter()
            .map(|b| graph_from_proto(b, scope))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{e} (in attribute `{}` of node {label})", a.name()))?;
        attributes.push(Attribute {
            proto: a,
            subgraphs,
            in_g,
        });
    }
    Ok(attributes)
}

/// Records the names node `id`'s subgraphs read from enclosing scopes: a dependency of this node on
/// this graph's value (or, one level further out, on an outer value of this graph).
fn record_subgraph_reads(
    graph: &mut Graph,
    id: NodeId,
    attributes: &[Attribute],
) -> Result<(), String> {
    let read: BTreeSet<String> = attributes
        .iter()
        .flat_map(|a| &a.subgraphs)
        .flat_map(|g| {
            g.values()
                .filter(|(_, v)| matches!(v.def(), Def::Outer))
                .map(|(_, v)| v.name().to_owned())
        })
        .collect();
    for name in read {
        let v = match graph.value_by_name(&name) {
            Some(v) => v,
            None => graph
                .new_value(name, Def::Outer)
                .map_err(|e| e.to_string())?,
        };
        graph.values[v.index()]
            .uses
            .push(Use::Subgraph { node: id });
    }
    Ok(())
}

fn add_outputs(
    graph: &mut Graph,
    outputs: Vec<pb::ValueInfoProto>,
    outer: &Scope<'_>,
    where_: &str,
) -> Result<(), String> {
    for (i, mut info) in outputs.into_iter().enumerate() {
        let name = info.name.take().unwrap_or_default();
        let v = match graph.value_by_name(&name) {
            Some(v) => v,
            None if visible_outside(outer, &name) => graph
                .new_value(name, Def::Outer)
                .map_err(|e| e.to_string())?,
            None => {
                return Err(format!(
                    "graph output `{name}` is not defined by any node, initializer or input{where_}"
                ));
            }
        };
        graph.values[v.index()].uses.push(Use::Output(i));
        graph.outputs.push(Port { value: v, info });
    }
    Ok(())
}

fn add_value_info(graph: &mut Graph, value_info: Vec<pb::ValueInfoProto>) -> Result<(), String> {
    for mut info in value_info {
        let name = info.name.take().unwrap_or_default();
        let v = match graph.value_by_name(&name) {
            Some(v) => v,
            None => graph
                .new_value(name, Def::Declared)
                .map_err(|e| e.to_string())?,
        };
        graph
            .value_info_of
            .entry(v)
            .or_default()
            .push(graph.value_info.len());
        graph.value_info.push(Port { value: v, info });
    }
    Ok(())
}

fn node_label(n: &pb::NodeProto, index: usize) -> String {
    match n.name() {
        "" => format!("#{index} ({})", n.op_type()),
        name => format!("`{name}` ({})", n.op_type()),
    }
}
