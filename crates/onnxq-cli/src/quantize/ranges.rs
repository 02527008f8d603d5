//! The activation ranges static quantization uses: read from `--ranges` or calibrated from `--data`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use onnxq_quant::qdq::Ranges;

use crate::args::{CalibMethod, QuantizeArgs};
use crate::config::Config;

/// The activation ranges: read from `--ranges`, or calibrated here from `--data`; and a note
/// naming the tensors quantization reads that calibration gave no range, with the reason (they
/// stay float unless an override or their op's rule fixes their parameters).
pub(super) fn static_ranges(
    a: &QuantizeArgs,
    cfg: &Config,
    model: &onnxq_ir::Model,
    opts: &onnxq_quant::StaticOptions,
) -> Result<(Ranges, Option<String>, super::stamp::Calibration)> {
    // Only the tensors quantization reads are calibrated from `--data`; the note names the same
    // ones from a full file.
    let targets = onnxq_quant::qdq::calibration_targets(model, opts);
    let ranges = match &a.ranges {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read ranges `{}`", path.display()))?;
            onnxq_calib::Ranges::from_json(&text)
                .map_err(|e| anyhow::anyhow!("ranges `{}`: {e}", path.display()))?
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
            crate::calibrate::calibrate(model, &c, Some(&targets))?
        }
    };
    let known = ranges
        .tensors
        .keys()
        .filter(|t| model.graph.value_by_name(t).is_some())
        .count();
    anyhow::ensure!(
        known > 0 || ranges.tensors.is_empty(),
        "none of the {} tensors in the ranges names a tensor of this model; calibrate this model",
        ranges.tensors.len()
    );
    let note = unranged_note(&ranges.skipped, &targets);
    let calibration = super::stamp::Calibration::of(&ranges, a.ranges.is_some());
    let ranges = ranges
        .tensors
        .iter()
        .map(|(k, r)| (k.clone(), (r.min, r.max)))
        .collect();
    Ok((ranges, note, calibration))
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
