//! What ONNX Runtime 1.31 would refuse at load, found before a command writes a model from it.
//! Each problem names the node, and says what to do.
//!
//! - A domain a node uses with no opset import; a Constant without a value.
//! - Against ORT's own operator schemas ([`crate::schema`], generated from ORT's registry): an op
//!   unknown in its domain at the model's opset for that domain, or deprecated there; an input or
//!   output count outside the schema's bounds, or an empty name in a slot that is not optional;
//!   an attribute of the wrong type, one the schema does not list (unless ORT accepts unlisted
//!   ones for that op), a required one missing; an input element type the schema's type
//!   constraint does not allow, and inputs of one type variable with different element types (a
//!   float16 weight into a float32 MatMul).
//! - Known dims that cannot broadcast.
//!
//! Only what ORT was seen to refuse is refused, since refusing a model ORT loads would be worse
//! than missing a problem: nodes of domains the table does not cover and ops of model-local
//! functions are not checked, element types come from inference and unknown ones are not
//! problems, slots that may hold sequences or optionals are not type-checked, and nodes inside
//! subgraphs get the schema checks but not the type checks (inference facts are the main graph's).

use std::collections::BTreeMap;

use onnxq_ir::{DataType, Graph, Model, Node};

use crate::fact::Fact;
use crate::infer::Inference;
use crate::rules::broadcast_dims;
use crate::schema::{self, Arity, Enforced, Schema, SlotType};

/// A problem with a model, naming the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The node's name (or its first output's).
    pub node: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// Ops that broadcast their listed inputs (numpy rules).
const BROADCAST: &[(&str, &[usize])] = &[
    ("Add", &[0, 1]),
    ("Sub", &[0, 1]),
    ("Mul", &[0, 1]),
    ("Div", &[0, 1]),
    ("Pow", &[0, 1]),
    ("Equal", &[0, 1]),
    ("Less", &[0, 1]),
    ("Greater", &[0, 1]),
    ("And", &[0, 1]),
    ("Or", &[0, 1]),
    ("Where", &[0, 1, 2]),
];

/// The problems of `model`'s graphs (the main graph and its subgraphs), given its inference.
pub fn check(model: &Model, inf: &Inference) -> Vec<Problem> {
    let mut out = Vec::new();
    check_graph(model, &model.graph, Some(inf), &mut out);
    undefined_types(model, &mut out);
    // Dims that cannot meet, found by the shape rules (ONNX Runtime's shape inference at load
    // refuses the same).
    out.extend(inf.invalid.iter().map(|u| Problem {
        node: u.node.clone(),
        message: format!("{}: {}", u.op.trim_start_matches(':'), u.reason),
    }));
    out
}

/// Checks the nodes of `g`, then their subgraphs (`inf` only for the main graph, whose values
/// the facts describe).
fn check_graph(model: &Model, g: &Graph, inf: Option<&Inference>, out: &mut Vec<Problem>) {
    for (_, n) in g.nodes() {
        let label = || {
            let first = n.outputs().iter().flatten().next();
            match (n.name(), first) {
                ("", Some(&v)) => g.value(v).name().to_owned(),
                (name, _) => name.to_owned(),
            }
        };
        let mut problem = |message: String| {
            out.push(Problem {
                node: label(),
                message,
            })
        };
        let fact = |i: usize| -> Option<&Fact> {
            let v = n.inputs().get(i).copied().flatten()?;
            inf?.facts.get(g.value(v).name())
        };
        node_problems(model, n, inf.is_some(), &fact, &mut problem);
        for sub in n.attributes.iter().flat_map(|a| &a.subgraphs) {
            check_graph(model, sub, None, out);
        }
    }
}

/// The problems of one node; `typed` when `fact` gives its inputs' facts.
fn node_problems<'a>(
    model: &Model,
    n: &Node,
    typed: bool,
    fact: &dyn Fn(usize) -> Option<&'a Fact>,
    problem: &mut dyn FnMut(String),
) {
    let domain = n.domain();
    let Some(opset) = model.opset(domain) else {
        let shown = if domain.is_empty() {
            "ai.onnx (\"\")"
        } else {
            domain
        };
        problem(format!(
            "its domain {shown} has no opset import in the model, so ONNX Runtime cannot resolve `{}`",
            n.op_type()
        ));
        return;
    };
    if domain.is_empty() && n.op_type() == "Constant" && n.attributes.is_empty() {
        problem("a Constant node without a value attribute".into());
    }
    if !local_function(model, n) && schema::covers(domain) {
        schema_problems(n, opset, typed.then_some(fact), problem);
    }
    if typed
        && domain.is_empty()
        && let Some((_, slots)) = BROADCAST.iter().find(|(op, _)| *op == n.op_type())
    {
        broadcast_problem(n, slots, fact, problem);
    }
}

