//! Calibration: run the float model on sample inputs and collect, per activation, the statistics
//! static quantization needs, in memory that does not grow with the number of samples.
//!
//! [`calibrate`] exposes every float activation of the main graph as an output of a copy of the
//! model, runs the samples one at a time through an [`onnxq_engine::Executor`], and feeds each
//! output straight into its observer, which keeps only a running summary.

pub mod data;
pub mod npy;
mod observe;
mod ranges;

pub use observe::{Method, MinMaxOptions};
pub use ranges::{Ranges, TensorRange};

use std::collections::{BTreeMap, BTreeSet};

use onnxq_engine::{DataRef, Executor};
use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Model};

use crate::data::{InputSpec, Sample};
use crate::observe::Observer;

/// A calibration failure (per-tensor problems are not failures).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Calibration data missing, unreadable or not matching the model.
    #[error("{0}")]
    Data(String),
    /// The engine could not load or run the model.
    #[error(transparent)]
    Engine(#[from] onnxq_engine::EngineError),
    /// The model could not be prepared.
    #[error(transparent)]
    Model(#[from] onnxq_ir::Error),
}

/// The model's graph inputs that are fed at run time, with their declared types.
pub fn input_specs(model: &Model) -> Vec<InputSpec> {
    let g = &model.graph;
    g.inputs()
        .iter()
        .filter(|p| matches!(g.value(p.value).def(), Def::Input))
        .map(|p| {
            let tensor = match p.info.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                Some(pb::type_proto::Value::TensorType(t)) => Some(t),
                _ => None,
            };
            InputSpec {
                name: g.value(p.value).name().to_owned(),
                elem_type: tensor.map_or(0, |t| t.elem_type()),
                rank: tensor.and_then(|t| t.shape.as_ref()).map(|s| s.dim.len()),
            }
        })
        .collect()
}

/// The tensors the engine must return for calibration: every node output of the main graph
/// (subgraph tensors are not calibrated, as in ONNX Runtime). Graph inputs are observed straight
/// from the feeds: an output aliasing an input is not safe to read after the run. Non-float
/// tensors are dropped when their first value shows their type.
pub fn candidate_tensors(model: &Model) -> Vec<String> {
    let g = &model.graph;
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    for v in g
        .nodes()
        .flat_map(|(_, n)| n.outputs().iter().flatten().copied())
    {
        let name = g.value(v).name();
        if seen.insert(name.to_owned()) {
            names.push(name.to_owned());
        }
    }
    names
}

/// A copy of the model whose graph outputs are the original ones plus every tensor in `names`.
pub fn augmented(model: &Model, names: &[String]) -> Result<Vec<u8>, Error> {
    let mut proto = model.to_proto()?;
    let g = proto.graph.get_or_insert_with(Default::default);
    let present: BTreeSet<String> = g.output.iter().map(|o| o.name().to_owned()).collect();
    for n in names.iter().filter(|n| !present.contains(*n)) {
        g.output.push(pb::ValueInfoProto {
            name: Some(n.clone()),
            ..Default::default()
        });
    }
    Ok(prost::Message::encode_to_vec(&proto))
}

/// Runs `samples` through `engine` (a session of the [`augmented`] model) and returns the range of
/// every float tensor by `method`. `progress` is called after each sample.
pub fn calibrate(
    engine: &mut dyn Executor,
    samples: &[Sample],
    method: &Method,
    mut progress: impl FnMut(usize),
) -> Result<BTreeMap<String, TensorRange>, Error> {
    let mut observers: BTreeMap<String, Observer> = BTreeMap::new();
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    for (i, sample) in samples.iter().enumerate() {
        for (name, t) in sample {
            if let onnxq_engine::Data::F32(values) = &t.data {
                observers
                    .entry(name.clone())
                    .or_insert_with(|| Observer::new(method))
                    .observe(values);
            }
        }
        engine.run_each(sample, &mut |name, _dims, data| match data {
            DataRef::F32(values) => observers
                .entry(name.to_owned())
                .or_insert_with(|| Observer::new(method))
                .observe(values),
            _ => {
                skipped.insert(name.to_owned());
            }
        })?;
        progress(i + 1);
    }
    Ok(observers
        .into_iter()
        .map(|(k, o)| (k, o.finish()))
        .collect())
}
