//! Command-line arguments (clap derive). The rest of the crate never parses argv itself.
//!
//! Enum values take onnxq's spellings and ONNX Runtime's enum names (`QInt8`, `QDQ`, `MinMax`),
//! case-insensitively, so an ORT user's values work as they are.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};

/// onnxq: quantize ONNX models for ONNX Runtime, fast, in bounded memory, on models of any size
#[derive(Debug, Parser)]
#[command(name = "onnxq", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Print only warnings and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Print more: every skipped node by name, not the first three of each reason
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per run; boxing would buy nothing"
)]
pub(crate) enum Command {
    /// Describe a model: IR and opsets, inputs and outputs, ops, weights, external data, and which
    /// nodes a quantizer could touch
    Inspect(InspectArgs),
    /// Rewrite a model, moving large tensors (initializers and Constant values) to an external data
    /// file or back inline
    Repack(RepackArgs),
    /// Prepare a model for quantization (ORT's quant_pre_process): graph clean-ups, type and
    /// shape inference with symbolic dims written as value_info, optional opset upgrade
    Preprocess(PreprocessArgs),
    /// Quantize a model (dynamic: int8 weights, activations quantized at run time; static: QDQ with
    /// calibrated activation ranges; weight-only: 2/4/8-bit weight blocks for MatMulNBits)
    Quantize(QuantizeArgs),
    /// Run the float model on calibration data and write each activation's range (for static
    /// quantization); memory does not grow with the number of samples
    Calibrate(CalibrateArgs),
    /// Compare a float model with its quantized counterpart on sample data: every quantized
    /// weight and activation matched and measured (SQNR), where the error starts, measured
    /// exclusions; JSON and a self-contained HTML report
    Compare(CompareArgs),
    /// Time models in ONNX Runtime as an application runs them (every graph optimization, fixed
    /// threads): median and spread of interleaved runs, and the speed against the first model
    Bench(crate::bench_args::BenchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The float model (.onnx)
    pub(crate) float: PathBuf,
    /// The quantized model made from it (QDQ, QOperator, dynamic or weight-only)
    pub(crate) quant: PathBuf,
    /// Sample inputs: a .npz (keys = input names, first axis = samples), or a folder of .npz /
    /// .npy samples or ONNX test-data folders
    #[arg(long, num_args = 1.., required = true)]
    pub(crate) data: Vec<PathBuf>,
    /// Use only the first N samples
    #[arg(long, value_name = "N")]
    pub(crate) samples: Option<usize>,
    /// Engine that runs both models
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub(crate) engine: Engine,
    /// libonnxruntime to load (else ORT_DYLIB_PATH, then the Python package's)
    #[arg(long, value_name = "FILE")]
    pub(crate) ort_lib: Option<PathBuf>,
    /// Engine threads
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Write the report as JSON (schema `onnxq-compare/1`, see the README)
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Write the report as one self-contained HTML page
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// Worst tensors listed
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub(crate) top: usize,
    /// Nodes tried as exclusions: each re-quantized with the settings the quantized model
    /// records and measured on the samples (0: none)
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub(crate) suggest: usize,
    /// A tensor whose SQNR is this many dB below its node's inputs marks where error starts
    #[arg(long, default_value_t = 6.0, value_name = "DB")]
    pub(crate) drop_threshold: f64,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The model file (.onnx); its external data is read from beside it
    pub(crate) model: PathBuf,
    /// Print JSON (for scripts) instead of text
    #[arg(long)]
    pub(crate) json: bool,
    /// Print every value's inferred element type and shape (symbolic dims included), the nodes
    /// whose outputs could not be inferred and why, and declared shapes inference contradicts,
    /// instead of the summary
    #[arg(long)]
    pub(crate) shapes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RepackArgs {
    /// The model file (.onnx) to read; it is never modified
    pub(crate) model: PathBuf,
    /// Where to write the new model (must differ from the input)
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    #[command(flatten)]
    pub(crate) layout: LayoutArgs,
}

/// Where a written model's tensors go (`repack`, `preprocess`).
#[derive(Debug, Args)]
pub(crate) struct LayoutArgs {
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

#[derive(Debug, Args)]
pub(crate) struct PreprocessArgs {
    /// The model file (.onnx) to read; it is never modified
    pub(crate) model: PathBuf,
    /// Where to write the pre-processed model (must differ from the input)
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Skip the graph clean-ups (ORT's skip_optimization)
    #[arg(long)]
    pub(crate) skip_optimization: bool,
    /// Skip type and shape inference (ORT's skip_symbolic_shape and skip_onnx_shape)
    #[arg(long)]
    pub(crate) skip_shape_inference: bool,
    /// Upgrade the default-domain opset to N first (every node that changed meaning is
    /// converted, or the node that cannot be is named)
    #[arg(long, value_name = "N")]
    pub(crate) opset: Option<i64>,
    /// Run ONNX Runtime's own basic-level optimizer instead of onnxq's clean-ups (exactly what
    /// quant_pre_process runs; needs the ONNX Runtime library, and holds the whole model in memory)
    #[arg(long, conflicts_with = "skip_optimization")]
    pub(crate) ort_optimizer: bool,
    /// The ONNX Runtime library for --ort-optimizer [default: ORT_DYLIB_PATH, else the
    /// onnxruntime Python package's]
    #[arg(long, value_name = "PATH", requires = "ort_optimizer")]
    pub(crate) ort_lib: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) layout: LayoutArgs,
    /// Write what was done as JSON to FILE: each clean-up's count, shapes inferred, the nodes
    /// not inferred and why, declared shapes inference contradicts
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Settings in a TOML file under quant_pre_process's argument names (skip_optimization,
    /// skip_onnx_shape, skip_symbolic_shape, save_as_external_data, external_data_location,
    /// external_data_size_threshold, opset); flags win
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

/// The quantization mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Weights quantized offline, activations at run time (ONNX Runtime's `quantize_dynamic`)
    #[value(alias = "integerops")]
    Dynamic,
    /// Weights and activations quantized with calibrated ranges (ONNX Runtime's `quantize_static`)
    #[value(alias = "qlinearops")]
    Static,
    /// Weights only, in 2/4/8-bit blocks along K (ONNX Runtime's `MatMulNBitsQuantizer`):
    /// MatMul → MatMulNBits, Gather → GatherBlockQuantized; activations stay float
    #[value(name = "weight-only", alias = "weight_only", alias = "weightonly")]
    #[serde(rename = "weight-only", alias = "weight_only")]
    WeightOnly,
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

/// An integer quantization type (ORT's `QuantType` names are aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum QType {
    /// Signed 8-bit (weights symmetric by default)
    #[value(alias = "qint8")]
    Int8,
    /// Unsigned 8-bit (asymmetric by default)
    #[value(alias = "quint8")]
    Uint8,
    /// Signed 16-bit (static only)
    #[value(alias = "qint16")]
    Int16,
    /// Unsigned 16-bit (static only)
    #[value(alias = "quint16")]
    Uint16,
    /// Signed 4-bit (static weights only)
    #[value(alias = "qint4")]
    Int4,
    /// Unsigned 4-bit (static weights only)
    #[value(alias = "quint4")]
    Uint4,
    /// ORT's QFLOAT8E4M3FN: recognised so that it is refused with the reason, not as a typo
    #[value(name = "qfloat8e4m3fn", hide = true)]
    Float8,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct QuantizeArgs {
    /// Which options were given on the command line (not defaulted). First: clap's derive takes
    /// each later field's values out of the matches as it reads them.
    #[command(flatten)]
    pub(crate) given: Given,
    /// The float model (.onnx); it is never modified
    pub(crate) model: PathBuf,
    /// Where to write the quantized model
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Quantization mode [default: static when --data or --ranges is given, else dynamic]
    #[arg(long, value_enum, ignore_case = true)]
    pub(crate) mode: Option<Mode>,
    /// Quantization format [default: qdq for static; qoperator (MatMulNBits) for weight-only, whose
    /// qdq is a blocked DequantizeLinear at 4 or 8 bits, the model converted to opset 21]
    #[arg(long, value_enum, ignore_case = true)]
    pub(crate) format: Option<Format>,
    /// Weight type [default: int8]
    #[arg(long, value_enum, ignore_case = true)]
    pub(crate) weight_type: Option<QType>,
    /// Static: activation type [default: int8, asymmetric, as ORT's quantize_static]
    #[arg(long, value_enum, ignore_case = true)]
    pub(crate) activation_type: Option<QType>,
    /// Static: per-tensor overrides, ONNX Runtime's TensorQuantOverrides as JSON
    /// ({"tensor": [{"quant_type": "QUInt16", "symmetric": true, ...}]}); wins over the config's
    #[arg(long, value_name = "FILE")]
    pub(crate) overrides: Option<PathBuf>,
    /// Static: a ranges file from `onnxq calibrate` instead of calibrating here with --data
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub(crate) ranges: Option<PathBuf>,
    /// Static: use a --ranges file made for another model, or missing ranges of tensors this
    /// quantization reads (they stay float), instead of refusing it
    #[arg(long)]
    pub(crate) force_ranges: bool,
    #[command(flatten)]
    pub(crate) calib: CalibSettings,
    #[command(flatten)]
    pub(crate) weight_only: WeightOnlyArgs,
    #[command(flatten)]
    pub(crate) recovery: crate::recovery_args::RecoveryArgs,
    #[command(flatten)]
    pub(crate) auto: crate::auto_args::AutoArgs,
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
    /// Compare the quantized model with the float model on the --data samples and write the
    /// `onnxq compare` HTML report to FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// Time the float and the quantized model in ONNX Runtime (every graph optimization, the
    /// --threads count, interleaved runs on the --data samples) and measure the outputs'
    /// agreement; a slower model gets its likely cause and the option that avoids it
    #[arg(long)]
    pub(crate) measure: bool,
}

/// The ids (field names) of the arguments given on the command line, as opposed to filled in by a
/// default: an option the chosen mode does not use is an error only when the user gave it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Given(BTreeSet<String>);

impl Given {
    /// Whether the argument with id `id` was on the command line.
    pub(crate) fn has(&self, id: &str) -> bool {
        self.0.contains(id)
    }

    /// The ids given, in name order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl FromArgMatches for Given {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Given(
            m.ids()
                .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                .map(|id| id.as_str().to_owned())
                .collect(),
        ))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Given::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for Given {
    // Reads the matches of the other fields; adds no argument of its own.
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd
    }
}

/// A calibration method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CalibMethod {
    /// Observed minimum and maximum
    #[value(alias = "min_max")]
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

/// Settings of `quantize --mode weight-only` (ORT's `MatMulNBitsQuantizer` arguments; its class
/// defaults, which its command line changes to block 32, symmetric).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct WeightOnlyArgs {
    /// Weight-only: bits per weight, 2, 4 or 8 [default: 4]
    #[arg(long)]
    pub(crate) bits: Option<u32>,
    /// Weight-only: rows of K per block, a power of two of at least 16 [default: 128, as ORT's
    /// MatMulNBitsQuantizer class; its command line defaults to 32]
    #[arg(long, value_name = "N")]
    pub(crate) block_size: Option<usize>,
    /// Weight-only: MatMulNBits' accuracy_level, the compute type of the activations: 0 unset,
    /// 1 fp32, 2 fp16, 3 bf16, 4 int8 (fastest on CPU) [default: 0]
    #[arg(long, value_name = "0-4")]
    pub(crate) accuracy_level: Option<u8>,
    /// Weight-only: how each block's codes are chosen [default: default]
    #[arg(long, value_enum, ignore_case = true)]
    pub(crate) algo: Option<WeightOnlyAlgo>,
    /// Weight-only: OP:AXIS, the axis an op's weight is blocked along (ORT's quant_axes; only
    /// Gather's is read: MatMul weights are blocked along K) [default: Gather:1]
    #[arg(long, value_delimiter = ',', value_name = "OP:AXIS")]
    pub(crate) quant_axes: Vec<String>,
    /// Weight-only: bits of the LM head, the main graph's last MatMul (8 keeps a language model's
    /// most sensitive layer near-lossless); per-node settings go in the config's
    /// `customized_weight_config` [default: as --bits]
    #[arg(long, value_name = "BITS")]
    pub(crate) lm_head_bits: Option<u32>,
    /// Weight-only: fold a constant bias Add after a MatMul into MatMulNBits' bias input (one
    /// node fewer; ORT's tool keeps the Add)
    #[arg(long)]
    pub(crate) fold_bias: bool,
    /// Weight-only GPTQ: damping, as a fraction of the mean of each Hessian's diagonal (ORT's
    /// percdamp) [default: 0.01]
    #[arg(long, value_name = "F")]
    pub(crate) percdamp: Option<f64>,
    /// Weight-only GPTQ: quantize rows in order of decreasing Hessian diagonal (ORT's actorder;
    /// each block keeps one scale, as MatMulNBits needs)
    #[arg(long)]
    pub(crate) act_order: bool,
    /// Weight-only GPTQ: memory for the Hessians collected per pass over --data (8·K² bytes
    /// each); more Hessians take more passes. The engine runs the model in segments of about an
    /// eighth of it in weights, one at a time. Bytes, or with KiB, MiB, GiB [default: 2GiB]
    #[arg(long, value_name = "SIZE")]
    pub(crate) gptq_memory: Option<String>,
}

/// A weight-only algorithm (ORT's `quant_method` names are aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WeightOnlyAlgo {
    /// ORT's C++ block quantizer: min/max per block, round half away from zero
    Default,
    /// Round to nearest over each block's own min/max (ORT's RTN)
    Rtn,
    /// llama.cpp's k-quant scale search (ORT's k_quant; asymmetric)
    #[value(name = "k-quant", alias = "k_quant", alias = "kquant")]
    #[serde(rename = "k-quant", alias = "k_quant")]
    KQuant,
    /// Half-quadratic optimisation of the zero points (asymmetric; no PyTorch needed)
    Hqq,
    /// GPTQ: rounding errors pushed onto the rows not yet quantized, weighted by Hessians of the
    /// MatMul inputs over --data (no PyTorch needed)
    Gptq,
}

