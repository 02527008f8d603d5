//! Which model a ranges file was calibrated on: a fingerprint of the main graph's tensor names and
//! a checksum of its weights, with the model's file name for messages.
//!
//! Ranges are keyed by tensor name, so ranges from another model apply silently wherever names
//! happen to agree (every exporter names its tensors `/conv1/Conv_output_0`, `input`, ...), and a
//! model with the same graph but other weights has other activations. The names catch the first,
//! the weights' checksum the second. The checksum is CRC-32 (crc32fast, SIMD) streamed over the
//! mapped tensor bytes: it reads each weight once and copies nothing, so it costs what reading the
//! bytes costs. It guards against mistakes, not against forgery, which 32 bits with the byte count
//! do well enough.

use std::collections::BTreeSet;

use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Model};
use serde::{Deserialize, Serialize};

/// The identity of a calibrated model, as written in the ranges file's `model` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelId {
    /// The model's file name (not its folder): for messages only, a renamed model still matches.
    pub file: String,
    /// CRC-32 of the sorted names of the main graph's tensors, as 8 hex digits.
    pub tensor_names: String,
    /// CRC-32 of the weights (initializers and Constant-node values, in name order: their names,
    /// types, dims and bytes), as 8 hex digits.
    pub weights_crc32: String,
    /// The weights' total size in bytes.
    pub weight_bytes: u64,
}

impl ModelId {
    /// The fingerprint of `model`, loaded from a file named `file`.
    pub fn of(model: &Model, file: &str) -> ModelId {
        let g = &model.graph;
        let names: BTreeSet<&str> = g
            .values()
            .map(|(_, v)| v.name())
            .filter(|n| !n.is_empty())
            .collect();
        let mut h = crc32fast::Hasher::new();
        for n in &names {
            // A separator that cannot occur in a name keeps ["ab", "c"] apart from ["a", "bc"].
            h.update(n.as_bytes());
            h.update(&[0]);
        }
        let tensor_names = format!("{:08x}", h.finalize());

        let mut weights: Vec<(&str, &pb::TensorProto)> = Vec::new();
        for (_, v) in g.values() {
            if let Def::Initializer(t) = v.def() {
                weights.push((v.name(), t));
            }
        }
        for (_, n) in g.nodes() {
            if n.op_type() == "Constant"
                && let (Some(a), Some(out)) = (n.attribute("value"), n.outputs().first())
                && let (Some(t), Some(out)) = (a.proto.t.as_ref(), out)
            {
                weights.push((g.value(*out).name(), t));
            }
        }
        weights.sort_by(|a, b| a.0.cmp(b.0));
        let mut h = crc32fast::Hasher::new();
        let mut weight_bytes = 0u64;
        for (name, t) in weights {
            h.update(name.as_bytes());
            h.update(&[0]);
            h.update(&t.data_type().to_le_bytes());
            for d in &t.dims {
                h.update(&d.to_le_bytes());
            }
            // Raw bytes are a slice of the memory map: hashing streams them without a copy.
            if let Some(raw) = onnxq_ir::tensor::raw_bytes(t) {
                h.update(&raw);
                weight_bytes += raw.len() as u64;
            } else {
                // String tensors have no raw layout: their elements, length-prefixed.
                for s in &t.string_data {
                    h.update(&(s.len() as u64).to_le_bytes());
                    h.update(s);
                    weight_bytes += s.len() as u64;
                }
            }
        }
        ModelId {
            file: file.to_owned(),
            tensor_names,
            weights_crc32: format!("{:08x}", h.finalize()),
            weight_bytes,
        }
    }

    /// Why `self` (the model being quantized) is not the model `calibrated` describes, or `None`
    /// when it is. The file name is not compared: renaming a model changes nothing.
    pub fn mismatch(&self, calibrated: &ModelId) -> Option<String> {
        if self.tensor_names != calibrated.tensor_names {
            Some("the tensor names differ: another graph".to_owned())
        } else if self.weights_crc32 != calibrated.weights_crc32
            || self.weight_bytes != calibrated.weight_bytes
        {
            Some("the weights differ: the same graph with other weights".to_owned())
        } else {
            None
        }
    }
}
