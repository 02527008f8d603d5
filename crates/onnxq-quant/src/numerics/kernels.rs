//! The quantize kernels: float32 data read in place (raw little-endian bytes or a slice), min/max
//! per tensor or channel, quantize with given or computed parameters (measuring the SQNR),
//! ONNX storage of the codes (packed 4-bit, little-endian 16-bit) and back, dequantize.
//!
//! Values round half to even in float32 and clip to the type's full range, as ONNX
//! `QuantizeLinear` does; the loops are blocked so the compiler vectorizes them, and parallel.

use rayon::prelude::*;

use super::params::{QParams, QuantType, compute_qparams};

/// Quantizes one value: `clip(round_half_even(x / scale) + zp, full range)` in float32.
///
/// Rounding adds 1.5 * 2^23: for |v| < 2^22 the sum lands where float32's spacing is exactly 1, so
/// IEEE round-to-nearest-even rounds, and the integer can be read straight from the sum's bits.
/// That is a few vectorizable instructions instead of a libm call and a saturating conversion
/// (SSE2 has neither a rounding instruction nor a vector one). `v` is first clamped to one step
/// beyond the output range, which changes no result since those values saturate anyway. NaN (a
/// broken weight) maps to the zero point, i.e. dequantizes to 0.
#[inline]
pub fn quantize_one(x: f32, p: QParams, (lo, hi): (i32, i32)) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    let zp = p.zero_point;
    let v = x / p.scale;
    let v = if v.is_nan() { 0.0 } else { v };
    let v = v.max((lo - zp - 1) as f32).min((hi - zp + 1) as f32);
    let rounded = (v + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32;
    (rounded + zp).clamp(lo, hi)
}

/// Quantizes `data` with one set of parameters into ONNX storage bytes for `qtype`: little-endian
/// for 16-bit types, two 4-bit values per byte (first in the low nibble) for 4-bit types.
pub fn quantize_tensor(data: &[f32], p: QParams, qtype: QuantType) -> Vec<u8> {
    let q: Vec<i32> = data
        .par_iter()
        .with_min_len(1 << 14)
        .map(|&x| quantize_one(x, p, qtype.full_range()))
        .collect();
    to_storage(&q, qtype)
}

/// Integer codes to ONNX storage bytes for `qtype`.
pub fn to_storage(q: &[i32], qtype: QuantType) -> Vec<u8> {
    match qtype.storage_bits() {
        8 => q.iter().map(|&v| v as u8).collect(),
        16 => q.iter().flat_map(|&v| (v as u16).to_le_bytes()).collect(),
        _ => q
            .chunks(2)
            .map(|c| (c[0] as u8 & 0x0F) | ((c.get(1).copied().unwrap_or(0) as u8 & 0x0F) << 4))
            .collect(),
    }
}

