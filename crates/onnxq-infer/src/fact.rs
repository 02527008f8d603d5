//! What inference knows about one value: its element type, its shape (rank and symbolic
//! dimensions), and for small integer tensors (shape arithmetic: `Shape`, `Gather`, `Concat` of
//! dims) the contents themselves, as dimensions, so a `Reshape` fed by a shape subgraph gets
//! `[batch, seq, 12, 32]` rather than "unknown".

use onnxq_ir::proto as pb;

use crate::dim::Dim;

/// Largest integer tensor whose contents are tracked (shape vectors are a handful of values).
pub(crate) const MAX_VALUE_ELEMS: usize = 64;

/// ONNX element type codes used by the rules.
pub(crate) mod elem {
    /// float32.
    pub(crate) const FLOAT: i32 = 1;
    /// int32.
    pub(crate) const INT32: i32 = 6;
    /// int64.
    pub(crate) const INT64: i32 = 7;
    /// bool.
    pub(crate) const BOOL: i32 = 9;
}

/// What is known about a value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fact {
    /// The element type (ONNX code), if known.
    pub elem: Option<i32>,
    /// The dimensions, if the rank is known.
    pub shape: Option<Vec<Dim>>,
    /// The contents, row-major, for a small integer tensor whose values are known.
    pub value: Option<Vec<Dim>>,
    /// The contents of a small float constant (Resize's scales).
    pub floats: Option<Vec<f32>>,
}

impl Fact {
    /// A tensor of `elem` with `shape`.
    pub fn tensor(elem: Option<i32>, shape: Option<Vec<Dim>>) -> Fact {
        Fact {
            elem,
            shape,
            ..Fact::default()
        }
    }

    /// A 1-D integer tensor holding `values` (a shape vector).
    pub fn int_vector(elem: i32, values: Vec<Dim>) -> Fact {
        Fact {
            elem: Some(elem),
            shape: Some(vec![Dim::known(values.len() as i64)]),
            value: Some(values),
            floats: None,
        }
    }

    /// The rank, if known.
    pub fn rank(&self) -> Option<usize> {
        self.shape.as_ref().map(Vec::len)
    }

    /// Whether every dimension is known or named (nothing left to infer).
    pub fn complete(&self) -> bool {
        self.elem.is_some() && self.shape.is_some()
    }

    /// The contents as an evaluator tensor, when the dims and every element are known (small
    /// int64/int32 and float32 tensors).
    pub fn contents(&self) -> Option<crate::eval::Val> {
        use crate::eval::{Data, Val};
        let dims: Vec<usize> = (self.shape.as_ref()?.iter())
            .map(|d| d.value().and_then(|x| usize::try_from(x).ok()))
            .collect::<Option<_>>()?;
        let data = match (self.elem?, &self.floats) {
            (elem::FLOAT, Some(v)) => Data::F32(v.clone()),
            (elem::INT64, _) => Data::I64(self.ints()?),
            (elem::INT32, _) => Data::I32(
                (self.ints()?.into_iter())
                    .map(|x| i32::try_from(x).ok())
                    .collect::<Option<_>>()?,
            ),
            _ => return None,
        };
        Val::new(dims, data)
    }

    /// The contents as known integers, when every element is one.
    pub fn ints(&self) -> Option<Vec<i64>> {
        self.value.as_ref()?.iter().map(Dim::value).collect()
    }

    /// The value's total element count, as a dimension.
    pub fn numel(&self) -> Option<Dim> {
        let mut n = Dim::known(1);
        for d in self.shape.as_ref()? {
            n = n.mul(d)?;
        }
        Some(n)
    }
}

