//! Calibration: run the float model on sample inputs and collect, per activation, the statistics
//! static quantization needs, in memory that does not grow with the number of samples.
//!
//! A session of [`augmented`] (every tensor an output) tells which tensors are float32 without a
//! run; [`augmented_minmax`] then adds a `ReduceMin`/`ReduceMax` pair per tensor, and
//! [`calibrate_minmax`] runs the samples one at a time through an [`onnxq_engine::Executor`],
//! feeding each scalar into its tensor's observer, which keeps only a running summary.

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

/// Extra outputs of a MinMax-augmented model: output name → (tensor it reduces, is it the maximum).
pub type ReducedOutputs = BTreeMap<String, (String, bool)>;

/// For MinMax: a copy of the model that also outputs each tensor's minimum and maximum as scalars
/// (`ReduceMin`/`ReduceMax`, keepdims = 0), as ONNX Runtime's calibrator does, so the engine keeps
/// no activation alive for the caller. Returns the bytes and, per added output, the tensor it
/// reduces and whether it is the maximum.
pub fn augmented_minmax(
    model: &Model,
    names: &[String],
) -> Result<(Vec<u8>, ReducedOutputs), Error> {
    let mut proto = model.to_proto()?;
    let g = proto.graph.get_or_insert_with(Default::default);
    let mut taken: BTreeSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.output.iter().cloned())
        .collect();
    taken.extend(g.input.iter().map(|i| i.name().to_owned()));
    taken.extend(g.initializer.iter().map(|i| i.name().to_owned()));
    let mut outputs = BTreeMap::new();
    for t in names {
        for (op, is_max) in [("ReduceMin", false), ("ReduceMax", true)] {
            let base = format!("{t}_{op}");
            let name = (0..)
                .map(|i| {
                    if i == 0 {
                        base.clone()
                    } else {
                        format!("{base}_{i}")
                    }
                })
                .find(|n| !taken.contains(n))
                .unwrap_or(base);
            taken.insert(name.clone());
            g.node.push(pb::NodeProto {
                input: vec![t.clone()],
                output: vec![name.clone()],
                name: Some(name.clone()),
                op_type: Some(op.into()),
                attribute: vec![pb::AttributeProto {
                    name: Some("keepdims".into()),
                    r#type: Some(2),
                    i: Some(0),
                    ..Default::default()
                }],
                ..Default::default()
            });
            g.output.push(pb::ValueInfoProto {
                name: Some(name.clone()),
                ..Default::default()
            });
            outputs.insert(name, (t.clone(), is_max));
        }
    }
    Ok((prost::Message::encode_to_vec(&proto), outputs))
}

/// Runs `samples` through `engine`, a session of [`augmented_minmax`]'s model (whose extra outputs
/// `outputs` maps to tensors), and returns each tensor's MinMax range; graph inputs come from the
/// feeds. `progress` is called after each sample.
pub fn calibrate_minmax(
    engine: &mut dyn Executor,
    samples: &[Sample],
    outputs: &ReducedOutputs,
    opts: MinMaxOptions,
    mut progress: impl FnMut(usize),
) -> Result<BTreeMap<String, TensorRange>, Error> {
    let method = Method::MinMax(opts);
    let mut observers: BTreeMap<String, Observer> = BTreeMap::new();
    for (i, sample) in samples.iter().enumerate() {
        for (name, t) in sample {
            if let onnxq_engine::Data::F32(values) = &t.data {
                observers
                    .entry(name.clone())
                    .or_insert_with(|| Observer::new(&method))
                    .observe(values);
            }
        }
        let mut pending: BTreeMap<&str, (f32, f32)> = BTreeMap::new();
        engine.run_each(sample, &mut |name, _dims, data| {
            if let (Some((tensor, is_max)), DataRef::F32([v])) = (outputs.get(name), data) {
                let e = pending
                    .entry(tensor.as_str())
                    .or_insert((f32::NAN, f32::NAN));
                if *is_max { e.1 = *v } else { e.0 = *v }
            }
        })?;
        for (tensor, (lo, hi)) in pending {
            observers
                .entry(tensor.to_owned())
                .or_insert_with(|| Observer::new(&method))
                .observe_range(lo, hi);
        }
        progress(i + 1);
    }
    Ok(observers
        .into_iter()
        .map(|(k, o)| (k, o.finish()))
        .collect())
}

/// Float32 tensors among the engine's outputs (its resolved types of an [`augmented`] model).
pub fn float_outputs(engine: &dyn Executor) -> Vec<String> {
    engine
        .output_types()
        .into_iter()
        .filter(|(_, t)| *t == 1)
        .map(|(n, _)| n)
        .collect()
}