/// How activation ranges are calibrated (shared by `calibrate` and `quantize --mode static`).
#[derive(Debug, Clone, Args)]
pub(crate) struct CalibSettings {
    /// Calibration data: a .npz (keys = input names, first axis = samples), or a folder of .npz /
    /// .npy files or ONNX test-data folders (one sample each)
    #[arg(long, num_args = 1..)]
    pub(crate) data: Vec<PathBuf>,
    /// How ranges are computed [default: minmax]
    #[arg(long, value_enum, ignore_case = true)]
    pub(crate) method: Option<CalibMethod>,
    /// Symmetric ranges (ORT's CalibTensorRangeSymmetric): MinMax gives ±max(|min|, |max|),
    /// Percentile takes the percentile of |x| [default: false for minmax, true for percentile].
    /// With `quantize --mode weight-only`: symmetric blocks, no zero points [default: false]
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
    #[arg(long, value_enum, default_value = "auto", ignore_case = true)]
    pub(crate) engine: Engine,
    /// Path of libonnxruntime.so (else ORT_DYLIB_PATH, else the onnxruntime Python package)
    #[arg(long, value_name = "FILE")]
    pub(crate) ort_lib: Option<PathBuf>,
    /// Engine threads
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Only the first N samples of --data (`--auto` holds the rest out to judge candidates).
    #[arg(skip)]
    pub(crate) first: Option<usize>,
}

