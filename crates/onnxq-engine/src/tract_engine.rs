//! tract-onnx, the embedded pure-Rust engine: nothing to install beyond cargo.
//!
//! tract optimizes a model for concrete input shapes, so a plan is built per distinct set of input
//! shapes and the last few are kept: samples of one shape reuse one plan, samples of varying
//! shapes (image sizes, sequence lengths) each get theirs. The model is loaded with `value_info`
//! ignored, because exporters' symbolic dims ("batch") otherwise clash with concrete input shapes.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::{
    DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, IntoRunnable, TValue,
    Tensor as TractTensor, TypedRunnableModel,
};

use crate::{Data, DataRef, EngineError, Executor, Result, Tensor};

/// The tract version onnxq is built with (pinned exactly in Cargo.toml).
pub const TRACT_VERSION: &str = "0.23.9";

/// How many shape-specialized plans are kept; beyond that the oldest is rebuilt on demand.
const PLANS_KEPT: usize = 4;

/// A model loaded in tract.
pub struct TractEngine {
    model: InferenceModel,
    inputs: Vec<String>,
    outputs: Vec<String>,
    plans: VecDeque<(Vec<Vec<usize>>, Arc<TypedRunnableModel>)>,
}

impl TractEngine {
    /// Loads a model file; its external data is resolved against its folder.
    pub fn load_file(model: &Path) -> Result<TractEngine> {
        let run = |e: tract_onnx::prelude::TractError| {
            EngineError::Run(format!("tract cannot load the model: {e:#}"))
        };
        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .model_for_path(model)
            .map_err(run)?;
        let names = |outlets: &[tract_onnx::prelude::OutletId]| -> Vec<String> {
            outlets
                .iter()
                .map(|&o| {
                    model
                        .outlet_label(o)
                        .unwrap_or(&model.node(o.node).name)
                        .to_owned()
                })
                .collect()
        };
        let inputs = names(model.input_outlets().map_err(run)?);
        let outputs = names(model.output_outlets().map_err(run)?);
        Ok(TractEngine {
            model,
            inputs,
            outputs,
            plans: VecDeque::new(),
        })
    }

    /// The feeds as tract tensors, in the model's input order.
    fn tensors(&self, feeds: &[(String, Tensor)]) -> Result<Vec<TractTensor>> {
        self.inputs
            .iter()
            .map(|name| {
                let (_, t) = feeds.iter().find(|(n, _)| n == name).ok_or_else(|| {
                    EngineError::Feed(format!("no feed for the model's input `{name}`"))
                })?;
                to_tract(name, t)
            })
            .collect()
    }

    /// The plan for these input tensors' shapes, built (and cached) on first use.
    fn plan(&mut self, feeds: &[TractTensor]) -> Result<Arc<TypedRunnableModel>> {
        let key: Vec<Vec<usize>> = feeds.iter().map(|t| t.shape().to_vec()).collect();
        if let Some((_, plan)) = self.plans.iter().find(|(k, _)| *k == key) {
            return Ok(Arc::clone(plan));
        }
        let mut model = self.model.clone();
        for (i, t) in feeds.iter().enumerate() {
            model
                .set_input_fact(i, InferenceFact::dt_shape_from_tensor(t))
                .map_err(|e| EngineError::Feed(format!("feed `{}`: {e:#}", self.inputs[i])))?;
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| EngineError::Unsupported {
                message: format!(
                    "tract cannot prepare the model for input shapes {key:?}: {}",
                    short_cause(&e)
                ),
                detail: format!("{e:#}"),
            })?;
        if self.plans.len() == PLANS_KEPT {
            self.plans.pop_front();
        }
        self.plans.push_back((key, Arc::clone(&plan)));
        Ok(plan)
    }
}

impl Executor for TractEngine {
    fn name(&self) -> String {
        format!("tract-onnx {TRACT_VERSION}")
    }

