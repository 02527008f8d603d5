//! HQQ (half-quadratic quantization, Badri & Shaji 2023) as ONNX Runtime's tool defines it
//! (ort-quantization.md §7.9), on the CPU in float32 and without PyTorch: per block of K (the
//! weight zero-padded to whole blocks), scale `s = min(max_v / (max - min), 2e4)` and zero point
//! `round(-min · s)`; then up to 20 proximal steps move only the zero points, each step
//! quantizing, shrinking the residual with an l_p (p = 0.7) proximal operator and taking the zero
//! point that best explains the shrunk weights, until the mean absolute reconstruction error over
//! the whole weight stops improving. Zero points stay fractional (MatMulNBits takes them as floats).

use rayon::prelude::*;

use super::blocks::{BlockShape, NBits, ZeroPoints};
use super::elems::Elems;

/// HQQ's solver settings (ORT's `opt_params`).
const LP_NORM: f32 = 0.7;
const BETA: f32 = 10.0;
const KAPPA: f32 = 1.01;
const ITERS: usize = 20;
const MAX_INV_SCALE: f32 = 2e4;

/// The proximal operator of |x|^p: shrinks `x` toward 0.
fn shrink(x: f32, beta: f32) -> f32 {
    let a = x.abs();
    let t = a - (1.0 / beta) * (a + 1e-8).powf(LP_NORM - 1.0);
    x.signum() * t.max(0.0)
}

/// Quantizes the `[k, n]` weight `w` with HQQ into MatMulNBits' layout (asymmetric; float zero
/// points).
pub fn hqq(w: &Elems<'_>, s: BlockShape) -> NBits {
    let (kb, g) = (s.k_blocks(), s.block);
    let rows = s.n * kb;
    let max_v = ((1u32 << s.bits) - 1) as f32;
    // [N · k_blocks, block]: each column's blocks along K, zero-padded past K.
    let mut wt = vec![0f32; rows * g];
    wt.par_chunks_mut(kb * g)
        .enumerate()
        .for_each(|(col, out)| {
            for (r, v) in out.iter_mut().enumerate().take(s.k) {
                *v = w.get(r * s.n + col);
            }
        });
    let (inv, mut zero): (Vec<f32>, Vec<f32>) = wt
        .par_chunks(g)
        .map(|x| {
            let (lo, hi) = x
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            let range = if hi - lo == 0.0 { max_v } else { hi - lo };
            let inv = (max_v / range).min(MAX_INV_SCALE);
            (inv, (-lo * inv).round_ties_even())
        })
        .unzip();
    let code = |v: f32, inv: f32, z: f32| (v * inv + z).round_ties_even().clamp(0.0, max_v);
    let (mut beta, mut best) = (BETA, f64::from(1e4f32));
    for _ in 0..ITERS {
        // One step for every block: the new zero point and the block's absolute error (of the
        // reconstruction with the old zero point).
        let step: Vec<(f32, f64)> = wt
            .par_chunks(g)
            .zip(&inv)
            .zip(&zero)
            .map(|((x, &inv), &z)| {
                let (mut acc, mut err) = (0f32, 0f64);
                for &v in x {
                    let q = code(v, inv, z);
                    let r = (q - z) / inv;
                    let e = shrink(v - r, beta);
                    acc += q - (v - e) * inv;
                    err += f64::from((v - r).abs());
                }
                (acc / g as f32, err)
            })
            .collect();
        beta *= KAPPA;
        let error = step.iter().map(|(_, e)| e).sum::<f64>() / (rows * g) as f64;
        for (z, (new, _)) in zero.iter_mut().zip(&step) {
            *z = *new;
        }
        // The zero points of the step that did not improve are kept, as ORT's loop keeps them.
        if error < best {
            best = error;
        } else {
            break;
        }
    }
    let st = w.scale_type();
    let blob = s.blob();
    let per_byte = 8 / s.bits as usize;
    let mut packed = vec![0u8; rows * blob];
    packed
        .par_chunks_mut(blob)
        .zip(wt.par_chunks(g))
        .zip(inv.par_iter().zip(&zero))
        .for_each(|((out, x), (&inv, &z))| {
            for (i, &v) in x.iter().enumerate() {
                let q = code(v, inv, z) as u8;
                out[i / per_byte] |= q << ((i % per_byte) as u32 * s.bits);
            }
        });
    NBits {
        shape: BlockShape {
            symmetric: false,
            ..s
        },
        packed,
        scales: inv
            .iter()
            .map(|&i| st.from_f64(f64::from(1.0 / i)))
            .collect(),
        zero_points: ZeroPoints::Float(zero.iter().map(|&z| st.from_f64(f64::from(z))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::F32Data;
    use crate::numerics::blocks::nbits;
    use crate::numerics::rtn::{RtnKind, rtn};

    /// The mean squared reconstruction error of MatMulNBits codes (zero points as given).
    fn error(w: &[f32], q: &NBits) -> f64 {
        let s = q.shape;
        let (kb, blob, per) = (s.k_blocks(), s.blob(), 8 / s.bits as usize);
        let mut total = 0.0;
        for col in 0..s.n {
            for r in 0..s.k {
                let (b, i) = (r / s.block, r % s.block);
                let byte = q.packed[(col * kb + b) * blob + i / per];
                let c = f64::from((byte >> ((i % per) as u32 * s.bits)) & ((1 << s.bits) - 1));
                let zp = match &q.zero_points {
                    ZeroPoints::Default => f64::from(1u32 << (s.bits - 1)),
                    ZeroPoints::Codes(z) => f64::from(z[col * kb + b]),
                    ZeroPoints::Float(z) => f64::from(z[col * kb + b]),
                };
                let v = (c - zp) * f64::from(q.scales[col * kb + b]);
                total += (v - f64::from(w[r * s.n + col])).powi(2);
            }
        }
        total / (s.k * s.n) as f64
    }

    /// HQQ's zero points reconstruct better than RTN's min/max blocks (its starting point: the test
    /// fails if the solver does nothing), and than ORT's default blocks.
    #[test]
    fn hqq_beats_round_to_nearest() {
        let (k, n) = (256, 8);
        let w: Vec<f32> = (0..k * n)
            .map(|i| {
                let x = ((i * 7919) % 1000) as f32 / 1000.0 - 0.5;
                x * x * x * 8.0
            })
            .collect();
        let s = BlockShape {
            k,
            n,
            block: 64,
            bits: 4,
            symmetric: false,
        };
        let data = Elems::F32(F32Data::Slice(&w));
        let h = error(&w, &hqq(&data, s));
        let r = error(&w, &rtn(&data, s, RtnKind::Rtn));
        let d = error(&w, &nbits(&data, s));
        assert!(h < r && h < d, "HQQ {h} vs RTN {r} vs default {d}");
    }
}
