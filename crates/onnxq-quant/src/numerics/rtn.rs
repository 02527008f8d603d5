//! RTN and k-quant block quantization as ONNX Runtime's tool runs them (its vendored Intel Neural
//! Compressor code, ort-quantization.md §7.7 and §7.8), bit for bit: the weight `[K, N]` is
//! zero-padded to whole blocks (the padding takes part in the block statistics and gets codes),
//! each column's blocks are quantized in float64 (RTN) or searched in float32 with numpy's
//! pairwise sums (k-quant), codes are `round_half_even(x / scale + zp)`, and the scales are cast to
//! the weight's type afterwards. The codes go into MatMulNBits' layout ([`NBits`]).
//!
//! ORT's tool crashes packing asymmetric 4-bit zero points when the number of blocks along K is
//! odd; the packing here is MatMulNBits' own (`blocks::pack_zero_points`), which equals ORT's
//! wherever ORT's runs.

use rayon::prelude::*;

use super::blocks::{BlockShape, NBits};
use super::elems::Elems;

/// The block search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtnKind {
    /// Round to nearest over the block's own min/max (no zero inclusion).
    Rtn,
    /// llama.cpp's k-quant weighted least-squares search of scale and minimum (always asymmetric).
    KQuant,
}

/// One block's float64 scale, zero point and codes.
struct Block {
    scale: f64,
    zp: f64,
}

/// Quantizes the `[k, n]` weight `w` with RTN or k-quant into MatMulNBits' layout. `s.symmetric` is
/// honoured by RTN only (k-quant is asymmetric, as ORT's).
pub fn rtn(w: &Elems<'_>, s: BlockShape, kind: RtnKind) -> NBits {
    let (kb, blob, g) = (s.k_blocks(), s.blob(), s.block);
    let per_byte = 8 / s.bits as usize;
    let maxq = f64::from((1u32 << s.bits) - 1);
    let st = w.scale_type();
    let mut packed = vec![0u8; s.n * kb * blob];
    let mut scales = vec![0f32; s.n * kb];
    let mut zps = vec![0u8; s.n * kb];
    packed
        .par_chunks_mut(kb * blob)
        .zip(scales.par_chunks_mut(kb))
        .zip(zps.par_chunks_mut(kb))
        .enumerate()
        .for_each(|(col, ((packed, scales), zps))| {
            let mut x = vec![0f32; g];
            for b in 0..kb {
                // The block with its zero padding past K, as ORT pads before grouping.
                for (i, v) in x.iter_mut().enumerate() {
                    let r = b * g + i;
                    *v = if r < s.k { w.get(r * s.n + col) } else { 0.0 };
                }
                let p = match kind {
                    RtnKind::Rtn => rtn_block(&x, maxq, s.symmetric, s.bits),
                    RtnKind::KQuant => k_quant_block(&x, maxq),
                };
                scales[b] = st.from_f64(p.scale);
                zps[b] = p.zp as u8;
                let out = &mut packed[b * blob..(b + 1) * blob];
                for (i, &v) in x.iter().enumerate() {
                    let q = (f64::from(v) / p.scale + p.zp)
                        .round_ties_even()
                        .clamp(0.0, maxq) as u8;
                    out[i / per_byte] |= q << ((i % per_byte) as u32 * s.bits);
                }
            }
        });
    let asymmetric = kind == RtnKind::KQuant || !s.symmetric;
    let shape = BlockShape {
        symmetric: !asymmetric,
        ..s
    };
    NBits::with_codes(shape, packed, scales, zps)
}

/// ORT's `quant_tensor(..., dtype="uint")` for one block.
fn rtn_block(x: &[f32], maxq: f64, symmetric: bool, bits: u32) -> Block {
    let (lo, hi) = x
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if symmetric {
        let range = lo.abs().max(hi.abs());
        // `max_range * 2.0` is a float32 product, divided in float64.
        let scale = if range > 0.0 {
            f64::from(range * 2.0) / maxq
        } else {
            1.0
        };
        Block {
            scale,
            zp: f64::from(1u32 << (bits - 1)),
        }
    } else {
        let scale = if lo != hi {
            f64::from(hi - lo) / maxq
        } else {
            1.0
        };
        let zp = ((0.0 - f64::from(lo)) / scale)
            .round_ties_even()
            .clamp(0.0, maxq);
        Block { scale, zp }
    }
}

/// numpy's float32 sum of a contiguous row (pairwise, 8 accumulators per 128-value leaf).
fn np_sum(a: &[f32]) -> f32 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0f32;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0f32; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_sum(&a[..n2]) + np_sum(&a[n2..])
    }
}

/// The float32 sum of `f(i)` over the block, in numpy's order.
fn sum_of(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let v: Vec<f32> = (0..n).map(f).collect();
    np_sum(&v)
}

/// ORT's `quant_tensor_k_quant_cpu` for one block (float32 throughout, as numpy computes it).
fn k_quant_block(x: &[f32], maxq: f64) -> Block {
    let g = x.len();
    let maxq32 = maxq as f32;
    let av_x = (sum_of(g, |i| x[i] * x[i]) / g as f32).sqrt();
    let weights: Vec<f32> = x.iter().map(|&v| av_x + v.abs()).collect();
    let (mut rmin, rmax) = x
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let sum_w = np_sum(&weights);
    let sum_x = sum_of(g, |i| weights[i] * x[i]);
    let iscale = if rmin != rmax {
        maxq32 / (rmax - rmin)
    } else {
        1.0
    };
    let mut scale = 1.0 / iscale;
    let codes = |iscale: f32, rmin: f32| -> Vec<f32> {
        x.iter()
            .map(|&v| (iscale * (v - rmin)).round_ties_even().clamp(0.0, maxq32))
            .collect()
    };
    let mad = |q: &[f32], scale: f32, min: f32| -> f32 {
        sum_of(g, |i| {
            let d = scale * q[i] + min - x[i];
            weights[i] * (d * d)
        })
    };
    let q0 = codes(iscale, rmin);
    let mut best = mad(&q0, scale, rmin);
    for step in 0..20 {
        // The search restarts from the minimum adopted so far, as ORT's loop does.
        let factor = (-1.0 + 0.1 * f64::from(step) + maxq) as f32;
        let iscale_new = if rmin != rmax {
            factor / (rmax - rmin)
        } else {
            1.0
        };
        let q = codes(iscale_new, rmin);
        let wq: Vec<f32> = (0..g).map(|i| weights[i] * q[i]).collect();
        let sum_l = np_sum(&wq);
        let sum_l2 = sum_of(g, |i| wq[i] * q[i]);
        let sum_xl = sum_of(g, |i| wq[i] * x[i]);
        let d = sum_w * sum_l2 - sum_l * sum_l;
        let this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
        let this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
        let m = mad(&q, this_scale, this_min);
        if m < best {
            best = m;
            scale = this_scale;
            rmin = this_min;
        }
    }
    let zp = (-rmin / scale).round_ties_even().clamp(0.0, maxq32);
    Block {
        scale: f64::from(scale),
        zp: f64::from(zp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy's pairwise order differs from a plain loop in float32; the split points are numpy's.
    #[test]
    fn pairwise_sum_matches_numpy_order() {
        let a: Vec<f32> = (0..300).map(|i| 1.0 + i as f32 * 1e-7).collect();
        let left = np_sum(&a[..144]) + np_sum(&a[144..]);
        assert_eq!(
            np_sum(&a),
            left,
            "n = 300 splits at 144 (150 rounded down to a multiple of 8)"
        );
        assert_eq!(np_sum(&[1.0, 2.0, 3.0]), 6.0);
    }
}
