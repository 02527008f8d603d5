//! Per-channel `max |x|` of activations over the calibration data, for SmoothQuant: for each
//! requested tensor, one number per channel (the last axis for a MatMul or Gemm input, axis 1
//! for a Conv input), the maximum over every other axis and every sample. [`ChannelMaxes`] takes
//! the values as they come (graph inputs from a sample's feeds, the rest from an engine's
//! outputs, segment by segment) and keeps only the running maxima, so memory does not grow with
//! the number of samples. NaN is no observation (it is skipped, as the MinMax observer skips it).

use std::collections::BTreeMap;

use onnxq_engine::{Data, DataRef, Tensor};

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

/// Running per-channel maxima of `|x|` of a set of targets.
pub struct ChannelMaxes<'t> {
    targets: &'t [ChannelTarget],
    /// Per target: the running maxima, and whether any value was seen.
    acc: BTreeMap<&'t str, (Vec<f32>, bool)>,
}

impl<'t> ChannelMaxes<'t> {
    /// No observation yet of `targets`.
    pub fn new(targets: &'t [ChannelTarget]) -> ChannelMaxes<'t> {
        let acc = targets
            .iter()
            .map(|t| (t.tensor.as_str(), (vec![0.0; t.channels], false)))
            .collect();
        ChannelMaxes { targets, acc }
    }

    /// Whether `name` is a target.
    pub fn wants(&self, name: &str) -> bool {
        self.acc.contains_key(name)
    }

    /// Adds the targets among a sample's feeds (graph inputs).
    pub fn add_feeds(&mut self, sample: &[(String, Tensor)]) -> Result<(), Error> {
        for (name, t) in sample {
            if !self.wants(name) {
                continue;
            }
            match &t.data {
                Data::F32(v) => self.add(name, &t.dims, DataRef::F32(v))?,
                other => {
                    return Err(Error::Data(format!(
                        "SmoothQuant: input `{name}` is {}, and SmoothQuant reads float32 \
                         activations",
                        other.type_name()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Adds one value of `name` (ignored when it is not a target). A value that is not float32,
    /// or whose channel axis does not have the target's channel count, is an error naming it.
    pub fn add(&mut self, name: &str, dims: &[usize], data: DataRef<'_>) -> Result<(), Error> {
        let Some(t) = self.targets.iter().find(|t| t.tensor == name) else {
            return Ok(());
        };
        let Some((maxes, seen)) = self.acc.get_mut(name) else {
            return Ok(());
        };
        let DataRef::F32(values) = data else {
            return Err(Error::Data(format!(
                "SmoothQuant: tensor `{name}` is not float32, and SmoothQuant reads float32 \
                 activations"
            )));
        };
        let (axis_dim, inner) = match t.axis {
            ChannelAxis::Last => (dims.last().copied(), 1),
            ChannelAxis::One => (dims.get(1).copied(), dims.iter().skip(2).product()),
        };
        if axis_dim != Some(t.channels) {
            return Err(Error::Data(format!(
                "SmoothQuant: tensor `{name}` has shape {dims:?} on the calibration data, and the \
                 weights reading it have {} input channels on its {} axis",
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
        if t.axis == ChannelAxis::Last {
            for row in values.chunks(t.channels) {
                for (m, x) in maxes.iter_mut().zip(row) {
                    // `max` keeps the running value when `x` is NaN.
                    *m = m.max(x.abs());
                }
            }
        } else {
            // Row-major `[N, C, inner]`: chunk i is channel i mod C.
            for (i, chunk) in values.chunks(inner.max(1)).enumerate() {
                let c = i % t.channels;
                maxes[c] = chunk.iter().fold(maxes[c], |m, x| m.max(x.abs()));
            }
        }
        *seen = true;
        Ok(())
    }

    /// Each target's maxima, by tensor name; a target that never held a value is left out.
    pub fn finish(self) -> BTreeMap<String, Vec<f32>> {
        self.acc
            .into_iter()
            .filter(|(_, (_, seen))| *seen)
            .map(|(name, (maxes, _))| (name.to_owned(), maxes))
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

    /// The last axis: `[2, 3]` rows; the maxima of |x| per column over rows and samples, NaN
    /// skipped.
    #[test]
    fn last_axis_maxima_over_rows_and_samples() {
        let t = [target(ChannelAxis::Last, 3)];
        let mut m = ChannelMaxes::new(&t);
        m.add(
            "x",
            &[2, 3],
            DataRef::F32(&[1.0, -5.0, f32::NAN, -2.0, 4.0, 0.5]),
        )
        .unwrap();
        m.add("x", &[1, 3], DataRef::F32(&[0.0, 0.0, -3.0]))
            .unwrap();
        assert_eq!(m.finish()["x"], vec![2.0, 5.0, 3.0]);
    }

    /// Axis 1 of `[N, C, H, W]`: the maxima over batch and space.
    #[test]
    fn axis_one_maxima_over_batch_and_space() {
        let t = [target(ChannelAxis::One, 2)];
        let mut m = ChannelMaxes::new(&t);
        // N = 2, C = 2, H·W = 2.
        let v = [1.0, -2.0, 3.0, 0.0, -7.0, 1.0, 0.5, -0.5];
        m.add("x", &[2, 2, 1, 2], DataRef::F32(&v)).unwrap();
        assert_eq!(m.finish()["x"], vec![7.0, 3.0]);
    }

    /// A value whose channel axis does not match the weights is an error naming the tensor.
    #[test]
    fn mismatched_channels_are_an_error() {
        let t = [target(ChannelAxis::Last, 4)];
        let mut m = ChannelMaxes::new(&t);
        let e = m.add("x", &[2, 3], DataRef::F32(&[0.0; 6])).unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
    }
}
