//! MatMulNBits' layout re-laid out for a blocked DequantizeLinear, so the algorithms whose kernels
//! write MatMulNBits' blocks (RTN, k-quant) can be written in the QDQ format with the very same
//! codes, scales and zero points: `B [N, k_blocks, blob]` becomes the `[K, N]` codes, scales
//! `[N, k_blocks]` become `[k_blocks, N]`, and zero points follow the scales. Blocks with the
//! kernel's default zero point `2^(bits-1)` (symmetric) become signed codes `q - 2^(bits-1)` with
//! no zero point, which dequantize to the same values.

use super::blocks::{NBits, ZeroPoints};
use super::qdq_blocks::Qdq;

/// `q`'s blocks in the QDQ layout; `None` for float zero points (HQQ's), which DequantizeLinear
/// cannot take.
pub fn nbits_to_qdq(q: &NBits) -> Option<Qdq> {
    let s = q.shape;
    let (kb, blob) = (s.k_blocks(), s.blob());
    let bits = s.bits as usize;
    let per_byte = 8 / bits;
    let mask = ((1u16 << bits) - 1) as u8;
    let mid = 1i16 << (bits - 1);
    let signed = match &q.zero_points {
        ZeroPoints::Default => true,
        ZeroPoints::Codes(_) => false,
        ZeroPoints::Float(_) => return None,
    };
    // Codes, row-major [K, N], as small integers.
    let mut codes = vec![0i16; s.k * s.n];
    for n in 0..s.n {
        for k in 0..s.k {
            let (b, i) = (k / s.block, k % s.block);
            let byte = q.packed[(n * kb + b) * blob + i / per_byte];
            let c = i16::from((byte >> ((i % per_byte) * bits)) & mask);
            codes[k * s.n + n] = if signed { c - mid } else { c };
        }
    }
    let mut scales = vec![0f32; kb * s.n];
    for n in 0..s.n {
        for b in 0..kb {
            scales[b * s.n + n] = q.scales[n * kb + b];
        }
    }
    let zero_points = match &q.zero_points {
        ZeroPoints::Codes(z) => {
            let mut t = vec![0i16; kb * s.n];
            for n in 0..s.n {
                for b in 0..kb {
                    t[b * s.n + n] = i16::from(z[n * kb + b]);
                }
            }
            Some(store(&t, s.bits))
        }
        _ => None,
    };
    Some(Qdq {
        shape: s,
        data: store(&codes, s.bits),
        scales,
        zero_points,
    })
}

/// ONNX storage of small integers: one byte each at 8 bits, two per byte (low nibble first) at 4.
fn store(v: &[i16], bits: u32) -> Vec<u8> {
    if bits == 8 {
        v.iter().map(|&q| q as u8).collect()
    } else {
        v.chunks(2)
            .map(|p| (p[0] as u8 & 0x0f) | (p.get(1).map_or(0, |&h| h as u8 & 0x0f) << 4))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::F32Data;
    use crate::numerics::blocks::{BlockShape, nbits};
    use crate::numerics::elems::Elems;
    use crate::numerics::qdq_blocks::qdq;

    /// Element `j` of ONNX-stored small integers.
    fn element(d: &[u8], j: usize, bits: u32, signed: bool) -> i32 {
        match (bits, signed) {
            (8, true) => i32::from(d[j] as i8),
            (8, false) => i32::from(d[j]),
            (_, true) => i32::from((((d[j / 2] >> ((j % 2) * 4)) << 4) as i8) >> 4),
            (_, false) => i32::from((d[j / 2] >> ((j % 2) * 4)) & 0xf),
        }
    }

    /// `[K, N]` weights from QDQ blocks.
    fn dequantize(q: &Qdq, symmetric: bool) -> Vec<f32> {
        let s = q.shape;
        (0..s.k * s.n)
            .map(|i| {
                let p = (i / s.n / s.block) * s.n + i % s.n;
                let zp = q
                    .zero_points
                    .as_deref()
                    .map_or(0, |z| element(z, p, s.bits, false));
                (element(&q.data, i, s.bits, symmetric) - zp) as f32 * q.scales[p]
            })
            .collect()
    }

    /// DEFAULT's MatMulNBits blocks re-laid out have DEFAULT's own QDQ scales and dequantize to
    /// its QDQ weight within one step (the kernels round `v·r + zp` and `v·r` apart).
    #[test]
    fn relayout_dequantizes_to_the_same_weight() {
        let w: Vec<f32> = (0..40 * 6)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 31.0)
            .collect();
        for symmetric in [false, true] {
            for bits in [4, 8] {
                let s = BlockShape {
                    k: 40,
                    n: 6,
                    block: 16,
                    bits,
                    symmetric,
                };
                let e = Elems::F32(F32Data::Slice(&w));
                let r = nbits_to_qdq(&nbits(&e, s)).unwrap();
                let direct = qdq(&e, s);
                assert_eq!(r.scales, direct.scales);
                assert_eq!(r.zero_points.is_some(), !symmetric);
                let step = r.scales.iter().fold(0f32, |m, s| m.max(s.abs()));
                let (a, b) = (dequantize(&r, symmetric), dequantize(&direct, symmetric));
                let mut equal = 0;
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= step * 1.0001, "{x} vs {y}");
                    equal += usize::from(x == y);
                }
                assert!(
                    equal * 10 >= a.len() * 9,
                    "only {equal} of {} equal",
                    a.len()
                );
            }
        }
    }
}
