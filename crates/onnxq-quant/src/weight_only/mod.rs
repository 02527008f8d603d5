//! Weight-only block quantization (ONNX Runtime's `MatMulNBitsQuantizer`): constant MatMul
//! weights become 2/4/8-bit blocks along K with a scale (and zero point) per block, read by
//! `com.microsoft.MatMulNBits`, and constant Gather tables (embeddings) 4-bit blocks read by
//! `com.microsoft.GatherBlockQuantized`; activations stay float.
//!
//! This file is the driver. Per graph, subgraph bodies first (always, as ORT's DEFAULT algorithm
//! does), then three stages: **plan** (`plan.rs`: each selected MatMul or Gather with a constant
//! weight, or the reason it stays float), **quantize** (`quantize.rs`: each distinct weight once, in
//! parallel, with the block kernels of `numerics/blocks.rs`; GPTQ in `gptq.rs`, with Hessians from a
//! [`HessianSource`]), **apply** (`emit.rs`), then the
//! float weights nothing reads any more are removed (a weight of an enclosing graph too, once no
//! body reads it).

mod emit;
mod gptq;
pub mod options;
mod plan;
mod quantize;

use std::collections::BTreeSet;

use onnxq_ir::{Graph, Model, Sources, ValueId};

use crate::edit::node_label;
use crate::error::{Error, Result};
use crate::report::{Entry, Outcome, Report};
use crate::select::{Scope, Selection};
use crate::weights::{remove_all_if_unused, remove_unread_constants};
use options::{WEIGHT_ONLY_OPS, WeightOnlyOptions};
use plan::Plan;

pub use gptq::{HessianData, HessianRequest, HessianSource};

/// Quantizes `model`'s weights block-wise in place and reports every candidate node. GPTQ needs
/// calibration data: [`quantize_weight_only_gptq`].
pub fn quantize_weight_only(model: &mut Model, opts: &WeightOnlyOptions) -> Result<Report> {
    if opts.algorithm == options::Algorithm::Gptq {
        return Err(Error::Options {
            message: "GPTQ needs calibration data to weigh each weight's error".into(),
            hint: "give --data (samples of the model's inputs), or another --algo (hqq needs none)",
        });
    }
    quantize_with(model, opts, None)
}

/// Quantizes `model` with GPTQ (`opts.algorithm` must be [`options::Algorithm::Gptq`]), the
/// Hessians of the MatMuls' inputs collected by `source` as the memory budget allows.
pub fn quantize_weight_only_gptq(
    model: &mut Model,
    opts: &WeightOnlyOptions,
    source: &mut dyn HessianSource,
) -> Result<Report> {
    if opts.algorithm != options::Algorithm::Gptq {
        return Err(Error::Internal(
            "GPTQ entry called for another algorithm".into(),
        ));
    }
    let describe = source.describe();
    let mut stats = gptq::Stats::default();
    let mut report = quantize_with(model, opts, Some((source, &mut stats)))?;
    let mut line = format!(
        "GPTQ: {} Hessian(s) of MatMul inputs in {} pass(es) over the calibration data \
         ({describe}; memory budget {} MiB)",
        stats.hessians,
        stats.passes,
        opts.gptq.memory >> 20
    );
    if let Some(d) = stats.raised_damping {
        line += &format!("; damping raised to {d} for some Hessian(s)");
    }
    report.calibration = Some(line);
    Ok(report)
}

/// The MatMul inputs whose Hessians GPTQ needs (distinct, by name), for the caller to make them
/// observable before [`quantize_weight_only_gptq`] runs.
pub fn gptq_requests(model: &Model, opts: &WeightOnlyOptions) -> Result<Vec<HessianRequest>> {
    opts.validate()?;
    let op_types = opts.op_types();
    let selection = Selection {
        op_types: &op_types,
        include: &opts.include,
        exclude: &opts.exclude,
    };
    selection.check_entries(&model.graph, Scope::WithSubgraphs)?;
    let mut run = Run {
        opts,
        selection,
        report: Report::default(),
        sources: model.sources().clone(),
        gptq: None,
    };
    let planned = plan_nodes(&model.graph, &[], "main", &mut run);
    let mut out = BTreeSet::new();
    for (p, _) in planned {
        if let plan::Kind::MatMul { k, .. } = p.kind {
            out.insert(HessianRequest {
                tensor: model.graph.value(p.other).name().to_owned(),
                k,
            });
        }
    }
    Ok(out.into_iter().collect())
}

