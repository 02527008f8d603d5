//! The accuracy-recovery rewrites of the float model before static calibration, in order:
//! cross-layer equalization (with bias absorption), then SmoothQuant. Each is float-equivalent
//! except `--equalize relu6`, whose change is measured and noted.

use anyhow::Result;
use onnxq_ir::Model;
use onnxq_quant::{EqualizeOptions, EqualizeReport, SmoothOptions, SmoothReport, StaticOptions};

use crate::args::QuantizeArgs;

/// What the rewrites were asked to do and did.
pub(super) struct Rewrites {
    pub(super) equalize: Option<EqualizeOptions>,
    pub(super) smooth: Option<SmoothOptions>,
    pub(super) equalization: Option<EqualizeReport>,
    pub(super) smoothing: Option<SmoothReport>,
    pub(super) notes: Vec<String>,
}

/// Runs the rewrites `a` asks for on `model`; SmoothQuant's inserted Muls join `opts.exclude`.
pub(super) fn rewrite(
    a: &QuantizeArgs,
    model: &mut Model,
    opts: &mut StaticOptions,
) -> Result<Rewrites> {
    let hint = crate::engine::hint_engine_errors;
    let mut notes = Vec::new();
    let equalize = super::equalize::options(a, opts);
    let equalization = match &equalize {
        Some(eq) => {
            let (r, note) = super::equalize::equalize(model, &a.calib, eq).map_err(hint)?;
            notes.extend(note);
            Some(r)
        }
        None => None,
    };
    let smooth = super::smooth::options(a, opts)?;
    let smoothing = match &smooth {
        Some(sq) => Some(super::smooth::smooth(model, &a.calib, sq, opts).map_err(hint)?),
        None => None,
    };
    Ok(Rewrites {
        equalize,
        smooth,
        equalization,
        smoothing,
        notes,
    })
}
