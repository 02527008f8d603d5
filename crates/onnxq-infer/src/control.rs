//! The control-flow ops, whose outputs come from their bodies: each body is inferred with the
//! enclosing graph's facts in scope and its inputs' facts given by the node (If: none; Loop: the
//! iteration number, the condition and the carried values; Scan: the states and one slice of each
//! scanned input). A value carried around a loop keeps the dims that do not change between the
//! initial value and the body's output; the others become fresh symbols.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, Node};

use crate::dim::Dim;
use crate::fact::{Fact, elem};
use crate::rules::{Outcome, axis};

/// What the control ops need of the driver: the facts of a body's values, and fresh symbols.
pub(crate) trait Bodies {
    /// The facts of every value of `g` with `outer` in scope and `inputs` for its inputs.
    fn graph(
        &mut self,
        g: &Graph,
        outer: &BTreeMap<String, Fact>,
        inputs: &[Fact],
    ) -> Result<BTreeMap<String, Fact>, onnxq_ir::Error>;
    /// A fresh symbol.
    fn fresh(&mut self) -> Dim;
}

/// The outputs of a node with subgraphs, or why they cannot be told.
pub(crate) fn node(
    run: &mut dyn Bodies,
    node: &Node,
    inputs: &[Option<Fact>],
    facts: &BTreeMap<String, Fact>,
) -> Result<Outcome, onnxq_ir::Error> {
    let body = |name: &str| {
        node.attribute(name)
            .and_then(|a| a.subgraphs.first())
            .ok_or_else(|| format!("no `{name}` body"))
    };
    let domain = node.domain();
    if !(domain.is_empty() || domain == "ai.onnx") {
        return Ok(Err(format!("no rule for {domain}:{}", node.op_type())));
    }
    Ok(match node.op_type() {
        "If" => match (body("then_branch"), body("else_branch")) {
            (Ok(t), Ok(e)) => {
                let a = outputs(t, &run.graph(t, facts, &[])?);
                let b = outputs(e, &run.graph(e, facts, &[])?);
                if a.len() == b.len() {
                    Ok(a.iter().zip(&b).map(|(x, y)| join(run, x, y)).collect())
                } else {
                    Err(format!("branches have {} and {} outputs", a.len(), b.len()))
                }
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        "Loop" => match body("body") {
            Ok(b) => looped(run, node, b, inputs, facts)?,
            Err(e) => Err(e),
        },
        "Scan" => match body("body") {
            Ok(b) => scan(run, node, b, inputs, facts)?,
            Err(e) => Err(e),
        },
        op => Err(format!("no rule for {op} with a subgraph")),
    })
}

/// A body's output facts, in order.
fn outputs(g: &Graph, facts: &BTreeMap<String, Fact>) -> Vec<Fact> {
    g.outputs()
        .iter()
        .map(|p| {
            facts
                .get(g.value(p.value).name())
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// What two facts of one value share: the element type if equal, the dims that are equal (fresh
/// symbols for the others) if the ranks are.
fn join(run: &mut dyn Bodies, a: &Fact, b: &Fact) -> Fact {
    let elem = if a.elem == b.elem { a.elem } else { None };
    let shape = match (&a.shape, &b.shape) {
        (Some(x), Some(y)) if x.len() == y.len() => Some(
            x.iter()
                .zip(y)
                .map(|(p, q)| if p == q { p.clone() } else { run.fresh() })
                .collect(),
        ),
        _ => None,
    };
    let value = if a.value == b.value {
        a.value.clone()
    } else {
        None
    };
    Fact {
        elem,
        shape,
        value,
        floats: None,
    }
}

fn scalar(e: i32) -> Fact {
    Fact::tensor(Some(e), Some(Vec::new()))
}

/// Loop: inputs `M`, `cond`, carried values; body inputs iteration, condition, carried values;
/// body outputs condition, carried values, then scan outputs (stacked: one more leading dim, the
/// trip count when `M` is a known dim).
fn looped(
    run: &mut dyn Bodies,
    node: &Node,
    body: &Graph,
    inputs: &[Option<Fact>],
    facts: &BTreeMap<String, Fact>,
) -> Result<Outcome, onnxq_ir::Error> {
    let carried: Vec<Fact> = inputs
        .iter()
        .skip(2)
        .map(|f| f.clone().unwrap_or_default())
        .collect();
    let mut body_inputs = vec![scalar(elem::INT64), scalar(elem::BOOL)];
    body_inputs.extend(carried.iter().cloned());
    let out = outputs(body, &run.graph(body, facts, &body_inputs)?);
    let n = carried.len();
    if out.len() < 1 + n {
        return Ok(Err(format!(
            "the body has {} outputs for {n} carried values",
            out.len()
        )));
    }
    let trip = inputs
        .first()
        .cloned()
        .flatten()
        .and_then(|m| m.value?.first().cloned());
    let mut results: Vec<Fact> = (0..n)
        .map(|i| join(run, &carried[i], &out[1 + i]))
        .collect();
    for s in &out[1 + n..] {
        let lead = trip.clone().unwrap_or_else(|| run.fresh());
        let shape = s.shape.as_ref().map(|d| [vec![lead], d.clone()].concat());
        results.push(Fact::tensor(s.elem, shape));
    }
    results.truncate(node.outputs().len());
    Ok(Ok(results))
}

/// Scan (opset 9+): states then `num_scan_inputs` scanned inputs; each scanned input is sliced
/// along its scan axis, and each scan output stacked along its own.
fn scan(
    run: &mut dyn Bodies,
    node: &Node,
    body: &Graph,
    inputs: &[Option<Fact>],
    facts: &BTreeMap<String, Fact>,
) -> Result<Outcome, onnxq_ir::Error> {
    let attr = |n: &str| node.attribute(n).map(|a| &a.proto);
    let m = attr("num_scan_inputs").and_then(|a| a.i).unwrap_or(0) as usize;
    if m > inputs.len() {
        return Ok(Err(format!(
            "num_scan_inputs {m} of {} inputs",
            inputs.len()
        )));
    }
    let n = inputs.len() - m;
    let in_axes = attr("scan_input_axes").map_or_else(|| vec![0; m], |a| a.ints.clone());
    let mut body_inputs: Vec<Fact> = inputs[..n]
        .iter()
        .map(|f| f.clone().unwrap_or_default())
        .collect();
    let mut length: Option<Dim> = None;
    for (k, f) in inputs[n..].iter().enumerate() {
        let f = f.clone().unwrap_or_default();
        let sliced = match (&f.shape, in_axes.get(k)) {
            (Some(s), Some(&a)) => match axis(a, s.len()) {
                Ok(a) => {
                    length.get_or_insert_with(|| s[a].clone());
                    let mut d = s.clone();
                    d.remove(a);
                    Some(d)
                }
                Err(e) => return Ok(Err(e)),
            },
            _ => None,
        };
        body_inputs.push(Fact::tensor(f.elem, sliced));
    }
    let out = outputs(body, &run.graph(body, facts, &body_inputs)?);
    if out.len() < n {
        return Ok(Err(format!(
            "the body has {} outputs for {n} states",
            out.len()
        )));
    }
    let out_axes = attr("scan_output_axes").map(|a| a.ints.clone());
    let mut results: Vec<Fact> = (0..n)
        .map(|i| join(run, &body_inputs[i], &out[i]))
        .collect();
    for (k, s) in out[n..].iter().enumerate() {
        let lead = length.clone().unwrap_or_else(|| run.fresh());
        let shape = match &s.shape {
            Some(d) => {
                let a = out_axes
                    .as_ref()
                    .and_then(|v| v.get(k))
                    .copied()
                    .unwrap_or(0);
                match axis(a, d.len() + 1) {
                    Ok(a) => {
                        let mut d = d.clone();
                        d.insert(a, lead);
                        Some(d)
                    }
                    Err(e) => return Ok(Err(e)),
                }
            }
            None => None,
        };
        results.push(Fact::tensor(s.elem, shape));
    }
    Ok(Ok(results))
}
