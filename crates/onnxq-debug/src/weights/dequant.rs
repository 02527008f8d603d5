//! A quantized weight's values, element by element in the float weight's row-major order, and
//! their error statistics against the float weight, in float64 (no integer wrap-around). The
//! layouts: affine codes with per-tensor, per-axis or per-block parameters (DequantizeLinear and
//! the QOperator/dynamic ops), MatMulNBits' transposed packed blocks, GatherBlockQuantized's
//! packed table.

use rayon::prelude::*;

use crate::stats::Sums;
use crate::values::{Elements, crumb, nibble};

/// How codes and parameters map onto the float weight's elements.
#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// `(code[i] − zp[p]) · scale[p]` over the float weight's own shape `dims`; `p` from the
    /// channel `axis` (when per channel) cut into blocks of `block` (when per block).
    Affine {
        dims: Vec<usize>,
        axis: Option<usize>,
        block: Option<usize>,
    },
    /// MatMulNBits: float `[k, n]`, codes `[n, k_blocks, blob]` of `bits`, parameters
    /// `[n, k_blocks]`; `g_idx` maps a row to its block when present.
    NBits {
        k: usize,
        n: usize,
        bits: u32,
        block: usize,
        g_idx: Option<Elements>,
    },
}

/// A quantized weight ready to read.
#[derive(Debug, Clone)]
pub(crate) struct Quantized {
    pub(crate) codes: Elements,
    /// Codes stored `bits` to a byte in a uint8 tensor (GatherBlockQuantized's 4-bit table).
    pub(crate) packed_bits: Option<u32>,
    pub(crate) scale: Elements,
    pub(crate) zero_point: ZeroPoint,
    pub(crate) layout: Layout,
}

/// A weight's zero points.
#[derive(Debug, Clone)]
pub(crate) enum ZeroPoint {
    /// One value for every parameter (absent: 0, or the op's default).
    Constant(f64),
    /// One per parameter (a scalar tensor broadcasts).
    Values(Elements),
    /// Packed `bits` to a byte, `row` bytes per output column (MatMulNBits).
    Packed {
        bytes: Elements,
        bits: u32,
        row: usize,
    },
}

/// Elements per parallel part; parts are merged in order, so the sums do not depend on threads.
const PART: usize = 1 << 16;

impl Quantized {
    /// Error statistics of the dequantized values against `float` (equal element counts).
    pub(crate) fn sums(&self, float: &Elements) -> Sums {
        let n = float.len();
        let parts: Vec<Sums> = (0..n.div_ceil(PART))
            .into_par_iter()
            .map(|p| {
                let mut s = Sums::default();
                for i in p * PART..((p + 1) * PART).min(n) {
                    s.add(float.get(i), self.value(i));
                }
                s
            })
            .collect();
        parts.into_iter().fold(Sums::default(), Sums::merge)
    }

    /// Number of float elements this layout describes.
    pub(crate) fn len(&self) -> usize {
        match &self.layout {
            Layout::Affine { dims, .. } => dims.iter().product(),
            Layout::NBits { k, n, .. } => k * n,
        }
    }

    /// The dequantized value of float element `i` (row-major in the float weight).
    fn value(&self, i: usize) -> f64 {
        let (code, param) = match &self.layout {
            Layout::Affine { dims, axis, block } => {
                (self.code(i), affine_param(dims, *axis, *block, i))
            }
            Layout::NBits {
                k,
                n,
                bits,
                block,
                g_idx,
            } => {
                let (r, c) = (i / n, i % n);
                let kb = k.div_ceil(*block);
                let blob = block * *bits as usize / 8;
                let at = c * kb * blob * 8 / *bits as usize + r;
                let code = match bits {
                    8 => self.codes.get(at),
                    4 => f64::from(nibble_of(&self.codes, at)),
                    _ => f64::from(crumb_of(&self.codes, at)),
                };
                let b = g_idx.as_ref().map_or(r / block, |g| g.get(r) as usize);
                (code, c * kb + b)
            }
        };
        (code - self.zp(param))
            * self
                .scale
                .get(if self.scale.len() == 1 { 0 } else { param })
    }

    fn code(&self, i: usize) -> f64 {
        match self.packed_bits {
            Some(4) => f64::from(nibble_of(&self.codes, i)),
            _ => self.codes.get(i),
        }
    }

    fn zp(&self, param: usize) -> f64 {
        match &self.zero_point {
            ZeroPoint::Constant(z) => *z,
            ZeroPoint::Values(e) if e.len() == 1 => e.get(0),
            ZeroPoint::Values(e) => match self.packed_bits {
                Some(4) => f64::from(nibble_of(e, param)),
                _ => e.get(param),
            },
            ZeroPoint::Packed { bytes, bits, row } => {
                let Layout::NBits { k, block, .. } = &self.layout else {
                    return 0.0;
                };
                let kb = k.div_ceil(*block);
                let (c, b) = (param / kb, param % kb);
                let at = c * row * 8 / *bits as usize + b;
                match bits {
                    8 => bytes.get(at),
                    4 => f64::from(nibble_of(bytes, at)),
                    _ => f64::from(crumb_of(bytes, at)),
                }
            }
        }
    }
}

/// The parameter index of element `i` of a `dims` tensor quantized along `axis` in blocks.
fn affine_param(dims: &[usize], axis: Option<usize>, block: Option<usize>, i: usize) -> usize {
    let Some(a) = axis else { return 0 };
    let inner: usize = dims[a + 1..].iter().product();
    let size = dims[a];
    let c = (i / inner) % size;
    match block {
        None => c,
        Some(b) => {
            let nb = size.div_ceil(b);
            let outer = i / (inner * size);
            (outer * nb + c / b) * inner + i % inner
        }
    }
}

/// The 4-bit code `i` of a uint8 tensor holding two codes a byte.
fn nibble_of(e: &Elements, i: usize) -> u8 {
    nibble(&[e.get(i / 2) as u8], i % 2)
}

/// The 2-bit code `i` of a uint8 tensor holding four codes a byte.
fn crumb_of(e: &Elements, i: usize) -> u8 {
    crumb(&[e.get(i / 4) as u8], i % 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks along axis 0 of a `[4, 3]` weight with block 2: rows 0-1 use parameter row 0.
    #[test]
    fn block_parameters_follow_the_axis() {
        let dims = [4, 3];
        let p: Vec<usize> = (0..12)
            .map(|i| affine_param(&dims, Some(0), Some(2), i))
            .collect();
        assert_eq!(p, [0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5]);
        let c: Vec<usize> = (0..6)
            .map(|i| affine_param(&[2, 3], Some(1), None, i))
            .collect();
        assert_eq!(c, [0, 1, 2, 0, 1, 2]);
    }
}
