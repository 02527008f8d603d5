//! Opset conversion of the default domain: every node whose op changed meaning between the
//! model's opset and the target is rewritten to the new form (`rules.rs`, one named rule per
//! change), in the main graph and in every subgraph body; then the opset import is raised and
//! the IR version with it. A node that cannot be converted is an error naming it, never a
//! silent overwrite of the opset number (what ONNX Runtime's weight-only tool does).
//!
//! Supported: from opset 10 (the oldest any onnxq pass takes, as ONNX Runtime's tools) up to 21.
//! Model-local functions are checked, not rewritten: one whose body holds an op that changed is
//! refused; the others get the new import.

mod rewrite;
mod rules;

use onnxq_ir::proto as pb;
use onnxq_ir::{Graph, Model};
use serde::Serialize;

use crate::edit::node_label;
use crate::error::{Error, Result};
use rewrite::{Cx, Names};
pub(crate) use rules::{RULES, Rule};

/// The oldest opset the converter reads.
pub const MIN_SOURCE_OPSET: i64 = 10;
/// The newest opset it writes.
pub const MAX_TARGET_OPSET: i64 = 21;

/// One node rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// "main" or the subgraph path.
    pub graph: String,
    /// The node's label (name, else first output).
    pub node: String,
    /// Its op type before the rewrite.
    pub op_type: String,
    /// The rule applied.
    pub rule: &'static str,
}

/// What an upgrade did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpgradeReport {
    /// Default-domain opset before and after.
    pub opset: (i64, i64),
    /// IR version before and after.
    pub ir_version: (i64, i64),
    /// Every node rewritten, in graph order.
    pub rewritten: Vec<Rewrite>,
}

impl UpgradeReport {
    /// One line for a run's notes: the opsets and how many nodes of each rule were rewritten.
    pub fn summary(&self) -> String {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for r in &self.rewritten {
            *counts.entry(r.rule).or_default() += 1;
        }
        let rules: Vec<String> = counts.iter().map(|(r, n)| format!("{n}× {r}")).collect();
        format!(
            "opset {} → {} (IR {} → {}): {} node(s) rewritten{}{}",
            self.opset.0,
            self.opset.1,
            self.ir_version.0,
            self.ir_version.1,
            self.rewritten.len(),
            if rules.is_empty() { "" } else { ": " },
            rules.join("; ")
        )
    }
}

/// The IR version an opset first came with (ONNX's versioning table): raising the opset raises the
/// IR version to at least this.
fn ir_for_opset(opset: i64) -> i64 {
    match opset {
        ..=10 => 5,
        11 => 6,
        12..=14 => 7,
        15..=18 => 8,
        19 | 20 => 9,
        _ => 10,
    }
}

/// Converts `model`'s default domain from its opset to `target` in place (nothing when it is
/// there already).
pub fn upgrade(model: &mut Model, target: i64) -> Result<UpgradeReport> {
    let from = model
        .opset("")
        .ok_or_else(|| Error::Model("the model imports no default-domain opset".into()))?;
    let ir = model.proto.ir_version();
    let mut report = UpgradeReport {
        opset: (from, from),
        ir_version: (ir, ir),
        rewritten: Vec::new(),
    };
    if from == target {
        return Ok(report);
    }
    let bad = |message: String, hint: &'static str| Err(Error::Upgrade { message, hint });
    if from > target {
        return bad(
            format!("the model uses opset {from}, newer than {target}: onnxq converts upward only"),
            "give a target opset at least the model's",
        );
    }
    if from < MIN_SOURCE_OPSET {
        return bad(
            format!(
                "the model uses opset {from}; onnxq converts from opset {MIN_SOURCE_OPSET} or newer"
            ),
            "convert it first with `onnx.version_converter.convert_version(model, 13)`, or re-export it at opset 13 or newer",
        );
    }
    if target > MAX_TARGET_OPSET {
        return bad(
            format!("opset {target}: onnxq converts up to opset {MAX_TARGET_OPSET}"),
            "give a target opset of at most 21",
        );
    }
    check_functions(&model.proto.functions, from, target)?;
    let mut names = Names::default();
    names.collect(&model.graph);
    upgrade_graph(
        &mut model.graph,
        "main",
        (from, target),
        &mut names,
        &mut report,
    )?;
    for o in &mut model.proto.opset_import {
        if matches!(o.domain(), "" | "ai.onnx") {
            o.version = Some(target);
        }
    }
    for f in &mut model.proto.functions {
        for o in &mut f.opset_import {
            if matches!(o.domain(), "" | "ai.onnx") && o.version() < target {
                o.version = Some(target);
            }
        }
    }
    let ir_after = ir.max(ir_for_opset(target));
    model.proto.ir_version = Some(ir_after);
    report.opset.1 = target;
    report.ir_version.1 = ir_after;
    model.graph.validate().map_err(Error::edit)?;
    Ok(report)
}

