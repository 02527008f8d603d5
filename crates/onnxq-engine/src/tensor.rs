//! Plain tensors exchanged with engines: dims plus typed data, no ndarray.

/// Tensor element storage. Float16 values are kept as their bit patterns.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// float32.
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
    /// float16 bit patterns.
    F16(Vec<u16>),
    /// int64.
    I64(Vec<i64>),
    /// int32.
    I32(Vec<i32>),
    /// int8.
    I8(Vec<i8>),
    /// uint8.
    U8(Vec<u8>),
    /// bool.
    Bool(Vec<bool>),
}

impl Data {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::F16(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The numpy-style type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Data::F32(_) => "float32",
            Data::F64(_) => "float64",
            Data::F16(_) => "float16",
            Data::I64(_) => "int64",
            Data::I32(_) => "int32",
            Data::I8(_) => "int8",
            Data::U8(_) => "uint8",
            Data::Bool(_) => "bool",
        }
    }
}

/// A dense tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions (row-major).
    pub dims: Vec<usize>,
    /// Elements; `data.len()` is the product of `dims`.
    pub data: Data,
}

/// Borrowed tensor elements, as an engine hands them out.
#[derive(Debug, Clone, Copy)]
pub enum DataRef<'a> {
    /// float32.
    F32(&'a [f32]),
    /// float64.
    F64(&'a [f64]),
    /// int64.
    I64(&'a [i64]),
    /// int32.
    I32(&'a [i32]),
    /// int8.
    I8(&'a [i8]),
    /// uint8.
    U8(&'a [u8]),
    /// bool.
    Bool(&'a [bool]),
    /// Another element type, not exposed (strings, float16, ...).
    Other,
}

impl DataRef<'_> {
    /// An owned copy (`Other` becomes an empty float32 tensor).
    pub fn to_owned(&self) -> Data {
        match *self {
            DataRef::F32(v) => Data::F32(v.to_vec()),
            DataRef::F64(v) => Data::F64(v.to_vec()),
            DataRef::I64(v) => Data::I64(v.to_vec()),
            DataRef::I32(v) => Data::I32(v.to_vec()),
            DataRef::I8(v) => Data::I8(v.to_vec()),
            DataRef::U8(v) => Data::U8(v.to_vec()),
            DataRef::Bool(v) => Data::Bool(v.to_vec()),
            DataRef::Other => Data::F32(Vec::new()),
        }
    }
}
