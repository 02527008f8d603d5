//! Settings of a quantization run, with ONNX Runtime's meanings and defaults: the dynamic and
//! static options, and the per-tensor overrides as the user writes them (ORT's
//! `TensorQuantOverrides`; `qdq/overrides.rs` validates and resolves them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::numerics::QuantType;
pub use crate::select::glob_match;

/// Options of `quantize --mode dynamic` (ORT's `quantize_dynamic` arguments and extra options).
/// Serialize: the settings recorded in the output model's metadata (read back by `compare` to
/// re-quantize with exclusions; a key missing there takes its default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DynamicOptions {
    /// Weight type: int8 (default) or uint8. Activations are always uint8, quantized at run time.
    pub weight_type: QuantType,
    /// Per-channel weights (MatMul: along the last axis; Conv: never, as in ORT).
    pub per_channel: bool,
    /// 7-bit weight ranges (for CPUs without VNNI, where int8 products can saturate).
    pub reduce_range: bool,
    /// Op types to quantize; empty means every op the dynamic registry knows.
    pub op_types: Vec<String>,
    /// Node names or glob patterns (`*`, `?`) to quantize; empty means all selected op types.
    pub include: Vec<String>,
    /// Node names or glob patterns never to quantize.
    pub exclude: Vec<String>,
    /// Only quantize MatMuls whose B input is a constant (ORT's `MatMulConstBOnly`, default true in
    /// dynamic mode).
    pub matmul_const_b_only: bool,
    /// Quantize inside If/Loop/Scan bodies (ORT's `EnableSubgraph`, default false).
    pub enable_subgraph: bool,
    /// Symmetric weights; `None` means ORT's default (symmetric for signed types).
    pub weight_symmetric: Option<bool>,
    /// Conv weights per output channel (an onnxq extension; ORT's ConvInteger is per tensor only).
    /// ONNX Runtime's ConvInteger needs a scalar weight zero point, so this needs symmetric weights:
    /// every channel's zero point is 0 and the per-channel scales apply after the integer product.
    pub conv_per_channel: bool,
}

impl Default for DynamicOptions {
    fn default() -> Self {
        DynamicOptions {
            weight_type: QuantType::I8,
            per_channel: false,
            reduce_range: false,
            op_types: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            matmul_const_b_only: true,
            enable_subgraph: false,
            weight_symmetric: None,
            conv_per_channel: false,
        }
    }
}

impl DynamicOptions {
    /// Whether weights are symmetric under these options.
    pub fn weight_symmetric(&self) -> bool {
        self.weight_symmetric
            .unwrap_or_else(|| self.weight_type.signed())
    }
}

/// Options of `quantize --mode static` in the QDQ format (ORT's `quantize_static` arguments and
/// extra options, with its defaults). Serialized into the output's metadata and read back as
/// [`DynamicOptions`] are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StaticOptions {
    /// Activation type (ORT's default for `quantize_static`: int8, asymmetric).
    pub activation_type: QuantType,
    /// Weight type (default int8).
    pub weight_type: QuantType,
    /// Per-channel weights (Conv axis 0, ConvTranspose 1, Gemm 0 or 1 by `transB`, MatMul 1).
    pub per_channel: bool,
    /// 7-bit ranges for every quantized constant (ORT applies the flag to all of them in QDQ).
    pub reduce_range: bool,
    /// Op types to quantize; empty means the static registry's default list.
    pub op_types: Vec<String>,
    /// Node names or glob patterns to quantize; empty means all selected op types.
    pub include: Vec<String>,
    /// Node names or glob patterns never to quantize.
    pub exclude: Vec<String>,
    /// Symmetric activation ranges (ORT's `ActivationSymmetric`; keeps Relu/Clip).
    pub activation_symmetric: bool,
    /// Symmetric per-tensor weights; `None` means symmetric for signed types. Per-channel weights
    /// are always symmetric, as in ORT's QDQ.
    pub weight_symmetric: Option<bool>,
    /// Quantize biases to int32 (ORT's `QuantizeBias`, default true).
    pub quantize_bias: bool,
    /// Keep Relu/Clip nodes instead of folding them into the producer's range
    /// (`QDQKeepRemovableActivations`).
    pub keep_removable_activations: bool,
    /// Do not enlarge weight scales whose int32 bias scale would be too small
    /// (`QDQDisableWeightAdjustForInt32Bias`).
    pub disable_weight_adjust: bool,
    /// Quantize data-movement ops even when their input is not quantized
    /// (`ForceQuantizeNoInputCheck`).
    pub force_quantize_no_input_check: bool,
    /// Op types whose outputs get no Q/DQ (`OpTypesToExcludeOutputQuantization`).
    pub exclude_output_quantization: Vec<String>,
    /// Q/DQ nodes in the `com.microsoft` domain (`UseQDQContribOps`); also chosen automatically
    /// where the model's opset lacks what the types or per-channel axes need.
    pub contrib_ops: bool,
    /// One Q/DQ pair per quantized consumer instead of one shared pair (`DedicatedQDQPair`).
    pub dedicated_qdq_pair: bool,
    /// The QDQ model will be lowered to QOperator: follow ORT's QOperator choices where they
    /// differ from its QDQ ones. A folded Relu/Clip leaves the producer's tensor name; constants
    /// quantized as activations take the weight symmetry when both types are equal and no reduced
    /// range; Softmax outputs get scale 1/256 with the type's lowest zero point.
    pub qoperator: bool,
    /// uint8 asymmetric activations get zero point 0 or 128 (`ActivationRestrictedAsymmetric`).
    pub restricted_asymmetric: bool,
    /// Every quantized range spans at least this much (`MinimumRealRange`).
    pub min_real_range: Option<f32>,
    /// Per-tensor settings (`TensorQuantOverrides`).
    pub overrides: Overrides,
    /// Weights rounded by GPTQ instead of to nearest: their input Hessians, collected by the
    /// caller on calibration data (`--weight-rounding gptq`). Not a setting of the file: data.
    #[serde(skip)]
    pub rounding: Option<std::sync::Arc<crate::hessians::WeightRounding>>,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            activation_type: QuantType::I8,
            weight_type: QuantType::I8,
            per_channel: false,
            reduce_range: false,
            op_types: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            activation_symmetric: false,
            weight_symmetric: None,
            quantize_bias: true,
            keep_removable_activations: false,
            disable_weight_adjust: false,
            force_quantize_no_input_check: false,
            exclude_output_quantization: Vec::new(),
            contrib_ops: false,
            dedicated_qdq_pair: false,
            qoperator: false,
            restricted_asymmetric: false,
            min_real_range: None,
            overrides: Default::default(),
            rounding: None,
        }
    }
}

