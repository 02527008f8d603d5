//! The float models `--auto` quantizes its candidates from, each with its calibrated ranges: the
//! input (with the rewrites the user gave, then in every candidate), and, when no configuration
//! meets the target and the user gave neither a rewrite nor `--ranges`, the input rewritten by SmoothQuant or by
//! cross-layer equalization (exact mode, float-equivalent). A rewrite moves the activations'
//! ranges, so each rewritten model is calibrated again, by the method of the configuration it
//! extends, on the same calibration samples.

use std::sync::Arc;

use anyhow::Result;
use onnxq_ir::Model;
use onnxq_quant::qdq::Ranges;
use onnxq_quant::{
    EqualizeOptions, EqualizeReport, SmoothOptions, SmoothReport, StaticOptions, WeightRounding,
};

use crate::args::{CalibMethod, QuantizeArgs};
use crate::config::Config;
use crate::quantize::recovery::Rewrites;
use crate::quantize::{equalize, ranges, smooth, stamp};

/// A calibration method the search tries: its name in the report and its percentile, if any.
pub(super) struct Method {
    pub(super) name: String,
    percentile: Option<f64>,
}

/// The given `--ranges` or `--method` (in flags or config), else MinMax and Percentile at
/// 99.999 and 99.99: clipping rare outliers wins on some models (MobileNetV2: top-1 agreement
/// 0.70 → 0.78) and loses on others, so each is measured.
pub(super) fn methods(args: &QuantizeArgs, cfg: &Config) -> Vec<Method> {
    let given = args.ranges.is_some() || args.calib.method.is_some() || cfg.method.is_some();
    let m = |name: &str, percentile| Method {
        name: name.into(),
        percentile,
    };
    if given {
        vec![m("the given ranges", None)]
    } else {
        vec![
            m("MinMax ranges", None),
            m("Percentile 99.999 ranges", Some(99.999)),
            m("Percentile 99.99 ranges", Some(99.99)),
        ]
    }
}

/// A rewrite the search tries on the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Smooth,
    Equalize,
}

impl Step {
    pub(super) fn name(self) -> &'static str {
        match self {
            Step::Smooth => "SmoothQuant",
            Step::Equalize => "equalization",
        }
    }
}

/// One float model and its calibrations.
pub(super) struct Float {
    /// The rewrite `--auto` made; none for the input.
    pub(super) step: Option<Step>,
    pub(super) model: Model,
    /// Per method (index of `Floats::methods`), the ranges and their record, once calibrated.
    ranges: Vec<Option<(Ranges, stamp::Calibration)>>,
    pub(super) smooth: Option<SmoothOptions>,
    pub(super) equalize: Option<EqualizeOptions>,
    pub(super) smoothing: Option<SmoothReport>,
    pub(super) equalization: Option<EqualizeReport>,
    /// Nodes the rewrite inserted, kept float (SmoothQuant's Muls).
    pub(super) inserted: Vec<String>,
    /// Its weights' input Hessians, once a GPTQ-rounded candidate needs them.
    pub(super) rounding: Option<Arc<WeightRounding>>,
}

impl Float {
    /// The ranges of method `k` and their record.
    pub(super) fn ranges(&self, k: usize) -> &(Ranges, stamp::Calibration) {
        self.ranges[k]
            .as_ref()
            .expect("a candidate is made only from a calibrated model")
    }
}

/// The float models, the first the input, and what calibrating one needs.
pub(super) struct Floats<'a> {
    pub(super) all: Vec<Float>,
    pub(super) methods: Vec<Method>,
    args: &'a QuantizeArgs,
    cfg: &'a Config,
    /// The user's options (the rewrites given already in them).
    opts: &'a StaticOptions,
    /// Why the search may not rewrite the input, when it may not.
    pub(super) no_rewrite: Option<&'static str>,
    /// Rewrites that found nothing to do, not tried again.
    pub(super) inapplicable: Vec<Step>,
}

