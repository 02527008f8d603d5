//! `GraphProto` ⇄ [`Graph`]. Conversion is lossless: every field the IR does not model is kept in
//! the `proto` remainder of the graph, node or attribute and put back on the way out.

use std::collections::HashSet;

use onnxq_proto as pb;

use crate::graph::{Attribute, Def, Graph, Node, NodeId, Port, Use};

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
                ) && !graph.inputs.iter().any(|p| p.value == id) =>
            {
                id
            }
            Some(_) => return Err(format!("graph input `{name}` is declared twice{where_}")),
            None => graph
                .new_value(name, Def::Input)
                .map_err(|e| e.to_string())?,
        };
        graph.inputs.push(Port { value, info });
    }

    // Outputs first, so a node may read a value produced later in an unsorted file; the topological
    // check below rejects real cycles.
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

    let own: HashSet<String> = graph.names.keys().cloned().collect();
    let mut scope = outer.clone();
    scope.push(&own);
    let visible_outside = |name: &str| outer.iter().any(|s| s.contains(name));

    for (i, (mut n, label)) in node_protos.into_iter().enumerate() {
        let id = NodeId(i as u32);
        let mut ins = Vec::with_capacity(n.input.len());
        for (slot, name) in std::mem::take(&mut n.input).into_iter().enumerate() {
            if name.is_empty() {
                ins.push(None);
                continue;
            }
            let v = match graph.value_by_name(&name) {
                Some(v) => v,
                None if visible_outside(&name) => graph
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
        let mut attributes = Vec::with_capacity(n.attribute.len());
        for mut a in std::mem::take(&mut n.attribute) {
            let mut bodies = Vec::new();
            let in_g = a.g.is_some();
            if let Some(body) = a.g.take() {
                bodies.push(body);
            }
            bodies.append(&mut a.graphs);
            let subgraphs = bodies
                .into_iter()
                .map(|b| graph_from_proto(b, &scope))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{e} (in attribute `{}` of node {label})", a.name()))?;
            attributes.push(Attribute {
                proto: a,
                subgraphs,
                in_g,
            });
        }
        // Names the subgraphs read from enclosing scopes: a dependency of this node on this graph's
        // value (or, one level further out, on an outer value of this graph).
        let read: std::collections::BTreeSet<String> = attributes
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
        let node = graph.nodes[i]
            .as_mut()
            .unwrap_or_else(|| unreachable!("pushed above"));
        node.inputs = ins;
        node.attributes = attributes;
        node.proto = n;
    }

    for (i, mut info) in outputs.into_iter().enumerate() {
        let name = info.name.take().unwrap_or_default();
        let v = match graph.value_by_name(&name) {
            Some(v) => v,
            None if visible_outside(&name) => graph
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
    for mut info in value_info {
        let name = info.name.take().unwrap_or_default();
        let v = match graph.value_by_name(&name) {
            Some(v) => v,
            None => graph
                .new_value(name, Def::Declared)
                .map_err(|e| e.to_string())?,
        };
        graph.value_info.push(Port { value: v, info });
    }
    graph.proto = g;
    graph.topological_order().map_err(|e| match e {
        crate::Error::Invalid { reason, .. } => format!("{reason}{where_}"),
        other => other.to_string(),
    })?;
    Ok(graph)
}

fn node_label(n: &pb::NodeProto, index: usize) -> String {
    match n.name() {
        "" => format!("#{index} ({})", n.op_type()),
        name => format!("`{name}` ({})", n.op_type()),
    }
}

/// Writes the graph back as a proto, nodes in topological order (file order where already sorted).
pub(crate) fn graph_to_proto(graph: &Graph) -> crate::Result<pb::GraphProto> {
    let mut g = graph.proto.clone();
    let name = |v: crate::ValueId| graph.value(v).name().to_owned();
    let port = |p: &Port| pb::ValueInfoProto {
        name: Some(name(p.value)),
        ..p.info.clone()
    };
    for id in graph.topological_order()? {
        let node = graph
            .node(id)
            .unwrap_or_else(|| unreachable!("order lists live nodes"));
        let mut n = node.proto.clone();
        n.input = node
            .inputs
            .iter()
            .map(|v| v.map(name).unwrap_or_default())
            .collect();
        n.output = node
            .outputs
            .iter()
            .map(|v| v.map(name).unwrap_or_default())
            .collect();
        n.attribute = node
            .attributes
            .iter()
            .map(|a| {
                let mut p = a.proto.clone();
                let mut bodies = a.subgraphs.iter().map(graph_to_proto);
                if a.in_g {
                    p.g = bodies.next().transpose()?;
                }
                p.graphs = bodies.collect::<crate::Result<_>>()?;
                Ok(p)
            })
            .collect::<crate::Result<_>>()?;
        g.node.push(n);
    }
    for &v in &graph.initializers {
        if let Def::Initializer(t) = graph.value(v).def() {
            g.initializer.push(pb::TensorProto {
                name: Some(name(v)),
                ..(**t).clone()
            });
        }
    }
    for &v in &graph.sparse_initializers {
        if let Def::SparseInitializer(t) = graph.value(v).def() {
            let mut t = (**t).clone();
            if let Some(values) = t.values.as_mut() {
                values.name = Some(name(v));
            }
            g.sparse_initializer.push(t);
        }
    }
    g.input = graph.inputs.iter().map(port).collect();
    g.output = graph.outputs.iter().map(port).collect();
    g.value_info = graph.value_info.iter().map(port).collect();
    Ok(g)
}
