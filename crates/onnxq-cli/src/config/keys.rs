//! The tables behind option checking: every quantize option with the mode that uses it (flags and
//! config keys share the id), ORT's extra options onnxq honours, and the ones it does not support
//! yet with what to do instead. One table, so the command line, the config file and `--extra`
//! follow the same rule.

/// Which quantization uses an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uses {
    /// Every mode.
    Any,
    /// Dynamic and static quantization (integer weights per tensor or channel).
    Integer,
    /// Dynamic quantization only.
    Dynamic,
    /// Static quantization only.
    Static,
    /// Static quantization that calibrates here (`--data`), not with a `--ranges` file.
    Calibration,
    /// Weight-only quantization only.
    WeightOnly,
    /// Static and weight-only quantization (`--format`).
    StaticOrWeightOnly,
    /// Calibration, and weight-only quantization (`--symmetric`).
    CalibrationOrWeightOnly,
    /// Running the model on `--data`: static quantization that calibrates here, and weight-only
    /// GPTQ (`--engine`, `--ort-lib`, `--threads`); `--measure` and `--html` in any mode.
    RunsData,
    /// The samples (`--data`): static calibration, weight-only GPTQ; `--measure` and `--html` in
    /// any mode.
    Data,
}

impl Uses {
    /// Whether a run in `mode` reads the option (`calibrating`: static with `--data`).
    pub(crate) fn used_in(self, mode: crate::args::Mode, calibrating: bool) -> bool {
        use crate::args::Mode::{Dynamic, Static, WeightOnly};
        match (self, mode) {
            (Uses::Any, _)
            | (Uses::Integer, Dynamic | Static)
            | (Uses::Dynamic, Dynamic)
            | (Uses::Static, Static)
            | (Uses::WeightOnly, WeightOnly)
            | (Uses::StaticOrWeightOnly | Uses::Data, Static | WeightOnly)
            | (Uses::CalibrationOrWeightOnly, WeightOnly) => true,
            (Uses::Calibration | Uses::CalibrationOrWeightOnly, Static) => calibrating,
            (Uses::RunsData, Static | WeightOnly) => calibrating,
            _ => false,
        }
    }

    /// The modes that read the option, for messages ("of static quantization").
    pub(crate) fn users(self) -> &'static str {
        match self {
            Uses::Any => "of quantization",
            Uses::Integer => "of dynamic and static quantization",
            Uses::Dynamic => "of dynamic quantization",
            Uses::Static => "of static quantization",
            Uses::Calibration => "of static quantization's calibration",
            Uses::WeightOnly => "of weight-only quantization",
            Uses::StaticOrWeightOnly => "of static and weight-only quantization",
            Uses::CalibrationOrWeightOnly => {
                "of static quantization's calibration and of weight-only quantization"
            }
            Uses::RunsData => {
                "of runs on sample data (static quantization with --data, weight-only --algo \
                 gptq, --measure, --html)"
            }
            Uses::Data => "of static and weight-only quantization, --measure and --html",
        }
    }
}

/// One quantize option.
pub(crate) struct OptionInfo {
    /// The clap field name (the flag is `--` + id with `-` for `_`) and the config key.
    pub(crate) id: &'static str,
    /// ONNX Runtime's argument names, accepted as config keys too.
    pub(crate) ort: &'static [&'static str],
    /// Whether the config file takes it (`model`, `output`, `config`, `extra` are flags only).
    pub(crate) config: bool,
    pub(crate) uses: Uses,
}

const fn opt(id: &'static str, uses: Uses) -> OptionInfo {
    OptionInfo {
        id,
        ort: &[],
        config: true,
        uses,
    }
}

