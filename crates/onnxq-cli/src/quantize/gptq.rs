//! `--algo gptq`: the Hessian collection stage before the weight-only pass. The float model is
//! planned into segments (`onnxq_calib::segments`) of about an eighth of `--gptq-memory` in
//! weights each, so the engine never holds the whole model; the pass asks for Hessians a pass over
//! `--data` at a time, as its memory budget allows, and each request resumes the sweep over the
//! segments where the last one stopped, with a progress bar.

use std::collections::BTreeSet;

use anyhow::Result;
use onnxq_calib::data::Samples;
use onnxq_calib::hessian::{HessianSums, HessianTarget};
use onnxq_calib::segments::{Segments, Sweep};
use onnxq_ir::{Def, Model};
use onnxq_quant::{HessianData, HessianRequest, HessianSource, Report, WeightOnlyOptions};

use crate::args::QuantizeArgs;
use crate::engine::Backend;
use crate::util::Progress;

/// Each segment holds about this fraction of the GPTQ memory budget in weights.
const SEGMENT_SHARE: u64 = 8;

/// Quantizes `model` with GPTQ on the calibration data of `a`, staging the quantized tensors in
/// `spill_dir` (the output's folder).
pub(super) fn quantize(
    a: &QuantizeArgs,
    model: &mut Model,
    opts: &WeightOnlyOptions,
    spill_dir: &std::path::Path,
) -> Result<Report> {
    let requests = onnxq_quant::gptq_requests(model, opts)?;
    let samples = crate::calibrate::calib_samples(model, &a.calib)?;
    // No engine when every input is a graph input (read from the feeds).
    let node_outputs: BTreeSet<String> = requests
        .iter()
        .filter(|r| {
            model
                .graph
                .value_by_name(&r.tensor)
                .is_some_and(|v| matches!(model.graph.value(v).def(), Def::Node { .. }))
        })
        .map(|r| r.tensor.clone())
        .collect();
    let backend = if node_outputs.is_empty() {
        None
    } else {
        Some(Backend::choose(a.calib.engine, a.calib.ort_lib.as_deref())?)
    };
    let sweep = Sweep::new(Segments::plan(model, opts.gptq.memory / SEGMENT_SHARE)?);
    let mut source = EngineHessians {
        backend,
        threads: a.calib.threads,
        sweep,
        samples,
        node_outputs,
    };
    Ok(onnxq_quant::quantize_weight_only_gptq(
        model,
        opts,
        &mut source,
        spill_dir,
    )?)
}

/// Hessians from runs of the engine over the model's segments on the samples.
struct EngineHessians {
    /// `None` when every input GPTQ reads is a graph input.
    backend: Option<Backend>,
    threads: usize,
    sweep: Sweep,
    /// The requested tensors that are node outputs (the others are graph inputs).
    node_outputs: BTreeSet<String>,
    samples: Samples,
}

impl HessianSource for EngineHessians {
    fn collect(
        &mut self,
        tensors: &[HessianRequest],
        pass: usize,
        passes: usize,
    ) -> onnxq_quant::Result<Vec<HessianData>> {
        let targets: Vec<HessianTarget> = tensors
            .iter()
            .map(|r| HessianTarget {
                tensor: r.tensor.clone(),
                k: r.k,
                patches: None,
            })
            .collect();
        let fail = |e: onnxq_calib::Error| onnxq_quant::Error::Calibration(Box::new(e));
        let mut sums = HessianSums::new(&targets);
        // Node outputs come from the segments' runs, graph inputs from the feeds.
        let (wanted, fed): (BTreeSet<String>, BTreeSet<String>) = targets
            .iter()
            .map(|t| t.tensor.clone())
            .partition(|t| self.node_outputs.contains(t));
        if !fed.is_empty() {
            let bar = Progress::new(
                "GPTQ Hessians (graph inputs)",
                self.samples.len(),
                "samples",
            );
            self.samples
                .each(|i, sample| {
                    sums.add_feeds(&sample)?;
                    bar.set(i + 1);
                    Ok::<(), onnxq_calib::Error>(())
                })
                .map_err(fail)?;
        }
        if !wanted.is_empty() {
            let backend = self.backend.as_ref().ok_or_else(|| {
                onnxq_quant::Error::Internal("GPTQ needs an engine and has none".into())
            })?;
            let threads = self.threads;
            let mut load = |m: &Model| {
                backend
                    .load(m, threads)
                    .map_err(|e| onnxq_calib::Error::Data(format!("{e:#}")))
            };
            let mut bar: Option<(usize, Progress)> = None;
            let n = self.samples.len();
            let mut progress = |segment: usize, done: usize| {
                if bar.as_ref().is_none_or(|(s, _)| *s != segment) {
                    let label = if passes > 1 {
                        format!("GPTQ Hessians (pass {pass} of {passes}, segment {segment})")
                    } else {
                        format!("GPTQ Hessians (segment {segment})")
                    };
                    bar = Some((segment, Progress::new(&label, n, "samples")));
                }
                if let Some((_, b)) = &bar {
                    b.set(done);
                }
            };
            self.sweep
                .run_until(
                    &wanted,
                    &self.samples,
                    &mut load,
                    &mut |_, name, dims, data| sums.add(name, dims, data),
                    &mut progress,
                )
                .map_err(fail)?;
        }
        Ok(sums
            .finish()
            .into_iter()
            .map(|h| HessianData {
                values: h.values,
                rows: h.rows,
            })
            .collect())
    }

    fn describe(&self) -> String {
        let engine = self.backend.as_ref().map_or_else(
            || "no model run: every input is a graph input".to_owned(),
            Backend::name,
        );
        format!(
            "{} samples, {engine}; the model planned in {} segment(s) of about {} of \
             weights, {} segment run(s)",
            self.samples.len(),
            self.sweep.planned(),
            crate::util::human_bytes(self.sweep.segment_weights()),
            self.sweep.runs()
        )
    }
}