/// Float32 values as they are stored, read without copying: little-endian bytes (a tensor's
/// `raw_data`, possibly unaligned, possibly a slice of a memory map) or a plain slice.
#[derive(Debug, Clone, Copy)]
pub enum F32Data<'a> {
    /// Little-endian IEEE-754 bytes, 4 per value.
    Le(&'a [u8]),
    /// Values.
    Slice(&'a [f32]),
}

impl F32Data<'_> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            F32Data::Le(b) => b.len() / 4,
            F32Data::Slice(s) => s.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`.
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            F32Data::Le(b) => {
                f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
            }
            F32Data::Slice(s) => s[i],
        }
    }

    /// Calls `f` on consecutive blocks of `LANES` values from `start..end` (the last block padded
    /// with zeros, `f` told how many are real). Fixed-size blocks let the compiler vectorize `f`.
    #[inline]
    fn blocks(&self, start: usize, end: usize, mut f: impl FnMut(&[f32; LANES], usize)) {
        let mut xs = [0.0f32; LANES];
        match self {
            F32Data::Le(b) => {
                let bytes = &b[4 * start..4 * end];
                let mut chunks = bytes.chunks_exact(4 * LANES);
                for c in &mut chunks {
                    for (x, v) in xs.iter_mut().zip(c.chunks_exact(4)) {
                        *x = le(v);
                    }
                    f(&xs, LANES);
                }
                let rest = chunks.remainder();
                if !rest.is_empty() {
                    xs = [0.0; LANES];
                    for (x, v) in xs.iter_mut().zip(rest.chunks_exact(4)) {
                        *x = le(v);
                    }
                    f(&xs, rest.len() / 4);
                }
            }
            F32Data::Slice(s) => {
                let mut chunks = s[start..end].chunks_exact(LANES);
                for c in &mut chunks {
                    xs.copy_from_slice(c);
                    f(&xs, LANES);
                }
                let rest = chunks.remainder();
                if !rest.is_empty() {
                    xs = [0.0; LANES];
                    xs[..rest.len()].copy_from_slice(rest);
                    f(&xs, rest.len());
                }
            }
        }
    }

    fn range_min_max(&self, start: usize, end: usize) -> (f32, f32) {
        let mut lo = [f32::INFINITY; LANES];
        let mut hi = [f32::NEG_INFINITY; LANES];
        self.blocks(start, end, |xs, real| {
            for l in 0..real {
                lo[l] = lo[l].min(xs[l]);
                hi[l] = hi[l].max(xs[l]);
            }
        });
        (
            lo.iter().copied().fold(f32::INFINITY, f32::min),
            hi.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        )
    }

    /// Quantizes values `start..start + dst.len()` with one set of parameters into 8-bit codes;
    /// returns the sums of squared values and squared rounding errors, for the SQNR.
    fn quantize_run(
        &self,
        start: usize,
        p: QParams,
        range: (i32, i32),
        dst: &mut [u8],
    ) -> (f64, f64) {
        // Independent accumulators per lane: one running float sum would serialize every addition.
        let mut signal = [0.0f32; LANES];
        let mut noise = [0.0f32; LANES];
        let mut codes = [0u8; LANES];
        let mut at = 0;
        self.blocks(start, start + dst.len(), |xs, real| {
            for l in 0..LANES {
                let q = quantize_one(xs[l], p, range);
                let e = xs[l] - (q - p.zero_point) as f32 * p.scale;
                // Padding lanes hold 0, which quantizes exactly (0 is always representable).
                signal[l] += xs[l] * xs[l];
                noise[l] += e * e;
                codes[l] = q as u8;
            }
            dst[at..at + real].copy_from_slice(&codes[..real]);
            at += real;
        });
        let sum = |a: [f32; LANES]| a.iter().map(|&v| f64::from(v)).sum::<f64>();
        (sum(signal), sum(noise))
    }
}

#[inline]
fn le(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Values processed together in the inner loops (two SSE or one AVX register of f32).
const LANES: usize = 8;

/// Work unit for parallel loops over values.
const CHUNK: usize = 1 << 16;

/// Min and max of `data` (NaN ignored); `(0, 0)` for empty or all-NaN data.
pub fn min_max(data: F32Data<'_>) -> (f32, f32) {
    let n = data.len();
    let (lo, hi) = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| data.range_min_max(c * CHUNK, ((c + 1) * CHUNK).min(n)))
        .reduce(
            || (f32::INFINITY, f32::NEG_INFINITY),
            |a, b| (a.0.min(b.0), a.1.max(b.1)),
        );
    if lo > hi { (0.0, 0.0) } else { (lo, hi) }
}

/// How many values of `data` are NaN or infinite. Such a weight cannot be quantized: its range
/// gives an infinite scale (every code 0, every output NaN) or its NaN values a silent code.
pub fn nonfinite_count(data: F32Data<'_>) -> usize {
    let n = data.len();
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut bad = 0;
            data.blocks(c * CHUNK, ((c + 1) * CHUNK).min(n), |xs, real| {
                bad += xs[..real].iter().filter(|x| !x.is_finite()).count();
            });
            bad
        })
        .sum()
}

/// Per-channel min/max of data viewed as `[outer, channels, inner]`.
fn channel_min_max(
    data: F32Data<'_>,
    outer: usize,
    channels: usize,
    inner: usize,
) -> Vec<(f32, f32)> {
    let empty = (f32::INFINITY, f32::NEG_INFINITY);
    let merge = |a: (f32, f32), b: (f32, f32)| (a.0.min(b.0), a.1.max(b.1));
    let stats: Vec<(f32, f32)> = if outer == 1 {
        // One long run per channel (axis 0): parallel over channels.
        (0..channels)
            .into_par_iter()
            .map(|c| data.range_min_max(c * inner, (c + 1) * inner))
            .collect()
    } else {
        // Many short runs (e.g. the last axis of a matrix): each task scans whole rows.
        (0..outer)
            .into_par_iter()
            .with_min_len((CHUNK / (channels * inner).max(1)).max(1))
            .fold(
                || vec![empty; channels],
                |mut acc, o| {
                    for (c, slot) in acc.iter_mut().enumerate() {
                        let start = (o * channels + c) * inner;
                        *slot = merge(*slot, data.range_min_max(start, start + inner));
                    }
                    acc
                },
            )
            .reduce(
                || vec![empty; channels],
                |a, b| a.into_iter().zip(b).map(|(x, y)| merge(x, y)).collect(),
            )
    };
    stats
        .into_iter()
        .map(|(lo, hi)| if lo > hi { (0.0, 0.0) } else { (lo, hi) })
        .collect()
}

/// A weight quantized per tensor or per channel.
#[derive(Debug, Clone)]
pub struct QuantizedTensor {
    /// Quantized values in the original layout, as ONNX storage bytes.
    pub data: Vec<u8>,
    /// One entry per tensor, or per channel along `axis`.
    pub params: Vec<QParams>,
    /// The channel axis, for per-channel quantization.
    pub axis: Option<usize>,
    /// Signal-to-quantization-noise ratio of the whole tensor in dB (`None` for 16/4-bit types,
    /// whose paths do not measure it, and for all-zero tensors).
    pub sqnr_db: Option<f64>,
}

/// `10 log10(signal / noise)`; infinite for exact quantization, `None` without signal.
fn sqnr_db(signal: f64, noise: f64) -> Option<f64> {
    (signal > 0.0).then(|| {
        if noise > 0.0 {
            10.0 * (signal / noise).log10()
        } else {
            f64::INFINITY
        }
    })
}

/// Quantizes a float tensor of shape `dims` per tensor (`axis = None`) or per channel along
/// `axis`, each slice with its own min/max range. Reads `data` in place and writes 8-bit codes
/// straight into the output, so the only large allocation is the result.
pub fn quantize_weight(
    data: F32Data<'_>,
    dims: &[usize],
    axis: Option<usize>,
    qtype: QuantType,
    symmetric: bool,
    reduce_range: bool,
) -> QuantizedTensor {
    let params = weight_params(data, dims, axis, qtype, symmetric, reduce_range, None);
    quantize_with(data, dims, axis, params, qtype)
}

/// The parameters [`quantize_weight`] picks: one set per tensor, or per channel along `axis`
/// (`min_real_range`: ORT's `MinimumRealRange`).
pub fn weight_params(
    data: F32Data<'_>,
    dims: &[usize],
    axis: Option<usize>,
    qtype: QuantType,
    symmetric: bool,
    reduce_range: bool,
    min_real_range: Option<f32>,
) -> Vec<QParams> {
    let qrange = qtype.qrange(reduce_range, symmetric);
    match axis {
        None => {
            let (lo, hi) = min_max(data);
            vec![compute_qparams(lo, hi, qrange, symmetric, min_real_range)]
        }
        Some(axis) => {
            let channels = dims[axis];
            let inner: usize = dims[axis + 1..].iter().product();
            let outer: usize = dims[..axis].iter().product();
            channel_min_max(data, outer, channels, inner)
                .into_iter()
                .map(|(lo, hi)| compute_qparams(lo, hi, qrange, symmetric, min_real_range))
                .collect()
        }
    }
}

/// Quantizes a float tensor of shape `dims` with given parameters (one set, or one per channel
/// along `axis`).
pub fn quantize_with(
    data: F32Data<'_>,
    dims: &[usize],
    axis: Option<usize>,
    params: Vec<QParams>,
    qtype: QuantType,
) -> QuantizedTensor {
    let (channels, inner) = match axis {
        None => (1, data.len().max(1)),
        Some(axis) => (
            dims[axis],
            dims[axis + 1..].iter().product::<usize>().max(1),
        ),
    };
    let range = qtype.full_range();
    let n = data.len();
    if qtype.storage_bits() != 8 {
        let code = |i: usize| quantize_one(data.get(i), params[(i / inner) % channels], range);
        let codes: Vec<i32> = (0..n)
            .into_par_iter()
            .with_min_len(CHUNK)
            .map(code)
            .collect();
        return QuantizedTensor {
            data: to_storage(&codes, qtype),
            params,
            axis,
            sqnr_db: None,
        };
    }
    // Each chunk walks its runs of `inner` values that share one channel's parameters.
    let mut out = vec![0u8; n];
    let (signal, noise) = out
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(c, dst)| {
            let (mut i, mut done, mut sums) = (c * CHUNK, 0, (0.0, 0.0));
            while done < dst.len() {
                let run = (inner - i % inner).min(dst.len() - done);
                let p = params[(i / inner) % channels];
                let (s, e) = data.quantize_run(i, p, range, &mut dst[done..done + run]);
                sums = (sums.0 + s, sums.1 + e);
                i += run;
                done += run;
            }
            sums
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    QuantizedTensor {
        data: out,
        params,
        axis,
        sqnr_db: sqnr_db(signal, noise),
    }
}

/// Integer codes back from ONNX storage bytes of `qtype` (`n` values; 4-bit types unpacked low
/// nibble first, sign-extended for int4).
pub fn from_storage(bytes: &[u8], qtype: QuantType, n: usize) -> Vec<i32> {
    match (qtype.storage_bits(), qtype.signed()) {
        (8, false) => bytes.iter().map(|&b| i32::from(b)).collect(),
        (8, true) => bytes.iter().map(|&b| i32::from(b as i8)).collect(),
        (16, false) => bytes
            .chunks_exact(2)
            .map(|c| i32::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        (16, true) => bytes
            .chunks_exact(2)
            .map(|c| i32::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        (_, signed) => (0..n)
            .map(|i| {
                let nibble = i32::from((bytes[i / 2] >> (4 * (i % 2))) & 0x0F);
                if signed && nibble >= 8 {
                    nibble - 16
                } else {
                    nibble
                }
            })
            .collect(),
    }
}

/// Dequantizes a [`QuantizedTensor`] of shape `dims`: `scale * (q - zero_point)`, per tensor or
/// per channel along its axis, in parallel.
pub fn dequantize(q: &QuantizedTensor, qtype: QuantType, dims: &[usize]) -> Vec<f32> {
    let n: usize = dims.iter().product();
    let codes = from_storage(&q.data, qtype, n);
    let (channels, inner) = match q.axis {
        None => (1, n.max(1)),
        Some(axis) => (
            dims[axis],
            dims[axis + 1..].iter().product::<usize>().max(1),
        ),
    };
    codes
        .par_iter()
        .enumerate()
        .with_min_len(CHUNK)
        .map(|(i, &c)| {
            let p = q.params[(i / inner) % channels];
            (c - p.zero_point) as f32 * p.scale
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn four_bit_packing_round_trips() {
        let codes = [-8, 7, -1, 0, 3];
        for (t, expect) in [
            (QuantType::I4, codes.to_vec()),
            (QuantType::U4, vec![8, 7, 15, 0, 3]),
        ] {
            let stored = to_storage(&codes, t);
            assert_eq!(stored.len(), 3);
            assert_eq!(from_storage(&stored, t, 5), expect);
        }
        assert_eq!(
            to_storage(&[1, 2], QuantType::U4),
            [0x21],
            "first value in the low nibble"
        );
    }

    #[test]
    fn rounding_is_half_to_even() {
        let p = QParams {
            scale: 1.0,
            zero_point: 0,
        };
        let r = QuantType::I8.full_range();
        let got: Vec<i32> = [0.5, 1.5, 2.5, -0.5, -2.5, 300.0, -300.0]
            .iter()
            .map(|&x| quantize_one(x, p, r))
            .collect();
        assert_eq!(got, [0, 2, 2, 0, -2, 127, -128]);
    }

    #[test]
    fn per_channel_matches_per_slice() {
        let dims = [2, 3, 2];
        let data: Vec<f32> = (0..12).map(|i| (i as f32 - 5.0) * 0.37).collect();
        let q = quantize_weight(
            F32Data::Slice(&data),
            &dims,
            Some(1),
            QuantType::I8,
            true,
            false,
        );
        assert_eq!(q.params.len(), 3);
        for c in 0..3 {
            let slice: Vec<f32> = (0..2)
                .flat_map(|o| data[(o * 3 + c) * 2..(o * 3 + c + 1) * 2].to_vec())
                .collect();
            let one = quantize_weight(
                F32Data::Slice(&slice),
                &[4],
                None,
                QuantType::I8,
                true,
                false,
            );
            assert_eq!(q.params[c], one.params[0]);
            let got: Vec<u8> = (0..2)
                .flat_map(|o| q.data[(o * 3 + c) * 2..(o * 3 + c + 1) * 2].to_vec())
                .collect();
            assert_eq!(got, one.data);
        }
    }

    proptest! {
        #[test]
        fn fast_rounding_matches_round_ties_even(x in proptest::num::f32::ANY, scale in 1e-6f32..10.0, zp in -128i32..256) {
            let p = QParams { scale, zero_point: zp };
            for range in [(-128, 127), (0, 255), (-32768, 32767), (0, 65535)] {
                let want = ((x / scale).round_ties_even() + zp as f32).clamp(range.0 as f32, range.1 as f32) as i32;
                let got = quantize_one(x, p, range);
                let want = if x.is_nan() { zp.clamp(range.0, range.1) } else { want };
                prop_assert!(want == got, "{x} / {scale} + {zp}: {want} vs {got}");
            }
        }

        #[test]
        fn error_is_at_most_half_a_step(xs in proptest::collection::vec(-100.0f32..100.0, 1..64), sym: bool) {
            for t in [QuantType::U8, QuantType::I8, QuantType::U16, QuantType::I16] {
                let q = quantize_weight(F32Data::Slice(&xs), &[xs.len()], None, t, sym, false);
                let p = q.params[0];
                let (lo, hi) = t.full_range();
                prop_assert!(p.zero_point >= lo && p.zero_point <= hi);
                let back = dequantize(&q, t, &[xs.len()]);
                for (x, b) in xs.iter().zip(&back) {
                    // ORT's symmetric unsigned zero point is (qmin+qmax)/2 rounded up (128, 32768), so
                    // the positive end can clip by up to one step.
                    let steps = if sym && !t.signed() { 1.0 } else { 0.5 };
                    // Plus float32 rounding of x / scale and of the check itself.
                    let tol = p.scale * steps + x.abs() * 4.0 * f32::EPSILON;
                    prop_assert!((b - x).abs() <= tol, "{x} -> {b}, scale {}", p.scale);
                }
            }
        }
    }
}