/// One override entry, with ORT's keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Quantization type: `QInt8`, `QUInt8`, `QInt16`, `QUInt16`, `QInt4`, `QUInt4` (or onnxq's
    /// `int8`, `uint8`, ...).
    #[serde(default, deserialize_with = "quant_type")]
    pub quant_type: Option<QuantType>,
    /// Fixed scale (with `zero_point`; then no range keys).
    pub scale: Option<f32>,
    /// Fixed zero point (with `scale`).
    pub zero_point: Option<i32>,
    /// Symmetric range.
    pub symmetric: Option<bool>,
    /// 7-bit range (constants only).
    pub reduce_range: Option<bool>,
    /// Replaces the calibrated (or observed) minimum.
    pub rmin: Option<f32>,
    /// Replaces the calibrated (or observed) maximum.
    pub rmax: Option<f32>,
    /// Per-channel axis (constants only).
    pub axis: Option<i64>,
    /// Mixed precision (activations only): some or all consumers read the tensor re-quantized to
    /// another type.
    pub convert: Option<Convert>,
}

/// ORT's `convert` entry: the second type, its parameters and who reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Convert {
    /// The converted type (required; must differ from the tensor's own).
    #[serde(default, deserialize_with = "quant_type")]
    pub quant_type: Option<QuantType>,
    /// Fixed scale (with `zero_point`; then no range keys).
    pub scale: Option<f32>,
    /// Fixed zero point (with `scale`).
    pub zero_point: Option<i32>,
    /// Symmetric range (default: the activations' setting, not the tensor's override).
    pub symmetric: Option<bool>,
    /// Replaces the calibrated minimum (the tensor's own `rmin` does not carry over).
    pub rmin: Option<f32>,
    /// Replaces the calibrated maximum.
    pub rmax: Option<f32>,
    /// Accepted only to be refused with ORT's reason (activations have no reduced range).
    pub reduce_range: Option<bool>,
    /// Names of the consumer nodes that read the converted type (default: all of them).
    pub recv_nodes: Option<Vec<String>>,
}

/// Overrides by tensor name.
pub type Overrides = BTreeMap<String, Vec<Override>>;

fn quant_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<QuantType>, D::Error> {
    // null and the serialized names ("i8") too: the settings recorded in a model read back.
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let t = match s.trim_start_matches("QuantType.") {
        "QInt8" | "int8" | "i8" => QuantType::I8,
        "QUInt8" | "uint8" | "u8" => QuantType::U8,
        "QInt16" | "int16" | "i16" => QuantType::I16,
        "QUInt16" | "uint16" | "u16" => QuantType::U16,
        "QInt4" | "int4" | "i4" => QuantType::I4,
        "QUInt4" | "uint4" | "u4" => QuantType::U4,
        "QFLOAT8E4M3FN" | "float8e4m3fn" => {
            return Err(serde::de::Error::custom(
                "quant_type QFLOAT8E4M3FN is not supported: ONNX Runtime 1.31's CPU provider fails on \
                 the float8 QDQ models ORT's tool writes (its QDQ fusion); use an integer type",
            ));
        }
        other => {
            return Err(serde::de::Error::custom(format!(
                "unknown quant_type `{other}` (QInt8, QUInt8, QInt16, QUInt16, QInt4, QUInt4)"
            )));
        }
    };
    Ok(Some(t))
}
