//! The blocked DequantizeLinear layout of MLAS's block quantizer (`MlasQDQQuantizeBlockwise`,
//! ort-quantization.md §7.4): the block parameters of `blocks.rs`, codes `roundf(v·r) + zp`
//! (rounding before the zero point), signed codes and no zero point when symmetric, the `[K, N]`
//! tensor kept row-major and scales `[k_blocks, N]`. Each block is a contiguous run of rows, so the
//! kernel runs in parallel over blocks and releases each one's pages once read.

use rayon::prelude::*;

use super::blocks::{Block, BlockShape, block_params, round_half_away};
use super::elems::Elems;

/// A weight quantized for a blocked DequantizeLinear (`axis = 0`, `block_size`).
#[derive(Debug, Clone, PartialEq)]
pub struct Qdq {
    /// The shape quantized.
    pub shape: BlockShape,
    /// The `[K, N]` codes in ONNX storage: one byte each for 8 bits, two per byte (low nibble
    /// first, row-major, the last high nibble zero when K·N is odd) for 4 bits; signed when
    /// symmetric.
    pub data: Vec<u8>,
    /// `[k_blocks, N]` stored scales.
    pub scales: Vec<f32>,
    /// `[k_blocks, N]` zero points when asymmetric, packed as `data` is.
    pub zero_points: Option<Vec<u8>>,
}

/// Quantizes the `[k, n]` row-major weight `w` for a blocked DequantizeLinear (MLAS's
/// `MlasQDQQuantizeBlockwise`; ORT's tool runs it for 4 bits, the same arithmetic serves 8).
#[cfg(test)]
pub fn qdq(w: &Elems<'_>, s: BlockShape) -> Qdq {
    qdq_releasing(w, s, &|_| {}).unwrap_or_else(|i| panic!("non-finite value at {i}"))
}

/// [`qdq`] for a weight not yet checked, calling `done` with each block's range of values
/// (row-major indices) once it has read them; a NaN or infinite value stops it, and the smallest
/// such index is returned (each block is checked as its range is read: one read of the pages).
pub fn qdq_releasing(
    w: &Elems<'_>,
    s: BlockShape,
    done: &(dyn Fn(std::ops::Range<usize>) + Sync),
) -> Result<Qdq, usize> {
    debug_assert_eq!(w.len(), s.k * s.n);
    debug_assert!(s.bits == 4 || s.bits == 8);
    let (kb, st) = (s.k_blocks(), w.scale_type());
    let (lo_code, hi_code) = if s.symmetric {
        (-s.mid(), s.mid() - 1)
    } else {
        (0, s.max_code())
    };
    // A block's rows are a contiguous run of the row-major [K, N] codes, and a whole number of
    // bytes (block · N is even), so each block packs straight into its own slice of the output.
    let bits = s.bits as usize;
    let mut data = vec![0u8; (s.k * s.n * bits).div_ceil(8)];
    let mut scales = vec![0f32; kb * s.n];
    let mut zps = vec![0u8; kb * s.n];
    let bad = data
        .par_chunks_mut(s.block * s.n * bits / 8)
        .zip(scales.par_chunks_mut(s.n))
        .zip(zps.par_chunks_mut(s.n))
        .enumerate()
        .filter_map(|(b, ((out, scales), zps))| {
            let rows = b * s.block..s.k.min((b + 1) * s.block);
            let n = s.n;
            // One read of the block's values; then every step runs row by row across the
            // columns, with comparisons (not `f32::max`, whose NaN rules keep loops scalar).
            let mut vals = vec![0f32; rows.len() * n];
            for (r, row) in rows.clone().zip(vals.chunks_exact_mut(n)) {
                w.read_into(r * n, row);
            }
            if !vals.iter().fold(true, |ok, v| ok & v.is_finite()) {
                let at = vals.iter().position(|v| !v.is_finite()).unwrap_or(0);
                return Some(rows.start * n + at);
            }
            let (mut lo, mut hi) = (vec![f32::MAX; n], vec![f32::MIN; n]);
            for row in vals.chunks_exact(n) {
                for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                    *l = if v < *l { v } else { *l };
                    *h = if v > *h { v } else { *h };
                }
            }
            // Per column: the reciprocal, the zero point, and the range of `v·r` whose rounding
            // stays within the codes (clamping first gives the same integer: the bounds are
            // integers).
            let (mut recip, mut zp, mut lo_x, mut hi_x) =
                (vec![0f32; n], vec![0i32; n], vec![0f32; n], vec![0f32; n]);
            for c in 0..n {
                let p: Block = block_params(lo[c], hi[c], &s, st);
                scales[c] = p.scale;
                let z = if s.symmetric { 0 } else { p.zp };
                zps[c] = z as u8;
                (recip[c], zp[c]) = (p.recip, z);
                (lo_x[c], hi_x[c]) = ((lo_code - z) as f32, (hi_code - z) as f32);
            }
            let mut codes = vec![0u8; vals.len()];
            for (row, q) in vals.chunks_exact(n).zip(codes.chunks_exact_mut(n)) {
                for c in 0..n {
                    let x = row[c] * recip[c];
                    let x = if x > lo_x[c] { x } else { lo_x[c] };
                    let x = if x < hi_x[c] { x } else { hi_x[c] };
                    q[c] = (round_half_away(x) + zp[c]) as u8;
                }
            }
            store(&codes, bits, out);
            done(rows.start * n..rows.end * n);
            None
        })
        .min();
    if let Some(i) = bad {
        return Err(i);
    }
    let zero_points = (!s.symmetric).then(|| {
        let mut packed = vec![0u8; (zps.len() * bits).div_ceil(8)];
        store(&zps, bits, &mut packed);
        packed
    });
    Ok(Qdq {
        shape: s,
        data,
        scales,
        zero_points,
    })
}

/// Codes (two's complement bytes when signed) in ONNX storage: a byte each at 8 bits, two per
/// byte at 4 (low nibble first, a lone last code in a low nibble).
fn store(codes: &[u8], bits: usize, out: &mut [u8]) {
    if bits == 8 {
        out.copy_from_slice(codes);
    } else {
        for (o, p) in out.iter_mut().zip(codes.chunks(2)) {
            *o = (p[0] & 0x0f) | (p.get(1).map_or(0, |&h| h & 0x0f) << 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::F32Data;

    fn shape(k: usize, n: usize, block: usize, bits: u32, symmetric: bool) -> BlockShape {
        BlockShape {
            k,
            n,
            block,
            bits,
            symmetric,
        }
    }

    /// The QDQ layout: signed 4-bit codes row-major, rounding before the zero point.
    #[test]
    fn qdq_layout() {
        let w: Vec<f32> = (0..48).map(|i| (i as f32 - 20.0) / 7.0).collect();
        let q = qdq(&Elems::F32(F32Data::Slice(&w)), shape(16, 3, 16, 4, true));
        assert_eq!(q.data.len(), 24);
        assert_eq!(q.scales.len(), 3);
        let sym8 = qdq(&Elems::F32(F32Data::Slice(&w)), shape(16, 3, 16, 8, false));
        assert_eq!(sym8.data.len(), 48);
        assert_eq!(sym8.zero_points.as_ref().unwrap().len(), 3);
    }
}
