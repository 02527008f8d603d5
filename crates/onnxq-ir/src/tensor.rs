//! Tensor checks and visits: every `TensorProto` in a model (initializers, attribute tensors such as
//! Constant values, sparse tensors, subgraphs, functions, training graphs) is reached by
//! [`visit_tensors`], so load and save treat them all alike.

use onnxq_proto as pb;

use crate::dtype::{DataType, TypedField};

/// Where a tensor sits.
pub(crate) struct Place {
    /// For messages: "initializer `w`", "attribute `value` of node `c1`".
    pub(crate) what: String,
    /// Whether the tensor may live in external data: dense initializers and Constant values. Other
    /// attribute tensors and sparse tensors stay inline, since not every reader resolves them.
    pub(crate) movable: bool,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

/// Calls `f` on every tensor of the model with a description of where it is.
pub(crate) fn visit_tensors<E>(
    m: &mut pb::ModelProto,
    f: &mut impl FnMut(&mut pb::TensorProto, &Place) -> Result<(), E>,
) -> Result<(), E> {
    if let Some(g) = m.graph.as_mut() {
        visit_graph(g, f)?;
    }
    for t in &mut m.training_info {
        for g in [t.initialization.as_mut(), t.algorithm.as_mut()]
            .into_iter()
            .flatten()
        {
            visit_graph(g, f)?;
        }
    }
    for func in &mut m.functions {
        for n in &mut func.node {
            visit_node(n, f)?;
        }
        for a in &mut func.attribute_proto {
            visit_attribute(a, "a function attribute default", false, f)?;
        }
    }
    Ok(())
}

/// Like [`visit_tensors`] for one graph and its subgraphs.
pub(crate) fn visit_graph<E>(
    g: &mut pb::GraphProto,
    f: &mut impl FnMut(&mut pb::TensorProto, &Place) -> Result<(), E>,
) -> Result<(), E> {
    for t in &mut g.initializer {
        let place = Place {
            what: format!("initializer `{}`", t.name()),
            movable: true,
        };
        f(t, &place)?;
    }
    for s in &mut g.sparse_initializer {
        visit_sparse(s, "sparse initializer", f)?;
    }
    for n in &mut g.node {
        visit_node(n, f)?;
    }
    Ok(())
}

fn visit_node<E>(
    n: &mut pb::NodeProto,
    f: &mut impl FnMut(&mut pb::TensorProto, &Place) -> Result<(), E>,
) -> Result<(), E> {
    let node = match n.name() {
        "" => format!("a {} node", n.op_type()),
        name => format!("node `{name}`"),
    };
    let constant = n.op_type() == "Constant" && matches!(n.domain(), "" | "ai.onnx");
    for a in &mut n.attribute {
        let what = format!("attribute `{}` of {node}", a.name());
        visit_attribute(a, &what, constant && a.name() == "value", f)?;
    }
    Ok(())
}

fn visit_attribute<E>(
    a: &mut pb::AttributeProto,
    what: &str,
    movable: bool,
    f: &mut impl FnMut(&mut pb::TensorProto, &Place) -> Result<(), E>,
) -> Result<(), E> {
    let place = Place {
        what: what.to_owned(),
        movable,
    };
    for t in a.t.iter_mut().chain(a.tensors.iter_mut()) {
        f(t, &place)?;
    }
    for s in a
        .sparse_tensor
        .iter_mut()
        .chain(a.sparse_tensors.iter_mut())
    {
        visit_sparse(s, what, f)?;
    }
    for g in a.g.iter_mut().chain(a.graphs.iter_mut()) {
        visit_graph(g, f)?;
    }
    Ok(())
}

fn visit_sparse<E>(
    s: &mut pb::SparseTensorProto,
    place: &str,
    f: &mut impl FnMut(&mut pb::TensorProto, &Place) -> Result<(), E>,
) -> Result<(), E> {
    let name = s
        .values
        .as_ref()
        .map(|v| v.name().to_owned())
        .unwrap_or_default();
    for (part, t) in [
        ("values", s.values.as_mut()),
        ("indices", s.indices.as_mut()),
    ] {
        if let Some(t) = t {
            f(
                t,
                &Place {
                    what: format!("{part} of {place} `{name}`"),
                    movable: false,
                },
            )?;
        }
    }
    Ok(())
}

/// Number of elements the dims declare, or an error for negative or overflowing dims.
pub fn element_count(t: &pb::TensorProto) -> Result<u64, String> {
    t.dims.iter().try_fold(1u64, |n, &d| {
        let d = u64::try_from(d)
            .map_err(|_| format!("has a negative dimension {d} in {:?}", t.dims))?;
        n.checked_mul(d).ok_or_else(|| {
            format!(
                "declares dimensions {:?} whose element count overflows",
                t.dims
            )
        })
    })
}

/// Checks that an in-memory tensor's type is known and its data matches its declared shape.
/// Tensors with external data are checked after their bytes are resolved.
pub(crate) fn check_tensor(t: &pb::TensorProto) -> Result<(), String> {
    let dtype = DataType(t.data_type());
    if !dtype.is_known() {
        return Err(format!(
            "has unsupported data type {} (ONNX defines 1 to 28)",
            t.data_type()
        ));
    }
    let n = element_count(t)?;
    if let Some(raw) = &t.raw_data {
        let want = dtype
            .raw_len(n)
            .ok_or_else(|| format!("is a {dtype} tensor, which cannot use raw_data"))?;
        if raw.len() as u64 != want {
            return Err(format!(
                "declares {n} {dtype} elements ({want} bytes, dims {:?}) but holds {} bytes",
                t.dims,
                raw.len()
            ));
        }
        return Ok(());
    }
    let (field, len) = match dtype.typed_field() {
        Some(TypedField::Float) => ("float_data", t.float_data.len()),
        Some(TypedField::Double) => ("double_data", t.double_data.len()),
        Some(TypedField::Int64) => ("int64_data", t.int64_data.len()),
        Some(TypedField::Uint64) => ("uint64_data", t.uint64_data.len()),
        Some(TypedField::String) => ("string_data", t.string_data.len()),
        Some(TypedField::Int32) => ("int32_data", t.int32_data.len()),
        None => return Ok(()),
    };
    let per = if matches!(dtype.0, 14 | 15) { 2 } else { 1 };
    // Sub-byte types may pack several elements per int32 entry; only full-width types are exact.
    let exact = dtype.bits().is_some_and(|b| b >= 8);
    let want = n.saturating_mul(per);
    if (exact && len as u64 != want) || (!exact && len as u64 > want) || (len == 0 && n > 0) {
        return Err(format!(
            "declares {n} {dtype} elements (dims {:?}) but {field} holds {len}",
            t.dims
        ));
    }
    Ok(())
}

/// The tensor's bytes in little-endian raw layout, converting typed fields if needed. `None` for
/// string tensors, which have no raw layout.
pub fn raw_bytes(t: &pb::TensorProto) -> Option<bytes::Bytes> {
    if let Some(raw) = &t.raw_data {
        return Some(raw.clone());
    }
    let dtype = DataType(t.data_type());
    let out: Vec<u8> = match dtype.typed_field()? {
        TypedField::Float => t.float_data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TypedField::Double => t.double_data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TypedField::Int64 => t.int64_data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TypedField::Uint64 if dtype.0 == 12 => t
            .uint64_data
            .iter()
            .flat_map(|&x| (x as u32).to_le_bytes())
            .collect(),
        TypedField::Uint64 => t.uint64_data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TypedField::String => return None,
        TypedField::Int32 => match dtype.bits()? {
            32 => t.int32_data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            16 => t
                .int32_data
                .iter()
                .flat_map(|&x| (x as u16).to_le_bytes())
                .collect(),
            8 => t.int32_data.iter().map(|&x| x as u8).collect(),
            // Sub-byte types in int32_data: conversion is ambiguous across ONNX versions; keep them typed.
            _ => return None,
        },
    };
    Some(out.into())
}

/// Size of the tensor's data in bytes (0 for strings).
pub fn data_len(t: &pb::TensorProto) -> u64 {
    match &t.raw_data {
        Some(r) => r.len() as u64,
        None => element_count(t)
            .ok()
            .and_then(|n| DataType(t.data_type()).raw_len(n))
            .unwrap_or(0),
    }
}
