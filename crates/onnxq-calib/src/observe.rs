//! Streaming observers: each keeps a fixed-size summary of every value it has seen.

use rayon::prelude::*;

use crate::ranges::TensorRange;

/// How ranges are computed.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Observed minimum and maximum (ONNX Runtime's MinMax calibrator).
    MinMax(MinMaxOptions),
}

/// Options of the MinMax method, with ONNX Runtime's meanings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MinMaxOptions {
    /// `CalibTensorRangeSymmetric`: the range becomes `±max(|min|, |max|)`.
    pub symmetric: bool,
    /// `CalibMovingAverage`: the mean of the per-sample minima and maxima instead of their extremes
    /// (ORT averages within one collection call; onnxq runs all samples as one call).
    pub moving_average: bool,
}

/// Per-tensor state.
pub(crate) enum Observer {
    MinMax {
        opts: MinMaxOptions,
        lo: f64,
        hi: f64,
        sum_lo: f64,
        sum_hi: f64,
        count: u64,
    },
}

/// Min and max of `values`, NaN if any value is NaN (as ONNX Runtime's ReduceMin/ReduceMax give it).
fn sample_min_max(values: &[f32]) -> (f32, f32) {
    values
        .par_chunks(1 << 16)
        .map(|c| {
            c.iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                    if x.is_nan() || lo.is_nan() {
                        (f32::NAN, f32::NAN)
                    } else {
                        (lo.min(x), hi.max(x))
                    }
                })
        })
        .reduce(
            || (f32::INFINITY, f32::NEG_INFINITY),
            |a, b| {
                if a.0.is_nan() || b.0.is_nan() {
                    (f32::NAN, f32::NAN)
                } else {
                    (a.0.min(b.0), a.1.max(b.1))
                }
            },
        )
}

impl Observer {
    pub(crate) fn new(method: &Method) -> Observer {
        match method {
            Method::MinMax(opts) => Observer::MinMax {
                opts: *opts,
                lo: f64::NAN,
                hi: f64::NAN,
                sum_lo: 0.0,
                sum_hi: 0.0,
                count: 0,
            },
        }
    }

    /// Takes one sample's values of the tensor.
    pub(crate) fn observe(&mut self, values: &[f32]) {
        if !values.is_empty() {
            let (l, h) = sample_min_max(values);
            self.observe_range(l, h);
        }
    }

    /// Takes one sample's minimum and maximum (NaN if the sample held a NaN).
    pub(crate) fn observe_range(&mut self, l: f32, h: f32) {
        match self {
            Observer::MinMax {
                lo,
                hi,
                sum_lo,
                sum_hi,
                count,
                ..
            } => {
                // numpy's nanmin/nanmax/nanmean across samples: a NaN sample is left out.
                if l.is_nan() || h.is_nan() {
                    return;
                }
                *lo = if lo.is_nan() {
                    f64::from(l)
                } else {
                    lo.min(f64::from(l))
                };
                *hi = if hi.is_nan() {
                    f64::from(h)
                } else {
                    hi.max(f64::from(h))
                };
                *sum_lo += f64::from(l);
                *sum_hi += f64::from(h);
                *count += 1;
            }
        }
    }

    /// The range of everything observed.
    pub(crate) fn finish(self) -> TensorRange {
        match self {
            Observer::MinMax {
                opts,
                lo,
                hi,
                sum_lo,
                sum_hi,
                count,
            } => {
                let (mut lo, mut hi) = if opts.moving_average && count > 0 {
                    // numpy's mean of float32 values is accumulated pairwise in float32; a float64
                    // sum rounded once is at least as accurate and equal in all corpus cases.
                    (
                        (sum_lo / count as f64) as f32,
                        (sum_hi / count as f64) as f32,
                    )
                } else {
                    (lo as f32, hi as f32)
                };
                if opts.symmetric {
                    let m = lo.abs().max(hi.abs());
                    (lo, hi) = (-m, m);
                }
                TensorRange { min: lo, max: hi }
            }
        }
    }
}
