//! Weight-only block quantization (ONNX Runtime's `MatMulNBitsQuantizer`): constant MatMul
//! weights become 2/4/8-bit blocks along K with a scale (and zero point) per block, read by
//! `com.microsoft.MatMulNBits`, and constant Gather tables (embeddings) 4-bit blocks read by
//! `com.microsoft.GatherBlockQuantized`; activations stay float. In the QDQ format
//! (`emit_qdq.rs`) the weights become blocked `DequantizeLinear` nodes feeding the original ops,
//! after the model is converted to opset 21 by `upgrade/` (every node that changed meaning
//! rewritten, or an error naming the one that cannot be).
//!
//! This file is the driver. Per graph, subgraph bodies first (always, as ORT's DEFAULT algorithm
//! does), then three stages: **plan** (`plan.rs`: each selected MatMul or Gather with a constant
//! weight, or the reason it stays float), **quantize** (`quantize.rs`: each distinct weight once, in
//! parallel, with the block kernels of `numerics/blocks.rs`; GPTQ in `gptq.rs`, with Hessians from a
//! [`HessianSource`]), **apply** (`emit.rs`, or
//! `emit_qdq.rs` in the QDQ format), then the
//! float weights nothing reads any more are removed (a weight of an enclosing graph too, once no
//! body reads it).

mod emit;
mod emit_qdq;
mod encode;
mod gptq;
pub mod options;
mod plan;
mod quantize;
mod rank;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use onnxq_ir::{Graph, Model, NodeId, Sources, Spill, ValueId};

use crate::edit::node_label;
use crate::error::{Error, Result};
use crate::report::{Entry, Outcome, Report};
use crate::select::{Scope, Selection, check_patterns};
use crate::weights::{remove_all_if_unused, remove_unread_constants, resolve};
use options::{WEIGHT_ONLY_OPS, WeightOnlyFormat, WeightOnlyOptions};
use plan::Plan;

pub use gptq::{HessianData, HessianRequest, HessianSource};

/// Quantizes `model`'s weights block-wise in place and reports every candidate node; the quantized
/// tensors are held in memory (see [`quantize_weight_only_spilling`] for large models). GPTQ needs
/// calibration data: [`quantize_weight_only_gptq`].
pub fn quantize_weight_only(model: &mut Model, opts: &WeightOnlyOptions) -> Result<Report> {
    run(model, opts, None, None)
}

/// Like [`quantize_weight_only`], but each large quantized tensor goes to a temporary spill file
/// in `spill_dir` as soon as it is made, and the model's tensors then point into that file's map:
/// memory holds the tensors in flight, not the quantized model. Give the output's folder.
pub fn quantize_weight_only_spilling(
    model: &mut Model,
    opts: &WeightOnlyOptions,
    spill_dir: &Path,
) -> Result<Report> {
    run(model, opts, Some(spill_dir), None)
}

