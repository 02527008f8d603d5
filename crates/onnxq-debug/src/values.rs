//! Reading a constant's elements as numbers, whatever its element type: float32/16/64 and
//! bfloat16 as their values, integers (int2 to int64, packed sub-byte types included) as their
//! integer values. Dequantization is done on these numbers in float64, so a uint8 code minus a
//! large zero point never wraps around as ONNX Runtime's `create_weight_matching` does.

use bytes::Bytes;
use onnxq_ir::DataType;
use onnxq_ir::proto as pb;

/// A tensor's elements, read in place from its raw bytes.
#[derive(Debug, Clone)]
pub(crate) struct Elements {
    bytes: Bytes,
    dtype: i32,
    len: usize,
}

impl Elements {
    /// The elements of `t`, or why they cannot be read.
    pub(crate) fn of(t: &pb::TensorProto) -> Result<Elements, String> {
        let dtype = DataType(t.data_type());
        let len = onnxq_ir::tensor::element_count(t)?;
        let len = usize::try_from(len).map_err(|_| "too many elements".to_owned())?;
        let bits = match t.data_type() {
            1 | 6 | 12 => 32,
            2 | 3 => 8,
            4 | 5 | 10 | 16 => 16,
            7 | 11 => 64,
            21 | 22 => 4,
            25 | 26 => 2,
            _ => return Err(format!("{dtype} elements are not read by compare")),
        };
        let bytes = match onnxq_ir::tensor::raw_bytes(t) {
            Some(b) => b,
            // Sub-byte codes in int32_data: one packed byte per entry.
            None if bits < 8 => t.int32_data.iter().map(|&x| x as u8).collect(),
            None => return Err(format!("{dtype} data has no raw layout")),
        };
        if (bytes.len() as u64) * 8 < len as u64 * bits {
            return Err(format!(
                "{} bytes of data for {len} {dtype} elements",
                bytes.len()
            ));
        }
        Ok(Elements {
            bytes,
            dtype: t.data_type(),
            len,
        })
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The ONNX element type's name ("int8", "uint4", ...).
    pub(crate) fn type_name(&self) -> String {
        DataType(self.dtype).to_string()
    }

    /// Element `i` as a number (`i < len`).
    pub(crate) fn get(&self, i: usize) -> f64 {
        let b = &self.bytes;
        let word = |n: usize| &b[i * n..i * n + n];
        match self.dtype {
            1 => f64::from(f32::from_le_bytes(arr(word(4)))),
            2 => f64::from(b[i]),
            3 => f64::from(b[i] as i8),
            4 => f64::from(u16::from_le_bytes(arr(word(2)))),
            5 => f64::from(i16::from_le_bytes(arr(word(2)))),
            6 => f64::from(i32::from_le_bytes(arr(word(4)))),
            12 => f64::from(u32::from_le_bytes(arr(word(4)))),
            7 => i64::from_le_bytes(arr(word(8))) as f64,
            10 => f64::from(half::f16::from_le_bytes(arr(word(2))).to_f32()),
            16 => f64::from(half::bf16::from_le_bytes(arr(word(2))).to_f32()),
            11 => f64::from_le_bytes(arr(word(8))),
            21 => f64::from(nibble(b, i)),
            22 => f64::from(((nibble(b, i) << 4) as i8) >> 4),
            25 => f64::from(crumb(b, i)),
            _ => f64::from(((crumb(b, i) << 6) as i8) >> 6),
        }
    }
}

/// The 4-bit code `i` of packed storage (low nibble first).
pub(crate) fn nibble(b: &[u8], i: usize) -> u8 {
    (b[i / 2] >> ((i % 2) * 4)) & 0x0f
}

/// The 2-bit code `i` of packed storage (lowest bits first).
pub(crate) fn crumb(b: &[u8], i: usize) -> u8 {
    (b[i / 4] >> ((i % 4) * 2)) & 0x03
}

fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dtype: i32, dims: &[i64], raw: Vec<u8>) -> pb::TensorProto {
        pb::TensorProto {
            data_type: Some(dtype),
            dims: dims.to_vec(),
            raw_data: Some(raw.into()),
            ..Default::default()
        }
    }

    /// Packed signed and unsigned sub-byte codes, and uint8 read as its value (no wrap-around).
    #[test]
    fn reads_packed_and_unsigned_codes() {
        let i4 = Elements::of(&tensor(22, &[3], vec![0x8f, 0x07])).expect("int4");
        assert_eq!(
            (0..3).map(|i| i4.get(i)).collect::<Vec<_>>(),
            [-1.0, -8.0, 7.0]
        );
        let u2 = Elements::of(&tensor(25, &[4], vec![0b11_10_01_00])).expect("uint2");
        assert_eq!(
            (0..4).map(|i| u2.get(i)).collect::<Vec<_>>(),
            [0.0, 1.0, 2.0, 3.0]
        );
        let u8s = Elements::of(&tensor(2, &[2], vec![3, 250])).expect("uint8");
        assert_eq!(u8s.get(0) - 128.0, -125.0);
        assert_eq!(u8s.get(1), 250.0);
        assert!(Elements::of(&tensor(1, &[2], vec![0; 4])).is_err());
    }
}
