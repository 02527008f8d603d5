//! ONNX test-data folders as calibration samples: `input_0.pb`, `input_1.pb`, ... each a
//! `TensorProto` named after the model input it feeds, one folder per sample.

use std::path::{Path, PathBuf};

use onnxq_engine::{Data, Tensor};
use onnxq_ir::proto as pb;
use prost::Message;

/// The entries of `dir`, sorted by name (sample order must not depend on the file system).
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

pub(crate) fn is_pb_input(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("input_") && n.ends_with(".pb"))
}

pub(crate) fn load_pb_sample(dir: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let mut sample = Vec::new();
    for p in sorted_entries(dir)?.iter().filter(|p| is_pb_input(p)) {
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
        11 => Data::F64(
            raw.chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
        ),
        other => {
            return Err(format!(
                "element type {} is not supported",
                onnxq_ir::DataType(other)
            ));
        }
    };
    Ok(Tensor { dims, data })
}
