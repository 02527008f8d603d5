//! GPTQ's Hessians: for each requested MatMul input A (last dimension K), `H = 2/n Σ xᵀx` over
//! every row `x` of A reshaped to `[-1, K]` in every sample; for a Conv input, over every patch
//! the kernel reads (`patches.rs`), one Hessian per group (`n` rows in all; ONNX Runtime's
//! running form `H·n/(n+b) + (√(2/n)·x)ᵀ(√(2/n)·x)` is the same matrix up to a scale GPTQ does not
//! see). [`HessianSums`] takes the values as they come (graph inputs from a sample's feeds, the
//! rest from an engine's outputs, segment by segment); each Hessian sums `XᵀX` in float64 over the
//! upper triangle,
//! in column panels computed in parallel, each panel by one thread in a fixed order, so the sums do
//! not depend on the thread count. The caller decides how many Hessians one pass may hold.

use std::collections::BTreeMap;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use onnxq_engine::{DataRef, Tensor};
use rayon::prelude::*;

use crate::Error;
pub use crate::patches::Patches;

/// One Hessian to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HessianTarget {
    /// The tensor: a graph input (read from the feeds) or an output of the engine's model.
    pub tensor: String,
    /// Its last dimension (a Conv input's: channels per group × kernel size).
    pub k: usize,
    /// A Conv input: rows are the patches its kernel reads, not the last dimension.
    pub patches: Option<Patches>,
}

/// A collected Hessian.
#[derive(Debug, Clone, PartialEq)]
pub struct Hessian {
    /// `[K, K]` row-major, symmetric: `2/rows · Σ xᵀx`; a grouped Conv's groups one after another.
    pub values: Vec<f64>,
    /// Rows seen over all samples (per group).
    pub rows: u64,
}

/// Columns of `XᵀX` per parallel task.
const PANEL: usize = 64;

/// A running `Σ xᵀx`, column-major, filled on and above the diagonal.
struct Accumulator {
    k: usize,
    sum: Vec<f64>,
    rows: u64,
    /// One sample's rows as float64, reused.
    x: Vec<f64>,
}

impl Accumulator {
    fn new(k: usize) -> Accumulator {
        Accumulator {
            k,
            sum: vec![0.0; k * k],
            rows: 0,
            x: Vec::new(),
        }
    }

    /// Adds the rows of `values` (`[-1, K]` row-major).
    fn add(&mut self, values: &[f32]) {
        let k = self.k;
        let m = values.len() / k;
        if m == 0 {
            return;
        }
        self.x.clear();
        self.x.extend(values.iter().map(|&v| f64::from(v)));
        self.rows += m as u64;
        let x = MatRef::from_row_major_slice(&self.x, m, k);
        self.sum
            .par_chunks_mut(PANEL * k)
            .enumerate()
            .for_each(|(p, panel)| {
                let j0 = p * PANEL;
                let width = panel.len() / k;
                // Rows 0..j0 + width of these columns: the upper triangle and the diagonal block.
                let top = j0 + width;
                let dst = MatMut::from_column_major_slice_mut(panel, k, width).subrows_mut(0, top);
                let lhs = x.subcols(0, top).transpose();
                let rhs = x.subcols(j0, width);
                matmul(dst, Accum::Add, lhs, rhs, 1.0, Par::Seq);
            });
    }

    /// The mean `2/rows · Σ xᵀx`, full and symmetric (row-major = column-major).
    fn finish(mut self) -> Hessian {
        let k = self.k;
        let scale = if self.rows > 0 {
            2.0 / self.rows as f64
        } else {
            0.0
        };
        for j in 0..k {
            for i in 0..=j {
                let v = self.sum[j * k + i] * scale;
                self.sum[j * k + i] = v;
                self.sum[i * k + j] = v;
            }
        }
        Hessian {
            values: self.sum,
            rows: self.rows,
        }
    }
}

