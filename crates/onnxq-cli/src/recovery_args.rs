//! The accuracy-recovery flags of `onnxq quantize` (SmoothQuant, ...), flattened into its
//! arguments: rewrites of the float model before static calibration that leave its outputs
//! unchanged and make it quantize better.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct RecoveryArgs {
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
    /// Static: also write the float model as the rewrites above left it, before quantization (its
    /// outputs equal the input model's up to float rounding)
    #[arg(long, value_name = "FILE")]
    pub(crate) rewritten: Option<PathBuf>,
}