/// The pass, with GPTQ's Hessian source and counts when the algorithm is GPTQ.
fn quantize_with<'g>(
    model: &mut Model,
    opts: &WeightOnlyOptions,
    gptq: Option<(&'g mut dyn HessianSource, &'g mut gptq::Stats)>,
) -> Result<Report> {
    opts.validate()?;
    let opset = model
        .opset("")
        .ok_or_else(|| Error::Model("the model imports no default-domain opset".into()))?;
    let op_types = opts.op_types();
    if let Some(t) = op_types
        .iter()
        .find(|t| !WEIGHT_ONLY_OPS.contains(&t.as_str()))
    {
        return Err(Error::Selection(format!(
            "op type `{t}` is not quantized by weight-only quantization (it rewrites {})",
            WEIGHT_ONLY_OPS.join(", ")
        )));
    }
    let selection = Selection {
        op_types: &op_types,
        include: &opts.include,
        exclude: &opts.exclude,
    };
    selection.check_entries(&model.graph, Scope::WithSubgraphs)?;
    let mut run = Run {
        opts,
        selection,
        report: Report {
            mode: "weight-only".into(),
            nodes: Vec::new(),
            opset: (opset, opset),
            ..Default::default()
        },
        sources: model.sources().clone(),
        gptq,
    };
    quantize_graph(&mut model.graph, &[], "main", &mut run)?;
    if run.report.quantized() > 0 {
        crate::opset::import_domain(model, "com.microsoft");
    }
    // INT4/UINT4 tensors (GatherBlockQuantized's table) exist from IR version 10; the opset is
    // left as it is, since no default-domain node changed.
    let int4 = run.report.nodes.iter().any(|e| {
        matches!(&e.outcome, Outcome::Quantized { pattern } if pattern.starts_with("GatherBlockQuantized"))
    });
    if int4 && model.proto.ir_version() < 10 {
        model.proto.ir_version = Some(10);
    }
    model.graph.validate().map_err(Error::edit)?;
    Ok(run.report)
}

/// The state of one run across the graphs it visits.
struct Run<'a, 'g> {
    opts: &'a WeightOnlyOptions,
    selection: Selection<'a>,
    report: Report,
    sources: Sources,
    gptq: Option<(&'g mut dyn HessianSource, &'g mut gptq::Stats)>,
}

/// One graph: its subgraphs, then plan → quantize → apply → remove unused float weights.
fn quantize_graph(
    g: &mut Graph,
    outer: &[&Graph],
    path: &str,
    run: &mut Run<'_, '_>,
) -> Result<()> {
    quantize_subgraphs(g, outer, path, run)?;
    let planned = plan_nodes(g, outer, path, run);
    let plans: Vec<Plan> = planned.iter().map(|(p, _)| p.clone()).collect();
    let quantized = match &mut run.gptq {
        // Subgraph MatMuls were planned as skips: GPTQ quantizes the main graph only.
        Some((source, stats)) if !plans.is_empty() => {
            gptq::quantize_weights(g, &plans, run.opts, &run.sources, &mut **source, stats)?
        }
        _ => quantize::quantize_weights(g, outer, &plans, run.opts, &run.sources)?,
    };
    let mut store = emit::Stored::default();
    let mut consumed: BTreeSet<ValueId> = BTreeSet::new();
    for (p, entry) in &planned {
        let outcome = match &quantized[&p.key()] {
            Ok(q) => {
                consumed.insert(p.weight_input);
                Outcome::Quantized {
                    pattern: emit::apply(g, &mut store, p, q, run.opts)?,
                }
            }
            Err(skip) => {
                if skip.warn {
                    run.report.warnings.push(skip.reason.clone());
                }
                Outcome::skipped(skip.reason.clone())
            }
        };
        run.report.nodes[*entry].outcome = outcome;
    }
    remove_all_if_unused(g, consumed).map_err(Error::edit)?;
    // And every constant nothing reads (as the other passes end), the input's own included.
    remove_unread_constants(g).map_err(Error::edit)
}

/// The subgraph bodies of `g`'s nodes, each with `g` (read-only) as its closest enclosing scope.
fn quantize_subgraphs(
    g: &mut Graph,
    outer: &[&Graph],
    path: &str,
    run: &mut Run<'_, '_>,
) -> Result<()> {
    crate::subgraphs::edit_bodies(g, outer, path, |sub, scope, sub_path| {
        quantize_graph(sub, scope, sub_path, run)
    })
}

/// Plans every candidate node of `g` in graph order, each with its report entry (a skip reason,
/// or a placeholder the apply stage fills in).
fn plan_nodes(
    g: &Graph,
    outer: &[&Graph],
    path: &str,
    run: &mut Run<'_, '_>,
) -> Vec<(Plan, usize)> {
    let mut planned = Vec::new();
    for (id, node) in g.nodes() {
        if !node.domain().is_empty() || !WEIGHT_ONLY_OPS.contains(&node.op_type()) {
            continue;
        }
        let outcome = run
            .selection
            .check(node.op_type(), node.name())
            .and_then(|()| match node.op_type() {
                "Gather" => {
                    plan::plan_gather(g, outer, id, node, run.opts.gather_axis, run.opts.bits)
                }
                _ => plan::plan_matmul(g, outer, id, node).and_then(|p| {
                    if run.opts.algorithm == options::Algorithm::Gptq {
                        gptq::check_input(g, outer, &p)?;
                    }
                    Ok(p)
                }),
            });
        let entry = run.report.nodes.len();
        let outcome = match outcome {
            Ok(plan) => {
                planned.push((plan, entry));
                Outcome::skipped("")
            }
            Err(reason) => Outcome::skipped(reason),
        };
        run.report.nodes.push(Entry::new(
            path,
            node_label(g, node),
            node.op_type(),
            outcome,
        ));
    }
    planned
}
