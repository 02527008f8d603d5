//! The `--config` TOML file: every quantize option, under onnxq's names or ONNX Runtime's argument
//! names, plus ORT's `extra_options` keys. Unknown keys are errors, never ignored.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::args::{CalibMethod, Format, Mode, QType};

/// Shown under any config error.
pub(crate) const HINT: &str = "keys: mode, format (quant_format), weight_type, activation_type, per_channel, \
     conv_per_channel, reduce_range, op_types (op_types_to_quantize), include (nodes_to_quantize), \
     exclude (nodes_to_exclude), method (calibrate_method), and [extra_options] with MatMulConstBOnly, \
     EnableSubgraph, WeightSymmetric, ActivationSymmetric, QuantizeBias, QDQKeepRemovableActivations, \
     QDQDisableWeightAdjustForInt32Bias, ForceQuantizeNoInputCheck, OpTypesToExcludeOutputQuantization, \
     UseQDQContribOps, DedicatedQDQPair, MinimumRealRange, ActivationRestrictedAsymmetric, TensorQuantOverrides, CalibTensorRangeSymmetric, CalibMovingAverage, CalibPercentile";

/// A config problem (its message names the key).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConfigError(String);

/// The file's contents; every field optional, so flags and defaults fill the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) mode: Option<Mode>,
    #[serde(alias = "quant_format")]
    pub(crate) format: Option<Format>,
    pub(crate) weight_type: Option<QType>,
    pub(crate) activation_type: Option<QType>,
    #[serde(alias = "calibrate_method")]
    pub(crate) method: Option<CalibMethod>,
    pub(crate) per_channel: Option<bool>,
    pub(crate) reduce_range: Option<bool>,
    pub(crate) conv_per_channel: Option<bool>,
    #[serde(alias = "op_types_to_quantize")]
    pub(crate) op_types: Option<Vec<String>>,
    #[serde(alias = "nodes_to_quantize")]
    pub(crate) include: Option<Vec<String>>,
    #[serde(alias = "nodes_to_exclude")]
    pub(crate) exclude: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) extra_options: ExtraOptions,
}

/// ONNX Runtime's `extra_options` that onnxq honours, under ORT's names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExtraOptions {
    #[serde(rename = "MatMulConstBOnly")]
    pub(crate) matmul_const_b_only: Option<bool>,
    #[serde(rename = "EnableSubgraph")]
    pub(crate) enable_subgraph: Option<bool>,
    #[serde(rename = "WeightSymmetric")]
    pub(crate) weight_symmetric: Option<bool>,
    #[serde(rename = "ActivationSymmetric")]
    pub(crate) activation_symmetric: Option<bool>,
    #[serde(rename = "QuantizeBias")]
    pub(crate) quantize_bias: Option<bool>,
    #[serde(rename = "QDQKeepRemovableActivations")]
    pub(crate) keep_removable_activations: Option<bool>,
    #[serde(rename = "QDQDisableWeightAdjustForInt32Bias")]
    pub(crate) disable_weight_adjust: Option<bool>,
    #[serde(rename = "ForceQuantizeNoInputCheck")]
    pub(crate) force_quantize_no_input_check: Option<bool>,
    #[serde(rename = "OpTypesToExcludeOutputQuantization")]
    pub(crate) exclude_output_quantization: Option<Vec<String>>,
    #[serde(rename = "UseQDQContribOps")]
    pub(crate) contrib_ops: Option<bool>,
    #[serde(rename = "CalibTensorRangeSymmetric")]
    pub(crate) calib_symmetric: Option<bool>,
    #[serde(rename = "CalibMovingAverage")]
    pub(crate) calib_moving_average: Option<bool>,
    #[serde(rename = "CalibPercentile")]
    pub(crate) calib_percentile: Option<f64>,
    #[serde(rename = "ActivationRestrictedAsymmetric")]
    pub(crate) restricted_asymmetric: Option<bool>,
    #[serde(rename = "MinimumRealRange")]
    pub(crate) min_real_range: Option<f32>,
    #[serde(rename = "DedicatedQDQPair")]
    pub(crate) dedicated_qdq_pair: Option<bool>,
    #[serde(rename = "TensorQuantOverrides")]
    pub(crate) tensor_quant_overrides: Option<onnxq_quant::overrides::Overrides>,
}

/// Reads and checks the config file (if any) with `extra` entries (`KEY=VALUE`, ORT's
/// `extra_options` names; the value in TOML syntax, else taken as a string) set over its
/// `[extra_options]`.
pub(crate) fn load(path: Option<&Path>, extra: &[String]) -> Result<Config> {
    let (mut table, source) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config `{}`", path.display()))?;
            let table: toml::Table = toml::from_str(&text).map_err(|e| {
                ConfigError(format!("config `{}`: {}", path.display(), e.message()))
            })?;
            (table, format!("config `{}`", path.display()))
        }
        None => (toml::Table::new(), "--extra".to_owned()),
    };
    for entry in extra {
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| ConfigError(format!("--extra `{entry}`: expected KEY=VALUE")))?;
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_owned()));
        let options = table
            .entry("extra_options")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(options) = options else {
            return Err(ConfigError(format!("{source}: `extra_options` is not a table")).into());
        };
        options.insert(key.trim().to_owned(), value);
    }
    Config::deserialize(table).map_err(|e| ConfigError(format!("{source}: {}", e.message())).into())
}
