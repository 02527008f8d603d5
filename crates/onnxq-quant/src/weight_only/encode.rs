//! Between the kernels and the graph: a quantized weight as the tensors it is stored as (name
//! suffix, dims, type, bytes), in ONNX Runtime's layouts — MatMulNBits' packed weight
//! `[N, k_blocks, blob]`, scales `[N, k_blocks]` and packed or float zero points;
//! GatherBlockQuantized's 4-bit table (the table's dims), scales and zero points (the table's dims
//! with the quantize axis cut to its block count); blocked DequantizeLinear's `[K, N]` codes,
//! scales and zero points `[k_blocks, N]` (the QDQ format). Large tensors go to a spill file as soon as they
//! are encoded, so the pass holds only the tensors in flight.

use bytes::Bytes;
use onnxq_ir::{Spill, SpillMap, Spilled};

use super::plan::{BFLOAT16, FLOAT16, Kind, Plan};
use crate::error::{Error, Result};
use crate::numerics::blocks::{NBits, ZeroPoints, pack_zero_points};
use crate::numerics::elems::ScaleType;
use crate::numerics::gather_blocks::GatherBlocks;
use crate::numerics::qdq_blocks::Qdq;

/// ONNX data types written here.
const UINT8: i32 = 2;
const INT8: i32 = 3;
const UINT4: i32 = 21;
const INT4: i32 = 22;

/// Tensors from this size go to the spill file; smaller ones (scales of small weights, every
/// tensor of a test model) stay in memory, where they cost less than a write.
const SPILL_FROM: usize = 64 << 10;

/// A quantized weight.
pub(crate) enum Quantized {
    /// For MatMulNBits.
    NBits(NBits),
    /// For GatherBlockQuantized (and, in the QDQ format, a DequantizeLinear of the table).
    Gather(GatherBlocks),
    /// For a blocked DequantizeLinear feeding MatMul (the QDQ format).
    Qdq(Qdq),
}

/// A tensor's bytes: in memory, or in the spill file until it is mapped.
pub(crate) enum Payload {
    Mem(Bytes),
    Spilled(Spilled),
}

/// One tensor of a quantized weight.
pub(crate) struct Blob<B> {
    /// Appended to the weight's name (`_Q4`, `_scales`, `_zero_points`).
    pub(crate) suffix: String,
    pub(crate) dims: Vec<i64>,
    pub(crate) dtype: i32,
    pub(crate) bytes: B,
}

/// A quantized weight's tensors: data, scales, then zero points if any.
pub(crate) struct Encoded<B = Bytes> {
    pub(crate) bits: u32,
    pub(crate) tensors: Vec<Blob<B>>,
}

fn scale_type(dtype: i32) -> ScaleType {
    match dtype {
        FLOAT16 => ScaleType::F16,
        BFLOAT16 => ScaleType::Bf16,
        _ => ScaleType::F32,
    }
}

