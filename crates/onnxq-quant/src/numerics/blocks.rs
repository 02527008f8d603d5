//! Block-wise weight quantization as ONNX Runtime's C++ block quantizer (MLAS) computes it: blocks
//! of `block` consecutive rows of one column of a `[K, N]` weight, each with its own scale (and
//! zero point when asymmetric). Reproduced bit for bit (ort-quantization.md §7.3, §7.4; checked
//! against `quantize_matmul_{2,4,8}bits` and `quantize_qdq_matmul_4bits`): float32 statistics,
//! `roundf` (half away from zero), a multiply by the reciprocal of the *stored* scale, and in the
//! symmetric case a signed scale that maps the block's largest-magnitude value to code 0.
//!
//! This file holds the block parameters both layouts share and MatMulNBits' layout
//! ([`nbits_releasing`]: `B [N, k_blocks, blob]`, codes `roundf(v·r + zp)`, default zero point
//! `2^(bits-1)` when symmetric); `qdq_blocks.rs` has blocked DequantizeLinear's. Both run in
//! parallel over independent slabs of the output and read the weight in place (`elems.rs`).

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::elems::{Elems, ScaleType};

/// The shape of a block quantization of a `[k, n]` weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockShape {
    /// Rows (input features).
    pub k: usize,
    /// Columns (output features).
    pub n: usize,
    /// Rows per block (a power of two, at least 16).
    pub block: usize,
    /// Bits per code: 2, 4 or 8.
    pub bits: u32,
    /// Symmetric: no zero points.
    pub symmetric: bool,
}

impl BlockShape {
    /// Blocks along K.
    pub fn k_blocks(&self) -> usize {
        self.k.div_ceil(self.block)
    }

    /// Bytes of one block's codes in MatMulNBits' layout.
    pub fn blob(&self) -> usize {
        self.block * self.bits as usize / 8
    }

    pub(super) fn max_code(&self) -> i32 {
        (1 << self.bits) - 1
    }

    pub(super) fn mid(&self) -> i32 {
        1 << (self.bits - 1)
    }
}

/// `clamp(roundf(x), 0, top)` for a code, branch-free so that loops over it vectorize: clamping
/// first gives the same integer (the bounds are integers), and on `[0, top]` rounding half away
/// from zero is truncation plus one where the fraction (exact: `x - trunc(x)`) is at least 0.5.
#[inline]
fn code(x: f32, top: f32) -> u8 {
    // Comparisons, not `f32::max`/`min`, whose NaN rules keep the loop scalar (x is finite).
    let x = if x > 0.0 { x } else { 0.0 };
    let x = if x < top { x } else { top };
    let t = x as i32;
    (t + i32::from(x - t as f32 >= 0.5)) as u8
}

/// `roundf` (half away from zero) on a value already clamped to the codes' range: truncation
/// (inline, where `f32::round` is a libm call on baseline x86-64), plus or minus one where the
/// fraction (exact: `x - trunc(x)`, below 2^23) reaches a half; branch-free so code loops vectorize.
#[inline]
pub(super) fn round_half_away(x: f32) -> i32 {
    let t = x as i32;
    let f = x - t as f32;
    t + i32::from(f >= 0.5) - i32::from(f <= -0.5)
}

/// One block's parameters: the stored scale (as float32), the kernel's reciprocal, the zero point.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block {
    pub(super) scale: f32,
    pub(super) recip: f32,
    pub(super) zp: i32,
}

/// MLAS's `range2scalezp` / `range2scale` for a block with minimum `min` and maximum `max`.
pub(super) fn block_params(min: f32, max: f32, s: &BlockShape, st: ScaleType) -> Block {
    let (scale, zp) = if s.symmetric {
        let m = if max.abs() > min.abs() { max } else { min };
        (m / -(s.mid() as f32), s.mid())
    } else {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let top = s.max_code() as f32;
        let scale = (max - min) / top;
        let zp_f = if scale != 0.0 { 0.0 - min / scale } else { min };
        let zp = if zp_f < 0.0 {
            0
        } else if zp_f > top {
            s.max_code()
        } else {
            zp_f.round() as i32
        };
        (scale, zp)
    };
    let stored = st.kernel(scale);
    Block {
        scale,
        recip: if stored != 0.0 { 1.0 / stored } else { 0.0 },
        zp,
    }
}

