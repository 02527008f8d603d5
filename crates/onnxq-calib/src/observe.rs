//! Streaming observers: each keeps a fixed-size summary of every value it has seen.

use rayon::prelude::*;

use crate::histogram::numpy_sum;
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
    /// `mins`/`maxs` keep the per-sample values only for the moving average (8 bytes per sample),
    /// which ORT computes with numpy's float32 pairwise sum; reproducing it bit for bit needs them.
    MinMax {
        opts: MinMaxOptions,
        lo: f32,
        hi: f32,
        mins: Vec<f32>,
        maxs: Vec<f32>,
    },
}

/// Why a tensor that held no value in any sample has no range.
pub(crate) const NO_VALUES: &str = "no values observed: empty or NaN in every sample";

/// Lanes folded side by side: plain `<`/`>` selects on fixed-size arrays compile to SIMD min/max.
const LANES: usize = 16;
/// Values per parallel task: large tensors are split across threads.
const CHUNK: usize = 1 << 16;

/// Min and max of a slice, NaN if it holds a NaN. The NaN check is a lane count rather than a
/// branch so the loop stays vectorized.
fn fold_chunk(values: &[f32]) -> (f32, f32) {
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    let mut nan = [0u32; LANES];
    let mut blocks = values.chunks_exact(LANES);
    for block in &mut blocks {
        for j in 0..LANES {
            let x = block[j];
            lo[j] = if x < lo[j] { x } else { lo[j] };
            hi[j] = if x > hi[j] { x } else { hi[j] };
            nan[j] |= u32::from(x.is_nan());
        }
    }
    let mut out = (f32::INFINITY, f32::NEG_INFINITY);
    for j in 0..LANES {
        if nan[j] != 0 {
            return (f32::NAN, f32::NAN);
        }
        out = (out.0.min(lo[j]), out.1.max(hi[j]));
    }
    for &x in blocks.remainder() {
        if x.is_nan() {
            return (f32::NAN, f32::NAN);
        }
        out = (out.0.min(x), out.1.max(x));
    }
    out
}

