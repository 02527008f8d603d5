//! Inference engines behind one trait, used only for calibration and verification.
//!
//! [`Executor`] runs feeds through a loaded model, returning named tensors. Engines load model
//! files (external data beside them). The ONNX Runtime backend ([`OrtEngine`]) loads
//! `libonnxruntime` at run time (the `ort` crate's `load-dynamic`), so building onnxq downloads
//! nothing; [`find_ort_library`] says where the library comes from. The tract backend
//! (`TractEngine`, default-on `tract` feature) is pure Rust and needs nothing installed.

mod latency;
mod ort_engine;
mod tensor;
#[cfg(feature = "tract")]
mod tract_engine;

pub use latency::{Latency, Schedule, TimedSession, interleaved};
pub use ort_engine::{Optimization, OrtEngine, find_ort_library, ort_optimize, ort_version};
pub use tensor::{Data, DataRef, Tensor};
#[cfg(feature = "tract")]
pub use tract_engine::{TRACT_VERSION, TractEngine};

/// An engine failure; messages name the model, tensor or library involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No ONNX Runtime library could be found or loaded.
    #[error("{0}")]
    Library(String),
    /// The engine rejected the model or a run.
    #[error("{0}")]
    Run(String),
    /// The engine cannot prepare the model at all (tract's shape analysis fails on some models):
    /// `message` is one sentence, `detail` the engine's whole chain of causes.
    #[error("{message}")]
    Unsupported {
        /// One sentence: the engine, the shapes, the innermost cause.
        message: String,
        /// The engine's own chain of causes, for `--verbose`.
        detail: String,
    },
    /// A feed does not fit the model (missing input, wrong type or rank).
    #[error("{0}")]
    Feed(String),
}

impl EngineError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            EngineError::Library(_) => Some(
                "install ONNX Runtime with `pip install onnxruntime==1.31.1`, or point `--ort-lib` / \
                 ORT_DYLIB_PATH at libonnxruntime.so (1.24 or newer)",
            ),
            EngineError::Feed(_) => {
                Some("calibration data keys must be the model's input names, one sample per entry")
            }
            EngineError::Run(_) | EngineError::Unsupported { .. } => None,
        }
    }
}

/// Result with [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Runs a loaded model.
pub trait Executor {
    /// The engine's name for reports ("onnxruntime 1.31.1").
    fn name(&self) -> String;
    /// The model's outputs with their element types as the engine resolves them for inputs like
    /// `feeds` (ONNX codes: 1 = float32, 7 = int64, ...; 0 when not a tensor), without a run.
    fn output_types(&mut self, feeds: &[(String, Tensor)]) -> Result<Vec<(String, i32)>>;

    /// Runs one set of feeds; returns every model output by name, in the model's output order.
    fn run(&mut self, feeds: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        self.run_each(feeds, &mut |name, dims, data| {
            out.push((
                name.to_owned(),
                Tensor {
                    dims: dims.to_vec(),
                    data: data.to_owned(),
                },
            ))
        })?;
        Ok(out)
    }

    /// Runs one set of feeds and shows each output to `visit` without copying it, in the model's
    /// output order; an output is freed as soon as the engine allows.
    fn run_each(
        &mut self,
        feeds: &[(String, Tensor)],
        visit: &mut dyn FnMut(&str, &[usize], DataRef<'_>),
    ) -> Result<()>;
}
