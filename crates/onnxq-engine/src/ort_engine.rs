//! ONNX Runtime through the `ort` crate, with the library loaded at run time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{
    DynValue, PrimitiveTensorElementType, Tensor as OrtTensor, TensorElementType, ValueType,
};

use crate::{Data, DataRef, EngineError, Executor, Result, Tensor};

/// Where the ONNX Runtime library is: `explicit` (`--ort-lib`), else `ORT_DYLIB_PATH`, else the
/// `onnxruntime` Python package of `python3` (or `ONNXQ_PYTHON`), whose `capi/` folder ships it.
pub fn find_ort_library(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return existing(p, "--ort-lib");
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return existing(Path::new(&p), "ORT_DYLIB_PATH");
    }
    let python = std::env::var_os("ONNXQ_PYTHON").unwrap_or_else(|| "python3".into());
    // find_spec locates the package without importing it (an import costs a tenth of a second).
    let script = "import importlib.util, os; print(os.path.join(importlib.util.find_spec('onnxruntime').submodule_search_locations[0], 'capi'))";
    let capi = Command::new(&python)
        .args(["-c", script])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let lib = capi.as_deref().and_then(|dir| {
        let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so"))
            })
            .collect();
        libs.sort();
        libs.pop()
    });
    lib.ok_or_else(|| {
        EngineError::Library("no ONNX Runtime library found (no --ort-lib, no ORT_DYLIB_PATH, no `onnxruntime` Python package)".into())
    })
}

fn existing(p: &Path, source: &str) -> Result<PathBuf> {
    if p.is_file() {
        Ok(p.to_path_buf())
    } else {
        Err(EngineError::Library(format!(
            "{source} names `{}`, which is not a file",
            p.display()
        )))
    }
}

/// The process-wide ONNX Runtime environment; the first library loaded wins.
static ENVIRONMENT: OnceLock<
    std::result::Result<(PathBuf, ort::environment::Environment), String>,
> = OnceLock::new();

pub(crate) fn environment(lib: &Path) -> Result<&'static ort::environment::Environment> {
    let env = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(lib)
            .map_err(|e| format!("cannot load ONNX Runtime from `{}`: {e}", lib.display()))?;
        let env = builder
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime from `{}`: {e}", lib.display()))?;
        Ok((lib.to_path_buf(), env))
    });
    match env {
        Ok((loaded, env)) if loaded == lib => Ok(env),
        Ok((loaded, _)) => Err(EngineError::Library(format!(
            "ONNX Runtime is already loaded from `{}`; one process cannot also load `{}`",
            loaded.display(),
            lib.display()
        ))),
        Err(e) => Err(EngineError::Library(e.clone())),
    }
}

/// A model loaded in ONNX Runtime, with graph optimizations off (so intermediate tensors are the
/// model's own, as ORT's calibrator sees them), the memory pattern off and a fixed thread count.
pub struct OrtEngine {
    session: Session,
    version: String,
}

impl OrtEngine {
    /// Loads a model file; its external data is resolved against its folder.
    pub fn load_file(lib: &Path, model: &Path, threads: usize) -> Result<OrtEngine> {
        let env = environment(lib)?;
        let session = Session::builder(env)
            .and_then(|b| {
                b.with_optimization_level(GraphOptimizationLevel::Disable)
                    .map_err(Into::into)
            })
            .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
            // The memory pattern pre-allocates one block for a run's peak; it only pays off for
            // fixed input shapes, and turning it off cuts calibration's peak RSS by 30-40 %.
            .and_then(|b| b.with_memory_pattern(false).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(|e| EngineError::Run(format!("ONNX Runtime cannot load the model: {e}")))?;
        Ok(OrtEngine {
            session,
            version: ort_version(lib),
        })
    }
}

/// How far ONNX Runtime's graph optimizer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimization {
    /// The basic level: constant folding, redundant-node removal, Conv+BN/Add/Mul and
    /// MatMul+Add fusions (what `quant_pre_process` runs).
    Basic,
    /// Every level, as an application's session runs the model on the CPU provider (the QDQ
    /// fusions into integer kernels included).
    All,
}

/// Runs ONNX Runtime's graph optimizer at `level` on the model file and writes the optimized
/// model to `out`. Initializers of at least 1024 bytes go to external data named `external`
/// beside `out`, so models past protobuf's 2 GB limit can be written too.
pub fn ort_optimize(
    lib: &Path,
    model: &Path,
    out: &Path,
    external: &str,
    level: Optimization,
) -> Result<()> {
    let env = environment(lib)?;
    let level = match level {
        Optimization::Basic => GraphOptimizationLevel::Level1,
        Optimization::All => GraphOptimizationLevel::All,
    };
    Session::builder(env)
        .and_then(|b| b.with_optimization_level(level).map_err(Into::into))
        .and_then(|b| b.with_optimized_model_path(out).map_err(Into::into))
        .and_then(|b| {
            b.with_config_entry(
                "session.optimized_model_external_initializers_file_name",
                external,
            )
            .map_err(Into::into)
        })
        .and_then(|b| {
            b.with_config_entry(
                "session.optimized_model_external_initializers_min_size_in_bytes",
                "1024",
            )
            .map_err(Into::into)
        })
        .and_then(|mut b| b.commit_from_file(model))
        .map_err(|e| EngineError::Run(format!("ONNX Runtime's optimizer failed: {e}")))?;
    Ok(())
}

