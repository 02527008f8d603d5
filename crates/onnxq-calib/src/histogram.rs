//! Fixed-range histograms binned exactly as numpy's `np.histogram` bins float32 data, and the
//! threshold searches ONNX Runtime runs on them (Percentile, Entropy, Distribution).
//!
//! ONNX Runtime's histogram calibrators call `np.histogram` once over every sample of every tensor
//! held in memory. onnxq first runs a MinMax pass (two scalars per tensor per sample), which fixes
//! each histogram's range, then streams the samples through histograms over that range: the counts
//! are those of the single call, in memory that does not depend on the number of samples.

use rayon::prelude::*;

/// A histogram over `[first, last]` with equal-width bins.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Counts per bin.
    pub counts: Vec<u64>,
    /// Bin edges (`counts.len() + 1`), float32 as numpy computes them.
    pub edges: Vec<f32>,
    /// Histogram of `|x|` instead of `x` (ORT's `collect_absolute_value`).
    pub absolute: bool,
}

/// numpy's `linspace(first, last, n + 1)` in float32.
fn linspace(first: f32, last: f32, bins: usize) -> Vec<f32> {
    let step = (last - first) / bins as f32;
    let mut edges: Vec<f32> = (0..=bins).map(|i| i as f32 * step + first).collect();
    edges[bins] = last;
    edges
}

/// Adds `values` to `counts`, binned as numpy bins them over `edges`.
fn count(edges: &[f32], absolute: bool, values: &[f32], counts: &mut [u64]) {
    let n = counts.len();
    let (first, last) = (edges[0], edges[n]);
    let denom = last - first;
    for &v in values {
        let x = if absolute { v.abs() } else { v };
        if !(x >= first && x <= last) {
            continue;
        }
        // numpy: index from float32 arithmetic, then corrected against the edges within 1 ulp.
        let mut i = (((x - first) / denom) * n as f32) as usize;
        if i == n {
            i -= 1;
        }
        if x < edges[i] {
            i -= 1;
        } else if i + 1 < n && x >= edges[i + 1] {
            i += 1;
        }
        counts[i] += 1;
    }
}

