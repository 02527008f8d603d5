//! The accuracy-recovery flags of `onnxq quantize` (SmoothQuant, ...), flattened into its
//! arguments: rewrites of the float model before static calibration that leave its outputs
//! unchanged and make it quantize better.

use std::path::PathBuf;

use clap::Args;

/// How `--equalize` treats a Clip (ReLU6) between two layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EqualizeMode {
    /// Float-equivalent rewrites only: pairs with a Clip between them are skipped
    Exact,
    /// Clip(0, hi) between equalized layers becomes Relu (Nagel et al., AIMET): a change of the
    /// float model, measured and reported
    Relu6,
}

/// How the static pass rounds weights to their integer grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WeightRounding {
    /// Each weight to its nearest integer (ONNX Runtime's)
    Nearest,
    /// GPTQ on the same grids: Conv / MatMul / Gemm weights rounded against their input's
    /// Hessian on the --data samples, for the least layer-output error
    Gptq,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct RecoveryArgs {
    /// Static: cross-layer equalization of Conv -> Conv and MatMul/Gemm -> MatMul/Gemm pairs
    /// through Relu, LeakyRelu or MaxPool (depthwise included), then bias absorption from the
    /// --data samples [MODE: exact (default) or relu6]
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "exact", value_name = "MODE", ignore_case = true)]
    pub(crate) equalize: Option<EqualizeMode>,
    /// Static: SmoothQuant before calibration (ORT's SmoothQuant extra option, without Intel
    /// Neural Compressor): activation outliers of each MatMul / Gemm / Conv input moved into its
    /// weights, per input channel, from the --data samples
    #[arg(long)]
    pub(crate) smooth_quant: bool,
    /// SmoothQuant's migration strength α in [0, 1]: s = max|X|^α / max|W|^(1-α) (ORT's
    /// SmoothQuantAlpha) [default: 0.5]
    #[arg(long, value_name = "ALPHA")]
    pub(crate) smooth_quant_alpha: Option<f32>,
    /// Fold 1/s into the producer where it can absorb it (LayerNormalization, BatchNormalization,
    /// InstanceNormalization, Mul by a constant, MatMul/Gemm/Conv); elsewhere, and always with
    /// false, a Mul is inserted and kept float (ORT's SmoothQuantFolding) [default: true]
    #[arg(long, value_name = "BOOL")]
    pub(crate) smooth_quant_folding: Option<bool>,
    /// Static: empirical bias correction after quantization: each quantized Conv / Gemm /
    /// MatMul(+Add) output's mean shift on the --data samples added to its bias, then quantized
    /// again with the same ranges
    #[arg(long)]
    pub(crate) bias_correction: bool,
    /// Static: how weights round to their integer grid (scales and zero points unchanged):
    /// nearest (default, ONNX Runtime's) or gptq (each Conv / MatMul / Gemm weight's rounding
    /// chosen for the least output error on the --data samples)
    #[arg(long, value_enum, value_name = "HOW", ignore_case = true)]
    pub(crate) weight_rounding: Option<WeightRounding>,
    /// Static: also write the float model as the rewrites above left it, before quantization (its
    /// outputs equal the input model's up to float rounding)
    #[arg(long, value_name = "FILE")]
    pub(crate) rewritten: Option<PathBuf>,
}
