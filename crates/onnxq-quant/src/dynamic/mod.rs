//! Dynamic quantization (ONNX Runtime's `quantize_dynamic`): weights are quantized offline into
//! initializers; activations are quantized at run time by `DynamicQuantizeLinear` (uint8).
//!
//! This file is the driver. Per graph, subgraph bodies first (recursively when `enable_subgraph`
//! is set, else reported as skipped), then three stages, so op quantizers never edit: **plan**
//! (each registered op quantizer in `ops/` reads its node and returns a [`NodePlan`] or a skip
//! reason; types in `plan.rs`), **quantize weights** (`quantize.rs`: every distinct weight once,
//! in parallel), **apply** (each op quantizer emits its pattern through `emit.rs`).

mod emit;
pub mod ops;
mod plan;
mod quantize;

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::{Graph, Model, Sources, ValueId};

pub use emit::Shared;
use ops::DynamicOp;
pub use plan::{Layout, NodePlan, PlanCx, WeightKey, WeightPlan};

use crate::edit::node_label;
use crate::error::{Error, Result};
use crate::options::DynamicOptions;
use crate::report::{Entry, Outcome, Report};
use crate::select::{Scope, Selection, report_subgraph_skips};
use crate::weights::{remove_all_if_unused, remove_unread_constants};

/// Quantizes `model` dynamically in place and reports what happened to every candidate node.
pub fn quantize_dynamic(model: &mut Model, opts: &DynamicOptions) -> Result<Report> {
    let opset = model
        .opset("")
        .ok_or_else(|| Error::Model("the model imports no default-domain opset".into()))?;
    let new_opset = crate::opset::require(model, 11)?;
    selection(opts).check_entries(&model.graph, Scope::WithSubgraphs)?;
    let mut run = Run {
        opts,
        report: Report {
            mode: "dynamic".into(),
            nodes: Vec::new(),
            opset: (opset, new_opset),
            notes: Vec::new(),
            ..Default::default()
        },
        domains: BTreeSet::new(),
        sources: model.sources().clone(),
    };
    quantize_graph(&mut model.graph, &[], "main", &mut run)?;
    for domain in run.domains {
        crate::opset::import_domain(model, domain);
    }
    model.graph.validate().map_err(Error::edit)?;
    Ok(run.report)
}

/// The state of one run across the graphs it visits.
struct Run<'a> {
    opts: &'a DynamicOptions,
    report: Report,
    /// Operator domains the emitted nodes need, imported at the end.
    domains: BTreeSet<&'static str>,
    sources: Sources,
}

/// The user's selection under dynamic options.
fn selection(opts: &DynamicOptions) -> Selection<'_> {
    Selection {
        op_types: &opts.op_types,
        include: &opts.include,
        exclude: &opts.exclude,
    }
}

/// A node's plan, with its quantizer and its report entry.
struct Planned {
    op: &'static dyn DynamicOp,
    plan: NodePlan,
    entry: usize,
}

/// One graph (`path` in the report): its subgraphs, then plan → quantize weights → apply.
fn quantize_graph(g: &mut Graph, outer: &[&Graph], path: &str, run: &mut Run<'_>) -> Result<()> {
    quantize_subgraphs(g, outer, path, run)?;
    let planned = plan_nodes(g, outer, path, run);
    let weights = planned.iter().flat_map(|p| &p.plan.weights);
    let quantized = quantize::quantize_weights(g, outer, weights, &run.sources)?;
    apply(g, &planned, quantized, run)
}

/// The subgraph bodies of `g`'s nodes, each with `g` (read-only) as its closest enclosing scope:
/// quantized when `enable_subgraph` is set, else their candidates reported as skipped.
fn quantize_subgraphs(
    g: &mut Graph,
    outer: &[&Graph],
    path: &str,
    run: &mut Run<'_>,
) -> Result<()> {
    crate::subgraphs::edit_bodies(g, outer, path, |sub, scope, sub_path| {
        if run.opts.enable_subgraph {
            quantize_graph(sub, scope, sub_path, run)
        } else {
            report_subgraph_skips(
                sub,
                sub_path,
                &|n| ops::quantizer_for(n).is_some(),
                &mut run.report,
            );
            Ok(())
        }
    })
}

