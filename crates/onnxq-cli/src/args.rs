//! Command-line arguments (clap derive). The rest of the crate never parses argv itself.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// onnxq: quantize ONNX models for ONNX Runtime, fast, in bounded memory, on models of any size
#[derive(Debug, Parser)]
#[command(name = "onnxq", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Describe a model: IR and opsets, inputs and outputs, ops, weights, external data, and which
    /// nodes a quantizer could touch
    Inspect(InspectArgs),
    /// Rewrite a model, moving large tensors (initializers and Constant values) to an external data
    /// file or back inline
    Repack(RepackArgs),
    /// Quantize a model (dynamic: int8 weights, activations quantized at run time; static: QDQ with
    /// calibrated activation ranges)
    Quantize(QuantizeArgs),
    /// Run the float model on calibration data and write each activation's range (for static
    /// quantization); memory does not grow with the number of samples
    Calibrate(CalibrateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The model file (.onnx); its external data is read from beside it
    pub(crate) model: PathBuf,
    /// Print JSON (for scripts) instead of text
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RepackArgs {
    /// The model file (.onnx) to read; it is never modified
    pub(crate) model: PathBuf,
    /// Where to write the new model (must differ from the input)
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Move tensors of at least --size-threshold bytes to FILE, a name relative to the output's
    /// folder [default FILE: <output file name>.data]
    #[arg(long, value_name = "FILE", num_args = 0..=1, conflicts_with = "inline")]
    pub(crate) external_data: Option<Option<String>>,
    /// Minimum tensor size in bytes to move to external data (at least 1024: ONNX Runtime cannot
    /// read small shape constants from external data)
    #[arg(long, value_name = "BYTES", default_value_t = onnxq_ir::DEFAULT_THRESHOLD)]
    pub(crate) size_threshold: u64,
    /// Put every tensor inline (a model that would pass protobuf's 2 GB limit still moves its
    /// largest tensors out). Without --inline or --external-data, the input's layout is kept
    #[arg(long)]
    pub(crate) inline: bool,
}

/// The quantization mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Weights quantized offline, activations at run time (ONNX Runtime's `quantize_dynamic`)
    Dynamic,
    /// Weights and activations quantized with calibrated ranges (ONNX Runtime's `quantize_static`)
    Static,
}

/// The static quantization format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// QuantizeLinear/DequantizeLinear pairs around float ops (ORT's QuantFormat.QDQ)
    Qdq,
    /// Quantized operators (QLinearConv, QLinearMatMul, ...; ORT's QuantFormat.QOperator)
    Qoperator,
}

/// An integer quantization type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum QType {
    /// Signed 8-bit (weights symmetric by default)
    Int8,
    /// Unsigned 8-bit (asymmetric by default)
    Uint8,
    /// Signed 16-bit (static only)
    Int16,
    /// Unsigned 16-bit (static only)
    Uint16,
    /// Signed 4-bit (static weights only)
    Int4,
    /// Unsigned 4-bit (static weights only)
    Uint4,
}

#[derive(Debug, Args)]
pub(crate) struct QuantizeArgs {
    /// The float model (.onnx); it is never modified
    pub(crate) model: PathBuf,
    /// Where to write the quantized model
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Quantization mode [default: dynamic]
    #[arg(long, value_enum)]
    pub(crate) mode: Option<Mode>,
    /// Static quantization format [default: qdq]
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
    /// Weight type [default: int8]
    #[arg(long, value_enum)]
    pub(crate) weight_type: Option<QType>,
    /// Static: activation type [default: int8, asymmetric, as ORT's quantize_static]
    #[arg(long, value_enum)]
    pub(crate) activation_type: Option<QType>,
    /// Static: per-tensor overrides, ONNX Runtime's TensorQuantOverrides as JSON
    /// ({"tensor": [{"quant_type": "QUInt16", "symmetric": true, ...}]}); wins over the config's
    #[arg(long, value_name = "FILE")]
    pub(crate) overrides: Option<PathBuf>,
    /// Static: a ranges file from `onnxq calibrate` instead of calibrating here with --data
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub(crate) ranges: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) calib: CalibSettings,
    /// Quantize weights per channel (dynamic: MatMul along the last axis; static: Conv axis 0,
    /// Gemm by transB, MatMul axis 1)
    #[arg(long)]
    pub(crate) per_channel: bool,
    /// Quantize Conv weights per output channel (onnxq extension: ORT's ConvInteger path is per
    /// tensor only; needs symmetric weights). Much more accurate on depthwise / BN-folded convs
    #[arg(long)]
    pub(crate) conv_per_channel: bool,
    /// Use 7-bit weight ranges (for CPUs without VNNI)
    #[arg(long)]
    pub(crate) reduce_range: bool,
    /// Op types to quantize [default: every op the mode supports]
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub(crate) op_types: Vec<String>,
    /// Only quantize these nodes (names or globs with `*` and `?`)
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub(crate) include: Vec<String>,
    /// Never quantize these nodes (names or globs)
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub(crate) exclude: Vec<String>,
    /// Also quantize inside If/Loop/Scan bodies (ORT's EnableSubgraph)
    #[arg(long)]
    pub(crate) enable_subgraph: bool,
    /// Quantize MatMuls whose B is not a constant too (dynamically), ORT's MatMulConstBOnly=False
    #[arg(long)]
    pub(crate) dynamic_b: bool,
    /// A TOML file with any of these options, including ONNX Runtime's extra option names under
    /// [extra_options]; command-line flags win
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// An ONNX Runtime extra option, KEY=VALUE (e.g. ActivationSymmetric=true,
    /// DedicatedQDQPair=true); repeatable; set over the config file's [extra_options]
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) extra: Vec<String>,
    /// Write the per-node report as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
}