/// Encodes `q` (the quantization of `p`'s weight), spilling its large tensors.
pub(crate) fn encode(p: &Plan, q: Quantized, spill: Option<&Spill>) -> Result<Encoded<Payload>> {
    let raw = match q {
        Quantized::NBits(q) => nbits_tensors(p, q),
        Quantized::Gather(q) => gather_tensors(p, q)?,
        Quantized::Qdq(q) => qdq_tensors(p, q),
    };
    let tensors = raw
        .tensors
        .into_iter()
        .map(|b| {
            let bytes = match spill {
                Some(s) if b.bytes.len() >= SPILL_FROM => {
                    Payload::Spilled(s.put(&b.bytes).map_err(Error::Spill)?)
                }
                _ => Payload::Mem(b.bytes.into()),
            };
            Ok(Blob {
                suffix: b.suffix,
                dims: b.dims,
                dtype: b.dtype,
                bytes,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Encoded {
        bits: raw.bits,
        tensors,
    })
}

impl Encoded<Payload> {
    /// The bytes of every tensor, spilled ones read from the mapped spill file (zero-copy).
    pub(crate) fn resolve(self, map: Option<&SpillMap>) -> Result<Encoded> {
        let tensors = self
            .tensors
            .into_iter()
            .map(|b| {
                let bytes = match (b.bytes, map) {
                    (Payload::Mem(m), _) => m,
                    (Payload::Spilled(s), Some(map)) => map.get(&s).map_err(Error::edit)?,
                    (Payload::Spilled(_), None) => {
                        return Err(Error::Internal("spilled tensor without a spill map".into()));
                    }
                };
                Ok(Blob {
                    suffix: b.suffix,
                    dims: b.dims,
                    dtype: b.dtype,
                    bytes,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Encoded {
            bits: self.bits,
            tensors,
        })
    }
}

/// MatMulNBits' packed weight, scales and zero points.
fn nbits_tensors(p: &Plan, q: NBits) -> Encoded<Vec<u8>> {
    let s = q.shape;
    let (n, kb) = (s.n as i64, s.k_blocks() as i64);
    let st = scale_type(p.dtype);
    let mut tensors = vec![
        Blob {
            suffix: format!("_Q{}", s.bits),
            dims: vec![n, kb, s.blob() as i64],
            dtype: UINT8,
            bytes: q.packed,
        },
        Blob {
            suffix: "_scales".into(),
            dims: vec![n, kb],
            dtype: p.dtype,
            bytes: st.to_bytes(&q.scales),
        },
    ];
    let zp = match &q.zero_points {
        ZeroPoints::Default => None,
        ZeroPoints::Codes(z) => {
            let packed = pack_zero_points(z, s.n, s.k_blocks(), s.bits);
            let row = (packed.len() / s.n) as i64;
            Some((vec![n, row], UINT8, packed))
        }
        // Unpacked, in the scales' type and shape.
        ZeroPoints::Float(z) => Some((vec![n, kb], p.dtype, st.to_bytes(z))),
    };
    if let Some((dims, dtype, bytes)) = zp {
        tensors.push(Blob {
            suffix: "_zero_points".into(),
            dims,
            dtype,
            bytes,
        });
    }
    Encoded {
        bits: s.bits,
        tensors,
    }
}

/// Blocked DequantizeLinear's `[K, N]` codes (signed without zero points, unsigned with them),
/// scales and zero points `[k_blocks, N]`, suffixed as MatMulNBits' (`emit_qdq.rs` names them).
fn qdq_tensors(p: &Plan, q: Qdq) -> Encoded<Vec<u8>> {
    let s = q.shape;
    let (k, n, kb) = (s.k as i64, s.n as i64, s.k_blocks() as i64);
    let code_type = match (s.bits, q.zero_points.is_some()) {
        (8, true) => UINT8,
        (8, false) => INT8,
        (_, true) => UINT4,
        (_, false) => INT4,
    };
    let mut tensors = vec![
        Blob {
            suffix: format!("_Q{}", s.bits),
            dims: vec![k, n],
            dtype: code_type,
            bytes: q.data,
        },
        Blob {
            suffix: "_scales".into(),
            dims: vec![kb, n],
            dtype: p.dtype,
            bytes: scale_type(p.dtype).to_bytes(&q.scales),
        },
    ];
    if let Some(z) = q.zero_points {
        tensors.push(Blob {
            suffix: "_zero_points".into(),
            dims: vec![kb, n],
            dtype: code_type,
            bytes: z,
        });
    }
    Encoded {
        bits: s.bits,
        tensors,
    }
}

/// GatherBlockQuantized's 4- or 8-bit table, scales and zero points.
fn gather_tensors(p: &Plan, q: GatherBlocks) -> Result<Encoded<Vec<u8>>> {
    let Kind::Gather { axis, shape } = p.kind else {
        return Err(Error::Internal("not a Gather plan".into()));
    };
    // 8-bit tables are UINT8 (symmetric ones offset by the default zero point, 128).
    let bits = p.settings.bits;
    let code_type = match (bits, p.settings.symmetric) {
        (8, _) => UINT8,
        (_, true) => INT4,
        (_, false) => UINT4,
    };
    let dims: Vec<i64> = p.dims.iter().map(|&d| d as i64).collect();
    let mut param_dims = dims.clone();
    param_dims[axis] = (q.scales.len() / (shape.m * shape.n)) as i64;
    let mut tensors = vec![
        Blob {
            suffix: format!("_Q{bits}"),
            dims,
            dtype: code_type,
            bytes: q.data,
        },
        Blob {
            suffix: "_scales".into(),
            dims: param_dims.clone(),
            dtype: p.dtype,
            bytes: scale_type(p.dtype).to_bytes(&q.scales),
        },
    ];
    if let Some(z) = q.zero_points {
        tensors.push(Blob {
            suffix: "_zero_points".into(),
            dims: param_dims,
            dtype: if bits == 8 { UINT8 } else { UINT4 },
            bytes: z,
        });
    }
    Ok(Encoded { bits, tensors })
}