impl Histogram {
    /// An empty histogram of `bins` bins over `[first, last]` (numpy widens an empty range by ±0.5).
    /// Fails like numpy on a non-finite range or one too narrow for distinct edges, and on one whose
    /// width overflows float32 (`[-f32::MAX, f32::MAX]`, a `finfo.min` mask: no finite edges).
    pub fn new(
        mut first: f32,
        mut last: f32,
        bins: usize,
        absolute: bool,
    ) -> Result<Histogram, String> {
        if !first.is_finite() || !last.is_finite() {
            return Err(format!("range [{first}, {last}] is not finite"));
        }
        if first == last {
            first -= 0.5;
            last += 0.5;
        }
        if !(last - first).is_finite() {
            return Err(format!(
                "range [{first}, {last}] is wider than float32 can hold"
            ));
        }
        let edges = linspace(first, last, bins.max(1));
        if edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "range [{first}, {last}] is too narrow for {bins} distinct bins"
            ));
        }
        Ok(Histogram {
            counts: vec![0; bins.max(1)],
            edges,
            absolute,
        })
    }

    /// Counts `values` (NaN and values outside the range are ignored, as numpy does). Large
    /// tensors are counted in parallel chunks whose counts are summed, which is exact.
    pub fn add(&mut self, values: &[f32]) {
        const CHUNK: usize = 1 << 16;
        if values.len() < 2 * CHUNK {
            count(&self.edges, self.absolute, values, &mut self.counts);
            return;
        }
        let n = self.counts.len();
        let (edges, absolute) = (&self.edges, self.absolute);
        let counts = values
            .par_chunks(CHUNK)
            .fold(
                || vec![0u64; n],
                |mut c, chunk| {
                    count(edges, absolute, chunk, &mut c);
                    c
                },
            )
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            });
        if let Some(c) = counts {
            self.counts.iter_mut().zip(&c).for_each(|(x, y)| *x += y);
        }
    }

    /// ORT's Percentile threshold (§4.4): symmetric `±edges[searchsorted(cdf, p)]` for an absolute
    /// histogram, else the two tails of `(100 - p) / 200`; clamped to the observed range.
    pub fn percentile(&self, percentile: f64, observed: (f32, f32)) -> (f32, f32) {
        let total: u64 = self.counts.iter().sum();
        let mut acc = 0.0f64;
        let cdf: Vec<f64> = self
            .counts
            .iter()
            .map(|&c| {
                acc += c as f64 / total.max(1) as f64;
                acc
            })
            .collect();
        let search = |q: f64| cdf.partition_point(|&c| c < q).min(self.edges.len() - 1);
        let (lo, hi) = if self.absolute {
            let t = self.edges[search(percentile / 100.0)];
            (-t, t)
        } else {
            let cut = (100.0 - percentile) / 200.0;
            (self.edges[search(cut)], self.edges[search(1.0 - cut)])
        };
        clamp(lo, hi, observed)
    }

    /// ORT's Entropy threshold (§4.5, TensorRT's KL search) on a symmetric histogram, clamped to
    /// the observed range.
    pub fn entropy(&self, num_quantized_bins: usize, observed: (f32, f32)) -> (f32, f32) {
        let hist = &self.counts;
        let bins = hist.len();
        let zero = bins / 2;
        let half_q = num_quantized_bins / 2;
        let mut best = (f32::INFINITY, (self.edges[0], self.edges[bins]));
        for i in half_q..=zero {
            let start = zero - i;
            let end = (zero + i + 1).min(bins);
            let sliced = &hist[start..end];
            let mut p: Vec<f64> = sliced.iter().map(|&c| c as f64).collect();
            p[0] += hist[..start].iter().sum::<u64>() as f64;
            let last = p.len() - 1;
            p[last] += hist[end..].iter().sum::<u64>() as f64;
            let nonzero: Vec<bool> = p.iter().map(|&v| v != 0.0).collect();
            let merged = sliced.len() / num_quantized_bins;
            let mut qb = vec![0u64; num_quantized_bins];
            for (j, q) in qb.iter_mut().enumerate() {
                *q = sliced[j * merged..(j + 1) * merged].iter().sum();
            }
            qb[num_quantized_bins - 1] += sliced[num_quantized_bins * merged..].iter().sum::<u64>();
            // Each quantized bin spreads evenly over its `merged` source bins (the leftover tail bins
            // stay 0), as ORT does, storing into an int64 array: truncation.
            let mut q = vec![0.0f64; p.len()];
            for (j, &total) in qb.iter().enumerate() {
                let span = j * merged..(j + 1) * merged;
                let n = nonzero[span.clone()].iter().filter(|&&b| b).count();
                if n > 0 {
                    let avg = (total / n as u64) as f64;
                    q[span].fill(avg);
                }
            }
            let kl = match (smooth(&p), smooth(&q)) {
                (Some(p), Some(q)) => kl_divergence(&p, &q),
                _ => f32::INFINITY,
            };
            if kl < best.0 {
                best = (kl, (self.edges[start], self.edges[end]));
            }
        }
        clamp(best.1.0, best.1.1, observed)
    }

    /// ORT's Distribution statistics (§4.6, scenario "same"): mean and standard deviation of the bin
    /// centres weighted by counts.
    pub fn distribution(&self) -> (f64, f64) {
        let total: u64 = self.counts.iter().sum();
        let centres: Vec<f64> = self
            .edges
            .windows(2)
            .map(|w| (f64::from(w[0]) + f64::from(w[1])) / 2.0)
            .collect();
        let t = total.max(1) as f64;
        let avg: f64 = self
            .counts
            .iter()
            .zip(&centres)
            .map(|(&c, &v)| c as f64 * v)
            .sum::<f64>()
            / t;
        let sq: f64 = self
            .counts
            .iter()
            .zip(&centres)
            .map(|(&c, &v)| c as f64 * v * v)
            .sum::<f64>()
            / t;
        (avg, (sq - avg * avg).max(0.0).sqrt())
    }
}

