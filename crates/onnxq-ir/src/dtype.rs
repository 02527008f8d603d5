//! ONNX tensor element types: names, storage widths and the typed proto field each one uses.

use std::fmt;

/// An ONNX `TensorProto.DataType` code. Codes newer than this build are kept as `Unknown` so a model
/// still round-trips; code that needs a size asks [`DataType::bits`] and gets `None` for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataType(pub i32);

/// Facts about one element type: code, ONNX name, storage bits per element.
struct Info {
    code: i32,
    name: &'static str,
    bits: Option<u32>,
}

const TABLE: &[Info] = &[
    Info {
        code: 0,
        name: "undefined",
        bits: None,
    },
    Info {
        code: 1,
        name: "float32",
        bits: Some(32),
    },
    Info {
        code: 2,
        name: "uint8",
        bits: Some(8),
    },
    Info {
        code: 3,
        name: "int8",
        bits: Some(8),
    },
    Info {
        code: 4,
        name: "uint16",
        bits: Some(16),
    },
    Info {
        code: 5,
        name: "int16",
        bits: Some(16),
    },
    Info {
        code: 6,
        name: "int32",
        bits: Some(32),
    },
    Info {
        code: 7,
        name: "int64",
        bits: Some(64),
    },
    Info {
        code: 8,
        name: "string",
        bits: None,
    },
    Info {
        code: 9,
        name: "bool",
        bits: Some(8),
    },
    Info {
        code: 10,
        name: "float16",
        bits: Some(16),
    },
    Info {
        code: 11,
        name: "float64",
        bits: Some(64),
    },
    Info {
        code: 12,
        name: "uint32",
        bits: Some(32),
    },
    Info {
        code: 13,
        name: "uint64",
        bits: Some(64),
    },
    Info {
        code: 14,
        name: "complex64",
        bits: Some(64),
    },
    Info {
        code: 15,
        name: "complex128",
        bits: Some(128),
    },
    Info {
        code: 16,
        name: "bfloat16",
        bits: Some(16),
    },
    Info {
        code: 17,
        name: "float8e4m3fn",
        bits: Some(8),
    },
    Info {
        code: 18,
        name: "float8e4m3fnuz",
        bits: Some(8),
    },
    Info {
        code: 19,
        name: "float8e5m2",
        bits: Some(8),
    },
    Info {
        code: 20,
        name: "float8e5m2fnuz",
        bits: Some(8),
    },
    Info {
        code: 21,
        name: "uint4",
        bits: Some(4),
    },
    Info {
        code: 22,
        name: "int4",
        bits: Some(4),
    },
    Info {
        code: 23,
        name: "float4e2m1",
        bits: Some(4),
    },
    Info {
        code: 24,
        name: "float8e8m0",
        bits: Some(8),
    },
    Info {
        code: 25,
        name: "uint2",
        bits: Some(2),
    },
    Info {
        code: 26,
        name: "int2",
        bits: Some(2),
    },
    Info {
        code: 27,
        name: "float6e2m3",
        bits: Some(6),
    },
    Info {
        code: 28,
        name: "float6e3m2",
        bits: Some(6),
    },
];

/// Which typed `TensorProto` field holds a type's values when `raw_data` is absent (ONNX spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedField {
    /// `float_data`: float32 and complex64 (two floats per element).
    Float,
    /// `int32_data`: every type of 16 bits or fewer, one element per entry (sub-byte types packed).
    Int32,
    /// `int64_data`: int64.
    Int64,
    /// `double_data`: float64 and complex128.
    Double,
    /// `uint64_data`: uint32 and uint64.
    Uint64,
    /// `string_data`: string.
    String,
}

impl DataType {
    /// float32.
    pub const FLOAT: DataType = DataType(1);
    /// uint8.
    pub const UINT8: DataType = DataType(2);
    /// int8.
    pub const INT8: DataType = DataType(3);
    /// int32.
    pub const INT32: DataType = DataType(6);
    /// int64.
    pub const INT64: DataType = DataType(7);
    /// string.
    pub const STRING: DataType = DataType(8);
    /// float16.
    pub const FLOAT16: DataType = DataType(10);

    fn info(self) -> Option<&'static Info> {
        TABLE.iter().find(|i| i.code == self.0)
    }

    /// Whether this build knows the code (and it is not `UNDEFINED`).
    pub fn is_known(self) -> bool {
        self.0 != 0 && self.info().is_some()
    }

    /// Storage bits per element for fixed-size types; `None` for string, undefined and unknown.
    pub fn bits(self) -> Option<u32> {
        self.info().and_then(|i| i.bits)
    }

    /// Bytes `n` elements occupy in `raw_data` (sub-byte types packed, rounded up to whole bytes).
    pub fn raw_len(self, n: u64) -> Option<u64> {
        let bits = u64::from(self.bits()?);
        n.checked_mul(bits).map(|b| b.div_ceil(8))
    }

    /// The typed field holding this type's values when they are not in `raw_data`.
    pub fn typed_field(self) -> Option<TypedField> {
        Some(match self.0 {
            1 | 14 => TypedField::Float,
            7 => TypedField::Int64,
            11 | 15 => TypedField::Double,
            12 | 13 => TypedField::Uint64,
            8 => TypedField::String,
            c if self.is_known() && c != 0 => TypedField::Int32,
            _ => return None,
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.info() {
            Some(i) => f.write_str(i.name),
            None => write!(f, "unknown({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_names() {
        assert_eq!(DataType::FLOAT.raw_len(3), Some(12));
        assert_eq!(DataType(22).raw_len(3), Some(2), "int4 packs two per byte");
        assert_eq!(DataType(25).raw_len(5), Some(2), "int2 packs four per byte");
        assert_eq!(
            DataType(27).raw_len(4),
            Some(3),
            "float6 packs 4 in 3 bytes"
        );
        assert_eq!(DataType::STRING.raw_len(1), None);
        assert_eq!(DataType(99).to_string(), "unknown(99)");
        assert!(!DataType(0).is_known());
        assert_eq!(
            DataType::FLOAT.raw_len(u64::MAX),
            None,
            "overflow is caught"
        );
        assert_eq!(DataType(14).typed_field(), Some(TypedField::Float));
        assert_eq!(DataType(22).typed_field(), Some(TypedField::Int32));
    }
}
