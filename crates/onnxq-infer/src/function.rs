//! Calls of model-local functions (`ModelProto.functions`): the function's body is inferred as a
//! graph whose inputs are the call's input facts, with the call's attributes put in place of the
//! body's attribute references (`ref_attr_name`, else the function's default), and the body's
//! output facts are the call's. Nested calls go through the same path, to a fixed depth (ONNX
//! forbids recursive functions; a model that has them is reported, not followed forever).

use std::collections::BTreeMap;

use onnxq_ir::proto as pb;
use onnxq_ir::{Model, Node};

use crate::control::Bodies;
use crate::fact::Fact;
use crate::rules::Outcome;

/// How deep calls may nest.
pub(crate) const MAX_DEPTH: usize = 16;

/// The model's function that `node` calls, if any.
pub(crate) fn called<'m>(model: &'m Model, node: &Node) -> Option<&'m pb::FunctionProto> {
    let domain = |d: &str| if d == "ai.onnx" { "" } else { d }.to_owned();
    (model.proto.functions.iter()).find(|f| {
        f.name() == node.op_type()
            && domain(f.domain()) == domain(node.domain())
            && f.overload() == node.proto.overload()
    })
}

/// The call's outputs from the body's, or why they cannot be told.
pub(crate) fn call(
    run: &mut dyn Bodies,
    model: &Model,
    f: &pb::FunctionProto,
    node: &Node,
    inputs: &[Option<&Fact>],
    depth: usize,
) -> Result<Outcome, onnxq_ir::Error> {
    if depth >= MAX_DEPTH {
        return Ok(Err(format!(
            "function calls nest deeper than {MAX_DEPTH} (a recursive function?)"
        )));
    }
    let info = |name: &str| pb::ValueInfoProto {
        name: Some(name.to_owned()),
        ..Default::default()
    };
    let body = pb::GraphProto {
        name: Some(f.name().to_owned()),
        node: (f.node.iter()).map(|n| bind(n, f, node)).collect(),
        input: f.input.iter().map(|n| info(n)).collect(),
        output: f.output.iter().map(|n| info(n)).collect(),
        value_info: f.value_info.clone(),
        ..Default::default()
    };
    let Ok(m) = model.with_graph(body) else {
        return Ok(Err(format!(
            "the body of function `{}` is not a valid graph",
            f.name()
        )));
    };
    let given: Vec<Fact> = (0..f.input.len())
        .map(|i| {
            inputs
                .get(i)
                .copied()
                .flatten()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let facts = run.graph(&m.graph, &BTreeMap::new(), &given)?;
    Ok(Ok((f.output.iter())
        .map(|o| facts.get(o).cloned().unwrap_or_default())
        .collect()))
}

/// A body node with its attribute references bound to the call's attributes (or the function's
/// defaults); a reference to an attribute neither gives is dropped, as the spec says.
fn bind(n: &pb::NodeProto, f: &pb::FunctionProto, call: &Node) -> pb::NodeProto {
    let mut n = n.clone();
    n.attribute = (n.attribute.into_iter())
        .filter_map(|a| {
            let Some(r) = a.ref_attr_name.clone() else {
                return Some(a);
            };
            let given = (call.attribute(&r).map(|c| c.proto.clone()))
                .or_else(|| f.attribute_proto.iter().find(|d| d.name() == r).cloned())?;
            Some(pb::AttributeProto {
                name: a.name.clone(),
                ..given
            })
        })
        .collect();
    n
}
