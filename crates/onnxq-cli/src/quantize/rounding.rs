//! `--weight-rounding gptq`: the input Hessian of every Conv / MatMul / Gemm weight the static
//! pass may round (`onnxq_quant::rounding_requests`), on the calibration samples, for GPTQ on
//! the weights' own grids. One run of the float model per sample with the inputs as extra
//! outputs; only the running `XᵀX` sums are kept (a Conv's over its kernel's patches, one per
//! group), and when they would pass [`BUDGET`] the layers are split over several passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use onnxq_calib::hessian::{HessianSums, HessianTarget, Patches};
use onnxq_ir::Model;
use onnxq_quant::{LayerHessian, RoundingRequest, WeightRounding};

use crate::args::CalibSettings;

/// Bytes of Hessians one pass over the samples may hold.
const BUDGET: u64 = 2 << 30;

/// The Hessians of `model`'s roundable weights on the samples of `calib`, and a note naming the
/// Conv / MatMul / Gemm nodes that stay rounded to nearest, with why.
pub(crate) fn collect(
    model: &Model,
    calib: &CalibSettings,
) -> Result<(Arc<WeightRounding>, Option<String>)> {
    let (requests, skipped) = onnxq_quant::rounding_requests(model);
    let note = (!skipped.is_empty()).then(|| {
        format!(
            "weight rounding (GPTQ) leaves {} node(s) rounded to nearest: {}",
            skipped.len(),
            skipped.join(", ")
        )
    });
    // Each distinct Hessian once (Q, K and V MatMuls read one input), and which one each
    // request uses.
    let mut targets: Vec<HessianTarget> = Vec::new();
    let uses: Vec<usize> = requests
        .iter()
        .map(|r| {
            let t = target(r);
            targets.iter().position(|u| *u == t).unwrap_or_else(|| {
                targets.push(t);
                targets.len() - 1
            })
        })
        .collect();
    let batches = batches(&targets);
    let mut hessians = vec![None; targets.len()];
    for (b, batch) in batches.iter().enumerate() {
        let label = if batches.len() > 1 {
            format!(
                "GPTQ rounding Hessians (pass {} of {})",
                b + 1,
                batches.len()
            )
        } else {
            "GPTQ rounding Hessians".to_owned()
        };
        let wanted: Vec<HessianTarget> = batch.iter().map(|&i| targets[i].clone()).collect();
        for (&i, h) in batch.iter().zip(run(model, calib, &wanted, &label)?) {
            hessians[i] = Some(h.values);
        }
    }
    let mut layers = BTreeMap::new();
    for (r, &t) in requests.iter().zip(&uses) {
        if let Some(values) = &hessians[t] {
            let layer = LayerHessian {
                k: r.k,
                layout: r.layout,
                values: values.clone(),
            };
            layers.insert(r.weight.clone(), layer);
        }
    }
    Ok((Arc::new(WeightRounding { layers }), note))
}

/// The Hessian request `r` asks for, as the collector takes it.
fn target(r: &RoundingRequest) -> HessianTarget {
    HessianTarget {
        tensor: r.input.clone(),
        k: r.k,
        patches: r.conv.as_ref().map(|c| Patches {
            group: c.group,
            kernel: c.kernel.clone(),
            strides: c.strides.clone(),
            pads: c.pads.clone(),
            dilations: c.dilations.clone(),
        }),
    }
}

/// The distinct `targets` (by index) in passes of at most [`BUDGET`] bytes each (a Hessian
/// larger than that alone), a tensor read with two geometries (a 1×1 and a 3×3 Conv on one
/// input) in different passes: the collector sums one geometry per tensor.
fn batches(targets: &[HessianTarget]) -> Vec<Vec<usize>> {
    let bytes = |t: &HessianTarget| {
        let groups = t.patches.as_ref().map_or(1, |p| p.group) as u64;
        8 * groups * (t.k as u64).pow(2)
    };
    let mut out: Vec<(u64, Vec<usize>)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let room = out.iter().position(|(used, batch)| {
            used + bytes(t) <= BUDGET && !batch.iter().any(|&j| targets[j].tensor == t.tensor)
        });
        match room {
            Some(b) => {
                out[b].0 += bytes(t);
                out[b].1.push(i);
            }
            None => out.push((bytes(t), vec![i])),
        }
    }
    out.into_iter().map(|(_, b)| b).collect()
}

/// One pass over the samples collecting `targets`' Hessians: graph inputs from the feeds, the
/// rest from the engine.
fn run(
    model: &Model,
    calib: &CalibSettings,
    targets: &[HessianTarget],
    label: &str,
) -> Result<Vec<onnxq_calib::hessian::Hessian>> {
    let mut sums = HessianSums::new(targets);
    let tensors: Vec<String> = targets.iter().map(|t| t.tensor.clone()).collect();
    let cell = std::cell::RefCell::new(&mut sums);
    super::channels::each_sample(
        model,
        calib,
        &tensors,
        label,
        |sample| cell.borrow_mut().add_feeds(sample),
        |name, dims, data| cell.borrow_mut().add(name, dims, data),
    )?;
    Ok(sums.finish())
}