impl Executor for OrtEngine {
    fn name(&self) -> String {
        format!("onnxruntime {}", self.version)
    }

    fn output_types(&mut self, _feeds: &[(String, Tensor)]) -> Result<Vec<(String, i32)>> {
        // The session resolved every type when it loaded.
        Ok(self
            .session
            .outputs()
            .iter()
            .map(|o| {
                let code = match o.dtype() {
                    ValueType::Tensor { ty, .. } => onnx_code(*ty),
                    _ => 0,
                };
                (o.name().to_owned(), code)
            })
            .collect())
    }

    fn run_each(
        &mut self,
        feeds: &[(String, Tensor)],
        visit: &mut dyn FnMut(&str, &[usize], DataRef<'_>),
    ) -> Result<()> {
        let mut inputs: Vec<(
            std::borrow::Cow<'_, str>,
            ort::session::SessionInputValue<'_>,
        )> = Vec::with_capacity(feeds.len());
        for (name, t) in feeds {
            inputs.push((name.as_str().into(), to_ort(name, t)?.into()));
        }
        let outputs = self
            .session
            .run(inputs)
            .map_err(|e| EngineError::Run(format!("ONNX Runtime run failed: {e}")))?;
        for (name, value) in outputs {
            let ValueType::Tensor { ty, shape, .. } = value.dtype() else {
                visit(name, &[], DataRef::Other);
                continue;
            };
            let dims: Vec<usize> = shape
                .iter()
                .map(|&d| usize::try_from(d).unwrap_or(0))
                .collect();
            let bad = |e: ort::Error| EngineError::Run(format!("output `{name}`: {e}"));
            let data = match ty {
                TensorElementType::Float32 => {
                    DataRef::F32(value.try_extract_tensor::<f32>().map_err(bad)?.1)
                }
                TensorElementType::Float64 => {
                    DataRef::F64(value.try_extract_tensor::<f64>().map_err(bad)?.1)
                }
                TensorElementType::Int64 => {
                    DataRef::I64(value.try_extract_tensor::<i64>().map_err(bad)?.1)
                }
                TensorElementType::Int32 => {
                    DataRef::I32(value.try_extract_tensor::<i32>().map_err(bad)?.1)
                }
                TensorElementType::Int8 => {
                    DataRef::I8(value.try_extract_tensor::<i8>().map_err(bad)?.1)
                }
                TensorElementType::Uint8 => {
                    DataRef::U8(value.try_extract_tensor::<u8>().map_err(bad)?.1)
                }
                TensorElementType::Bool => {
                    DataRef::Bool(value.try_extract_tensor::<bool>().map_err(bad)?.1)
                }
                _ => DataRef::Other,
            };
            visit(name, &dims, data);
        }
        Ok(())
    }
}

/// The ONNX `TensorProto.DataType` code of an ORT element type (0 for those onnxq does not use).
fn onnx_code(ty: TensorElementType) -> i32 {
    match ty {
        TensorElementType::Float32 => 1,
        TensorElementType::Uint8 => 2,
        TensorElementType::Int8 => 3,
        TensorElementType::Int32 => 6,
        TensorElementType::Int64 => 7,
        TensorElementType::Bool => 9,
        TensorElementType::Float16 => 10,
        TensorElementType::Float64 => 11,
        _ => 0,
    }
}

/// The version in the library's file name (`libonnxruntime.so.1.31.1` → `1.31.1`), else its path.
pub fn ort_version(lib: &Path) -> String {
    let name = lib.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match name.split_once(".so.") {
        Some((_, v)) => v.to_owned(),
        None => lib.display().to_string(),
    }
}

pub(crate) fn to_ort(name: &str, t: &Tensor) -> Result<DynValue> {
    fn value<T: PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static>(
        shape: Vec<i64>,
        v: &[T],
    ) -> ort::Result<DynValue> {
        Ok(OrtTensor::from_array((shape, v.to_vec()))?.into_dyn())
    }
    let shape: Vec<i64> = t.dims.iter().map(|&d| d as i64).collect();
    match &t.data {
        Data::F32(v) => value(shape, v),
        Data::F64(v) => value(shape, v),
        Data::I64(v) => value(shape, v),
        Data::I32(v) => value(shape, v),
        Data::I8(v) => value(shape, v),
        Data::U8(v) => value(shape, v),
        Data::Bool(v) => value(shape, v),
        Data::F16(_) => {
            return Err(EngineError::Feed(format!(
                "feed `{name}`: float16 feeds are not supported yet"
            )));
        }
    }
    .map_err(|e| EngineError::Feed(format!("feed `{name}`: {e}")))
}
