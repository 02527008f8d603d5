//! `--algo gptq`: the Hessian collection stage before the weight-only pass. The float model, with
//! the MatMul inputs GPTQ reads added as outputs, is loaded once in the chosen engine (before the
//! pass edits anything); the pass then asks for Hessians a pass over `--data` at a time, as its
//! memory budget allows, and each request streams the samples through
//! `onnxq_calib::hessian::collect_hessians` with a progress bar.

use anyhow::Result;
use onnxq_calib::data::Samples;
use onnxq_calib::hessian::{HessianTarget, collect_hessians};
use onnxq_engine::Executor;
use onnxq_ir::{Def, Model};
use onnxq_quant::{HessianData, HessianRequest, HessianSource, Report, WeightOnlyOptions};

use crate::args::QuantizeArgs;
use crate::engine::Backend;
use crate::util::Progress;

/// Quantizes `model` with GPTQ on the calibration data of `a`, staging the quantized tensors in
/// `spill_dir` (the output's folder).
pub(super) fn quantize(
    a: &QuantizeArgs,
    model: &mut Model,
    opts: &WeightOnlyOptions,
    spill_dir: &std::path::Path,
) -> Result<Report> {
    let requests = onnxq_quant::gptq_requests(model, opts)?;
    let samples = crate::calibrate::open_samples(model, &a.calib.data)?;
    // Graph inputs are read from the feeds; node outputs become outputs of the engine's copy.
    let outputs: Vec<String> = requests
        .iter()
        .filter(|r| {
            model
                .graph
                .value_by_name(&r.tensor)
                .is_some_and(|v| matches!(model.graph.value(v).def(), Def::Node { .. }))
        })
        .map(|r| r.tensor.clone())
        .collect();
    // No engine when every input is a graph input (read from the feeds).
    let (engine, name) = if outputs.is_empty() {
        (
            None,
            "no model run: every input is a graph input".to_owned(),
        )
    } else {
        let backend = Backend::choose(a.calib.engine, a.calib.ort_lib.as_deref())?;
        let augmented = onnxq_calib::augmented(model, &outputs)?;
        (
            Some(backend.load(&augmented, a.calib.threads)?),
            backend.name(),
        )
    };
    let mut source = EngineHessians {
        engine,
        samples,
        name,
    };
    Ok(onnxq_quant::quantize_weight_only_gptq(
        model,
        opts,
        &mut source,
        spill_dir,
    )?)
}

/// Hessians from runs of the engine on the samples.
struct EngineHessians {
    /// `None` when every input GPTQ reads is a graph input.
    engine: Option<Box<dyn Executor>>,
    samples: Samples,
    name: String,
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
            })
            .collect();
        let label = if passes > 1 {
            format!("GPTQ Hessians (pass {pass} of {passes})")
        } else {
            "GPTQ Hessians".to_owned()
        };
        let bar = Progress::new(&label, self.samples.len(), "samples");
        let hessians = collect_hessians(
            self.engine.as_mut().map(|e| &mut **e as &mut dyn Executor),
            &self.samples,
            &targets,
            |done| bar.set(done),
        )
        .map_err(|e| onnxq_quant::Error::Calibration(Box::new(e)))?;
        Ok(hessians
            .into_iter()
            .map(|h| HessianData {
                values: h.values,
                rows: h.rows,
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!("{} samples, {}", self.samples.len(), self.name)
    }
}
