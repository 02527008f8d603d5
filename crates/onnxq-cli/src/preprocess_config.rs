//! `onnxq preprocess --config FILE.toml`: `quant_pre_process`'s argument names as keys, so an ORT
//! user's settings carry over. Flags win over the file. ORT's switches for its own inference
//! (`auto_merge`, `guess_output_rank`, `int_max`) are accepted with a note saying onnxq's inference
//! has no such switch; an unknown key or a wrong value type is an error naming it.

use std::path::Path;

use anyhow::Result;

use crate::util::{fail, note};

/// The settings a config file gives (`None`: not given).
#[derive(Debug, Default)]
pub(crate) struct PreprocessConfig {
    pub(crate) skip_optimization: Option<bool>,
    /// Both of ORT's shape steps skipped (`skip_onnx_shape` and `skip_symbolic_shape`).
    pub(crate) skip_shape_inference: Option<bool>,
    pub(crate) opset: Option<i64>,
    /// `save_as_external_data`.
    pub(crate) external_data: Option<bool>,
    pub(crate) external_data_location: Option<String>,
    pub(crate) size_threshold: Option<u64>,
}

const HINT: &str = "keys are quant_pre_process's argument names: skip_optimization, skip_onnx_shape, \
                    skip_symbolic_shape, save_as_external_data, all_tensors_to_one_file, \
                    external_data_location, external_data_size_threshold, opset";

/// Reads `path`.
pub(crate) fn read(path: &Path) -> Result<PreprocessConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            format!("cannot read `{}`: {e}", path.display()),
            "check the --config path",
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e| {
        fail(
            format!("`{}` is not valid TOML: {e}", path.display()),
            "fix the file's syntax",
        )
    })?;
    let mut c = PreprocessConfig::default();
    let (mut skip_onnx, mut skip_symbolic) = (None, None);
    for (key, value) in &table {
        let bad = |want: &str| {
            fail(
                format!(
                    "`{}`: `{key}` must be {want}, not `{value}`",
                    path.display()
                ),
                HINT,
            )
        };
        let boolean = || value.as_bool().ok_or_else(|| bad("true or false"));
        match key.as_str() {
            "skip_optimization" => c.skip_optimization = Some(boolean()?),
            "skip_onnx_shape" => skip_onnx = Some(boolean()?),
            "skip_symbolic_shape" => skip_symbolic = Some(boolean()?),
            "save_as_external_data" => c.external_data = Some(boolean()?),
            "all_tensors_to_one_file" => {
                if !boolean()? {
                    return Err(fail(
                        format!("`{}`: all_tensors_to_one_file = false", path.display()),
                        "onnxq writes external data to one file; remove the key or set it to true",
                    ));
                }
            }
            "external_data_location" => {
                c.external_data_location =
                    Some(value.as_str().ok_or_else(|| bad("a file name"))?.to_owned());
            }
            "external_data_size_threshold" => {
                let n = value
                    .as_integer()
                    .filter(|&n| n >= 0)
                    .ok_or_else(|| bad("a byte count"))?;
                c.size_threshold = Some(n as u64);
            }
            "opset" => c.opset = Some(value.as_integer().ok_or_else(|| bad("an opset number"))?),
            "auto_merge" | "guess_output_rank" | "int_max" | "verbose" => note(&format!(
                "`{key}` is ORT's symbolic inference switch; onnxq's inference has none (named dims \
                 merge by its own rules), so it has no effect"
            )),
            other => {
                return Err(fail(
                    format!("`{}`: unknown key `{other}`", path.display()),
                    HINT,
                ));
            }
        }
    }
    // onnxq has one inference: it is skipped when ORT's two shape steps both are.
    c.skip_shape_inference = match (skip_onnx, skip_symbolic) {
        (Some(true), Some(true)) => Some(true),
        (None, None) => None,
        _ => Some(false),
    };
    if c.skip_shape_inference == Some(false)
        && (skip_onnx == Some(true) || skip_symbolic == Some(true))
    {
        note(
            "onnxq runs one shape inference: it is skipped only when skip_onnx_shape and skip_symbolic_shape both are",
        );
    }
    Ok(c)
}
