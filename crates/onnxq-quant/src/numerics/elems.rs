//! A weight's values read in place, whatever their storage (float32 as a slice or little-endian
//! bytes, float16, bfloat16), and the type its scales are stored in: what every weight-only kernel
//! reads and writes through.

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
    pub(super) fn kernel(self, s: f32) -> f32 {
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