/// Plans every candidate node of `g`, in graph order, with a report entry each (a skip reason, or
/// a placeholder the apply stage fills in).
fn plan_nodes(g: &Graph, outer: &[&Graph], path: &str, run: &mut Run<'_>) -> Vec<Planned> {
    let cx = PlanCx {
        graph: g,
        outer,
        opts: run.opts,
    };
    let selection = selection(run.opts);
    let types = crate::dtypes::known_types(g);
    let mut planned = Vec::new();
    for (id, node) in g.nodes() {
        let Some(op) = ops::quantizer_for(node) else {
            continue;
        };
        // Integer shape arithmetic (a Gather of a shape) has nothing to quantize: no candidate.
        if crate::dtypes::all_non_float(node, &types) {
            continue;
        }
        let outcome = selection
            .check(op.op_type(), node.name())
            .and_then(|()| op.plan(&cx, id));
        let entry = run.report.nodes.len();
        let (outcome, plan) = match outcome {
            Ok(plan) => (Outcome::skipped(""), Some(plan)),
            Err(reason) => (Outcome::skipped(reason), None),
        };
        run.report.nodes.push(Entry::new(
            path,
            node_label(g, node),
            node.op_type(),
            outcome,
        ));
        if let Some(plan) = plan {
            planned.push(Planned { op, plan, entry });
        }
    }
    planned
}

/// Emits every plan's pattern in graph order, fills in the report entries, and removes the float
/// weights nothing reads any more.
fn apply(
    g: &mut Graph,
    planned: &[Planned],
    quantized: quantize::Quantized,
    run: &mut Run<'_>,
) -> Result<()> {
    let sqnr: BTreeMap<WeightKey, Option<f64>> = quantized
        .done
        .iter()
        .map(|(k, q)| (k.clone(), q.sqnr_db))
        .collect();
    let nonfinite = quantized.nonfinite;
    let mut shared = Shared::new(quantized.done);
    let mut consumed: BTreeSet<ValueId> = BTreeSet::new();
    for p in planned {
        if let Some((w, bad)) = p
            .plan
            .weights
            .iter()
            .find_map(|w| nonfinite.get(&w.key).map(|n| (w, *n)))
        {
            leave_float(g, w, bad, &mut run.report, p.entry);
            continue;
        }
        let pattern = p.op.apply(g, &p.plan, &mut shared)?;
        consumed.extend(p.plan.weights.iter().map(|w| w.value));
        let entry = &mut run.report.nodes[p.entry];
        entry.outcome = Outcome::Quantized { pattern };
        entry.weight_sqnr_db = p
            .plan
            .weights
            .iter()
            .filter_map(|w| sqnr.get(&w.key).copied().flatten())
            .reduce(f64::min);
    }
    // Together, so a weight read through many Identity nodes is not rescanned per node.
    remove_all_if_unused(g, consumed).map_err(Error::edit)?;
    // Constants the model carried unread: ONNX Runtime warns about each at load.
    remove_unread_constants(g).map_err(Error::edit)?;
    run.domains.extend(shared.into_domains());
    Ok(())
}

/// Leaves the node of report entry `entry` float: its weight `w` holds `bad` NaN or infinite
/// values, which would quantize with an infinite scale (ONNX Runtime's tool stops with "scale
/// issue"); the warning names the weight.
fn leave_float(g: &Graph, w: &WeightPlan, bad: usize, report: &mut Report, entry: usize) {
    let name = g.value(w.value).name().to_owned();
    let e = &mut report.nodes[entry];
    e.outcome = Outcome::skipped(format!(
        "weight `{name}` holds {bad} NaN or infinite value(s)"
    ));
    report.warnings.push(format!(
        "weight `{name}` of {} ({}) holds {bad} NaN or infinite value(s): left float (it has no \
         finite scale, and quantized it would break every output); check the model's export or training",
        e.node, e.op_type
    ));
}
