//! The comparison report: what `onnxq compare` prints as JSON (`--json`) and renders as HTML
//! (`--html`). The schema is versioned ([`SCHEMA`]); a field is only ever added within a version.
//! Every SQNR is ONNX Runtime's `compute_signal_to_quantization_noice_ratio`:
//! `20·log10(max(‖x‖₂, ε) / max(‖x − y‖₂, ε))` with ε = float64's machine epsilon, over all samples
//! concatenated, so equal tensors give a large finite figure (≈ 346 dB for unit norm), never ∞.

use serde::{Deserialize, Serialize};

/// The schema name and version written as `schema`.
pub const SCHEMA: &str = "onnxq-compare/1";

/// Everything one comparison found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// The float model's path as given.
    pub float_model: String,
    /// The quantized model's path as given.
    pub quant_model: String,
    /// The engine that ran both ("onnxruntime 1.31.1").
    pub engine: String,
    /// Samples run through both models.
    pub samples: usize,
    /// What the quantized model holds: "qdq", "qoperator", "dynamic", "weight-only" or a
    /// combination joined by "+", from its node patterns.
    pub format: String,
    /// Every quantized constant matched to its float weight, in the float model's graph order.
    pub weights: Vec<WeightEntry>,
    /// Every float activation of the float model with a counterpart in the quantized model, in
    /// the float model's graph order.
    pub activations: Vec<ActivationEntry>,
    /// The model outputs, float against quantized.
    pub outputs: Vec<OutputEntry>,
    /// Where the error starts and the worst tensors.
    pub ranking: Ranking,
    /// Measured exclusions: each re-quantized and run on the same samples.
    pub suggestions: Vec<Suggestion>,
    /// The best combination of the suggestions, ready to paste.
    pub best: Option<Best>,
    /// Why there are no (or few) suggestions, what was not tried.
    pub notes: Vec<String>,
    /// How the quantized model was made, when onnxq made it.
    pub quantization: Option<Quantization>,
    /// The most bytes of tensor values the comparison held at once (one sample's tensors; it does
    /// not grow with the number of samples).
    pub peak_held_bytes: usize,
}

/// One quantized constant against its float original.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightEntry {
    /// The float weight's name (in the float model).
    pub name: String,
    /// The quantized tensor's name (in the quantized model).
    pub quantized: String,
    /// The node of the quantized model that holds its parameters (a DequantizeLinear, a
    /// MatMulNBits, a QLinearConv, ...).
    pub node: String,
    /// That node's op type.
    pub op: String,
    /// The float node that reads the weight (its name in the float model), the one to exclude.
    pub consumer: Option<String>,
    /// "per-tensor", "per-channel" or "per-block".
    pub granularity: String,
    /// Element type of the codes: "int8", "uint8", "int4", "uint4", "int16", "uint16", "int32",
    /// "int2", "uint2".
    pub dtype: String,
    /// The float weight's shape.
    pub shape: Vec<usize>,
    /// Where it sits in the float model's graph order: the `index` of the first output of the
    /// node reading it (so weights and activations share one axis).
    pub index: usize,
    /// SQNR in dB (float weight as the signal).
    pub sqnr_db: f64,
    /// Largest absolute difference.
    pub max_abs_err: f64,
    /// Mean absolute difference.
    pub mean_abs_err: f64,
    /// Mean squared difference.
    pub mse: f64,
}

