//! Block-wise weight quantization as ONNX Runtime's C++ block quantizer (MLAS) computes it: blocks
//! of `block` consecutive rows of one column of a `[K, N]` weight, each with its own scale (and
//! zero point when asymmetric). Reproduced bit for bit (ort-quantization.md §7.3, §7.4; checked
//! against `quantize_matmul_{2,4,8}bits` and `quantize_qdq_matmul_4bits`): float32 statistics,
//! `roundf` (half away from zero), a multiply by the reciprocal of the *stored* scale, and in the
//! symmetric case a signed scale that maps the block's largest-magnitude value to code 0.
//!
//! Two layouts share the block parameters:
//! - [`nbits`]: MatMulNBits' `B [N, k_blocks, blob]`, codes `roundf(v·r + zp)`, default zero
//!   point `2^(bits-1)` when symmetric;
//! - [`qdq`]: blocked DequantizeLinear's `[K, N]` tensor (INT4/UINT4/INT8/UINT8), codes
//!   `roundf(v·r) + zp`, signed codes and no zero point when symmetric; scales `[k_blocks, N]`.
//!
//! Both run in parallel over independent slabs of the output and read the weight in place.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::F32Data;

/// A weight's values as stored, read in place (little-endian bytes or a slice).
#[derive(Debug, Clone, Copy)]
pub enum Elems<'a> {
    /// float32.
    F32(F32Data<'a>),
    /// float16, little-endian bytes.
    F16(&'a [u8]),
    /// bfloat16, little-endian bytes.
    Bf16(&'a [u8]),
}

impl Elems<'_> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Elems::F32(d) => d.len(),
            Elems::F16(b) | Elems::Bf16(b) => b.len() / 2,
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as float32 (exact for every type).
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            Elems::F32(d) => d.get(i),
            Elems::F16(b) => half::f16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32(),
            Elems::Bf16(b) => half::bf16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32(),
        }
    }

    /// Values `start..start + out.len()` into `out` (a tight loop per type, which vectorizes).
    #[inline]
    pub fn read_into(&self, start: usize, out: &mut [f32]) {
        let n = out.len();
        match self {
            Elems::F32(F32Data::Slice(s)) => out.copy_from_slice(&s[start..start + n]),
            Elems::F32(F32Data::Le(b)) => {
                for (o, c) in out
                    .iter_mut()
                    .zip(b[4 * start..4 * (start + n)].chunks_exact(4))
                {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            Elems::F16(b) => {
                for (o, c) in out
                    .iter_mut()
                    .zip(b[2 * start..2 * (start + n)].chunks_exact(2))
                {
                    *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            Elems::Bf16(b) => {
                for (o, c) in out
                    .iter_mut()
                    .zip(b[2 * start..2 * (start + n)].chunks_exact(2))
                {
                    *o = half::bf16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
        }
    }

    /// The index of the first value that is NaN or infinite, if any (in parallel chunks).
    pub fn first_non_finite(&self) -> Option<usize> {
        self.first_non_finite_in(0..self.len())
    }

    /// [`Elems::first_non_finite`] among the values of `range`.
    pub fn first_non_finite_in(&self, range: std::ops::Range<usize>) -> Option<usize> {
        const CHUNK: usize = 1 << 16;
        let chunks = range.len().div_ceil(CHUNK);
        (0..chunks).into_par_iter().find_map_first(|c| {
            let start = range.start + c * CHUNK;
            let mut buf = vec![0f32; CHUNK.min(range.end - start)];
            self.read_into(start, &mut buf);
            // The whole chunk in one pass (vectorizes); the index only when there is one.
            if buf.iter().all(|v| v.is_finite()) {
                None
            } else {
                buf.iter().position(|v| !v.is_finite()).map(|i| start + i)
            }
        })
    }

    /// The type scales are stored in: the weight's own.
    pub fn scale_type(&self) -> ScaleType {
        match self {
            Elems::F32(_) => ScaleType::F32,
            Elems::F16(_) => ScaleType::F16,
            Elems::Bf16(_) => ScaleType::Bf16,
        }
    }
}

/// The type a scale is stored in, which is the weight's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleType {
    /// float32.
    F32,
    /// float16: the kernel multiplies by the reciprocal of the float16-rounded scale.
    F16,
    /// bfloat16: ORT quantizes a bfloat16 weight in float32 and casts the scales afterwards, so the
    /// kernel uses the float32 scale.
    Bf16,
}

impl ScaleType {
    /// The scale the kernel divides by (as stored, for float16).
    fn kernel(self, s: f32) -> f32 {
        match self {
            ScaleType::F16 => half::f16::from_f32(s).to_f32(),
            ScaleType::F32 | ScaleType::Bf16 => s,
        }
    }

    /// `s` rounded once to this type (as numpy's `astype` from float64), as a float32.
    pub fn from_f64(self, s: f64) -> f32 {
        match self {
            ScaleType::F32 => s as f32,
            ScaleType::F16 => half::f16::from_f64(s).to_f32(),
            ScaleType::Bf16 => half::bf16::from_f64(s).to_f32(),
        }
    }

    /// Little-endian bytes of `scales` in this type.
    pub fn to_bytes(self, scales: &[f32]) -> Vec<u8> {
        match self {
            ScaleType::F32 => scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
            ScaleType::F16 => scales
                .iter()
                .flat_map(|s| half::f16::from_f32(*s).to_le_bytes())
                .collect(),
            ScaleType::Bf16 => scales
                .iter()
                .flat_map(|s| half::bf16::from_f32(*s).to_le_bytes())
                .collect(),
        }
    }
}

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

    fn max_code(&self) -> i32 {
        (1 << self.bits) - 1
    }

    fn mid(&self) -> i32 {
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
fn round_half_away(x: f32) -> i32 {
    let t = x as i32;
    let f = x - t as f32;
    t + i32::from(f >= 0.5) - i32::from(f <= -0.5)
}

/// One block's parameters: the stored scale (as float32), the kernel's reciprocal, the zero point.
#[derive(Debug, Clone, Copy)]
struct Block {
    scale: f32,
    recip: f32,
    zp: i32,
}

/// MLAS's `range2scalezp` / `range2scale` for a block with minimum `min` and maximum `max`.
fn block_params(min: f32, max: f32, s: &BlockShape, st: ScaleType) -> Block {
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
    Ok(NBits {
        shape: s,
        packed,
        scales,
        zero_points: if s.symmetric {
            ZeroPoints::Default
        } else {
            ZeroPoints::Codes(zps)
        },
    })
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