/// A weight quantized in MatMulNBits' layout.
#[derive(Debug, Clone, PartialEq)]
pub struct NBits {
    /// The shape quantized.
    pub shape: BlockShape,
    /// `B [N, k_blocks, blob]`: element k of column n at byte `(k % block) / (8 / bits)` of block
    /// `k / block`, low bits first; positions past K are zero.
    pub packed: Vec<u8>,
    /// `[N, k_blocks]` stored scales (rounded through the scale type where it is float16).
    pub scales: Vec<f32>,
    /// `[N, k_blocks]` zero points.
    pub zero_points: ZeroPoints,
}

/// MatMulNBits' zero points.
#[derive(Debug, Clone, PartialEq)]
pub enum ZeroPoints {
    /// None: the kernel's default `2^(bits-1)` (symmetric blocks).
    Default,
    /// Integer codes, unpacked (see [`pack_zero_points`]).
    Codes(Vec<u8>),
    /// Float zero points in code units, stored in the scales' type (HQQ).
    Float(Vec<f32>),
}

impl NBits {
    /// The result of an integer-code kernel: `zps` are the blocks' zero points, written only when
    /// the shape is asymmetric (symmetric blocks use the kernel's default).
    pub(crate) fn with_codes(
        shape: BlockShape,
        packed: Vec<u8>,
        scales: Vec<f32>,
        zps: Vec<u8>,
    ) -> NBits {
        let zero_points = if shape.symmetric {
            ZeroPoints::Default
        } else {
            ZeroPoints::Codes(zps)
        };
        NBits {
            shape,
            packed,
            scales,
            zero_points,
        }
    }
}

/// Columns per parallel task: the weight's rows are read in contiguous runs of this many values
/// into a small buffer, so the per-column block statistics never stride through memory.
const TILE: usize = 64;

/// Values per band: the weight is quantized in bands of whole blocks of rows (each band in
/// parallel over column tiles), and the caller is told when a band is done, so the pages of a
/// memory-mapped weight are released behind the kernel instead of at the end of the tensor.
const BAND: usize = 1 << 22;

/// Quantizes the `[k, n]` row-major weight `w`, known finite, into MatMulNBits' layout (ORT's
/// DEFAULT algorithm): the tests' entry point.
#[cfg(test)]
pub(crate) fn nbits(w: &Elems<'_>, s: BlockShape) -> NBits {
    let q = nbits_releasing(w, s, &|_| {});
    q.expect("nbits: a NaN or infinite weight (callers check first)")
}

/// Quantizes the `[k, n]` row-major weight `w` into MatMulNBits' layout (ORT's DEFAULT
/// algorithm), for a weight not yet checked, calling `done` with each range of values (row-major
/// indices) it has finished reading; stops at the first NaN or infinite value, whose index it
/// returns (each band is checked before it is quantized: one read of the weight's pages).
pub fn nbits_releasing(
    w: &Elems<'_>,
    s: BlockShape,
    done: &(dyn Fn(std::ops::Range<usize>) + Sync),
) -> Result<NBits, usize> {
    debug_assert_eq!(w.len(), s.k * s.n);
    let (kb, blob) = (s.k_blocks(), s.blob());
    let mut packed = vec![0u8; s.n * kb * blob];
    let mut scales = vec![0f32; s.n * kb];
    let mut zps = vec![0u8; s.n * kb];
    let band = (BAND / (s.block * s.n)).max(1);
    for b0 in (0..kb).step_by(band) {
        let blocks = b0..kb.min(b0 + band);
        let values = blocks.start * s.block * s.n..s.k.min(blocks.end * s.block) * s.n;
        let broken = AtomicBool::new(false);
        packed
            .par_chunks_mut(TILE * kb * blob)
            .zip(scales.par_chunks_mut(TILE * kb))
            .zip(zps.par_chunks_mut(TILE * kb))
            .enumerate()
            .for_each(|(t, ((packed, scales), zps))| {
                let mut tile = Tile {
                    c0: t * TILE,
                    cols: TILE.min(s.n - t * TILE),
                    packed,
                    scales,
                    zps,
                };
                let mut buf = Buffers::new(&s, tile.cols);
                let mut finite = true;
                for b in blocks.clone() {
                    finite &= tile.block(w, &s, b, &mut buf);
                }
                if !finite {
                    broken.store(true, Ordering::Relaxed);
                }
            });
        // The codes of a broken band are garbage; find the first bad value to report it.
        if broken.into_inner() {
            return Err(w
                .first_non_finite_in(values.clone())
                .unwrap_or(values.start));
        }
        done(values);
    }
    Ok(NBits::with_codes(s, packed, scales, zps))
}