const fn ort(id: &'static str, ort: &'static [&'static str], uses: Uses) -> OptionInfo {
    OptionInfo {
        id,
        ort,
        config: true,
        uses,
    }
}

/// A flag with no config key yet, read by the runs `uses` names.
const fn flag_uses(id: &'static str, uses: Uses) -> OptionInfo {
    OptionInfo {
        id,
        ort: &[],
        config: false,
        uses,
    }
}

const fn flag_only(id: &'static str) -> OptionInfo {
    OptionInfo {
        id,
        ort: &[],
        config: false,
        uses: Uses::Any,
    }
}

/// Every option of `onnxq quantize`.
pub(crate) const OPTIONS: &[OptionInfo] = &[
    flag_only("model"),
    flag_only("output"),
    flag_only("config"),
    flag_only("extra"),
    opt("mode", Uses::Any),
    ort("format", &["quant_format"], Uses::StaticOrWeightOnly),
    opt("weight_type", Uses::Integer),
    opt("activation_type", Uses::Static),
    opt("overrides", Uses::Static),
    opt("ranges", Uses::Static),
    opt("force_ranges", Uses::Static),
    opt("data", Uses::Data),
    ort("method", &["calibrate_method"], Uses::Calibration),
    ort(
        "symmetric",
        &["is_symmetric"],
        Uses::CalibrationOrWeightOnly,
    ),
    opt("percentile", Uses::Calibration),
    opt("num_bins", Uses::Calibration),
    opt("num_quantized_bins", Uses::Calibration),
    opt("moving_average", Uses::Calibration),
    opt("engine", Uses::RunsData),
    opt("ort_lib", Uses::RunsData),
    opt("threads", Uses::RunsData),
    opt("bits", Uses::WeightOnly),
    opt("block_size", Uses::WeightOnly),
    opt("accuracy_level", Uses::WeightOnly),
    ort("algo", &["algorithm", "quant_method"], Uses::WeightOnly),
    opt("quant_axes", Uses::WeightOnly),
    opt("lm_head_bits", Uses::WeightOnly),
    opt("fold_bias", Uses::WeightOnly),
    ort("nodes", &["customized_weight_config"], Uses::WeightOnly),
    opt("percdamp", Uses::WeightOnly),
    ort("act_order", &["actorder"], Uses::WeightOnly),
    opt("gptq_memory", Uses::WeightOnly),
    opt("per_channel", Uses::Integer),
    opt("conv_per_channel", Uses::Dynamic),
    opt("reduce_range", Uses::Integer),
    ort("op_types", &["op_types_to_quantize"], Uses::Any),
    ort(
        "include",
        &["nodes_to_quantize", "nodes_to_include"],
        Uses::Any,
    ),
    ort("exclude", &["nodes_to_exclude"], Uses::Any),
    opt("enable_subgraph", Uses::Dynamic),
    opt("dynamic_b", Uses::Dynamic),
    opt("report", Uses::Any),
    opt("html", Uses::Any),
    opt("measure", Uses::Any),
    ort("smooth_quant", &["SmoothQuant"], Uses::Calibration),
    ort(
        "smooth_quant_alpha",
        &["SmoothQuantAlpha"],
        Uses::Calibration,
    ),
    ort(
        "smooth_quant_folding",
        &["SmoothQuantFolding"],
        Uses::Calibration,
    ),
    opt("equalize", Uses::Calibration),
    opt("bias_correction", Uses::Calibration),
    opt("weight_rounding", Uses::Calibration),
    flag_uses("auto", Uses::Calibration),
    flag_uses("target", Uses::Calibration),
    flag_uses("max_float", Uses::Calibration),
    flag_uses("objective", Uses::Calibration),
    flag_uses("budget", Uses::Calibration),
    flag_uses("eval_cmd", Uses::Calibration),
    flag_uses("per_tensor", Uses::Calibration),
    opt("rewritten", Uses::Calibration),
];

/// The type of an extra option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Number,
    Strings,
    Overrides,
}

/// One of ORT's extra options onnxq honours.
pub(crate) struct Extra {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) uses: Uses,
}

const fn extra(name: &'static str, kind: Kind, uses: Uses) -> Extra {
    Extra { name, kind, uses }
}

/// ORT's extra options onnxq honours, with the mode that reads each.
pub(crate) const EXTRA: &[Extra] = &[
    extra("MatMulConstBOnly", Kind::Bool, Uses::Dynamic),
    extra("EnableSubgraph", Kind::Bool, Uses::Dynamic),
    extra("WeightSymmetric", Kind::Bool, Uses::Integer),
    extra("ActivationSymmetric", Kind::Bool, Uses::Static),
    extra("QuantizeBias", Kind::Bool, Uses::Static),
    extra("QDQKeepRemovableActivations", Kind::Bool, Uses::Static),
    extra(
        "QDQDisableWeightAdjustForInt32Bias",
        Kind::Bool,
        Uses::Static,
    ),
    extra("ForceQuantizeNoInputCheck", Kind::Bool, Uses::Static),
    extra(
        "OpTypesToExcludeOutputQuantization",
        Kind::Strings,
        Uses::Static,
    ),
    extra("UseQDQContribOps", Kind::Bool, Uses::Static),
    extra("DedicatedQDQPair", Kind::Bool, Uses::Static),
    extra("MinimumRealRange", Kind::Number, Uses::Static),
    extra("ActivationRestrictedAsymmetric", Kind::Bool, Uses::Static),
    extra("TensorQuantOverrides", Kind::Overrides, Uses::Static),
    extra("CalibTensorRangeSymmetric", Kind::Bool, Uses::Calibration),
    extra("CalibMovingAverage", Kind::Bool, Uses::Calibration),
    extra("CalibPercentile", Kind::Number, Uses::Calibration),
];