/// One activation: pre-QDQ against post-QDQ inside the quantized model, and float against
/// quantized across the two models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivationEntry {
    /// The tensor's name in the float model.
    pub name: String,
    /// Its position in the float model's graph order (node outputs numbered in order).
    pub index: usize,
    /// The float node that writes it (`None` for a graph input).
    pub producer: Option<String>,
    /// That node's op type.
    pub op: Option<String>,
    /// Where it has a QuantizeLinear → DequantizeLinear pair: SQNR of the pair's output against
    /// its input (ONNX Runtime's `qdq_err`).
    pub qdq_sqnr_db: Option<f64>,
    /// The float model's tensor against the quantized model's (ONNX Runtime's `xmodel_err`):
    /// after the Q/DQ pair where there is one, else the tensor of the same name (dequantized when
    /// it is stored as integers, as in QOperator models).
    pub xmodel_sqnr_db: Option<f64>,
    /// Cosine similarity of the same two tensors.
    pub xmodel_cosine: Option<f64>,
    /// Largest absolute difference of the same two tensors.
    pub xmodel_max_abs_err: Option<f64>,
    /// How many dB below its worst input this tensor's `xmodel_sqnr_db` is (positive = worse
    /// than its inputs; inputs better than 40 dB count as 40): the error this node adds.
    pub drop_db: Option<f64>,
    /// Which tensor of the quantized model `xmodel_sqnr_db` read.
    pub quant_tensor: Option<String>,
}

/// One model output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputEntry {
    /// The output's name.
    pub name: String,
    /// SQNR in dB (float output as the signal).
    pub sqnr_db: f64,
    /// Cosine similarity over all samples.
    pub cosine: f64,
    /// Largest absolute difference.
    pub max_abs_err: f64,
    /// Mean absolute difference.
    pub mean_abs_err: f64,
    /// For class-like outputs (float, last dimension of 2 or more): the share of rows (all but
    /// the last dimension) whose argmax agrees.
    pub top1_agreement: Option<f64>,
}

/// The place where error starts, and the worst tensors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// A drop larger than this (dB) marks where error starts.
    pub threshold_db: f64,
    /// The first activation in graph order whose `drop_db` exceeds the threshold.
    pub first_drop: Option<Ranked>,
    /// The worst tensors by SQNR, weights and activations together, worst first.
    pub worst: Vec<Ranked>,
}

/// A tensor in the ranking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// "weight" or "activation".
    pub kind: String,
    /// The tensor's name in the float model.
    pub name: String,
    /// The float node to exclude for it.
    pub node: Option<String>,
    /// Its position in the float model's graph order.
    pub index: usize,
    /// Its SQNR (weights: `sqnr_db`; activations: `xmodel_sqnr_db`, else `qdq_sqnr_db`).
    pub sqnr_db: f64,
    /// Its `drop_db` (activations).
    pub drop_db: Option<f64>,
}

/// Output figures of one re-quantized model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BeforeAfter {
    /// With the settings as they were (the lowest SQNR over the model outputs).
    pub before: f64,
    /// With the exclusion.
    pub after: f64,
}

/// One measured exclusion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// Node names (of the float model) kept in float.
    pub exclude: Vec<String>,
    /// The lowest output SQNR before and after.
    pub output_sqnr_db: BeforeAfter,
    /// The lowest output cosine before and after.
    pub output_cosine: BeforeAfter,
    /// Why this node was tried (the tensor that ranked it).
    pub reason: String,
}

/// The best measured set, ready to paste.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// Node names kept in float.
    pub exclude: Vec<String>,
    /// The lowest output SQNR before and after.
    pub output_sqnr_db: BeforeAfter,
    /// `--exclude a,b` for `onnxq quantize`.
    pub flag: String,
    /// The same as a config line (`exclude = ["a", "b"]`).
    pub config: String,
}

/// How onnxq made the quantized model (its metadata), and the quantize report when known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// The settings recorded in `onnxq.settings` (mode, format, options, calibration).
    pub settings: serde_json::Value,
    /// The quantize report's nodes, when it is at hand (`quantize --html`, or `compare
    /// --quant-report`): quantized or skipped, with the reason.
    pub nodes: Vec<NodeOutcome>,
}

/// One node of the quantize report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeOutcome {
    /// The node's name.
    pub node: String,
    /// Its op type.
    pub op_type: String,
    /// "quantized" or "skipped".
    pub status: String,
    /// The pattern it became, or why it was skipped.
    pub detail: String,
}
