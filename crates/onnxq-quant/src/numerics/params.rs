//! Scale and zero point: the quantization types, their ranges as ONNX Runtime picks them, and
//! ORT's exact `compute_scale_zp` (reference `ort-quantization.md` §3), with its float16 tiny-scale
//! bug fixed.
//!
//! `real = scale * (q - zero_point)`. Ranges always include zero; the scale is computed in float64
//! and rounded to float32 last.

/// An integer quantization type.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum QuantType {
    /// uint8.
    U8,
    /// int8.
    I8,
    /// uint16.
    U16,
    /// int16.
    I16,
    /// uint4.
    U4,
    /// int4.
    I4,
}

impl QuantType {
    /// The type's name on the command line (`int8`, `uint16`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U4 => "uint4",
            Self::I4 => "int4",
        }
    }

    /// The ONNX `TensorProto.DataType` code.
    pub fn onnx_type(self) -> i32 {
        match self {
            QuantType::U8 => 2,
            QuantType::I8 => 3,
            QuantType::U16 => 4,
            QuantType::I16 => 5,
            QuantType::U4 => 21,
            QuantType::I4 => 22,
        }
    }

    /// Whether the type is signed.
    pub fn signed(self) -> bool {
        matches!(self, QuantType::I8 | QuantType::I16 | QuantType::I4)
    }

    /// The full range of the type.
    pub fn full_range(self) -> (i32, i32) {
        match self {
            QuantType::U8 => (0, 255),
            QuantType::I8 => (-128, 127),
            QuantType::U16 => (0, 65535),
            QuantType::I16 => (-32768, 32767),
            QuantType::U4 => (0, 15),
            QuantType::I4 => (-8, 7),
        }
    }

    /// qmin/qmax as ONNX Runtime picks them: the reduced table under `reduce_range`, else the
    /// symmetric table for symmetric int8/int16 (which drops -128/-32768), else the full range.
    pub fn qrange(self, reduce_range: bool, symmetric: bool) -> (i32, i32) {
        match (self, reduce_range, symmetric) {
            (QuantType::U8, true, _) => (0, 127),
            // ORT's reduced int8 range is -64..64 (129 levels), not -64..63.
            (QuantType::I8, true, _) => (-64, 64),
            (QuantType::U16, true, _) => (0, 32767),
            (QuantType::I16, true, _) => (-16384, 16384),
            (QuantType::U4, true, _) => (0, 7),
            (QuantType::I4, true, _) => (-4, 3),
            (QuantType::I8, false, true) => (-127, 127),
            (QuantType::I16, false, true) => (-32767, 32767),
            (t, _, _) => t.full_range(),
        }
    }

    /// Bits per element in ONNX storage (4-bit types are packed two per byte).
    pub fn storage_bits(self) -> u32 {
        match self {
            QuantType::U8 | QuantType::I8 => 8,
            QuantType::U16 | QuantType::I16 => 16,
            QuantType::U4 | QuantType::I4 => 4,
        }
    }
}

/// Quantization parameters of one tensor or channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Scale (float32).
    pub scale: f32,
    /// Zero point, within the type's range.
    pub zero_point: i32,
}

/// Scale and zero point for the real range `[rmin, rmax]` (ORT's `compute_scale_zp`):
/// zero is always inside the range; symmetric ranges are `±max(|rmin|, |rmax|)`; the scale is
/// `(rmax - rmin) / (qmax - qmin)` in float64; a scale below float32's smallest normal (an all-zero
/// range) becomes 1 with zero point 0. ORT uses the *input* type's tiny, so float16 weights with
/// max |w| < ~0.008 collapse to zeros there; onnxq always uses float32's tiny (the scale is stored
/// as float32 in every format it writes).
pub fn compute_qparams(
    rmin: f32,
    rmax: f32,
    (qmin, qmax): (i32, i32),
    symmetric: bool,
    min_real_range: Option<f32>,
) -> QParams {
    let mut rmin = rmin.min(0.0);
    let mut rmax = rmax.max(0.0);
    if let Some(m) = min_real_range {
        rmax = rmax.max(rmin + m);
    }
    if symmetric {
        let absmax = rmin.abs().max(rmax.abs());
        rmin = -absmax;
        rmax = absmax;
    }
    let scale = (f64::from(rmax) - f64::from(rmin)) / (f64::from(qmax) - f64::from(qmin));
    if scale < f64::from(f32::MIN_POSITIVE) {
        return QParams {
            scale: 1.0,
            zero_point: 0,
        };
    }
    let zero_point = if symmetric {
        round_half_even_f64((f64::from(qmin) + f64::from(qmax)) / 2.0)
    } else {
        round_half_even_f64(f64::from(qmin) - f64::from(rmin) / scale)
    };
    QParams {
        scale: scale as f32,
        zero_point: zero_point as i32,
    }
}

