//! `onnxq calibrate`: load samples, run the model, write the ranges file atomically.

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
use crate::util::{Progress, note};

/// The files `--trt-table DIR` writes, as `onnxq_calib::trt::write_tables` names them.
const TRT_FILES: [&str; 3] = [
    "calibration.json",
    "calibration.flatbuffers",
    "calibration.cache",
];

pub(crate) fn run(args: &CalibrateArgs) -> Result<()> {
    let model = onnxq_ir::load(&args.model)?;
    let mut plan = Plan::default();
    plan.read_model(&args.model, &model);
    plan.read_data(&args.calib.data)?;
    plan.write("ranges file", "-o", &args.output);
    if let Some(dir) = &args.trt_table {
        plan.write_in_folder("TensorRT table", "--trt-table", dir, &TRT_FILES);
    }
    plan.check()?;
    let ranges = calibrate(&model, &args.calib, None).map_err(hint_engine_errors)?;
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
/// only those named in `only`.
pub(crate) fn calibrate(
    model: &Model,
    a: &CalibSettings,
    only: Option<&std::collections::BTreeSet<String>>,
) -> Result<Ranges> {
    anyhow::ensure!(
        !a.data.is_empty(),
        "no calibration data: give --data with a .npz, a folder of samples or ONNX test-data folders"
    );
    let samples = Samples::open(&a.data, &input_specs(model)).map_err(onnxq_calib::Error::Data)?;
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
    Ok(Ranges {
        format: "onnxq-ranges".into(),
        version: Ranges::VERSION,
        method: describe(a),
        engine: backend.name(),
        samples: total,
        tensors,
        skipped,
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
