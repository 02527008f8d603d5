//! The activation ranges static quantization uses: read from `--ranges` or calibrated from `--data`.
//!
//! A `--ranges` file must be for this model: ranges are keyed by tensor name, and exporters
//! reuse names, so another model's file applies silently and badly (mobilenetv2 with digits-cnn's
//! ranges scores 0.19 top-1 agreement, 0.62 with its own). A file records its model's fingerprint
//! ([`onnxq_calib::ModelId`]) and is refused for another model, or when it lacks ranges of float
//! tensors this quantization reads; `--force-ranges` uses it anyway, with a note.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use onnxq_ir::Def;
use onnxq_quant::qdq::Ranges;

use crate::args::{CalibMethod, QuantizeArgs};
use crate::config::Config;
use crate::util::{HintExt, fail};

/// The activation ranges: read from `--ranges` (checked against the model), or calibrated here
/// from `--data`; and the notes to print: on the data or the file, and the tensors quantization
/// reads that calibration gave no range, with the reason (they stay float unless an override or
/// their op's rule fixes their parameters).
pub(super) fn static_ranges(
    a: &QuantizeArgs,
    cfg: &Config,
    model: &onnxq_ir::Model,
    opts: &onnxq_quant::StaticOptions,
) -> Result<(Ranges, Vec<String>, super::stamp::Calibration)> {
    // Only the tensors quantization reads are calibrated from `--data`; the note names the same
    // ones from a full file.
    let targets = onnxq_quant::qdq::calibration_targets(model, opts);
    let mut notes = Vec::new();
    let ranges = match &a.ranges {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read ranges `{}`", path.display()))?;
            let ranges = onnxq_calib::Ranges::from_json(&text)
                .map_err(|e| anyhow::anyhow!("ranges `{}`: {e}", path.display()))
                .hint("give a file written by `onnxq calibrate`, or calibrate again")?;
            notes.extend(check_bound(a, path, model, &ranges, &targets)?);
            ranges
        }
        None if a.force_ranges => {
            return Err(fail(
                "--force-ranges applies to a --ranges file, and ranges calibrated here from \
                 --data are this model's",
                "drop --force-ranges",
            ));
        }
        None => {
            anyhow::ensure!(
                !a.calib.data.is_empty(),
                "static quantization needs activation ranges: give --data (calibration samples) \
                 or --ranges (a file from `onnxq calibrate`)"
            );
            let x = &cfg.extra_options;
            let mut c = a.calib.clone();
            c.method = c.method.or(cfg.method).or(Some(CalibMethod::Minmax));
            c.symmetric = c.symmetric.or(x.calib_symmetric);
            c.moving_average |= x.calib_moving_average.unwrap_or(false);
            if let Some(p) = x.calib_percentile {
                c.percentile = p;
            }
            let (ranges, data_notes) = crate::calibrate::calibrate(model, &c, Some(&targets))?;
            notes.extend(data_notes);
            ranges
        }
    };
    let known = ranges
        .tensors
        .keys()
        .filter(|t| model.graph.value_by_name(t).is_some())
        .count();
    if known == 0 && !ranges.tensors.is_empty() {
        return Err(fail(
            format!(
                "none of the {} tensors in the ranges names a tensor of this model",
                ranges.tensors.len()
            ),
            "calibrate this model: `onnxq calibrate MODEL --data SAMPLES -o ranges.json`",
        ));
    }
    notes.extend(unranged_note(&ranges.skipped, &targets));
    let calibration = super::stamp::Calibration::of(&ranges, a.ranges.is_some());
    let ranges = ranges
        .tensors
        .iter()
        .map(|(k, r)| (k.clone(), (r.min, r.max)))
        .collect();
    Ok((ranges, notes, calibration))
}