fn round_half_even_f64(x: f64) -> f64 {
    x.round_ties_even()
}

/// ORT's `ActivationRestrictedAsymmetric` parameters (reference §3.6): the zero point is the
/// lowest level for a non-negative range, else the middle one (128), and the scale the smallest
/// that covers the range from there; computed in float64 like ORT.
pub(crate) fn snap_to_uint8(
    rmin: f32,
    rmax: f32,
    (qmin, qmax): (i32, i32),
    min_real_range: Option<f32>,
) -> QParams {
    let rmin = rmin.min(0.0);
    let mut rmax = rmax.max(0.0);
    if let Some(m) = min_real_range {
        rmax = rmax.max(rmin + m);
    }
    let (lo, hi) = (f64::from(rmin), f64::from(rmax));
    let (qmin_f, qmax_f) = (f64::from(qmin), f64::from(qmax));
    let mid = (qmin + qmax + 1) / 2;
    let mid_f = f64::from(mid);
    let (zero_point, mut scale) = if hi <= lo {
        // Both bounds are 0: an all-zero tensor.
        let zero_point = if lo >= 0.0 { qmin } else { mid };
        let absmax = lo.abs().max(hi.abs());
        let denominator = if zero_point == qmin {
            qmax_f - qmin_f
        } else {
            f64::from(((qmax - qmin) / 2).max(1))
        };
        (
            zero_point,
            if absmax > 0.0 { absmax } else { 1.0 } / denominator,
        )
    } else if lo >= 0.0 {
        (qmin, hi / (qmax_f - qmin_f))
    } else {
        (mid, (-lo / (mid_f - qmin_f)).max(hi / (qmax_f - mid_f)))
    };
    if let Some(m) = min_real_range {
        scale = scale.max(f64::from(m) / (qmax_f - qmin_f));
    }
    QParams {
        scale: scale as f32,
        zero_point,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp(rmin: f32, rmax: f32, t: QuantType, sym: bool, reduce: bool) -> (f32, i32) {
        let p = compute_qparams(rmin, rmax, t.qrange(reduce, sym), sym, None);
        (p.scale, p.zero_point)
    }

    /// The verified examples of the reference (§3.2).
    #[test]
    fn reference_examples() {
        assert_eq!(
            qp(-1.0, 3.0, QuantType::U8, false, false),
            (0.015_686_275, 64)
        );
        assert_eq!(
            qp(0.5, 3.0, QuantType::U8, false, false),
            ((3.0f64 / 255.0) as f32, 0)
        );
        assert_eq!(
            qp(-1.0, 3.0, QuantType::U8, true, false),
            ((6.0f64 / 255.0) as f32, 128)
        );
        assert_eq!(
            qp(-1.0, 3.0, QuantType::I8, true, false),
            ((6.0f64 / 254.0) as f32, 0)
        );
        assert_eq!(qp(-1.0, 3.0, QuantType::I8, false, false).1, -64);
        assert_eq!(qp(-1.0, 3.0, QuantType::I4, true, false), (0.4, 0));
        assert_eq!(
            qp(-1.0, 3.0, QuantType::U4, false, false),
            ((4.0f64 / 15.0) as f32, 4)
        );
        assert_eq!(qp(-1.0, 3.0, QuantType::U8, false, true).1, 32);
        assert_eq!(
            qp(-1.0, 3.0, QuantType::I8, true, true).0,
            (6.0f64 / 128.0) as f32
        );
        assert_eq!(qp(-1.5, 1.0, QuantType::U8, false, false).1, 153);
        assert_eq!(qp(-1.0, 3.0, QuantType::U16, true, false).1, 32768);
        assert_eq!(qp(-1.0, 3.0, QuantType::U4, true, false).1, 8);
    }

    #[test]
    fn degenerate_range_gives_unit_scale() {
        assert_eq!(qp(0.0, 0.0, QuantType::U8, true, false), (1.0, 0));
        assert_eq!(qp(0.0, 0.0, QuantType::I8, false, false), (1.0, 0));
        // A tiny but normal float32 range keeps its own scale (ORT's float16 bug would give 1.0).
        assert!(qp(-1e-3, 1e-3, QuantType::I8, true, false).0 < 1e-4);
    }
}
