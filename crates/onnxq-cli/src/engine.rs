//! Engine choice for commands that run models (`--engine auto|ort|tract`), and handing a model to
//! the chosen engine whatever its size.

use std::path::Path;

use anyhow::{Context, Result};
use onnxq_engine::{EngineError, Executor, OrtEngine, find_ort_library};
use onnxq_ir::{DEFAULT_THRESHOLD, Layout, Model, PROTO_LIMIT};
use prost::Message;

use crate::args::Engine;
use crate::outputs::engine_prefix;
use crate::util::{HintExt, fail, hint_of, note};

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
        // The prefix holds the process id: the signal handler removes this run's folder.
        let dir = tempfile::Builder::new()
            .prefix(&engine_prefix())
            .tempdir()
            .context("cannot create a temporary folder for the engine's copy of the model")
            .hint("set TMPDIR to a folder you may write in")?;
        let path = dir.path().join("model.onnx");
        let layout = if (model.to_proto()?.encoded_len() as u64) <= PROTO_LIMIT {
            Layout::Inline
        } else {
            Layout::External {
                location: "model.onnx.data".into(),
                threshold: DEFAULT_THRESHOLD,
            }
        };
        onnxq_ir::save(model, &path, &layout)
            .with_context(|| {
                format!(
                    "cannot write the engine's copy of the model into `{}`",
                    dir.path().display()
                )
            })
            .hint("free some space there, or set TMPDIR to a folder with room for the model")?;
        model.sources().release_all();
        let loaded: Result<Box<dyn Executor>, EngineError> = match self {
            Backend::Ort(lib) => {
                OrtEngine::load_file(lib, &path, threads).map(|e| Box::new(e) as Box<dyn Executor>)
            }
            #[cfg(feature = "tract")]
            Backend::Tract => onnxq_engine::TractEngine::load_file(&path)
                .map(|e| Box::new(e) as Box<dyn Executor>),
        };
        let inner = loaded.map_err(|e| self.load_error(&e, model, dir.path()))?;
        Ok(Box::new(Named {
            inner,
            user: user_name(model),
            copy: path.display().to_string(),
        }))
    }

    /// An engine's load error about its temporary copy in `dir`, told about the user's model: the
    /// copy's path means nothing to the user (and is gone once the command ends).
    fn load_error(&self, e: &EngineError, model: &Model, dir: &Path) -> anyhow::Error {
        let user = user_name(model);
        let copy = dir.join("model.onnx");
        let text = e
            .to_string()
            .replace(&copy.display().to_string(), &user)
            .replace(&dir.display().to_string(), "<the engine's copy>");
        let engine = match self {
            Backend::Ort(_) => "ONNX Runtime",
            #[cfg(feature = "tract")]
            Backend::Tract => "tract",
        };
        let hint = e.hint().map_or_else(
            || {
                format!(
                    "{engine} was handed `{user}` with the tensors to calibrate added as outputs; \
                     check that it runs in {engine} as it is, or try the other `--engine`"
                )
            },
            str::to_owned,
        );
        // The engine's own message starts by saying it cannot load "the model"; say it once.
        let prefix = format!("{engine} cannot load the model: ");
        let text = text.strip_prefix(&prefix).unwrap_or(&text);
        fail(
            format!("{engine} cannot load `{user}` for calibration: {text}"),
            hint,
        )
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

/// What to do about an engine failure while running the model.
const RUN_HINT: &str = "the engine ran the model as onnxq hands it (the tensors to calibrate added \
     as outputs); check that the model runs in this engine, or try the other `--engine`";

/// Gives an engine failure during calibration its hint: `onnxq_calib::Error::Engine` wraps the
/// engine's error transparently, so `report_error` does not reach the engine error's own hint.
pub(crate) fn hint_engine_errors(e: anyhow::Error) -> anyhow::Error {
    if hint_of(&e).is_some() {
        return e;
    }
    let engine = e
        .chain()
        .find_map(|c| match c.downcast_ref::<onnxq_calib::Error>() {
            Some(onnxq_calib::Error::Engine(EngineError::Unsupported { .. })) => {
                Some(unsupported_hint())
            }
            Some(onnxq_calib::Error::Engine(inner)) => {
                Some(inner.hint().unwrap_or(RUN_HINT).to_owned())
            }
            _ => None,
        });
    match engine {
        Some(hint) => match Err::<(), _>(e).hint(hint) {
            Err(e) => e,
            Ok(()) => unreachable!("`hint` keeps an error an error"),
        },
        None => e,
    }
}

/// What to do when the engine cannot prepare the model: the other engine, when ONNX Runtime is
/// there to be used, else how to get it.
fn unsupported_hint() -> String {
    let more = if crate::util::verbosity() == crate::util::Verbosity::Verbose {
        ""
    } else {
        " (`-v` shows tract's whole analysis)"
    };
    if find_ort_library(None).is_ok() {
        format!(
            "tract does not run every model: use `--engine ort` (ONNX Runtime is installed){more}"
        )
    } else {
        format!(
            "tract does not run every model: install ONNX Runtime (`pip install onnxruntime==1.31.1`) \
             and use `--engine ort`, or point --ort-lib at libonnxruntime.so{more}"
        )
    }
}

/// How messages name the user's model: its path, or "the model" for one read from memory.
fn user_name(model: &Model) -> String {
    model
        .path()
        .map_or_else(|| "the model".to_owned(), |p| p.display().to_string())
}

/// An engine whose errors name the user's model: a run error otherwise says "the model" or names
/// the engine's temporary copy, and the user would not know which file failed.
struct Named {
    inner: Box<dyn Executor>,
    user: String,
    /// The copy's path, replaced by the user's in messages.
    copy: String,
}

impl Named {
    fn rename(&self, e: EngineError) -> EngineError {
        let told = |m: String| format!("`{}`: {}", self.user, m.replace(&self.copy, &self.user));
        match e {
            EngineError::Run(m) => EngineError::Run(told(m)),
            // One sentence; tract's whole analysis only with --verbose.
            EngineError::Unsupported { message, detail } => EngineError::Unsupported {
                message: if crate::util::verbosity() == crate::util::Verbosity::Verbose {
                    format!("{}\n  tract's analysis: {detail}", told(message))
                } else {
                    told(message)
                },
                detail,
            },
            EngineError::Feed(m) => EngineError::Feed(told(m)),
            e => e,
        }
    }
}

impl Executor for Named {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn output_types(
        &mut self,
        feeds: &[(String, onnxq_engine::Tensor)],
    ) -> Result<Vec<(String, i32)>, EngineError> {
        self.inner.output_types(feeds).map_err(|e| self.rename(e))
    }

    fn run_each(
        &mut self,
        feeds: &[(String, onnxq_engine::Tensor)],
        visit: &mut dyn FnMut(&str, &[usize], onnxq_engine::DataRef<'_>),
    ) -> Result<(), EngineError> {
        self.inner
            .run_each(feeds, visit)
            .map_err(|e| self.rename(e))
    }
}

/// `preprocess --ort-optimizer`: ONNX Runtime's basic-level optimizer on `model` (read from
/// `path` when it is unchanged since load, else from a temporary copy), loaded back. The returned
/// folder holds the optimized file and its external data, which the model maps: keep it until
/// the model is saved.
pub(crate) fn ort_optimize(
    model: &Model,
    path: &Path,
    changed: bool,
    ort_lib: Option<&Path>,
) -> Result<(Model, tempfile::TempDir)> {
    let lib = find_ort_library(ort_lib)?;
    let dir = tempfile::Builder::new()
        .prefix(&engine_prefix())
        .tempdir()
        .context("cannot create a temporary folder for ONNX Runtime's optimizer")
        .hint("set TMPDIR to a folder you may write in")?;
    let input = if changed {
        let copy = dir.path().join("input.onnx");
        let layout = Layout::External {
            location: "input.onnx.data".into(),
            threshold: DEFAULT_THRESHOLD,
        };
        onnxq_ir::save(model, &copy, &layout)
            .context("cannot write the optimizer's copy of the model")
            .hint("free some space in the temporary folder, or set TMPDIR")?;
        copy
    } else {
        path.to_path_buf()
    };
    let out = dir.path().join("optimized.onnx");
    onnxq_engine::ort_optimize(
        &lib,
        &input,
        &out,
        "optimized.onnx.data",
        onnxq_engine::Optimization::Basic,
    )
    .map_err(|e| anyhow::anyhow!("{e} (on `{}`)", path.display()))
    .hint("run without --ort-optimizer: onnxq's own clean-ups have no size limit")?;
    let optimized = onnxq_ir::load(&out)
        .context("cannot read back the model ONNX Runtime's optimizer wrote")?;
    Ok((optimized, dir))
}