/// ORT's clamp of a searched threshold `[lo, hi]` to the observed range, each bound on its own,
/// then uncrossed. The clamp crosses when all values lie on one side of the bin edge the search
/// picked (a constant tensor: asymmetric Percentile gives `[3, 2.997]`); ORT keeps that pair, and
/// its parameters depend only on `min(lo, 0)` and `max(hi, 0)` (0 is always representable). So a
/// crossed pair becomes the range with those same two values that does not cross (the point
/// `[2.997, 2.997]`, or `[0, 0]` across 0): identical parameters, and a valid range in the file.
/// An uncrossed pair is unchanged.
fn clamp(lo: f32, hi: f32, observed: (f32, f32)) -> (f32, f32) {
    let (lo, hi) = (lo.max(observed.0), hi.min(observed.1));
    (lo.min(hi.max(0.0)), hi.max(lo.min(0.0)))
}

/// ORT's `smooth_distribution` in its float32 arithmetic: zeros become 1e-4, nonzeros give up
/// `1e-4 * zeros / nonzeros`; `None` if all are zero.
fn smooth(d: &[f64]) -> Option<Vec<f32>> {
    let zeros = d.iter().filter(|&&v| v == 0.0).count();
    let nonzeros = d.len() - zeros;
    if nonzeros == 0 {
        return None;
    }
    let eps = 1e-4f64;
    let take = (-(eps * zeros as f64 / nonzeros as f64)) as f32;
    Some(
        d.iter()
            .map(|&v| {
                if v == 0.0 {
                    v as f32 + eps as f32
                } else {
                    v as f32 + take
                }
            })
            .collect(),
    )
}

/// ORT's `entropy(p, q)` in float32: both normalised by their numpy float32 sums, then
/// `sum(p * ln(p / q))` (no zeros remain after smoothing).
fn kl_divergence(p: &[f32], q: &[f32]) -> f32 {
    let (sp, sq) = (numpy_sum(p), numpy_sum(q));
    let terms: Vec<f32> = p
        .iter()
        .zip(q)
        .map(|(&a, &b)| {
            let (a, b) = (1.0 * a / sp, 1.0 * b / sq);
            a * (a / b).ln()
        })
        .collect();
    numpy_sum(&terms)
}

