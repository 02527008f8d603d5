//! `onnxq calibrate`: load samples, run the model, write the ranges file atomically, bound to the
//! model calibrated by its fingerprint (so `quantize --ranges` can refuse it for another model).

use anyhow::Result;
use onnxq_calib::data::Samples;
use onnxq_calib::{
    HistogramMethod, MinMaxOptions, Ranges, augmented, augmented_minmax, calibrate_extremes,
    calibrate_histogram, calibrate_minmax, candidate_tensors, float_outputs, input_specs,
};
use onnxq_ir::Model;

use crate::args::{CalibMethod, CalibSettings, CalibrateArgs};
use crate::engine::{Backend, hint_engine_errors};
use crate::outputs::{Outputs, Plan};
use crate::util::{Progress, fail, note};

/// The files `--trt-table DIR` writes, as `onnxq_calib::trt::write_tables` names them.
const TRT_FILES: [&str; 3] = [
    "calibration.json",
    "calibration.flatbuffers",
    "calibration.cache",
];

pub(crate) fn run(args: &CalibrateArgs) -> Result<()> {
    let method = args.calib.method;
    crate::method_flags::check(
        method.unwrap_or(CalibMethod::Minmax),
        method.is_some(),
        &crate::method_flags::given_flags(args.given.ids()),
    )?;
    let model = onnxq_ir::load(&args.model)?;
    let mut plan = Plan::default();
    plan.read_model(&args.model, &model);
    plan.read_data(&args.calib.data)?;
    plan.write("ranges file", "-o", &args.output);
    if let Some(dir) = &args.trt_table {
        plan.write_in_folder("TensorRT table", "--trt-table", dir, &TRT_FILES);
    }
    plan.check()?;
    let (mut ranges, notes) = calibrate(&model, &args.calib, None).map_err(hint_engine_errors)?;
    let file = args
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ranges.model = Some(onnxq_calib::ModelId::of(&model, &file));
    for n in &notes {
        note(n);
    }
    let (a, total) = (args, ranges.samples);
    // Every output is written to a temporary, then all are renamed: none is left if one fails.
    let mut outputs = Outputs::default();
    if let Some(dir) = &a.trt_table {
        let (json, flat, cache) = onnxq_calib::trt::tables(&ranges.tensors);
        for (name, bytes) in TRT_FILES
            .iter()
            .zip([json.as_bytes(), &flat, cache.as_bytes()])
        {
            outputs.file("TensorRT table", &dir.join(name), bytes)?;
        }
    }
    let json = serde_json::to_string_pretty(&ranges)? + "\n";
    outputs.file("ranges file", &a.output, json.as_bytes())?;
    outputs.commit()?;
    let skipped = match ranges.skipped.len() {
        0 => String::new(),
        n => format!(" ({n} without a range, listed under `skipped` with the reason)"),
    };
    note(&format!(
        "calibrated {} tensors on {total} samples with {} ({}){skipped}; wrote {}",
        ranges.tensors.len(),
        ranges.engine,
        ranges.method,
        a.output.display()
    ));
    Ok(())
}

