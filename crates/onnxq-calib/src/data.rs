//! Calibration samples: where they come from, and checks against the model's inputs.
//!
//! Accepted sources, each yielding samples (one value per model input):
//! - a `.npz` whose keys are input names and whose first axis indexes samples;
//! - a folder of `.npz` files, one sample each (keys = input names, no sample axis);
//! - a folder of `.npy` files, one sample each, for single-input models;
//! - ONNX test-data folders (`input_0.pb`, `input_1.pb`, ... TensorProtos), one sample each, or a
//!   folder of them (`test_data_set_*`).

use std::path::{Path, PathBuf};

use onnxq_engine::{Data, Tensor};
use onnxq_ir::proto as pb;
use prost::Message;

use crate::npy::{parse_npy, read_npz};

/// One sample: a value per model input, by name.
pub type Sample = Vec<(String, Tensor)>;

/// The declared type of a model input, for checking samples.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// Input name.
    pub name: String,
    /// ONNX element type code (1 = float32, 7 = int64, ...), 0 if undeclared.
    pub elem_type: i32,
    /// Declared rank, if the shape is declared.
    pub rank: Option<usize>,
}

/// Loads every sample from `paths`, in order.
pub fn load_samples(paths: &[PathBuf]) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for p in paths {
        if p.is_dir() {
            load_dir(p, &mut samples)?;
        } else if has_ext(p, "npz") {
            samples.extend(split_samples(read_npz(p)?, p)?);
        } else {
            return Err(format!(
                "calibration data `{}` is neither a .npz file nor a folder",
                p.display()
            ));
        }
    }
    if samples.is_empty() {
        return Err("the calibration data holds no samples".into());
    }
    Ok(samples)
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().and_then(|e| e.to_str()) == Some(ext)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

fn load_dir(dir: &Path, samples: &mut Vec<Sample>) -> Result<(), String> {
    let entries = sorted_entries(dir)?;
    if entries.iter().any(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("input_") && n.ends_with(".pb"))
    }) {
        samples.push(load_pb_sample(dir, &entries)?);
        return Ok(());
    }
    for p in entries {
        if p.is_dir() {
            load_dir(&p, samples)?;
        } else if has_ext(&p, "npz") {
            samples.push(read_npz(&p)?);
        } else if has_ext(&p, "npy") {
            let bytes =
                std::fs::read(&p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
            // A lone array: the model's only input, named when matched against the model.
            samples.push(vec![(
                String::new(),
                parse_npy(&bytes, &p.display().to_string())?,
            )]);
        }
    }
    Ok(())
}

fn load_pb_sample(dir: &Path, entries: &[PathBuf]) -> Result<Sample, String> {
    let mut sample = Vec::new();
    for p in entries.iter().filter(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("input_") && n.ends_with(".pb"))
    }) {
        let bytes = std::fs::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        let t = pb::TensorProto::decode(bytes.as_slice())
            .map_err(|e| format!("`{}` is not a TensorProto: {e}", p.display()))?;
        sample.push((
            t.name().to_owned(),
            tensor_from_proto(&t).map_err(|e| format!("`{}`: {e}", p.display()))?,
        ));
    }
    if sample.is_empty() {
        return Err(format!("`{}` has no input_*.pb files", dir.display()));
    }
    Ok(sample)
}