impl Default for CalibSettings {
    /// The command line's defaults (for settings built from a config file).
    fn default() -> Self {
        CalibSettings {
            data: Vec::new(),
            method: None,
            symmetric: None,
            percentile: 99.999,
            num_bins: None,
            num_quantized_bins: 128,
            moving_average: false,
            engine: Engine::Auto,
            ort_lib: None,
            threads: 2,
            first: None,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CalibrateArgs {
    /// Which options were given on the command line (first, as in `QuantizeArgs`).
    #[command(flatten)]
    pub(crate) given: Given,
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{CalibSettings, Cli, Command};

    /// `CalibSettings::default()` (settings from a config) equals the command line's defaults.
    #[test]
    fn calib_defaults_match_the_flags() {
        let cli = Cli::try_parse_from(["onnxq", "calibrate", "m.onnx", "-o", "r.json"]).unwrap();
        let Command::Calibrate(a) = cli.command else {
            panic!("not calibrate")
        };
        assert_eq!(
            format!("{:?}", a.calib),
            format!("{:?}", CalibSettings::default())
        );
    }

    /// Only the flags on the command line count as given, not the defaults.
    #[test]
    fn given_lists_the_command_line_only() {
        let cli = Cli::try_parse_from([
            "onnxq",
            "quantize",
            "m.onnx",
            "-o",
            "q.onnx",
            "--threads",
            "2",
        ])
        .unwrap();
        let Command::Quantize(a) = cli.command else {
            panic!("not quantize")
        };
        assert!(a.given.has("threads") && a.given.has("model") && !a.given.has("engine"));
        assert!(!a.given.has("percentile"));
    }
}