/// A calibration method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CalibMethod {
    /// Observed minimum and maximum
    Minmax,
    /// The symmetric threshold minimising KL divergence (TensorRT's method)
    Entropy,
    /// A percentile of the values (of |x| when symmetric)
    Percentile,
    /// Mean and standard deviation (for float8), range ±max|x|
    Distribution,
}

/// Which engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Engine {
    /// ONNX Runtime when its library is found, else tract
    Auto,
    /// ONNX Runtime (library from --ort-lib, ORT_DYLIB_PATH or the onnxruntime Python package)
    Ort,
    /// tract-onnx, the embedded pure-Rust engine (needs the default `tract` cargo feature)
    Tract,
}

/// How activation ranges are calibrated (shared by `calibrate` and `quantize --mode static`).
#[derive(Debug, Clone, Args)]
pub(crate) struct CalibSettings {
    /// Calibration data: a .npz (keys = input names, first axis = samples), or a folder of .npz /
    /// .npy files or ONNX test-data folders (one sample each)
    #[arg(long, num_args = 1..)]
    pub(crate) data: Vec<PathBuf>,
    /// How ranges are computed [default: minmax]
    #[arg(long, value_enum)]
    pub(crate) method: Option<CalibMethod>,
    /// Symmetric ranges (ORT's CalibTensorRangeSymmetric): MinMax gives ±max(|min|, |max|),
    /// Percentile takes the percentile of |x| [default: false for minmax, true for percentile]
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub(crate) symmetric: Option<bool>,
    /// Percentile method: the percentile kept
    #[arg(long, default_value_t = 99.999)]
    pub(crate) percentile: f64,
    /// Histogram bins [default: 128 for entropy, 2048 for percentile and distribution]
    #[arg(long)]
    pub(crate) num_bins: Option<usize>,
    /// Entropy method: levels of the quantized distribution. Equal to --num-bins (ORT's default
    /// 128/128) the search has one candidate and gives the MinMax range; try --num-bins 2048
    #[arg(long, default_value_t = 128)]
    pub(crate) num_quantized_bins: usize,
    /// MinMax: average the per-sample ranges instead of taking the extremes (ORT's CalibMovingAverage)
    #[arg(long)]
    pub(crate) moving_average: bool,
    /// The engine that runs the model
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) engine: Engine,
    /// Path of libonnxruntime.so (else ORT_DYLIB_PATH, else the onnxruntime Python package)
    #[arg(long, value_name = "FILE")]
    pub(crate) ort_lib: Option<PathBuf>,
    /// Engine threads
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
}

#[derive(Debug, Args)]
pub(crate) struct CalibrateArgs {
    /// The float model (.onnx)
    pub(crate) model: PathBuf,
    #[command(flatten)]
    pub(crate) calib: CalibSettings,
    /// Where to write the ranges (JSON)
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Also write TensorRT calibration tables (calibration.json / .flatbuffers / .cache, as ORT's
    /// write_calibration_table) into DIR, with dynamic ranges max(|min|, |max|)
    #[arg(long, value_name = "DIR")]
    pub(crate) trt_table: Option<PathBuf>,
}