/// Quantizes `model` with GPTQ (`opts.algorithm` must be [`options::Algorithm::Gptq`]), the
/// Hessians of the MatMuls' inputs collected by `source` as the memory budget allows; quantized
/// tensors spill to `spill_dir` as in [`quantize_weight_only_spilling`].
pub fn quantize_weight_only_gptq(
    model: &mut Model,
    opts: &WeightOnlyOptions,
    source: &mut dyn HessianSource,
    spill_dir: &Path,
) -> Result<Report> {
    if opts.algorithm != options::Algorithm::Gptq {
        return Err(Error::Internal(
            "GPTQ entry called for another algorithm".into(),
        ));
    }
    let mut stats = gptq::Stats::default();
    let mut report = run(
        model,
        opts,
        Some(spill_dir),
        Some((&mut *source, &mut stats)),
    )?;
    let describe = source.describe();
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
    let lm_head = match opts.lm_head_bits {
        Some(_) => Some(lm_head(&model.graph)?),
        None => None,
    };
    let mut run = Run {
        opts,
        selection,
        report: Report::default(),
        sources: model.sources().clone(),
        spill_dir: None,
        spilled: Vec::new(),
        lm_head,
        gptq: None,
        ranks: main_ranks(model)?,
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
fn run<'g>(
    model: &mut Model,
    opts: &WeightOnlyOptions,
    spill_dir: Option<&Path>,
    gptq: Option<(&'g mut dyn HessianSource, &'g mut gptq::Stats)>,
) -> Result<Report> {
    if opts.algorithm == options::Algorithm::Gptq && gptq.is_none() {
        return Err(Error::Options {
            message: "GPTQ needs calibration data to weigh each weight's error".into(),
            hint: "give --data (samples of the model's inputs), or another --algo (hqq needs none)",
        });
    }
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
    let patterns: Vec<&str> = opts.nodes.iter().map(|n| n.pattern.as_str()).collect();
    check_patterns(&model.graph, Scope::WithSubgraphs, "node entry", &patterns)?;
    let lm_head = match opts.lm_head_bits {
        Some(_) => Some(lm_head(&model.graph)?),
        None => None,
    };
    // Blocked DequantizeLinear exists from opset 21: the model is converted there first (every
    // node that changed meaning rewritten, or an error naming the one that cannot be).
    let upgraded = if opts.format == WeightOnlyFormat::Qdq && opset < QDQ_OPSET {
        Some(crate::upgrade::upgrade(model, QDQ_OPSET)?)
    } else {
        None
    };
    let mut run = Run {
        opts,
        selection,
        report: Report {
            mode: "weight-only".into(),
            nodes: Vec::new(),
            opset: (opset, model.opset("").unwrap_or(opset)),
            notes: upgraded.iter().map(|u| u.summary()).collect(),
            ..Default::default()
        },
        sources: model.sources().clone(),
        spill_dir,
        spilled: Vec::new(),
        lm_head,
        gptq,
        ranks: main_ranks(model)?,
    };
    quantize_graph(&mut model.graph, &[], "main", &mut run)?;
    for s in std::mem::take(&mut run.spilled) {
        model.add_sources(s);
    }
    if run.report.quantized() > 0 && opts.format == WeightOnlyFormat::QOperator {
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

/// The opset of blocked DequantizeLinear (the QDQ format).
const QDQ_OPSET: i64 = 21;

/// The state of one run across the graphs it visits.
struct Run<'a, 'g> {
    opts: &'a WeightOnlyOptions,
    selection: Selection<'a>,
    report: Report,
    sources: Sources,
    /// Where quantized tensors are spilled (None: held in memory).
    spill_dir: Option<&'a Path>,
    /// The maps of the spill files written so far, one per graph.
    spilled: Vec<Sources>,
    /// The main graph's LM head, when it has its own bits.
    lm_head: Option<NodeId>,
    /// GPTQ's Hessian source and counts (GPTQ only).
    gptq: Option<(&'g mut dyn HessianSource, &'g mut gptq::Stats)>,
    /// The rank of each main-graph value whose rank inference knows (a MatMul's A without
    /// `value_info` still needs no rank-restoring Reshape when its rank is known).
    ranks: BTreeMap<String, usize>,
}

/// The ranks inference knows for the main graph's values.
fn main_ranks(model: &Model) -> Result<BTreeMap<String, usize>> {
    let inf = onnxq_infer::infer(model).map_err(Error::edit)?;
    Ok((inf.facts.into_iter())
        .filter_map(|(name, f)| Some((name, f.shape?.len())))
        .collect())
}

/// The LM head: the main graph's last MatMul with a constant weight in topological order (the
/// projection to the vocabulary in a language model).
fn lm_head(g: &Graph) -> Result<NodeId> {
    let order = g.topological_order().map_err(Error::edit)?;
    order
        .into_iter()
        .rev()
        .find(|&id| {
            g.node(id).is_some_and(|n| {
                n.op_type() == "MatMul"
                    && n.domain().is_empty()
                    && crate::edit::input(n, 1).is_some_and(|b| resolve(g, &[], b).is_some())
            })
        })
        .ok_or_else(|| Error::Options {
            message: "--lm-head-bits: the main graph has no MatMul with a constant weight to take \
                      as the LM head"
                .into(),
            hint: "leave --lm-head-bits out, or set a node's bits in the config's \
                   customized_weight_config",
        })
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
    let spill = run.spill_dir.map(Spill::new);
    let pending = match &mut run.gptq {
        // Subgraph MatMuls were planned as skips: GPTQ quantizes the main graph only.
        Some((source, stats)) if !plans.is_empty() => {
            let (opts, sources) = (run.opts, &run.sources);
            gptq::quantize_weights(
                g,
                &plans,
                opts,
                sources,
                (&mut **source, stats),
                spill.as_ref(),
            )?
        }
        _ => quantize::quantize_weights(g, outer, &plans, run.opts, &run.sources, spill.as_ref())?,
    };
    let (quantized, spilled) = quantize::finish(pending, spill)?;
    run.spilled.extend(spilled);
    let mut store = emit::Stored::default();
    let mut dequantized = emit_qdq::Dequantized::default();
    let mut consumed: BTreeSet<ValueId> = BTreeSet::new();
    for (p, entry) in &planned {
        let outcome = match &quantized[&p.key()] {
            Ok(q) => {
                consumed.insert(p.weight_input);
                let pattern = match run.opts.format {
                    WeightOnlyFormat::QOperator => emit::apply(g, &mut store, p, q, run.opts)?,
                    WeightOnlyFormat::Qdq => emit_qdq::apply(g, &mut dequantized, p, q)?,
                };
                Outcome::Quantized { pattern }
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
        let is_head = path == "main" && run.lm_head == Some(id);
        let outcome = run
            .selection
            .check(node.op_type(), node.name())
            .and_then(|()| {
                run.opts
                    .settings_for(node.name(), is_head)
                    .ok_or_else(|| "kept float by its node entry".to_owned())
            })
            .and_then(|settings| match node.op_type() {
                "Gather" => plan::plan_gather(g, outer, id, node, run.opts.gather_axis, settings),
                _ => plan::plan_matmul(g, outer, id, node, settings, |a| {
                    (path == "main").then(|| run.ranks.get(g.value(a).name()).copied())?
                })
                .and_then(|mut p| {
                    if p.restore_rank.is_some() && run.report.opset.0 < 10 {
                        return Err(format!(
                            "weight `{}` has rank {} and input A's rank is unknown or lower: the \
                             reshape restoring MatMul's rank needs opset 10 or newer",
                            p.weight_name,
                            p.dims.len()
                        ));
                    }
                    if run.opts.fold_bias {
                        p.bias = plan::bias_of(g, outer, node, &p);
                    }
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
