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
    // Codes as i8 then stored: a block's rows are a contiguous run of the [K, N] output.
    let mut codes = vec![0i8; s.k * s.n];
    let mut scales = vec![0f32; kb * s.n];
    let mut zps = vec![0u8; kb * s.n];
    let bad = codes
        .par_chunks_mut(s.block * s.n)
        .zip(scales.par_chunks_mut(s.n))
        .zip(zps.par_chunks_mut(s.n))
        .enumerate()
        .filter_map(|(b, ((codes, scales), zps))| {
            let rows = b * s.block..s.k.min((b + 1) * s.block);
            // The block's rows are contiguous: one pass for every column's range, one for codes.
            let mut row = vec![0f32; s.n];
            let (mut lo, mut hi) = (vec![f32::MAX; s.n], vec![f32::MIN; s.n]);
            for r in rows.clone() {
                w.read_into(r * s.n, &mut row);
                if let Some(c) = row.iter().position(|v| !v.is_finite()) {
                    return Some(r * s.n + c);
                }
                for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(&row) {
                    *l = if v < *l { v } else { *l };
                    *h = if v > *h { v } else { *h };
                }
            }
            let params: Vec<Block> = (0..s.n)
                .map(|c| block_params(lo[c], hi[c], &s, st))
                .collect();
            // Per column: the reciprocal, the zero point, and the range of `v·r` whose rounding
            // stays within the codes (clamping first gives the same integer: the bounds are
            // integers), in flat arrays so the loop below vectorizes.
            let (mut recip, mut zp, mut lo_x, mut hi_x) = (
                vec![0f32; s.n],
                vec![0i32; s.n],
                vec![0f32; s.n],
                vec![0f32; s.n],
            );
            for (c, p) in params.iter().enumerate() {
                scales[c] = p.scale;
                let z = if s.symmetric { 0 } else { p.zp };
                zps[c] = z as u8;
                (recip[c], zp[c]) = (p.recip, z);
                (lo_x[c], hi_x[c]) = ((lo_code - z) as f32, (hi_code - z) as f32);
            }
            for (i, r) in rows.clone().enumerate() {
                w.read_into(r * s.n, &mut row);
                let out = &mut codes[i * s.n..(i + 1) * s.n];
                for c in 0..s.n {
                    let x = (row[c] * recip[c]).max(lo_x[c]).min(hi_x[c]);
                    out[c] = (round_half_away(x) + zp[c]) as i8;
                }
            }
            done(rows.start * s.n..rows.end * s.n);
            None
        })
        .min();
    if let Some(i) = bad {
        return Err(i);
    }
    let store = |v: &[i8]| -> Vec<u8> {
        if s.bits == 8 {
            v.iter().map(|&q| q as u8).collect()
        } else {
            v.chunks(2)
                .map(|p| (p[0] as u8 & 0x0f) | (p.get(1).map_or(0, |&h| h as u8 & 0x0f) << 4))
                .collect()
        }
    };
    let zero_points =
        (!s.symmetric).then(|| store(&zps.iter().map(|&z| z as i8).collect::<Vec<_>>()));
    Ok(Qdq {
        shape: s,
        data: store(&codes),
        scales,
        zero_points,
    })
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
