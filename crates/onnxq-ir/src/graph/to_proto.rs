//! [`Graph`] → `GraphProto`: the inverse of `from_proto.rs`, putting back every field kept in the
//! `proto` remainders; nodes come out topologically sorted and ids are compacted away.

use onnxq_proto as pb;

use super::types::{Def, Graph, Port, ValueId};
use crate::error::Result;

/// Writes the graph back as a proto, nodes in topological order (file order where already sorted).
pub(crate) fn graph_to_proto(graph: &Graph) -> Result<pb::GraphProto> {
    let mut g = graph.proto.clone();
    let name = |v: ValueId| graph.value(v).name().to_owned();
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
                p.graphs = bodies.collect::<Result<_>>()?;
                Ok(p)
            })
            .collect::<Result<_>>()?;
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
    g.value_info = graph.value_info().map(port).collect();
    Ok(g)
}