/// One parallel task's columns `c0 .. c0 + cols` and their slices of the outputs.
struct Tile<'a> {
    c0: usize,
    cols: usize,
    packed: &'a mut [u8],
    scales: &'a mut [f32],
    zps: &'a mut [u8],
}

/// A task's scratch: `vals[i * cols + c]` holds row `b·block + i` of column `c0 + c`, `codes`
/// likewise, and `bytes[j * cols + c]` the packed byte `j` of column `c0 + c`.
struct Buffers {
    vals: Vec<f32>,
    codes: Vec<u8>,
    bytes: Vec<u8>,
}

impl Buffers {
    fn new(s: &BlockShape, cols: usize) -> Buffers {
        Buffers {
            vals: vec![0f32; s.block * cols],
            codes: vec![0u8; s.block * cols],
            bytes: vec![0u8; s.blob() * cols],
        }
    }
}

impl Tile<'_> {
    /// Block `b` of every column of the tile; false if a value read is NaN or infinite. Each
    /// step runs row by row across the tile's columns, which vectorizes.
    fn block(&mut self, w: &Elems<'_>, s: &BlockShape, b: usize, buf: &mut Buffers) -> bool {
        let (kb, blob, st, cols) = (s.k_blocks(), s.blob(), w.scale_type(), self.cols);
        let per_byte = 8 / s.bits as usize;
        let top = s.max_code() as f32;
        let rows = b * s.block..s.k.min((b + 1) * s.block);
        let height = rows.len();
        let vals = &mut buf.vals[..height * cols];
        for (r, out) in rows.zip(vals.chunks_exact_mut(cols)) {
            w.read_into(r * s.n + self.c0, out);
        }
        let finite = vals.iter().fold(true, |ok, v| ok & v.is_finite());
        let (mut lo, mut hi) = ([f32::MAX; TILE], [f32::MIN; TILE]);
        for row in vals.chunks_exact(cols) {
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                *l = if v < *l { v } else { *l };
                *h = if v > *h { v } else { *h };
            }
        }
        let (mut recip, mut zpf) = ([0f32; TILE], [0f32; TILE]);
        for c in 0..cols {
            let p = block_params(lo[c], hi[c], s, st);
            self.scales[c * kb + b] = p.scale;
            self.zps[c * kb + b] = p.zp as u8;
            (recip[c], zpf[c]) = (p.recip, p.zp as f32);
        }
        let codes = &mut buf.codes[..height * cols];
        for (row, q) in vals.chunks_exact(cols).zip(codes.chunks_exact_mut(cols)) {
            for ((q, &v), (&r, &z)) in q.iter_mut().zip(row).zip(recip.iter().zip(&zpf)) {
                *q = code(v * r + z, top);
            }
        }
        // `per_byte` consecutive rows make one byte of each column, low bits first.
        let used = height.div_ceil(per_byte);
        let bytes = &mut buf.bytes[..used * cols];
        for (j, out) in bytes.chunks_exact_mut(cols).enumerate() {
            out.fill(0);
            let group = codes[j * per_byte * cols..]
                .chunks_exact(cols)
                .take(per_byte);
            for (r, row) in group.enumerate() {
                let shift = r as u32 * s.bits;
                for (o, &q) in out.iter_mut().zip(row) {
                    *o |= q << shift;
                }
            }
        }
        for c in 0..cols {
            let out = &mut self.packed[(c * kb + b) * blob..][..used];
            for (o, row) in out.iter_mut().zip(bytes.chunks_exact(cols)) {
                *o = row[c];
            }
        }
        finite
    }
}

