//! `quantize --measure`: once the model is written, the float and the quantized model timed in
//! ONNX Runtime side by side and their outputs compared on the calibration samples; a quantized
//! model slower than its float model gets the patterns that likely cost the time (read from the
//! model as ONNX Runtime optimizes it) and the options that avoid them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use onnxq_engine::{Latency, Optimization, Schedule, find_ort_library};
use onnxq_ir::Model;

use crate::args::QuantizeArgs;
use crate::calibrate::open_samples;
use crate::engine::Backend;
use crate::measure::{Timing, agreement, first_samples, latencies, shared_outputs, speed_word};
use crate::outputs::engine_prefix;
use crate::util::{HintExt, fail, note, warn};

/// Samples cycled through by the timed runs.
const TIMED_SAMPLES: usize = 8;
/// Samples the outputs are compared on.
const COMPARED_SAMPLES: usize = 64;
/// Latency is timed on one intra-op thread: the ratio of the two models is what is reported,
/// and one thread keeps it free of the scheduler's noise.
const TIMING: Timing = Timing {
    threads: 1,
    schedule: Schedule {
        warmup: 5,
        runs: 40,
    },
};

/// Checks, before any work, that `--measure` can be done: ONNX Runtime and samples.
pub(super) fn preflight(a: &QuantizeArgs) -> Result<Option<PathBuf>> {
    if !a.measure {
        return Ok(None);
    }
    if a.calib.data.is_empty() {
        return Err(fail(
            "--measure times and compares the models on sample data, and no --data was given",
            "give --data SAMPLES (the calibration samples serve)",
        ));
    }
    let lib = find_ort_library(a.calib.ort_lib.as_deref())
        .hint("--measure times the models in ONNX Runtime: `pip install onnxruntime==1.31.1`, or point --ort-lib at libonnxruntime.so")?;
    Ok(Some(lib))
}

/// Times both model files, compares the outputs, prints the result and any slow pattern.
pub(super) fn report(a: &QuantizeArgs, lib: &Path, float: &Model, quant: &Model) -> Result<()> {
    let mut samples = open_samples(float, &a.calib.data)?;
    let fed = first_samples(&samples, TIMED_SAMPLES)?;
    let lat = latencies(lib, &[a.model.clone(), a.output.clone()], &fed, TIMING)?;
    samples.truncate(COMPARED_SAMPLES);
    let backend = Backend::choose(a.calib.engine, a.calib.ort_lib.as_deref())?;
    let mut fe = backend.load(float, a.calib.threads)?;
    let outputs = shared_outputs(float, quant);
    let g = agreement(
        quant,
        &mut *fe,
        &backend,
        &samples,
        &outputs,
        a.calib.threads,
    )?;
    let top1 = g
        .top1
        .map_or(String::new(), |t| format!(", top-1 agreement {t:.4}"));
    note(&format!(
        "measured in {} ({} thread, {} interleaved runs, median): float {:.3} ms, quantized {:.3} \
         ms ({}); outputs on {} calibration samples: SQNR {:.2} dB, cosine {:.6}{top1}",
        backend_name(lib),
        TIMING.threads,
        TIMING.schedule.runs,
        lat[0].median_ms,
        lat[1].median_ms,
        speed_word(&lat[0], &lat[1]),
        samples.len(),
        g.sqnr_db,
        g.cosine,
    ));
    if slower(&lat[0], &lat[1]) {
        explain(a, lib, quant, &lat)?;
    }
    Ok(())
}

fn backend_name(lib: &Path) -> String {
    format!("onnxruntime {}", onnxq_engine::ort_version(lib))
}

/// Slower beyond the spread of the runs: the quantized median above the float model's 90th
/// percentile.
fn slower(float: &Latency, quant: &Latency) -> bool {
    quant.median_ms > float.p90_ms.max(float.median_ms * 1.02)
}

/// The warning for a slower model, with the patterns read from ORT's optimized graph.
fn explain(a: &QuantizeArgs, lib: &Path, quant: &Model, lat: &[Latency]) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix(&engine_prefix())
        .tempdir()
        .context("cannot create a temporary folder for ONNX Runtime's optimized copy")?;
    let out = dir.path().join("optimized.onnx");
    let optimized = onnxq_engine::ort_optimize(
        lib,
        &a.output,
        &out,
        "optimized.onnx.data",
        Optimization::All,
    )
    .ok()
    .and_then(|()| onnxq_ir::load(&out).ok());
    let causes = onnxq_debug::speed::causes(quant, optimized.as_ref());
    let mut w = format!(
        "the quantized model is {} than the float model in ONNX Runtime ({:.3} ms against {:.3} \
         ms)",
        speed_word(&lat[0], &lat[1]),
        lat[1].median_ms,
        lat[0].median_ms
    );
    if causes.is_empty() {
        w += "; no known slow pattern found in it: compare the formats with `onnxq bench`";
    }
    for c in &causes {
        w += &format!("\n  likely cause: {}\n  avoid it with: {}", c.what, c.avoid);
    }
    warn(&w);
    Ok(())
}
