//! `onnxq calibrate`: load samples, run the model, write the ranges file atomically.

use std::io::Write;

use anyhow::{Context, Result};
use onnxq_calib::data::{load_samples, match_inputs};
use onnxq_calib::{
    MinMaxOptions, Ranges, augmented, augmented_minmax, calibrate_minmax, candidate_tensors,
    float_outputs, input_specs,
};
use onnxq_engine::{Executor, OrtEngine, find_ort_library};

use crate::args::{CalibMethod, CalibrateArgs, Engine};
use crate::util::note;

pub(crate) fn run(a: &CalibrateArgs) -> Result<()> {
    let model = onnxq_ir::load(&a.model)?;
    let samples = load_samples(&a.data).map_err(onnxq_calib::Error::Data)?;
    let samples = match_inputs(samples, &input_specs(&model)).map_err(onnxq_calib::Error::Data)?;
    let (Engine::Auto | Engine::Ort) = a.engine;
    let lib = find_ort_library(a.ort_lib.as_deref())?;
    // A session of the model with every tensor as an output tells each tensor's type without a
    // run; only float32 tensors are calibrated.
    let candidates = candidate_tensors(&model);
    let floats = float_outputs(&OrtEngine::load_bytes(
        &lib,
        &augmented(&model, &candidates)?,
        a.threads,
    )?);
    let floats: Vec<String> = candidates
        .into_iter()
        .filter(|c| floats.contains(c))
        .collect();
    let CalibMethod::Minmax = a.method;
    let opts = MinMaxOptions {
        symmetric: a.symmetric,
        moving_average: a.moving_average,
    };
    let (bytes, outputs) = augmented_minmax(&model, &floats)?;
    let mut engine = OrtEngine::load_bytes(&lib, &bytes, a.threads)?;
    drop(bytes);
    let total = samples.len();
    let tensors = calibrate_minmax(&mut engine, &samples, &outputs, opts, |done| {
        progress(done, total)
    })?;
    let ranges = Ranges {
        format: "onnxq-ranges".into(),
        version: Ranges::VERSION,
        method: describe(a),
        engine: engine.name(),
        samples: total,
        tensors,
    };
    write_atomic(&a.output, &(serde_json::to_string_pretty(&ranges)? + "\n"))?;
    note(&format!(
        "calibrated {} tensors on {total} samples with {} ({}); wrote {}",
        ranges.tensors.len(),
        ranges.engine,
        ranges.method,
        a.output.display()
    ));
    Ok(())
}

fn describe(a: &CalibrateArgs) -> String {
    let mut m = format!("{:?}", a.method).to_lowercase();
    if a.symmetric {
        m += " symmetric";
    }
    if a.moving_average {
        m += " moving_average";
    }
    m
}

/// A one-line progress counter on stderr, redrawn in place.
#[allow(clippy::print_stderr)]
fn progress(done: usize, total: usize) {
    eprint!("\rcalibrating: {done}/{total} samples");
    if done == total {
        eprintln!();
    }
}

fn write_atomic(path: &std::path::Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

fn tempfile_in(dir: &std::path::Path) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".onnxq-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))
}