/// The rules that apply to `op` going from `from` to `to`, oldest change first.
fn rules_for(op: &str, (from, to): (i64, i64)) -> impl Iterator<Item = &'static Rule> + '_ {
    RULES
        .iter()
        .filter(move |r| r.ops.contains(&op) && from < r.at && r.at <= to)
}

/// One graph: its bodies first, then each of its default-domain nodes through its rules.
fn upgrade_graph(
    g: &mut Graph,
    path: &str,
    span: (i64, i64),
    names: &mut Names,
    report: &mut UpgradeReport,
) -> Result<()> {
    crate::subgraphs::edit_bodies(g, &[], path, |sub, _, sub_path| {
        upgrade_graph(sub, sub_path, span, names, report)
    })?;
    let ids: Vec<_> = g
        .nodes()
        .filter(|(_, n)| n.domain().is_empty())
        .map(|(id, _)| id)
        .collect();
    for mut id in ids {
        let (op, label) = match g.node(id) {
            Some(n) => (n.op_type().to_owned(), node_label(g, n)),
            None => continue,
        };
        for rule in rules_for(&op, span) {
            let mut cx = Cx {
                g: &mut *g,
                names: &mut *names,
            };
            let applied = (rule.apply)(&mut cx, id).map_err(|e| in_graph(e, path, span))?;
            if let Some(new) = applied {
                id = new;
                report.rewritten.push(Rewrite {
                    graph: path.to_owned(),
                    node: label.clone(),
                    op_type: op.clone(),
                    rule: rule.name,
                });
            }
        }
    }
    Ok(())
}

/// A refusal with where the node is and the conversion asked for.
fn in_graph(e: Error, path: &str, (from, to): (i64, i64)) -> Error {
    match e {
        Error::Upgrade { message, hint } => Error::Upgrade {
            message: format!(
                "converting the model from opset {from} to {to}: {message} (graph {path})"
            ),
            hint,
        },
        e => e,
    }
}

/// Refuses a model-local function whose body (at its own opset) holds an op some rule rewrites.
fn check_functions(functions: &[pb::FunctionProto], from: i64, to: i64) -> Result<()> {
    for f in functions {
        let opset = f
            .opset_import
            .iter()
            .find(|o| matches!(o.domain(), "" | "ai.onnx"))
            .map_or(from, |o| o.version());
        let mut stack: Vec<&pb::NodeProto> = f.node.iter().collect();
        while let Some(n) = stack.pop() {
            for a in &n.attribute {
                stack.extend(a.g.iter().chain(&a.graphs).flat_map(|g| &g.node));
            }
            if !matches!(n.domain(), "" | "ai.onnx") {
                continue;
            }
            if let Some(rule) = rules_for(n.op_type(), (opset, to)).next() {
                return Err(Error::Upgrade {
                    message: format!(
                        "converting the model from opset {from} to {to}: function `{}` holds node `{}` ({}), \
                         which changed meaning (\"{}\"); onnxq does not rewrite function bodies",
                        f.name(),
                        n.name(),
                        n.op_type(),
                        rule.name
                    ),
                    hint: "inline the function (e.g. `onnx.inliner.inline_local_functions`) and run onnxq again",
                });
            }
        }
    }
    Ok(())
}
