//! 4-bit (and 8-bit) block quantization of a Gather table for `com.microsoft.GatherBlockQuantized`, in the
//! arithmetic of ONNX Runtime's numpy code (ort-quantization.md §7.6): division by the scale,
//! round half to even, and every operation in the table's own type (float16 tables round each
//! step to float16, as numpy does). This is not the MatMulNBits kernel (`blocks.rs`: reciprocal
//! multiply, round half away from zero) — sharing it would change the codes.
//!
//! The table is viewed as `[m, k, n]` around the quantize axis (of size k); blocks are `block`
//! consecutive positions along it. Codes keep the table's layout, two per byte (low nibble first,
//! row-major); scales and zero points have the table's shape with the axis cut to `k_blocks`.

use rayon::prelude::*;

use super::elems::{Elems, ScaleType};

/// The table's shape around the quantize axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AxisShape {
    /// Product of the dims before the axis.
    pub m: usize,
    /// The axis' size.
    pub k: usize,
    /// Product of the dims after the axis.
    pub n: usize,
}

/// A table quantized for GatherBlockQuantized.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherBlocks {
    /// INT4 codes (symmetric) or UINT4 codes, packed.
    pub data: Vec<u8>,
    /// `[m, k_blocks, n]` scales, in the table's type (as float32 values already rounded to it).
    pub scales: Vec<f32>,
    /// `[m, k_blocks, n]` UINT4 zero points, packed, when asymmetric.
    pub zero_points: Option<Vec<u8>>,
}

/// One arithmetic step's result in the table's type.
fn r(st: ScaleType, x: f32) -> f32 {
    match st {
        ScaleType::F16 => half::f16::from_f32(x).to_f32(),
        ScaleType::Bf16 => half::bf16::from_f32(x).to_f32(),
        ScaleType::F32 => x,
    }
}

/// Quantizes `w` (shape `s`) in blocks of `block` along the axis, with 4 or 8 bits. At 8 bits
/// (which ORT's tool does not write) the same arithmetic runs on the 8-bit grid
/// (`m / -128`, `/ 255`, mid 128), and the codes are UINT8 (GatherBlockQuantized's only 8-bit
/// type): symmetric codes are stored plus 128, the op's default zero point for UINT8.
pub fn gather_blocks(
    w: &Elems<'_>,
    s: AxisShape,
    block: usize,
    symmetric: bool,
    bits: u32,
) -> GatherBlocks {
    let st = w.scale_type();
    let kb = s.k.div_ceil(block);
    let half = (1i32 << (bits - 1)) as f32;
    let top = ((1i32 << bits) - 1) as f32;
    let mut codes = vec![0i16; s.m * s.k * s.n];
    let mut scales = vec![0f32; s.m * kb * s.n];
    let mut zps = vec![0i16; s.m * kb * s.n];
    codes
        .par_chunks_mut(s.k * s.n)
        .zip(scales.par_chunks_mut(kb * s.n))
        .zip(zps.par_chunks_mut(kb * s.n))
        .enumerate()
        .for_each(|(mi, ((codes, scales), zps))| {
            for b in 0..kb {
                let rows = b * block..s.k.min((b + 1) * block);
                for col in 0..s.n {
                    let at = |row: usize| (mi * s.k + row) * s.n + col;
                    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
                    for row in rows.clone() {
                        let v = w.get(at(row));
                        lo = lo.min(v);
                        hi = hi.max(v);
                    }
                    let (scale, zp) = if symmetric {
                        let m = if hi.abs() > lo.abs() { hi } else { lo };
                        (r(st, m / -half), 0.0)
                    } else {
                        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
                        let scale = r(st, r(st, hi - lo) / top);
                        let zp = if scale == 0.0 {
                            half
                        } else {
                            r(st, -lo / scale).round_ties_even().clamp(0.0, top)
                        };
                        (scale, zp)
                    };
                    scales[b * s.n + col] = scale;
                    zps[b * s.n + col] = zp as i16;
                    for row in rows.clone() {
                        let q = if scale == 0.0 {
                            if symmetric { 0.0 } else { half }
                        } else {
                            let x = r(st, w.get(at(row)) / scale);
                            if symmetric { x } else { r(st, x + zp) }
                        };
                        let (lo, hi) = if symmetric {
                            (-half, half - 1.0)
                        } else {
                            (0.0, top)
                        };
                        codes[row * s.n + col] = q.round_ties_even().clamp(lo, hi) as i16;
                    }
                }
            }
        });
    let pack = |v: &[i16], offset: i16| match bits {
        4 => pack_int4(v),
        _ => v.iter().map(|&c| (c + offset) as u8).collect(),
    };
    GatherBlocks {
        data: pack(&codes, if symmetric { half as i16 } else { 0 }),
        scales,
        zero_points: (!symmetric).then(|| pack(&zps, 0)),
    }
}

/// Two 4-bit values per byte, low nibble first; a zero high nibble pads an odd count.
pub fn pack_int4(v: &[i16]) -> Vec<u8> {
    v.chunks(2)
        .map(|p| (p[0] as u8 & 0x0f) | (p.get(1).map_or(0, |&h| h as u8 & 0x0f) << 4))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::F32Data;

    #[test]
    fn symmetric_and_asymmetric_blocks() {
        // A 2 x 16 table blocked along axis 1 (k = 16): one block per row.
        let w: Vec<f32> = (0..32).map(|i| i as f32 - 8.0).collect();
        let s = AxisShape { m: 2, k: 16, n: 1 };
        let q = gather_blocks(&Elems::F32(F32Data::Slice(&w)), s, 16, true, 4);
        assert_eq!(q.scales, vec![-8.0 / -8.0, 23.0 / -8.0]);
        assert_eq!(q.data[0] & 0x0f, 0x08, "-8 / 1 = -8 is 0b1000");
        let a = gather_blocks(&Elems::F32(F32Data::Slice(&w)), s, 16, false, 4);
        // Row 0 spans [-8, 7]: scale 1, zero point 8, round half to even.
        assert_eq!(a.scales[0], 1.0);
        assert_eq!(a.zero_points.unwrap()[0] & 0x0f, 8);
    }

    #[test]
    fn constant_block_gets_zero_scale() {
        let w = vec![0f32; 16];
        let s = AxisShape { m: 1, k: 16, n: 1 };
        let a = gather_blocks(&Elems::F32(F32Data::Slice(&w)), s, 16, false, 4);
        assert_eq!(a.scales, vec![0.0]);
        assert_eq!(a.data, vec![0x88; 8], "code 8 where the scale is 0");
    }
}