    fn output_types(&mut self, feeds: &[(String, Tensor)]) -> Result<Vec<(String, i32)>> {
        // tract types a model for concrete input shapes: those of `feeds`.
        let plan = self.plan(&self.tensors(feeds)?)?;
        let model = plan.model();
        let outlets = model
            .output_outlets()
            .map_err(|e| EngineError::Run(format!("tract: {e:#}")))?;
        outlets
            .iter()
            .zip(&self.outputs)
            .map(|(&o, name)| {
                let fact = model
                    .outlet_fact(o)
                    .map_err(|e| EngineError::Run(format!("tract: output `{name}`: {e:#}")))?;
                Ok((name.clone(), onnx_code(fact.datum_type)))
            })
            .collect()
    }

    fn run_each(
        &mut self,
        feeds: &[(String, Tensor)],
        visit: &mut dyn FnMut(&str, &[usize], DataRef<'_>),
    ) -> Result<()> {
        let tensors = self.tensors(feeds)?;
        let plan = self.plan(&tensors)?;
        let values: tract_onnx::prelude::TVec<TValue> =
            tensors.into_iter().map(Into::into).collect();
        let outputs = plan
            .run(values)
            .map_err(|e| EngineError::Run(format!("tract run failed: {e:#}")))?;
        for (name, value) in self.outputs.iter().zip(outputs) {
            let t: &TractTensor = &value;
            let bad = |e: tract_onnx::prelude::TractError| {
                EngineError::Run(format!("output `{name}`: {e:#}"))
            };
            let plain = t.try_as_plain_ram().map_err(bad)?;
            let data = match t.datum_type() {
                DatumType::F32 => plain.as_slice::<f32>().map(DataRef::F32),
                DatumType::F64 => plain.as_slice::<f64>().map(DataRef::F64),
                DatumType::I64 => plain.as_slice::<i64>().map(DataRef::I64),
                DatumType::I32 => plain.as_slice::<i32>().map(DataRef::I32),
                DatumType::I8 => plain.as_slice::<i8>().map(DataRef::I8),
                DatumType::U8 => plain.as_slice::<u8>().map(DataRef::U8),
                DatumType::Bool => plain.as_slice::<bool>().map(DataRef::Bool),
                _ => Ok(DataRef::Other),
            }
            .map_err(bad)?;
            visit(name, t.shape(), data);
        }
        Ok(())
    }
}

fn to_tract(name: &str, t: &Tensor) -> Result<TractTensor> {
    fn tensor<T: tract_onnx::prelude::Datum + Copy>(
        dims: &[usize],
        v: &[T],
    ) -> tract_onnx::prelude::TractResult<TractTensor> {
        TractTensor::from_shape(dims, v)
    }
    match &t.data {
        Data::F32(v) => tensor(&t.dims, v),
        Data::F64(v) => tensor(&t.dims, v),
        Data::I64(v) => tensor(&t.dims, v),
        Data::I32(v) => tensor(&t.dims, v),
        Data::I8(v) => tensor(&t.dims, v),
        Data::U8(v) => tensor(&t.dims, v),
        Data::Bool(v) => tensor(&t.dims, v),
        Data::F16(_) => {
            return Err(EngineError::Feed(format!(
                "feed `{name}`: float16 feeds are not supported yet"
            )));
        }
    }
    .map_err(|e| EngineError::Feed(format!("feed `{name}`: {e:#}")))
}

/// The ONNX `TensorProto.DataType` code of a tract datum type (0 for those onnxq does not use).
fn onnx_code(dt: DatumType) -> i32 {
    match dt {
        DatumType::F32 => 1,
        DatumType::U8 => 2,
        DatumType::I8 => 3,
        DatumType::I32 => 6,
        DatumType::I64 => 7,
        DatumType::Bool => 9,
        DatumType::F16 => 10,
        DatumType::F64 => 11,
        _ => 0,
    }
}

/// The part of tract's chain of causes a user needs: the deepest link naming a node (where it
/// failed) and the innermost cause (what failed); the links between are tract's internals.
fn short_cause(e: &tract_onnx::prelude::TractError) -> String {
    let root = e.root_cause().to_string();
    match e
        .chain()
        .map(|c| c.to_string())
        .filter(|c| c.contains("node #"))
        .last()
    {
        Some(node) if node != root => format!("{node}: {root}"),
        _ => root,
    }
}