/// Whether the model defines `n`'s op itself (a function in `model.proto.functions`).
fn local_function(model: &Model, n: &Node) -> bool {
    let norm = |d: &str| if d == "ai.onnx" { "" } else { d }.to_owned();
    model
        .proto
        .functions
        .iter()
        .any(|f| f.name() == n.op_type() && norm(f.domain()) == norm(n.domain()))
}

/// The node's domain as a message shows it.
fn shown_domain(n: &Node) -> &str {
    match n.domain() {
        "" => "ai.onnx",
        d => d,
    }
}

/// The problems of `n` against the schema its op resolves to at `opset`; `fact` (the main
/// graph's nodes only) gives input facts for the type checks.
fn schema_problems<'a>(
    n: &Node,
    opset: i64,
    fact: Option<&dyn Fn(usize) -> Option<&'a Fact>>,
    problem: &mut dyn FnMut(String),
) {
    let (op, domain) = (n.op_type(), shown_domain(n));
    let Some(s) = schema::lookup(n.domain(), op, opset) else {
        let first = schema::versions(n.domain(), op).first().map(|s| s.since);
        problem(match first {
            Some(since) => format!(
                "`{op}` exists in {domain} from opset {since}, and the model imports opset \
                 {opset}: ONNX Runtime cannot resolve it; export the model at opset {since} or \
                 newer, or replace the node"
            ),
            None => format!(
                "{domain} has no operator `{op}` (at the model's opset {opset} or any other \
                 ONNX Runtime 1.31 knows): check the op type's spelling, or put the op in a \
                 custom domain with a kernel"
            ),
        });
        return;
    };
    let at = format!("{domain} opset {opset}, schema version {}", s.since);
    match s.enforced {
        Enforced::Nothing => return,
        Enforced::Deprecated => {
            problem(format!(
                "`{op}` is deprecated in {domain} since opset {} (the model imports {opset}) and \
                 ONNX Runtime refuses it: replace it with the op that superseded it (Resize for \
                 Upsample, ScatterElements for Scatter, TreeEnsemble for the tree ensembles)",
                s.since
            ));
            return;
        }
        Enforced::All | Enforced::OpenAttributes => {}
    }
    arity_problems(n, s, &at, problem);
    attribute_problems(n, s, &at, problem);
    if let Some(fact) = fact {
        type_problems(n, s, &at, fact, problem);
    }
}

/// `1`, `1 to 3`, `at least 2`, with the noun.
fn count((lo, hi): (usize, Option<usize>), noun: &str) -> String {
    let plural = |k: usize| if k == 1 { "" } else { "s" };
    match hi {
        Some(hi) if hi == lo => format!("{lo} {noun}{}", plural(lo)),
        Some(hi) => format!("{lo} to {hi} {noun}s"),
        None => format!("at least {lo} {noun}{}", plural(lo)),
    }
}

/// Input and output counts outside the schema's bounds, and empty names in single slots.
fn arity_problems(n: &Node, s: &Schema<'_>, at: &str, problem: &mut dyn FnMut(String)) {
    let op = n.op_type();
    for (what, have, bounds) in [
        ("input", n.inputs().len(), s.inputs),
        ("output", n.outputs().len(), s.outputs),
    ] {
        if have < bounds.0 || bounds.1.is_some_and(|hi| have > hi) {
            problem(format!(
                "`{op}` ({at}) takes {}, the node has {have} (empty names count): give it the \
                 {what}s the operator defines",
                count(bounds, what)
            ));
        }
    }
    for (what, values, slots) in [
        ("input", n.inputs(), &s.input_slots),
        ("output", n.outputs(), &s.output_slots),
    ] {
        let empty_single = values
            .iter()
            .zip(slots.iter())
            .position(|(v, slot)| v.is_none() && slot.arity == Arity::Single);
        if let Some(i) = empty_single {
            problem(format!(
                "`{op}` {what} {i} is not optional ({at}) but its name is empty: connect a value"
            ));
        }
    }
}

