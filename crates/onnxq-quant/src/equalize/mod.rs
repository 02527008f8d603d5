//! Cross-layer equalization with bias absorption (Nagel et al. 2019, "Data-Free Quantization
//! Through Weight Equalization and Bias Correction"). Per-tensor int8 weights lose the channels
//! whose range is far below the tensor's; for a head layer feeding a tail through positively
//! homogeneous ops (`f(x / s) = f(x) / s` for `s > 0`), dividing the head's output channel `i`
//! by `s_i` and multiplying the tail's input channel `i` by `s_i` leaves the float model's
//! outputs unchanged, and `s_i = sqrt(r1_i / r2_i)` gives both channels the same range.
//!
//! Two calls around one calibration run: [`plan_equalization`] finds the pairs (and says why a
//! candidate is not one), [`apply_equalization`] rescales them, and, when the caller passes the
//! head outputs' per-channel minima measured on the rescaled model, absorbs biases. Choices:
//! - ranges are `max |w|` per channel, as AIMET and AMD Quark compute them; sweeps over the
//!   pairs repeat until no scale moves by more than 1e-3 (the paper iterates; AIMET sweeps once);
//! - a Clip (ReLU6) between the layers is not homogeneous (its bound would have to scale per
//!   channel): the pair is skipped and reported, or with `relu6` the Clip becomes a Relu, the
//!   paper's and AIMET's choice, which changes the float model (the caller measures by how much);
//! - bias absorption is data-driven (the paper's `β − 3γ` needs BatchNorm statistics, which a
//!   folded ONNX model no longer has): `c = max(0, min over the data of the head's output)`, only
//!   through a single Relu into a tail that reads no padding, so the float outputs stay the same
//!   on the data.

mod apply;
mod plan;

use std::collections::BTreeMap;

use onnxq_ir::Model;

pub use plan::EqualizePlan;

use crate::error::{Error, Result};
use crate::report::EqualizeReport;
use crate::select::Selection;

/// Equalization's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EqualizeOptions {
    /// Turn a Clip from 0 between two equalized layers into a Relu (a change of the float model).
    pub relu6: bool,
    /// The static pass's selection: pairs whose head or tail it would not quantize are skipped.
    pub op_types: Vec<String>,
    /// Node names or globs (the static pass's `--include`); empty: all.
    pub include: Vec<String>,
    /// Node names or globs (the static pass's `--exclude`).
    pub exclude: Vec<String>,
}

/// Plans equalization on the main graph of `model`.
pub fn plan_equalization(model: &Model, opts: &EqualizeOptions) -> EqualizePlan {
    let sel = Selection {
        op_types: &opts.op_types,
        include: &opts.include,
        exclude: &opts.exclude,
    };
    plan::plan(&model.graph, &sel, opts.relu6)
}

/// Rescales the planned pairs (Clips made Relus first).
pub fn apply_equalization(model: &mut Model, plan: &EqualizePlan) -> Result<EqualizeReport> {
    let g = &mut model.graph;
    let relus = apply::clips_to_relus(g, plan)?;
    let sweeps = if plan.is_empty() {
        0
    } else {
        apply::equalize(g, plan)?
    };
    crate::weights::remove_unread_constants(g).map_err(Error::edit)?;
    Ok(EqualizeReport {
        pairs: plan.len(),
        sweeps,
        clips_made_relu: relus,
        absorbed: 0,
        skipped: plan.skipped.clone(),
    })
}

/// Bias absorption after [`apply_equalization`], from the head outputs' per-channel minima on
/// the equalized model (by tensor name; see [`EqualizePlan::absorption_targets`]).
pub fn absorb_biases(
    model: &mut Model,
    plan: &EqualizePlan,
    mins: &BTreeMap<String, Vec<f32>>,
    report: &mut EqualizeReport,
) -> Result<()> {
    let g = &mut model.graph;
    report.absorbed = apply::absorb(g, plan, mins)?;
    crate::weights::remove_unread_constants(g).map_err(Error::edit)
}