/// numpy's float32 `sum` of a contiguous array: pairwise, 8 accumulators within blocks of 128.
pub(crate) fn numpy_sum(a: &[f32]) -> f32 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &x| s + x)
    } else if n <= 128 {
        let mut r = [0.0f32; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for block in a[8..whole].chunks_exact(8) {
            for (acc, &x) in r.iter_mut().zip(block) {
                *acc += x;
            }
        }
        let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        a[whole..].iter().fold(res, |s, &x| s + x)
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_sum(&a[..half]) + numpy_sum(&a[half..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_like_numpy() {
        // np.histogram([-1, -0.5, 0, 0.5, 1, 1], 4, range=(-1, 1)) -> [1, 1, 1, 3]
        let mut h = Histogram::new(-1.0, 1.0, 4, false).unwrap_or_else(|e| panic!("{e}"));
        h.add(&[-1.0, -0.5, 0.0, 0.5, 1.0, 1.0, 2.0, f32::NAN]);
        assert_eq!(h.counts, [1, 1, 1, 3]);
        assert_eq!(h.edges, [-1.0, -0.5, 0.0, 0.5, 1.0]);
    }

    #[test]
    fn memory_does_not_grow_with_samples() {
        let mut h = Histogram::new(-4.0, 4.0, 2048, false).unwrap_or_else(|e| panic!("{e}"));
        let bytes = |h: &Histogram| h.counts.capacity() * 8 + h.edges.capacity() * 4;
        let before = bytes(&h);
        let batch: Vec<f32> = (0..10_000).map(|i| (i as f32 / 1250.0) - 4.0).collect();
        for _ in 0..200 {
            h.add(&batch);
        }
        assert_eq!(bytes(&h), before);
        assert_eq!(h.counts.iter().sum::<u64>(), 2_000_000);
    }

    #[test]
    fn parallel_counts_equal_sequential_ones() {
        let values: Vec<f32> = (0..1_000_003u64)
            .map(|i| ((i * 7919) % 10_007) as f32 / 1000.0 - 5.0)
            .collect();
        let mut whole = Histogram::new(-5.0, 5.0, 2048, true).unwrap_or_else(|e| panic!("{e}"));
        whole.add(&values);
        let mut pieces = whole.clone();
        pieces.counts.iter_mut().for_each(|c| *c = 0);
        values.chunks(1000).for_each(|c| pieces.add(c));
        assert_eq!(whole, pieces);
        assert_eq!(
            whole.counts.iter().sum::<u64>(),
            999_403,
            "values above 5 are out of range"
        );
    }

    #[test]
    fn refuses_like_numpy() {
        assert!(Histogram::new(f32::NEG_INFINITY, 1.0, 8, false).is_err());
        assert!(
            Histogram::new(1.0, 1.000_000_1, 1024, false).is_err(),
            "edges would repeat"
        );
        assert_eq!(
            Histogram::new(2.0, 2.0, 2, false).map(|h| h.edges),
            Ok(vec![1.5, 2.0, 2.5])
        );
    }

    #[test]
    fn percentile_picks_the_edge_where_the_cdf_crosses() {
        let mut h = Histogram::new(0.0, 10.0, 10, true).unwrap_or_else(|e| panic!("{e}"));
        h.add(&(0..100).map(|i| i as f32 / 10.0).collect::<Vec<_>>());
        // cdf = 0.1, 0.2, ...: searchsorted(cdf, 0.5) is bin 4, whose left edge is 4.
        assert_eq!(h.percentile(50.0, (-10.0, 10.0)), (-4.0, 4.0));
        assert_eq!(
            h.percentile(50.0, (-10.0, 3.0)),
            (-4.0, 3.0),
            "clamped to the observed range"
        );
    }

    #[test]
    fn crossed_clamps_become_ranges_with_the_same_parameters() {
        // Constant 3, asymmetric Percentile: ORT's clamp gives [3, 2.997].
        let mut h = Histogram::new(-3.0, 3.0, 2048, false).unwrap_or_else(|e| panic!("{e}"));
        h.add(&[3.0; 16]);
        let (lo, hi) = h.percentile(99.999, (3.0, 3.0));
        assert!(lo <= hi && lo == hi && hi < 3.0, "[{lo}, {hi}]");
        for (raw, want) in [
            ((3.0, 2.5), (2.5, 2.5)),
            ((-2.5, -3.0), (-2.5, -2.5)),
            ((1.0, -1.0), (0.0, 0.0)),
            ((-1.0, 2.0), (-1.0, 2.0)),
        ] {
            let got = clamp(raw.0, raw.1, (f32::NEG_INFINITY, f32::INFINITY));
            assert_eq!(got, want, "{raw:?}");
            assert_eq!(
                (got.0.min(0.0), got.1.max(0.0)),
                (raw.0.min(0.0), raw.1.max(0.0)),
                "{raw:?}: what the parameters read"
            );
        }
    }

    #[test]
    fn refuses_a_range_wider_than_float32() {
        let e = Histogram::new(-f32::MAX, f32::MAX, 128, false).unwrap_err();
        assert!(e.contains("wider than float32"), "{e}");
    }
}