/// ORT's other extra options (its full list, ort-quantization.md §2.4), each with what to do.
pub(crate) const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "AddQDQPairToWeight",
        "onnxq stores weights quantized behind a DequantizeLinear; leave the option out",
    ),
    (
        "QDQOpTypePerChannelSupportToAxis",
        "use --per-channel (Conv axis 0, Gemm by transB, MatMul axis 1), or an `axis` per weight \
         in --overrides (ORT's TensorQuantOverrides)",
    ),
    (
        "CalibStridedMinMax",
        "leave it out: onnxq reads calibration samples one at a time, so memory stays flat without it",
    ),
    (
        "CalibMaxIntermediateOutputs",
        "leave it out: onnxq's calibration memory does not grow with the number of samples",
    ),
    (
        "CalibMovingAverageConstant",
        "leave it out: ORT's quantize_static collects all samples in one call, where the constant \
         has no effect; --moving-average gives the same mean of per-sample ranges",
    ),
    (
        "BlockSize",
        "static QDQ with blocked weights is not supported yet; --mode weight-only --block-size N \
         writes block-wise weights (MatMulNBits), or use --per-channel with static",
    ),
    (
        "DefaultTensorType",
        "leave it out: onnxq does not run shape inference and needs no default type",
    ),
    (
        "extra.Sigmoid.nnapi",
        "leave it out: QLinearSigmoid gets the calibrated output parameters",
    ),
];

/// The flag spelling of option `id`.
pub(crate) fn flag(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::{EXTRA, OPTIONS, UNSUPPORTED};

    /// Every quantize flag is classified here, so a new flag cannot be silently ignored in the
    /// other mode.
    #[test]
    fn every_flag_has_a_row() {
        let cmd = crate::args::Cli::command();
        let quantize = cmd.find_subcommand("quantize").unwrap();
        for arg in quantize.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" {
                assert!(OPTIONS.iter().any(|o| o.id == id), "no row for --{id}");
            }
        }
    }

    /// Each config key (with a value of its type) is set, none hits the "no setter" arm.
    #[test]
    fn every_config_key_is_read() {
        let dir = tempfile::tempdir().unwrap();
        for o in OPTIONS.iter().filter(|o| o.config) {
            let value = match o.id {
                "mode" => "\"static\"",
                "format" => "\"QOperator\"",
                "weight_type" | "activation_type" => "\"QUInt8\"",
                "method" => "\"Entropy\"",
                "engine" => "\"tract\"",
                "op_types" | "include" | "exclude" | "data" => "[\"a\"]",
                "percentile" | "percdamp" => "99.9",
                "gptq_memory" => "\"1GiB\"",
                "num_bins" | "num_quantized_bins" | "threads" | "bits" | "accuracy_level" => "4",
                "block_size" => "32",
                "algo" => "\"RTN\"",
                "quant_axes" => "[\"Gather:0\"]",
                "lm_head_bits" => "8",
                "smooth_quant_alpha" => "0.5",
                "equalize" => "\"exact\"",
                "weight_rounding" => "\"gptq\"",
                "rewritten" => "\"r.onnx\"",
                "nodes" => "{ \"a\" = { bits = 8 } }",
                "ranges" | "overrides" | "report" | "html" | "ort_lib" => "\"f.json\"",
                _ => "true",
            };
            let path = dir.path().join("c.toml");
            let key = o.ort.first().copied().unwrap_or(o.id);
            std::fs::write(&path, format!("{key} = {value}\n")).unwrap();
            let cfg = crate::config::load(Some(&path), &[]).unwrap();
            assert_eq!(cfg.given.len(), 1, "{}", o.id);
        }
        for e in EXTRA {
            let value = match e.name {
                "OpTypesToExcludeOutputQuantization" => "['Conv']",
                "TensorQuantOverrides" => "{}",
                "MinimumRealRange" | "CalibPercentile" => "1",
                _ => "True",
            };
            let cfg = crate::config::load(None, &[format!("{}={value}", e.name)]).unwrap();
            assert_eq!(cfg.given.len(), 1, "{}", e.name);
        }
        for (name, _) in UNSUPPORTED {
            assert!(crate::config::load(None, &[format!("{name}=1")]).is_err());
        }
    }
}
