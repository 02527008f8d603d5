//! The evaluator's tensors: dims plus row-major data of one of the element types constant
//! subgraphs use (float32/64, int64/32, bool), read from and written to `TensorProto`s as raw
//! little-endian bytes. Structural ops only move elements, so they work on [`Data`] through an
//! index list ([`Data::pick`]) whatever the type.

use onnxq_ir::proto as pb;

/// The most elements one evaluated tensor may have: folding is for constant subgraphs (shape
/// arithmetic, a transposed or rescaled weight), never for materialising something huge that the
/// model computes cheaply at run time (a large `Expand`, `Tile` or `ConstantOfShape`).
pub const MAX_ELEMS: usize = 1 << 24;

/// Row-major elements of one type.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// float32 (ONNX type 1).
    F32(Vec<f32>),
    /// float64 (11).
    F64(Vec<f64>),
    /// int64 (7).
    I64(Vec<i64>),
    /// int32 (6).
    I32(Vec<i32>),
    /// bool (9).
    Bool(Vec<bool>),
}

/// A constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Val {
    /// The dims.
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Data,
}

/// Applies `$e` to the vector inside any [`Data`], rebuilding the same variant.
macro_rules! each_vec {
    ($d:expr, $v:ident => $e:expr) => {
        match $d {
            Data::F32($v) => Data::F32($e),
            Data::F64($v) => Data::F64($e),
            Data::I64($v) => Data::I64($e),
            Data::I32($v) => Data::I32($e),
            Data::Bool($v) => Data::Bool($e),
        }
    };
}

impl Data {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    /// The ONNX element type code.
    pub(crate) fn elem(&self) -> i32 {
        match self {
            Data::F32(_) => 1,
            Data::F64(_) => 11,
            Data::I64(_) => 7,
            Data::I32(_) => 6,
            Data::Bool(_) => 9,
        }
    }

    /// The elements at `idx`, in that order.
    pub(crate) fn pick(&self, idx: &[usize]) -> Data {
        each_vec!(self, v => idx.iter().map(|&i| v[i]).collect())
    }

    /// `n` copies of this tensor's first element (ConstantOfShape's fill).
    pub(crate) fn repeat_first(&self, n: usize) -> Option<Data> {
        (self.len() == 1).then(|| self.pick(&vec![0; n]))
    }

    /// The elements as integers (indices, shapes, axes).
    pub(crate) fn ints(&self) -> Option<Vec<i64>> {
        match self {
            Data::I64(v) => Some(v.clone()),
            Data::I32(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
            _ => None,
        }
    }
}

impl Val {
    /// A tensor, when the element count matches the dims.
    pub fn new(dims: Vec<usize>, data: Data) -> Option<Val> {
        (dims.iter().product::<usize>() == data.len()).then_some(Val { dims, data })
    }

    /// An int64 tensor.
    pub fn i64s(dims: Vec<usize>, v: Vec<i64>) -> Option<Val> {
        Val::new(dims, Data::I64(v))
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether it has no elements (a dim of 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads a dense tensor of a supported element type, up to [`MAX_ELEMS`] elements.
    pub fn from_tensor(t: &pb::TensorProto) -> Option<Val> {
        let dims: Vec<usize> = (t.dims.iter())
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<_>>()?;
        if dims.iter().product::<usize>() > MAX_ELEMS {
            return None;
        }
        let raw = onnxq_ir::tensor::raw_bytes(t)?;
        let data = match t.data_type() {
            1 => Data::F32(chunks(&raw, f32::from_le_bytes)),
            11 => Data::F64(chunks(&raw, f64::from_le_bytes)),
            7 => Data::I64(chunks(&raw, i64::from_le_bytes)),
            6 => Data::I32(chunks(&raw, i32::from_le_bytes)),
            9 => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
            _ => return None,
        };
        Val::new(dims, data)
    }

    /// The tensor proto (raw little-endian data) holding this value.
    pub fn to_tensor(&self) -> pb::TensorProto {
        let raw: Vec<u8> = match &self.data {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        };
        pb::TensorProto {
            dims: self.dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(self.data.elem()),
            raw_data: Some(raw.into()),
            ..Default::default()
        }
    }
}

/// Little-endian elements of `N` bytes each.
fn chunks<T, const N: usize>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

/// Row-major strides of `dims`.
pub(crate) fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// An axis attribute or input in `[-rank, rank)` as an index.
pub(crate) fn axis(a: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    (0..r).contains(&a).then_some(a as usize)
}

/// The numpy broadcast of two shapes.
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let x = if i + a.len() >= r {
                a[i + a.len() - r]
            } else {
                1
            };
            let y = if i + b.len() >= r {
                b[i + b.len() - r]
            } else {
                1
            };
            match (x, y) {
                _ if x == y => Some(x),
                (1, _) => Some(y),
                (_, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// For each element of `out` (row-major), the index of the element of a tensor of shape `dims`
/// that broadcasting reads.
pub(crate) fn broadcast_index(dims: &[usize], out: &[usize]) -> Vec<usize> {
    let n: usize = out.iter().product();
    let offset = out.len() - dims.len();
    let src = strides(dims);
    let ostr = strides(out);
    (0..n)
        .map(|flat| {
            (0..dims.len())
                .map(|i| {
                    let coord = (flat / ostr[i + offset]) % out[i + offset];
                    if dims[i] == 1 { 0 } else { coord * src[i] }
                })
                .sum()
        })
        .collect()
}
