//! `onnxq inspect --shapes`: every value of the main graph with its inferred element type and
//! shape (`onnxq-infer`: symbolic dims such as `batch*sequence` included), then the nodes whose
//! outputs could not be inferred and why, and the declared shapes inference contradicts.

use onnxq_infer::{Fact, Inference};
use onnxq_ir::{DataType, Def, Model};
use serde::Serialize;

/// The shapes report.
#[derive(Debug, Serialize)]
pub(crate) struct Shapes {
    /// Node outputs with a known type and rank.
    inferred: usize,
    /// Node outputs in all.
    node_outputs: usize,
    values: Vec<Value>,
    unknown: Vec<Unknown>,
    conflicts: Vec<Conflict>,
}

#[derive(Debug, Serialize)]
struct Value {
    name: String,
    /// `input`, `initializer` or `node`.
    kind: &'static str,
    /// The element type's name, `?` when unknown.
    elem: String,
    /// Dims (numbers as text, symbols as expressions), `None` when the rank is unknown.
    shape: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
struct Unknown {
    node: String,
    op: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Conflict {
    value: String,
    declared: String,
    inferred: String,
}

/// Refuses a model ONNX Runtime would refuse at load (see `onnxq_infer::check`), naming the
/// nodes, before a command works on it.
pub(crate) fn refuse_invalid(model: &Model) -> anyhow::Result<()> {
    let problems = problems(model)?;
    let Some(first) = problems.first() else {
        return Ok(());
    };
    let more = match problems.len() {
        1 => String::new(),
        n => format!(" (and {} more: {})", n - 1, list(&problems[1..])),
    };
    Err(crate::util::fail(
        format!(
            "ONNX Runtime would refuse this model: node `{}`: {}{more}",
            first.node, first.message
        ),
        "fix the model where it was exported (`onnxq inspect --shapes` shows the inferred types and \
         shapes), or copy it as it is with `onnxq repack`",
    ))
}

/// Warns about what ONNX Runtime would refuse (for `repack`, which copies any model losslessly).
pub(crate) fn warn_invalid(model: &Model) -> anyhow::Result<()> {
    let problems = problems(model)?;
    if !problems.is_empty() {
        crate::util::warn(&format!(
            "ONNX Runtime would refuse this model; copied as it is: {}",
            list(&problems)
        ));
    }
    Ok(())
}

fn problems(model: &Model) -> anyhow::Result<Vec<onnxq_infer::Problem>> {
    let inf = onnxq_infer::infer(model)?;
    Ok(onnxq_infer::check(model, &inf))
}

/// The first three problems, `node: message; ...`.
fn list(problems: &[onnxq_infer::Problem]) -> String {
    let mut s: Vec<String> = (problems.iter().take(3))
        .map(|p| format!("`{}`: {}", p.node, p.message))
        .collect();
    if problems.len() > 3 {
        s.push(format!("{} more", problems.len() - 3));
    }
    s.join("; ")
}

/// The report for `model`'s inference.
pub(crate) fn shapes(model: &Model, inf: &Inference) -> Shapes {
    let g = &model.graph;
    let values = g
        .values()
        .filter_map(|(_, v)| {
            let kind = match v.def() {
                Def::Input => "input",
                Def::Initializer(_) | Def::SparseInitializer(_) => "initializer",
                Def::Node { .. } => "node",
                _ => return None,
            };
            let f = inf.facts.get(v.name()).cloned().unwrap_or_default();
            Some(value(v.name(), kind, &f))
        })
        .collect();
    let (inferred, node_outputs) = inf.coverage(model);
    Shapes {
        inferred,
        node_outputs,
        values,
        unknown: (inf.unknown.iter())
            .map(|u| Unknown {
                node: u.node.clone(),
                op: u.op.clone(),
                reason: u.reason.clone(),
            })
            .collect(),
        conflicts: (inf.conflicts.iter())
            .map(|c| Conflict {
                value: c.value.clone(),
                declared: c.declared.clone(),
                inferred: c.inferred.clone(),
            })
            .collect(),
    }
}

fn value(name: &str, kind: &'static str, f: &Fact) -> Value {
    Value {
        name: name.to_owned(),
        kind,
        elem: f
            .elem
            .map_or_else(|| "?".to_owned(), |e| DataType(e).to_string()),
        shape: (f.shape.as_ref()).map(|s| s.iter().map(ToString::to_string).collect()),
    }
}

/// The report as text: one value per line, then the unknown nodes and conflicts.
pub(crate) fn render(s: &Shapes) -> String {
    let mut out = format!(
        "shapes: {} of {} node outputs inferred\n",
        s.inferred, s.node_outputs
    );
    for v in &s.values {
        let shape = v.shape.as_ref().map_or_else(
            || "rank unknown".to_owned(),
            |d| format!("[{}]", d.join(", ")),
        );
        out += &format!("  {} {} {shape}  ({})\n", v.name, v.elem, v.kind);
    }
    if !s.unknown.is_empty() {
        out += &format!("not inferred ({} nodes):\n", s.unknown.len());
        for u in &s.unknown {
            out += &format!("  {} ({}): {}\n", u.node, u.op, u.reason);
        }
    }
    if !s.conflicts.is_empty() {
        out += &format!(
            "declared shapes that inference contradicts ({}; the declared ones are kept):\n",
            s.conflicts.len()
        );
        for c in &s.conflicts {
            out += &format!(
                "  {}: declared {}, inferred {}\n",
                c.value, c.declared, c.inferred
            );
        }
    }
    out.trim_end().to_owned()
}
