//! Per-channel minimum and maximum of activations over the calibration data, for the rewrites
//! that rescale channels (SmoothQuant reads `max |x|`, bias absorption the minimum): for each
//! requested tensor, two numbers per channel (the last axis for a MatMul or Gemm input, axis 1
//! for a Conv's), over every other axis and every sample. [`ChannelStats`] takes
//! the values as they come (graph inputs from a sample's feeds, the rest from an engine's
//! outputs, segment by segment) and keeps only the running maxima, so memory does not grow with
//! the number of samples. NaN is no observation (it is skipped, as the MinMax observer skips it).

use std::collections::BTreeMap;

use onnxq_engine::{DataRef, Tensor};

use crate::Error;

/// Which axis of a tensor holds its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelAxis {
    /// The last axis: the K of a MatMul's or Gemm's `A`.
    Last,
    /// Axis 1: the input channels of a Conv's `X` (`[N, C, ...]`).
    One,
}

/// One tensor whose channel maxima are wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTarget {
    /// The tensor: a graph input (read from the feeds) or an output of the engine's model.
    pub tensor: String,
    /// Its channel axis.
    pub axis: ChannelAxis,
    /// Its channel count (the dimension of that axis, known from the weights that read it).
    pub channels: usize,
}

/// A tensor's range per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRange {
    /// The least value of each channel.
    pub min: Vec<f32>,
    /// The largest value of each channel.
    pub max: Vec<f32>,
    /// The mean of each channel (NaN skipped), summed in float64.
    pub mean: Vec<f64>,
}

impl ChannelRange {
    /// `max |x|` of each channel.
    pub fn abs_max(&self) -> Vec<f32> {
        self.min
            .iter()
            .zip(&self.max)
            .map(|(lo, hi)| lo.abs().max(hi.abs()))
            .collect()
    }
}

/// Running per-channel ranges of a set of targets.
pub struct ChannelStats<'t> {
    targets: &'t [ChannelTarget],
    /// Per target: the running range (`mean` holding sums), the values summed per channel, and
    /// whether any value was seen.
    acc: BTreeMap<&'t str, (ChannelRange, Vec<u64>, bool)>,
}