/// Runs `model` on the calibration data of `a` and returns every float activation's range, or
/// only those named in `only` (without the model's fingerprint: the caller knows the file), and
/// the notes on the data (float64 cast to float32).
pub(crate) fn calibrate(
    model: &Model,
    a: &CalibSettings,
    only: Option<&std::collections::BTreeSet<String>>,
) -> Result<(Ranges, Vec<String>)> {
    anyhow::ensure!(
        !a.data.is_empty(),
        "no calibration data: give --data with a .npz, a folder of samples or ONNX test-data folders"
    );
    let samples = calib_samples(model, a)?;
    let backend = Backend::choose(a.engine, a.ort_lib.as_deref())?;
    // A session of the model with every tensor as an output tells each tensor's type without a
    // run; only float32 tensors are calibrated.
    let mut candidates = candidate_tensors(model);
    if let Some(only) = only {
        candidates.retain(|c| only.contains(c));
    }
    let floats = float_outputs(
        &mut *backend.load(&augmented(model, &candidates)?, a.threads)?,
        &samples,
    )?;
    let floats: std::collections::BTreeSet<String> = floats.into_iter().collect();
    let floats: Vec<String> = candidates
        .into_iter()
        .filter(|c| floats.contains(c))
        .collect();
    let total = samples.len();
    let (tensors, skipped) = match a.method.unwrap_or(CalibMethod::Minmax) {
        CalibMethod::Minmax => {
            let opts = MinMaxOptions {
                symmetric: a.symmetric.unwrap_or(false),
                moving_average: a.moving_average,
            };
            let (augmented_model, outputs) = augmented_minmax(model, &floats, false)?;
            let mut engine = backend.load(&augmented_model, a.threads)?;
            drop(augmented_model);
            let bar = Progress::new("calibrating", total, "samples");
            calibrate_minmax(&mut *engine, &samples, &outputs, opts, |done| bar.set(done))?
        }
        method => {
            let bins = a.num_bins.unwrap_or(if method == CalibMethod::Entropy {
                128
            } else {
                2048
            });
            let hist = match method {
                CalibMethod::Entropy => HistogramMethod::Entropy {
                    num_bins: bins,
                    num_quantized_bins: a.num_quantized_bins,
                },
                CalibMethod::Percentile => HistogramMethod::Percentile {
                    percentile: a.percentile,
                    num_bins: bins,
                    symmetric: a.symmetric.unwrap_or(true),
                },
                _ => HistogramMethod::Distribution { num_bins: bins },
            };
            check_histogram_args(hist)?;
            // Pass 1 fixes each histogram's range; pass 2 streams the samples through them.
            let (augmented_model, outputs) = augmented_minmax(model, &floats, true)?;
            let extremes = {
                let mut engine = backend.load(&augmented_model, a.threads)?;
                let bar = Progress::new("ranges (pass 1 of 2)", total, "samples");
                calibrate_extremes(&mut *engine, &samples, &outputs, |done| bar.set(done))?
            };
            drop(augmented_model);
            let mut engine = backend.load(&augmented(model, &floats)?, a.threads)?;
            let bar = Progress::new("histograms (pass 2 of 2)", total, "samples");
            calibrate_histogram(&mut *engine, &samples, &extremes, hist, |done| {
                bar.set(done)
            })?
        }
    };
    let ranges = Ranges {
        format: "onnxq-ranges".into(),
        version: Ranges::VERSION,
        method: describe(a),
        engine: backend.name(),
        samples: total,
        model: None,
        tensors,
        skipped,
    };
    Ok((ranges, samples.notes().to_vec()))
}

/// The samples `a` calibrates on: those of `--data`, only the first `a.first` when set.
pub(crate) fn calib_samples(model: &Model, a: &CalibSettings) -> Result<Samples> {
    let mut samples = open_samples(model, &a.data)?;
    if let Some(n) = a.first {
        samples.truncate(n);
    }
    Ok(samples)
}

/// The calibration samples at `data` for `model`, every one checked against the model's inputs
/// here, before an engine is loaded.
pub(crate) fn open_samples(model: &Model, data: &[std::path::PathBuf]) -> Result<Samples> {
    Samples::open(data, &input_specs(model)).map_err(|e| {
        let hint = e.hint.unwrap_or_else(|| {
            "calibration data is a .npz (one array per model input, first axis = samples), a \
             .npy for a single-input model, or a folder of one-sample files"
                .to_owned()
        });
        fail(e.message, hint)
    })
}

fn describe(a: &CalibSettings) -> String {
    let method = a.method.unwrap_or(CalibMethod::Minmax);
    let mut m = format!("{method:?}").to_lowercase();
    match method {
        CalibMethod::Minmax => {
            if a.symmetric == Some(true) {
                m += " symmetric";
            }
            if a.moving_average {
                m += " moving_average";
            }
        }
        CalibMethod::Percentile => {
            m += &format!(
                " {} bins={} symmetric={}",
                a.percentile,
                a.num_bins.unwrap_or(2048),
                a.symmetric.unwrap_or(true)
            );
        }
        CalibMethod::Entropy => {
            m += &format!(
                " bins={} quantized_bins={}",
                a.num_bins.unwrap_or(128),
                a.num_quantized_bins
            )
        }
        CalibMethod::Distribution => m += &format!(" bins={}", a.num_bins.unwrap_or(2048)),
    }
    m
}

/// Refuses histogram settings the searches cannot use.
fn check_histogram_args(m: HistogramMethod) -> Result<()> {
    match m {
        HistogramMethod::Percentile {
            percentile,
            num_bins,
            ..
        } => {
            anyhow::ensure!(
                percentile > 0.0 && percentile <= 100.0,
                "--percentile {percentile} is not in (0, 100]"
            );
            anyhow::ensure!(num_bins >= 1, "--num-bins must be at least 1");
        }
        HistogramMethod::Entropy {
            num_bins,
            num_quantized_bins,
        } => {
            anyhow::ensure!(
                num_quantized_bins >= 2 && num_bins >= num_quantized_bins,
                "--num-bins {num_bins} must be at least --num-quantized-bins {num_quantized_bins} (and that at least 2)"
            );
        }
        HistogramMethod::Distribution { num_bins } => {
            anyhow::ensure!(num_bins >= 1, "--num-bins must be at least 1")
        }
    }
    Ok(())
}