/// Checks that the `--ranges` file at `path` is for `model`: its fingerprint, when it has one
/// (files of earlier onnxq versions do not: a note says so), and its coverage of the float
/// activations among `targets`. A problem is an error, or with `--force-ranges` a note.
fn check_bound(
    a: &QuantizeArgs,
    path: &Path,
    model: &onnxq_ir::Model,
    ranges: &onnxq_calib::Ranges,
    targets: &BTreeSet<String>,
) -> Result<Vec<String>> {
    let shown = path.display();
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    match &ranges.model {
        Some(calibrated) => {
            let file = a
                .model
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(why) = onnxq_calib::ModelId::of(model, &file).mismatch(calibrated) {
                problems.push(format!(
                    "ranges `{shown}` were calibrated on another model than `{}` (its file was \
                     `{}`; {why})",
                    a.model.display(),
                    calibrated.file
                ));
            }
        }
        None => notes.push(format!(
            "ranges `{shown}` (version {}, from an earlier onnxq) do not say which model they \
             were calibrated on: checked by tensor coverage only; `onnxq calibrate` again binds \
             them to the model",
            ranges.version
        )),
    }
    let missing = uncovered(model, ranges, targets);
    if !missing.is_empty() {
        let first: Vec<String> = missing.iter().take(3).map(|n| format!("`{n}`")).collect();
        let more = if missing.len() > 3 { ", ..." } else { "" };
        problems.push(format!(
            "ranges `{shown}` have no range for {} float tensor(s) this quantization reads: {}{more}",
            missing.len(),
            first.join(", ")
        ));
    }
    if problems.is_empty() {
        return Ok(notes);
    }
    if a.force_ranges {
        notes.push(format!(
            "--force-ranges: {}; tensors without a range stay float",
            problems.join("; ")
        ));
        return Ok(notes);
    }
    Err(fail(
        problems.join("; and "),
        "calibrate this model (`onnxq calibrate MODEL --data SAMPLES -o ranges.json`) or \
         quantize with --data; --force-ranges uses the file anyway (tensors without a range stay \
         float)",
    ))
}

/// The activations among `targets` known to be float32 that `ranges` neither ranges nor lists
/// under `skipped`: graph inputs and node outputs, less Constant values (constants get their
/// parameters from their values, not from calibration).
fn uncovered(
    model: &onnxq_ir::Model,
    ranges: &onnxq_calib::Ranges,
    targets: &BTreeSet<String>,
) -> Vec<String> {
    let g = &model.graph;
    let floats = onnxq_calib::float_tensors(model);
    targets
        .iter()
        .filter(|t| floats.contains(*t))
        .filter(|t| !ranges.tensors.contains_key(*t) && !ranges.skipped.contains_key(*t))
        .filter(|t| {
            g.value_by_name(t).is_some_and(|v| match g.value(v).def() {
                Def::Input => true,
                Def::Node { node, .. } => g.node(*node).is_some_and(|n| n.op_type() != "Constant"),
                _ => false,
            })
        })
        .cloned()
        .collect()
}

/// The note naming the tensors of `targets` calibration gave no range (`skipped`), grouped by
/// reason, with three names and three reasons at most: the note stays one line.
fn unranged_note(
    skipped: &BTreeMap<String, String>,
    targets: &std::collections::BTreeSet<String>,
) -> Option<String> {
    let mut unranged: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, reason) in skipped {
        if targets.contains(name) {
            unranged.entry(reason).or_default().push(name);
        }
    }
    let total: usize = unranged.values().map(Vec::len).sum();
    (total > 0).then(|| {
        let groups: Vec<String> = unranged
            .iter()
            .take(3)
            .map(|(reason, names)| {
                let more = if names.len() > 3 { ", ..." } else { "" };
                format!(
                    "{}{more} ({reason})",
                    names[..names.len().min(3)].join(", ")
                )
            })
            .collect();
        format!(
            "calibration gave {total} tensor(s) no range: {}{}",
            groups.join("; "),
            if unranged.len() > 3 { "; ..." } else { "" }
        )
    })
}