/// Min and max of `values` (in parallel when large), NaN if any value is NaN (as ONNX Runtime's
/// ReduceMin/ReduceMax give it).
fn sample_min_max(values: &[f32]) -> (f32, f32) {
    if values.len() < 2 * CHUNK {
        return fold_chunk(values);
    }
    values.par_chunks(CHUNK).map(fold_chunk).reduce(
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

/// numpy's `nanmean` of float32 values that hold no NaN: the float32 sum divided in float64.
fn numpy_mean(a: &[f32]) -> f32 {
    (f64::from(numpy_sum(a)) / a.len() as f64) as f32
}

impl Observer {
    pub(crate) fn new(method: &Method) -> Observer {
        match method {
            Method::MinMax(opts) => Observer::MinMax {
                opts: *opts,
                lo: f32::NAN,
                hi: f32::NAN,
                mins: Vec::new(),
                maxs: Vec::new(),
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

    /// Takes one sample's minimum and maximum: NaN if the sample held a NaN (ONNX Runtime's
    /// reductions), a crossed pair (`l > h`) if it held no value at all (an empty tensor reduces to
    /// `[inf, -inf]` in ONNX Runtime, to `[f32::MAX, -f32::MAX]` in tract, as does an all-NaN one).
    pub(crate) fn observe_range(&mut self, l: f32, h: f32) {
        match self {
            Observer::MinMax {
                opts,
                lo,
                hi,
                mins,
                maxs,
            } => {
                // numpy's nanmin/nanmax/nanmean across samples: a NaN sample is left out. A sample
                // without values is left out too: its crossed pair is no observation, and ORT's
                // moving average would take its `inf` into the mean.
                if l.is_nan() || h.is_nan() || l > h {
                    return;
                }
                *lo = if lo.is_nan() { l } else { lo.min(l) };
                *hi = if hi.is_nan() { h } else { hi.max(h) };
                if opts.moving_average {
                    mins.push(l);
                    maxs.push(h);
                }
            }
        }
    }

    /// The range of everything observed, or why there is none: no sample held a value (the
    /// tensor is empty, or NaN, in every sample), or the moving average is not a number (per-sample
    /// bounds of both `-inf` and `inf`). Either way the tensor has no range to quantize with.
    pub(crate) fn range(self) -> Result<TensorRange, String> {
        let Observer::MinMax { lo, .. } = &self;
        if lo.is_nan() {
            return Err(NO_VALUES.to_owned());
        }
        let r = self.finish();
        if r.min.is_nan() || r.max.is_nan() {
            return Err(format!(
                "the moving average of the per-sample bounds is not a number ([{}, {}]): samples reach both -inf and inf",
                r.min, r.max
            ));
        }
        Ok(r)
    }

    /// The bounds of everything observed (NaN if nothing was; [`Observer::range`] checks).
    pub(crate) fn finish(self) -> TensorRange {
        match self {
            Observer::MinMax {
                opts,
                lo,
                hi,
                mins,
                maxs,
            } => {
                let (mut lo, mut hi) = if opts.moving_average && !mins.is_empty() {
                    (numpy_mean(&mins), numpy_mean(&maxs))
                } else {
                    (lo, hi)
                };
                if opts.symmetric {
                    let m = lo.abs().max(hi.abs());
                    (lo, hi) = (-m, m);
                }
                TensorRange {
                    min: lo,
                    max: hi,
                    avg_std: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minmax_skips_nan_samples_and_keeps_infinities() {
        let mut o = Observer::new(&Method::MinMax(MinMaxOptions::default()));
        o.observe(&[1.0, -2.0]);
        o.observe(&[f32::NAN, 100.0]);
        o.observe(&[f32::NEG_INFINITY, 3.0]);
        assert_eq!(
            o.finish(),
            TensorRange {
                min: f32::NEG_INFINITY,
                max: 3.0,
                avg_std: None,
            }
        );
    }

    #[test]
    fn default_minmax_state_does_not_grow_with_samples() {
        let mut o = Observer::new(&Method::MinMax(MinMaxOptions::default()));
        for i in 0..10_000 {
            o.observe(&[i as f32, -(i as f32)]);
        }
        let Observer::MinMax { mins, maxs, .. } = &o;
        assert!(
            mins.capacity() == 0 && maxs.capacity() == 0,
            "per-sample values kept without moving average"
        );
    }

    #[test]
    fn symmetric_and_moving_average() {
        let opts = MinMaxOptions {
            symmetric: true,
            moving_average: true,
        };
        let mut o = Observer::new(&Method::MinMax(opts));
        o.observe(&[-1.0, 2.0]);
        o.observe(&[-3.0, 1.0]);
        assert_eq!(
            o.finish(),
            TensorRange {
                min: -2.0,
                max: 2.0,
                avg_std: None,
            },
            "means (-2, 1.5), then ±2"
        );
    }

    #[test]
    fn samples_without_values_are_no_observation() {
        for opts in [
            MinMaxOptions::default(),
            MinMaxOptions {
                symmetric: true,
                moving_average: true,
            },
        ] {
            let mut o = Observer::new(&Method::MinMax(opts));
            // An empty tensor in ONNX Runtime, in tract, and an all-NaN one.
            o.observe_range(f32::INFINITY, f32::NEG_INFINITY);
            o.observe_range(f32::MAX, -f32::MAX);
            o.observe_range(f32::NAN, f32::NAN);
            o.observe(&[]);
            assert_eq!(o.range(), Err(NO_VALUES.to_owned()), "{opts:?}");
        }
    }

    #[test]
    fn empty_samples_stay_out_of_the_moving_average() {
        let opts = MinMaxOptions {
            symmetric: false,
            moving_average: true,
        };
        let mut o = Observer::new(&Method::MinMax(opts));
        o.observe(&[-1.0, 2.0]);
        o.observe_range(f32::INFINITY, f32::NEG_INFINITY);
        o.observe(&[-3.0, 0.0]);
        assert_eq!(
            o.range(),
            Ok(TensorRange {
                min: -2.0,
                max: 1.0,
                avg_std: None,
            })
        );
    }

    #[test]
    fn constant_and_infinite_samples_keep_their_range() {
        let mut o = Observer::new(&Method::MinMax(MinMaxOptions::default()));
        o.observe(&[0.0, -0.0]);
        assert_eq!(o.range().map(|r| (r.min, r.max)), Ok((0.0, 0.0)));
        let opts = MinMaxOptions {
            symmetric: false,
            moving_average: true,
        };
        let mut o = Observer::new(&Method::MinMax(opts));
        o.observe(&[f32::NEG_INFINITY, 1.0]);
        o.observe(&[f32::INFINITY]);
        let err = o.range().unwrap_err();
        assert!(err.contains("not a number"), "mean of -inf and inf: {err}");
    }
}