/// MatMulNBits' packed zero points `[N, ceil(k_blocks·bits/8)]`: block b of column n at byte
/// `b / (8 / bits)`, low bits first; unused slots of the last byte hold the default `2^(bits-1)`.
pub fn pack_zero_points(zps: &[u8], n: usize, k_blocks: usize, bits: u32) -> Vec<u8> {
    let per_byte = 8 / bits as usize;
    let row = k_blocks.div_ceil(per_byte);
    let mid = 1u8 << (bits - 1);
    let mut out = vec![0u8; n * row];
    for col in 0..n {
        for slot in 0..row * per_byte {
            let z = if slot < k_blocks {
                zps[col * k_blocks + slot]
            } else {
                mid
            };
            out[col * row + slot / per_byte] |= z << ((slot % per_byte) as u32 * bits);
        }
    }
    out
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

    /// A symmetric block maps its largest-magnitude value to code 0 with a negative scale.
    #[test]
    fn symmetric_scale_is_signed() {
        let w: Vec<f32> = (0..16).map(|i| i as f32 * 0.25).collect();
        let q = nbits(&Elems::F32(F32Data::Slice(&w)), shape(16, 1, 16, 4, true));
        assert_eq!(q.scales, vec![3.75 / -8.0]);
        assert_eq!(q.packed[7] >> 4, 0, "the largest value is code 0");
        assert_eq!(q.packed[0] & 0x0f, 8, "zero is the mid code");
        assert_eq!(q.zero_points, ZeroPoints::Default);
    }

    /// Asymmetric: the range includes 0, codes are unsigned, rows past K are zero.
    #[test]
    fn asymmetric_codes_and_padding() {
        let mut w = vec![0f32; 20 * 2];
        for r in 0..20 {
            w[r * 2] = r as f32 - 5.0;
            w[r * 2 + 1] = 1.0;
        }
        let q = nbits(&Elems::F32(F32Data::Slice(&w)), shape(20, 2, 16, 4, false));
        let ZeroPoints::Codes(zps) = &q.zero_points else {
            panic!("no zero points")
        };
        // Column 0's first block holds -5..=10: scale 15 / 15, zero point 5.
        assert_eq!((q.scales[0], zps[0]), (1.0, 5));
        // Column 1's second block holds rows 16..20 (all 1.0): range [0, 1].
        assert_eq!(q.scales[3], 1.0 / 15.0);
        // Rows past K in the last block are zero bytes.
        let last = &q.packed[3 * q.shape.blob()..];
        assert!(last[2..].iter().all(|&b| b == 0));
        assert_eq!(
            pack_zero_points(zps, 2, 2, 4),
            vec![zps[0] | zps[1] << 4, zps[2] | zps[3] << 4]
        );
        assert_eq!(
            pack_zero_points(&[3], 1, 1, 4),
            vec![0x83],
            "unused slot holds 8"
        );
        assert_eq!(pack_zero_points(&[1], 1, 1, 2), vec![0b10_10_10_01]);
    }

    /// `code` is ORT's `clamp(roundf(x), 0, top)`, halves included.
    #[test]
    fn code_is_clamped_roundf() {
        for i in -200_000..200_000 {
            let x = i as f32 * 0.0037 + 1e-4 * (i % 7) as f32;
            for top in [3.0f32, 15.0, 255.0] {
                let want = x.round().clamp(0.0, top) as u8;
                assert_eq!(code(x, top), want, "{x} {top}");
            }
        }
        for x in [
            0.5f32,
            1.5,
            2.5,
            0.49999997,
            14.5,
            15.49,
            254.5,
            -0.5,
            -0.49999997,
            1e9,
        ] {
            assert_eq!(code(x, 255.0), x.round().clamp(0.0, 255.0) as u8, "{x}");
        }
    }

    /// `round_half_away` is `f32::round` wherever the codes can fall, halves included.
    #[test]
    fn round_half_away_is_roundf() {
        for x in [
            0.5f32,
            -0.5,
            1.5,
            2.5,
            -2.5,
            0.49999997,
            -0.49999997,
            7.5,
            254.5,
            -127.5,
            255.0,
        ] {
            assert_eq!(round_half_away(x), x.round() as i32, "{x}");
        }
        for i in -100_000..100_000 {
            let x = i as f32 * 0.013;
            assert_eq!(round_half_away(x), x.round() as i32, "{x}");
        }
    }
}