fn tensor_from_proto(t: &pb::TensorProto) -> Result<Tensor, String> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<_, _>>()?;
    let raw = onnxq_ir::tensor::raw_bytes(t).ok_or("string tensors cannot be fed")?;
    let data = match t.data_type() {
        1 => Data::F32(
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        7 => Data::I64(
            raw.chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
        ),
        6 => Data::I32(
            raw.chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        2 => Data::U8(raw.to_vec()),
        3 => Data::I8(raw.iter().map(|&b| b as i8).collect()),
        9 => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
        other => {
            return Err(format!(
                "element type {} is not supported",
                onnxq_ir::DataType(other)
            ));
        }
    };
    Ok(Tensor { dims, data })
}

/// Splits arrays whose first axis indexes samples into one sample per index.
fn split_samples(arrays: Vec<(String, Tensor)>, path: &Path) -> Result<Vec<Sample>, String> {
    let Some(n) = arrays.first().and_then(|(_, t)| t.dims.first().copied()) else {
        return Err(format!(
            "`{}` holds no arrays with a sample axis",
            path.display()
        ));
    };
    for (k, t) in &arrays {
        if t.dims.first() != Some(&n) {
            return Err(format!(
                "`{}`: array `{k}` has {} samples on its first axis, `{}` has {n}",
                path.display(),
                t.dims.first().copied().unwrap_or(0),
                arrays[0].0
            ));
        }
    }
    Ok((0..n)
        .map(|i| {
            arrays
                .iter()
                .map(|(k, t)| (k.clone(), slice_first(t, i, n)))
                .collect()
        })
        .collect())
}

fn slice_first(t: &Tensor, i: usize, n: usize) -> Tensor {
    let per = t.data.len() / n.max(1);
    let r = i * per..(i + 1) * per;
    let data = match &t.data {
        Data::F32(v) => Data::F32(v[r].to_vec()),
        Data::F64(v) => Data::F64(v[r].to_vec()),
        Data::F16(v) => Data::F16(v[r].to_vec()),
        Data::I64(v) => Data::I64(v[r].to_vec()),
        Data::I32(v) => Data::I32(v[r].to_vec()),
        Data::I8(v) => Data::I8(v[r].to_vec()),
        Data::U8(v) => Data::U8(v[r].to_vec()),
        Data::Bool(v) => Data::Bool(v[r].to_vec()),
    };
    Tensor {
        dims: t.dims[1..].to_vec(),
        data,
    }
}

fn type_code(d: &Data) -> i32 {
    match d {
        Data::F32(_) => 1,
        Data::U8(_) => 2,
        Data::I8(_) => 3,
        Data::I32(_) => 6,
        Data::I64(_) => 7,
        Data::Bool(_) => 9,
        Data::F16(_) => 10,
        Data::F64(_) => 11,
    }
}

/// Checks every sample against the model's inputs (names, element types, ranks, finite floats)
/// and puts its values in input order; a lone unnamed array goes to a single-input model.
pub fn match_inputs(samples: Vec<Sample>, inputs: &[InputSpec]) -> Result<Vec<Sample>, String> {
    samples
        .into_iter()
        .enumerate()
        .map(|(i, mut sample)| {
            if inputs.len() == 1 && sample.len() == 1 && sample[0].0.is_empty() {
                sample[0].0 = inputs[0].name.clone();
            }
            inputs
                .iter()
                .map(|spec| {
                    let pos = sample.iter().position(|(k, _)| *k == spec.name).ok_or_else(|| {
                        let keys: Vec<&str> = sample.iter().map(|(k, _)| k.as_str()).collect();
                        format!("sample {i} has no value for model input `{}` (it has {keys:?})", spec.name)
                    })?;
                    let (name, t) = sample.swap_remove(pos);
                    if spec.elem_type != 0 && type_code(&t.data) != spec.elem_type {
                        return Err(format!(
                            "sample {i}, input `{name}`: data is {}, the model wants {}",
                            t.data.type_name(),
                            onnxq_ir::DataType(spec.elem_type)
                        ));
                    }
                    if spec.rank.is_some_and(|r| r != t.dims.len()) {
                        return Err(format!(
                            "sample {i}, input `{name}`: data has rank {} (dims {:?}), the model wants rank {}",
                            t.dims.len(),
                            t.dims,
                            spec.rank.unwrap_or(0)
                        ));
                    }
                    let non_finite = match &t.data {
                        Data::F32(v) => v.iter().position(|x| !x.is_finite()).map(|p| v[p].to_string()),
                        Data::F64(v) => v.iter().position(|x| !x.is_finite()).map(|p| v[p].to_string()),
                        _ => None,
                    };
                    if let Some(bad) = non_finite {
                        return Err(format!("sample {i}, input `{name}` contains {bad}; calibration data must be finite"));
                    }
                    Ok((name, t))
                })
                .collect()
        })
        .collect()
}