impl<'a> Floats<'a> {
    /// The input (rewritten as the user asked) calibrated by every method; returns the note on
    /// tensors the first calibration left without a range.
    pub(super) fn new(
        args: &'a QuantizeArgs,
        cfg: &'a Config,
        opts: &'a StaticOptions,
        input: Model,
        given: Rewrites,
    ) -> Result<(Floats<'a>, Vec<String>)> {
        let methods = methods(args, cfg);
        let mut f = Floats {
            all: Vec::new(),
            methods,
            args,
            cfg,
            opts,
            no_rewrite: if given.smooth.is_some() || given.equalize.is_some() {
                Some("the rewrite given is in every candidate")
            } else if args.ranges.is_some() {
                Some("the ranges of --ranges are the input's, not a rewritten model's")
            } else {
                None
            },
            inapplicable: Vec::new(),
        };
        let mut unranged = Vec::new();
        let mut ranges = Vec::new();
        for k in 0..f.methods.len() {
            let (r, notes, record) = f.calibrate(&input, opts, k)?;
            if k == 0 {
                unranged = notes;
            }
            ranges.push(Some((r, record)));
        }
        f.all.push(Float {
            step: None,
            model: input,
            ranges,
            smooth: given.smooth,
            equalize: given.equalize,
            smoothing: given.smoothing,
            equalization: given.equalization,
            inserted: Vec::new(),
            rounding: None,
        });
        Ok((f, unranged))
    }

    fn calibrate(
        &self,
        model: &Model,
        opts: &StaticOptions,
        k: usize,
    ) -> Result<(Ranges, Vec<String>, stamp::Calibration)> {
        let mut a = self.args.clone();
        if let Some(p) = self.methods[k].percentile {
            a.calib.method = Some(CalibMethod::Percentile);
            a.calib.percentile = p;
        }
        ranges::static_ranges(&a, self.cfg, model, opts).map_err(crate::engine::hint_engine_errors)
    }

    /// The index of the input rewritten by `step` and calibrated by method `k`, made on first
    /// use; none when the rewrite finds nothing to change.
    pub(super) fn rewritten(&mut self, step: Step, k: usize) -> Result<Option<usize>> {
        if self.inapplicable.contains(&step) {
            return Ok(None);
        }
        let i = match self.all.iter().position(|f| f.step == Some(step)) {
            Some(i) => i,
            None => match self.rewrite(step)? {
                Some(f) => {
                    self.all.push(f);
                    self.all.len() - 1
                }
                None => {
                    self.inapplicable.push(step);
                    return Ok(None);
                }
            },
        };
        if self.all[i].ranges[k].is_none() {
            let mut o = self.opts.clone();
            o.exclude.extend(self.all[i].inserted.iter().cloned());
            let (r, _, record) = self.calibrate(&self.all[i].model, &o, k)?;
            self.all[i].ranges[k] = Some((r, record));
        }
        Ok(Some(i))
    }

    /// Collects float `i`'s Hessians for GPTQ rounding, once.
    pub(super) fn ensure_rounding(&mut self, i: usize) -> Result<()> {
        if self.all[i].rounding.is_none() {
            let (r, _) = crate::quantize::rounding::collect(&self.all[i].model, &self.args.calib)
                .map_err(crate::engine::hint_engine_errors)?;
            self.all[i].rounding = Some(r);
        }
        Ok(())
    }

    /// The input rewritten by `step` with its default settings, on the calibration samples.
    fn rewrite(&self, step: Step) -> Result<Option<Float>> {
        let (args, opts) = (self.args, self.opts);
        let mut f = Float {
            step: Some(step),
            model: self.all[0].model.clone(),
            ranges: (0..self.methods.len()).map(|_| None).collect(),
            smooth: None,
            equalize: None,
            smoothing: None,
            equalization: None,
            inserted: Vec::new(),
            rounding: None,
        };
        let hint = crate::engine::hint_engine_errors;
        match step {
            Step::Smooth => {
                let sq = SmoothOptions {
                    op_types: opts.op_types.clone(),
                    include: opts.include.clone(),
                    exclude: opts.exclude.clone(),
                    ..SmoothOptions::default()
                };
                let mut o = opts.clone();
                let r = smooth::smooth(&mut f.model, &args.calib, &sq, &mut o).map_err(hint)?;
                if r.smoothed.is_empty() {
                    return Ok(None);
                }
                f.inserted = r.inserted.clone();
                (f.smooth, f.smoothing) = (Some(sq), Some(r));
            }
            Step::Equalize => {
                // Exact mode: `relu6` changes the float model's function.
                let eq = EqualizeOptions {
                    relu6: false,
                    op_types: opts.op_types.clone(),
                    include: opts.include.clone(),
                    exclude: opts.exclude.clone(),
                };
                let (r, _) = equalize::equalize(&mut f.model, &args.calib, &eq).map_err(hint)?;
                if r.pairs == 0 {
                    return Ok(None);
                }
                (f.equalize, f.equalization) = (Some(eq), Some(r));
            }
        }
        Ok(Some(f))
    }
}