impl<'t> ChannelStats<'t> {
    /// No observation yet of `targets`.
    pub fn new(targets: &'t [ChannelTarget]) -> ChannelStats<'t> {
        let acc = targets
            .iter()
            .map(|t| {
                let r = ChannelRange {
                    min: vec![f32::INFINITY; t.channels],
                    max: vec![f32::NEG_INFINITY; t.channels],
                    mean: vec![0.0; t.channels],
                };
                (t.tensor.as_str(), (r, vec![0; t.channels], false))
            })
            .collect();
        ChannelStats { targets, acc }
    }

    /// Whether `name` is a target.
    pub fn wants(&self, name: &str) -> bool {
        self.acc.contains_key(name)
    }

    /// Adds the targets among a sample's feeds (graph inputs).
    pub fn add_feeds(&mut self, sample: &[(String, Tensor)]) -> Result<(), Error> {
        let wanted: Vec<String> = sample
            .iter()
            .filter(|(n, _)| self.wants(n))
            .map(|(n, _)| n.clone())
            .collect();
        let who = "per-channel statistics";
        crate::feeds::each_float_feed(
            sample,
            |n| wanted.iter().any(|w| w == n),
            who,
            |n, d, v| self.add(n, d, v),
        )
    }

    /// Adds one value of `name` (ignored when it is not a target). A value that is not float32,
    /// or whose channel axis does not have the target's channel count, is an error naming it.
    pub fn add(&mut self, name: &str, dims: &[usize], data: DataRef<'_>) -> Result<(), Error> {
        let Some(t) = self.targets.iter().find(|t| t.tensor == name) else {
            return Ok(());
        };
        let Some((range, counts, seen)) = self.acc.get_mut(name) else {
            return Ok(());
        };
        let DataRef::F32(values) = data else {
            return Err(Error::Data(format!(
                "tensor `{name}` is not float32, and the per-channel statistics of SmoothQuant, \
                 equalization and bias correction read float32 activations"
            )));
        };
        let (axis_dim, inner) = match t.axis {
            ChannelAxis::Last => (dims.last().copied(), 1),
            ChannelAxis::One => (dims.get(1).copied(), dims.iter().skip(2).product()),
        };
        if axis_dim != Some(t.channels) {
            return Err(Error::Data(format!(
                "tensor `{name}` has shape {dims:?} on the calibration data, and its weights have \
                 {} channels on its {} axis (per-channel statistics of SmoothQuant, \
                 equalization or bias correction)",
                t.channels,
                if t.axis == ChannelAxis::Last {
                    "last"
                } else {
                    "second"
                }
            )));
        }
        if values.is_empty() || t.channels == 0 {
            return Ok(());
        }
        let (lo, hi, sum) = (&mut range.min, &mut range.max, &mut range.mean);
        // `min` / `max` keep the running value when `x` is NaN; sums skip it.
        let mut add = |c: usize, x: f32| {
            lo[c] = lo[c].min(x);
            hi[c] = hi[c].max(x);
            if !x.is_nan() {
                sum[c] += f64::from(x);
                counts[c] += 1;
            }
        };
        if t.axis == ChannelAxis::Last {
            for row in values.chunks(t.channels) {
                for (c, &x) in row.iter().enumerate() {
                    add(c, x);
                }
            }
        } else {
            // Row-major `[N, C, inner]`: chunk i is channel i mod C.
            for (i, chunk) in values.chunks(inner.max(1)).enumerate() {
                for &x in chunk {
                    add(i % t.channels, x);
                }
            }
        }
        *seen = true;
        Ok(())
    }

    /// Each target's ranges, by tensor name; a target that never held a value is left out (a
    /// channel that held only NaN keeps `[inf, -inf]`).
    pub fn finish(self) -> BTreeMap<String, ChannelRange> {
        self.acc
            .into_iter()
            .filter(|(_, (_, _, seen))| *seen)
            .map(|(name, (mut r, counts, _))| {
                for (m, &n) in r.mean.iter_mut().zip(&counts) {
                    *m = if n == 0 { f64::NAN } else { *m / n as f64 };
                }
                (name.to_owned(), r)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(axis: ChannelAxis, channels: usize) -> ChannelTarget {
        ChannelTarget {
            tensor: "x".into(),
            axis,
            channels,
        }
    }

    /// The last axis: `[2, 3]` rows; the range per column over rows and samples, NaN skipped.
    #[test]
    fn last_axis_maxima_over_rows_and_samples() {
        let t = [target(ChannelAxis::Last, 3)];
        let mut m = ChannelStats::new(&t);
        m.add(
            "x",
            &[2, 3],
            DataRef::F32(&[1.0, -5.0, f32::NAN, -2.0, 4.0, 0.5]),
        )
        .unwrap();
        m.add("x", &[1, 3], DataRef::F32(&[0.0, 0.0, -3.0]))
            .unwrap();
        let r = &m.finish()["x"];
        assert_eq!(r.abs_max(), vec![2.0, 5.0, 3.0]);
        assert_eq!(r.min, vec![-2.0, -5.0, -3.0]);
        assert_eq!(r.mean, vec![-1.0 / 3.0, -1.0 / 3.0, -1.25]);
    }

    /// Axis 1 of `[N, C, H, W]`: the range over batch and space.
    #[test]
    fn axis_one_maxima_over_batch_and_space() {
        let t = [target(ChannelAxis::One, 2)];
        let mut m = ChannelStats::new(&t);
        // N = 2, C = 2, H·W = 2.
        let v = [1.0, -2.0, 3.0, 0.0, -7.0, 1.0, 0.5, -0.5];
        m.add("x", &[2, 2, 1, 2], DataRef::F32(&v)).unwrap();
        let r = &m.finish()["x"];
        assert_eq!(
            (r.min.clone(), r.max.clone()),
            (vec![-7.0, -0.5], vec![1.0, 3.0])
        );
    }

    /// A value whose channel axis does not match the weights is an error naming the tensor.
    #[test]
    fn mismatched_channels_are_an_error() {
        let t = [target(ChannelAxis::Last, 4)];
        let mut m = ChannelStats::new(&t);
        let e = m.add("x", &[2, 3], DataRef::F32(&[0.0; 6])).unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
    }
}