/// Attributes of the wrong type, unknown to the schema, or required and missing.
fn attribute_problems(n: &Node, s: &Schema<'_>, at: &str, problem: &mut dyn FnMut(String)) {
    let op = n.op_type();
    for a in &n.attributes {
        let name = a.name();
        // ORT skips names it reserves (`__` prefix) and references to a function's attributes.
        if name.is_empty() || name.starts_with("__") || !a.proto.ref_attr_name().is_empty() {
            continue;
        }
        match s.attribute(name) {
            None if s.enforced == Enforced::OpenAttributes => {}
            None => {
                let known: Vec<&str> = s.attributes.iter().map(|a| a.name).collect();
                problem(format!(
                    "`{op}` has no attribute `{name}` ({at}; it knows {}) and ONNX Runtime \
                     refuses unknown attributes: remove it or correct its name",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            // An attribute without a type is refused by ORT too, but by another check that
            // depends on the IR version; it is left alone here.
            Some(want) if a.proto.r#type.is_some_and(|t| t != want.ty) => {
                problem(format!(
                    "`{op}` attribute `{name}` is {}, the schema ({at}) wants {}: write it as {}",
                    schema::attr_type_name(a.proto.r#type.unwrap_or_default()),
                    schema::attr_type_name(want.ty),
                    schema::attr_type_name(want.ty),
                ));
            }
            Some(_) => {}
        }
    }
    for want in s.attributes.iter().filter(|a| a.required) {
        if n.attribute(want.name).is_none() {
            problem(format!(
                "`{op}` requires attribute `{}` ({} in {at}) and the node has none: add it",
                want.name,
                schema::attr_type_name(want.ty)
            ));
        }
    }
}

/// Input element types a slot does not allow, and one type variable bound to two element
/// types. Unknown types, absent inputs and slots that may hold non-tensors are skipped.
fn type_problems<'a>(
    n: &Node,
    s: &Schema<'_>,
    at: &str,
    fact: &dyn Fn(usize) -> Option<&'a Fact>,
    problem: &mut dyn FnMut(String),
) {
    let op = n.op_type();
    // Type variable -> (first input bound to it, its element type).
    let mut bound: BTreeMap<&str, (usize, i32)> = BTreeMap::new();
    for i in 0..n.inputs().len() {
        let (Some(slot), Some(elem)) = (s.input_slot(i), fact(i).and_then(|f| f.elem)) else {
            continue;
        };
        let (var, types) = match &slot.ty {
            SlotType::Var(v) => (Some(*v), s.constraint(v)),
            SlotType::Fixed(t) => (None, Some(t)),
        };
        let Some(types) = types.filter(|t| !t.other) else {
            continue;
        };
        if !types.tensors.contains(&elem) {
            let allowed: Vec<String> = types
                .tensors
                .iter()
                .map(|&t| DataType(t).to_string())
                .collect();
            problem(format!(
                "`{op}` input {i} is element type {}, which {} does not accept ({at}; it takes \
                 {}): cast it or use an op for that type",
                DataType(elem),
                var.map_or_else(|| "the input".to_owned(), |v| format!("its type `{v}`")),
                allowed.join(", ")
            ));
            continue;
        }
        let same = !matches!(slot.arity, Arity::Variadic { same: false });
        let Some(var) = var.filter(|_| same) else {
            continue;
        };
        match bound.get(var) {
            Some(&(j, e)) if e != elem => problem(format!(
                "`{op}` input {j} is element type {} and input {i} is {}; they must be one type \
                 (`{var}`, {at}): cast one of them",
                DataType(e),
                DataType(elem)
            )),
            Some(_) => {}
            None => {
                bound.insert(var, (i, elem));
            }
        }
    }
}

/// A problem when the listed inputs' known dims cannot broadcast.
fn broadcast_problem<'a>(
    n: &Node,
    slots: &[usize],
    fact: &dyn Fn(usize) -> Option<&'a Fact>,
    problem: &mut dyn FnMut(String),
) {
    let shapes: Vec<&[crate::dim::Dim]> = slots
        .iter()
        .filter_map(|&i| fact(i).and_then(|f| f.shape.as_deref()))
        .collect();
    if shapes.len() == slots.len()
        && let Err(e) = broadcast_dims(&shapes)
    {
        let shown: Vec<String> = shapes
            .iter()
            .map(|s| {
                format!(
                    "[{}]",
                    s.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        problem(format!(
            "{} inputs {} cannot broadcast: {e}",
            n.op_type(),
            shown.join(" and ")
        ));
    }
}

/// Tensors of the main graph declared with the UNDEFINED element type (0): a graph input, output
/// or `value_info` entry. ONNX Runtime refuses each at load ("Invalid tensor data type 0"); an
/// initializer of type 0 is refused when the model is read, and a Cast `to` 0 ORT loads when the
/// output's type is declared, so that is left alone. The problem names the node that reads or writes the tensor.
fn undefined_types(model: &Model, out: &mut Vec<Problem>) {
    let g = &model.graph;
    let label = |v: onnxq_ir::ValueId| {
        let node = (g.producer(v).or_else(|| g.reader_nodes(v).first().copied()))
            .and_then(|id| g.node(id))
            .map(|n| n.name().to_owned())
            .filter(|n| !n.is_empty());
        node.unwrap_or_else(|| g.value(v).name().to_owned())
    };
    let undefined = |t: &onnxq_ir::proto::TypeProto| {
        matches!(
            &t.value,
            Some(onnxq_ir::proto::type_proto::Value::TensorType(tt)) if tt.elem_type.unwrap_or(0) == 0
        )
    };
    let declared = (g.inputs().iter().map(|p| ("graph input", p)))
        .chain(g.outputs().iter().map(|p| ("graph output", p)))
        .chain(g.value_info().map(|p| ("value_info entry", p)));
    for (what, p) in declared {
        if p.info.r#type.as_ref().is_some_and(undefined) {
            out.push(Problem {
                node: label(p.value),
                message: format!(
                    "the {what} `{}` has the UNDEFINED element type (0); give it its real type",
                    g.value(p.value).name()
                ),
            });
        }
    }
}