/// Running Hessians of a set of targets, fed value by value (from a sample's feeds for graph
/// inputs, from an engine's outputs for the rest).
pub struct HessianSums<'t> {
    targets: &'t [HessianTarget],
    /// Per target, one accumulator per group (one for a MatMul input).
    acc: BTreeMap<&'t str, (Option<&'t Patches>, Vec<Accumulator>)>,
}

impl<'t> HessianSums<'t> {
    /// Empty sums of `targets`.
    pub fn new(targets: &'t [HessianTarget]) -> HessianSums<'t> {
        let acc = targets
            .iter()
            .map(|t| {
                let groups = t.patches.as_ref().map_or(1, |p| p.group);
                let accs = (0..groups).map(|_| Accumulator::new(t.k)).collect();
                (t.tensor.as_str(), (t.patches.as_ref(), accs))
            })
            .collect();
        HessianSums { targets, acc }
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
        crate::feeds::each_float_feed(
            sample,
            |n| wanted.iter().any(|w| w == n),
            "GPTQ",
            |n, d, v| self.add(n, d, v),
        )
    }

    /// Adds one value of `name` (ignored when it is not a target). A value that is not float32,
    /// or whose last dimension is not its K, is an error naming it.
    pub fn add(&mut self, name: &str, dims: &[usize], data: DataRef<'_>) -> Result<(), Error> {
        let Some((patches, accs)) = self.acc.get_mut(name) else {
            return Ok(());
        };
        if let Some(p) = patches {
            let DataRef::F32(v) = data else {
                return Err(Error::Data(format!(
                    "GPTQ: tensor `{name}` is not float32, and GPTQ reads float32 activations"
                )));
            };
            p.check(dims)
                .map_err(|why| Error::Data(format!("GPTQ: Conv input `{name}`: {why}")))?;
            // Groups in parallel, each accumulator fed in sample order: the sums do not depend
            // on the thread count.
            accs.par_iter_mut().enumerate().for_each(|(g, acc)| {
                let mut rows = Vec::new();
                p.group_rows(dims, v, g, &mut rows);
                acc.add(&rows);
            });
            return Ok(());
        }
        let a = &mut accs[0];
        match data {
            DataRef::F32(v) if dims.last() == Some(&a.k) => {
                a.add(v);
                Ok(())
            }
            DataRef::F32(_) => Err(Error::Data(format!(
                "GPTQ: tensor `{name}` has shape {dims:?} on the calibration data, and the \
                 MatMul reading it has K = {} (its last dimension)",
                a.k
            ))),
            _ => Err(Error::Data(format!(
                "GPTQ: tensor `{name}` is not float32, and GPTQ reads float32 activations"
            ))),
        }
    }

    /// The targets' Hessians, in order.
    pub fn finish(mut self) -> Vec<Hessian> {
        self.targets
            .iter()
            .map(|t| {
                let accs = self
                    .acc
                    .remove(t.tensor.as_str())
                    .map_or_else(|| vec![Accumulator::new(t.k)], |(_, a)| a);
                let mut values = Vec::with_capacity(accs.len() * t.k * t.k);
                let mut rows = 0;
                for a in accs {
                    let h = a.finish();
                    rows = h.rows;
                    values.extend(h.values);
                }
                Hessian { values, rows }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The panels add up to `2/n XᵀX`, symmetric, for K not a multiple of the panel width.
    #[test]
    fn accumulates_the_mean_outer_product() {
        let k = PANEL + 7;
        let mut a = Accumulator::new(k);
        let rows: Vec<Vec<f32>> = (0..5)
            .map(|r| {
                (0..k)
                    .map(|i| ((r * 31 + i * 17) % 13) as f32 - 6.0)
                    .collect()
            })
            .collect();
        a.add(&rows[..3].concat());
        a.add(&rows[3..].concat());
        let h = a.finish();
        assert_eq!(h.rows, 5);
        for i in 0..k {
            for j in 0..k {
                let want: f64 = rows
                    .iter()
                    .map(|x| f64::from(x[i]) * f64::from(x[j]))
                    .sum::<f64>()
                    * 2.0
                    / 5.0;
                assert!((h.values[i * k + j] - want).abs() < 1e-9, "({i}, {j})");
            }
        }
    }
}
