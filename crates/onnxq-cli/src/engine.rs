//! Engine choice for commands that run models (`--engine auto|ort|tract`), and handing a model to
//! the chosen engine whatever its size.

use std::path::Path;

use anyhow::{Context, Result};
use onnxq_engine::{Executor, OrtEngine, find_ort_library};
use onnxq_ir::{DEFAULT_THRESHOLD, Layout, Model, PROTO_LIMIT};
use prost::Message;

use crate::args::Engine;
use crate::util::note;

/// The engine that runs models for calibration.
pub(crate) enum Backend {
    Ort(std::path::PathBuf),
    #[cfg(feature = "tract")]
    Tract,
}

impl Backend {
    /// `--engine auto` takes ONNX Runtime when its library is found, else tract (and says so).
    pub(crate) fn choose(engine: Engine, ort_lib: Option<&Path>) -> Result<Backend> {
        match engine {
            Engine::Ort => Ok(Backend::Ort(find_ort_library(ort_lib)?)),
            Engine::Tract => Self::tract(),
            Engine::Auto => match find_ort_library(ort_lib) {
                Ok(lib) => Ok(Backend::Ort(lib)),
                // Only when no library was named: a named one that fails to load is an error.
                Err(e) if ort_lib.is_none() && std::env::var_os("ORT_DYLIB_PATH").is_none() => {
                    let tract = Self::tract().map_err(|_| e)?;
                    note("ONNX Runtime not found; calibrating with the embedded tract engine");
                    Ok(tract)
                }
                Err(e) => Err(e.into()),
            },
        }
    }

    #[cfg(feature = "tract")]
    fn tract() -> Result<Backend> {
        Ok(Backend::Tract)
    }

    #[cfg(not(feature = "tract"))]
    fn tract() -> Result<Backend> {
        anyhow::bail!("this onnxq was built without the `tract` feature; use `--engine ort`")
    }

    /// Loads `model` in the engine from a temporary file (removed once loaded): the engine parses
    /// it from disk, so no serialized copy sits in memory beside the engine's own, and the input's
    /// mapped pages are dropped first (they are read back when quantization needs them). A model
    /// over the protobuf limit is written with external data.
    pub(crate) fn load(&self, model: &Model, threads: usize) -> Result<Box<dyn Executor>> {
        let dir = tempfile::Builder::new()
            .prefix("onnxq-engine-")
            .tempdir()
            .context("cannot create a temporary folder for the engine's copy of the model")?;
        let path = dir.path().join("model.onnx");
        let layout = if (model.to_proto()?.encoded_len() as u64) <= PROTO_LIMIT {
            Layout::Inline
        } else {
            Layout::External {
                location: "model.onnx.data".into(),
                threshold: DEFAULT_THRESHOLD,
            }
        };
        onnxq_ir::save(model, &path, &layout).with_context(|| {
            format!(
                "cannot write the engine's copy of the model into `{}`",
                dir.path().display()
            )
        })?;
        model.sources().release_all();
        Ok(match self {
            Backend::Ort(lib) => Box::new(OrtEngine::load_file(lib, &path, threads)?),
            #[cfg(feature = "tract")]
            Backend::Tract => Box::new(onnxq_engine::TractEngine::load_file(&path)?),
        })
    }

    /// The engine and its version, for reports.
    pub(crate) fn name(&self) -> String {
        match self {
            Backend::Ort(lib) => format!("onnxruntime {}", onnxq_engine::ort_version(lib)),
            #[cfg(feature = "tract")]
            Backend::Tract => format!("tract-onnx {}", onnxq_engine::TRACT_VERSION),
        }
    }
}