/// A fact from a declared type (`value_info`, graph inputs and outputs): dims with a value are
/// known, dims with a name are that symbol, and dims with neither get a fresh symbol from `fresh`.
pub(crate) fn from_type(t: &pb::TypeProto, fresh: &mut dyn FnMut() -> Dim) -> Fact {
    let Some(pb::type_proto::Value::TensorType(tt)) = &t.value else {
        return Fact::default();
    };
    let shape = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => Dim::known(*v),
                Some(pb::tensor_shape_proto::dimension::Value::DimParam(p)) if !p.is_empty() => {
                    Dim::symbol(p)
                }
                _ => fresh(),
            })
            .collect()
    });
    Fact::tensor(tt.elem_type.filter(|&e| e != 0), shape)
}

/// A fact from a constant tensor: its type and dims, and its contents when it is a small
/// int64/int32 tensor.
pub(crate) fn from_tensor(t: &pb::TensorProto) -> Fact {
    let shape: Vec<Dim> = t.dims.iter().map(|&d| Dim::known(d)).collect();
    let count: i64 = t.dims.iter().product();
    let value = (count >= 0 && count as usize <= MAX_VALUE_ELEMS)
        .then(|| int_contents(t, count as usize))
        .flatten()
        .map(|v| v.into_iter().map(Dim::known).collect());
    let floats = (count >= 0 && count as usize <= MAX_VALUE_ELEMS)
        .then(|| float_contents(t, count as usize))
        .flatten();
    Fact {
        elem: t.data_type.filter(|&e| e != 0),
        shape: Some(shape),
        value,
        floats,
    }
}

/// The values of an int64 or int32 tensor of `count` elements, raw or typed.
fn int_contents(t: &pb::TensorProto, count: usize) -> Option<Vec<i64>> {
    let raw = t.raw_data.as_deref().filter(|r| !r.is_empty());
    let v: Vec<i64> = match (t.data_type?, raw) {
        (elem::INT64, Some(r)) => r
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        (elem::INT32, Some(r)) => r
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
            .collect(),
        (elem::INT64, None) => t.int64_data.clone(),
        (elem::INT32, None) => t.int32_data.iter().map(|&x| i64::from(x)).collect(),
        _ => return None,
    };
    (v.len() == count).then_some(v)
}

/// The values of a float32 tensor of `count` elements, raw or typed.
fn float_contents(t: &pb::TensorProto, count: usize) -> Option<Vec<f32>> {
    if t.data_type? != elem::FLOAT {
        return None;
    }
    let v: Vec<f32> = match t.raw_data.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => r
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
            .collect(),
        None => t.float_data.clone(),
    };
    (v.len() == count).then_some(v)
}

/// The declared type of a fact, for writing into `value_info` (dims by value or by name).
pub fn to_type(f: &Fact) -> Option<pb::TypeProto> {
    let elem = f.elem?;
    let shape = f.shape.as_ref().map(|dims| pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| pb::tensor_shape_proto::Dimension {
                value: Some(match d.value() {
                    Some(v) => pb::tensor_shape_proto::dimension::Value::DimValue(v),
                    None => pb::tensor_shape_proto::dimension::Value::DimParam(d.to_string()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    Some(pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: Some(elem),
            shape,
        })),
        ..Default::default()
    })
}

/// Sets the fact's contents from an evaluated tensor of the same dims and type (small integer
/// and float32 tensors only, as [`from_tensor`] keeps).
pub(crate) fn set_contents(f: &mut Fact, v: &crate::eval::Val) {
    use crate::eval::Data;
    let same_dims = f.shape.as_ref().is_some_and(|s| {
        s.len() == v.dims.len()
            && s.iter()
                .zip(&v.dims)
                .all(|(d, &n)| d.value() == Some(n as i64))
    });
    if !same_dims || v.len() > MAX_VALUE_ELEMS || f.elem != Some(v.data.elem()) {
        return;
    }
    match &v.data {
        Data::I64(x) => f.value = Some(x.iter().map(|&a| Dim::known(a)).collect()),
        Data::I32(x) => f.value = Some(x.iter().map(|&a| Dim::known(i64::from(a))).collect()),
        Data::F32(x) => f.floats = Some(x.clone()),
        _ => {}
    }
}
