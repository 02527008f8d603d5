//! The quantization report: every candidate node, quantized or skipped, with the reason.

use serde::Serialize;

/// What happened to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Rewritten into `pattern` (e.g. "MatMulInteger").
    Quantized {
        /// The emitted op pattern.
        pattern: String,
    },
    /// Left in float.
    Skipped {
        /// Why, in words a user can act on.
        reason: String,
    },
}

/// One node's entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Where the node is: "main" or the path of subgraphs ("main/If_0.then_branch").
    pub graph: String,
    /// The node name (or its first output's name when it has none).
    pub node: String,
    /// Its op type.
    pub op_type: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// For quantized nodes: the lowest signal-to-quantization-noise ratio (dB) of their weights.
    /// Per-tensor 8-bit weights typically reach 30-45 dB; values far below mean the weight's range
    /// is dominated by a few channels or outliers, and per-channel quantization will help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_sqnr_db: Option<f64>,
}

impl Outcome {
    /// Left in float for `reason`.
    pub(crate) fn skipped(reason: impl Into<String>) -> Outcome {
        Outcome::Skipped {
            reason: reason.into(),
        }
    }
}

impl Entry {
    /// The entry of node `node` (its label) of `op_type` in graph `graph`, without weight SQNR.
    pub(crate) fn new(graph: &str, node: String, op_type: &str, outcome: Outcome) -> Entry {
        Entry {
            graph: graph.to_owned(),
            node,
            op_type: op_type.to_owned(),
            outcome,
            weight_sqnr_db: None,
        }
    }
}

/// The report of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Mode, e.g. "dynamic".
    pub mode: String,
    /// One entry per candidate node, in graph order.
    pub nodes: Vec<Entry>,
    /// Opset of the default domain before and after (raised when a pattern needs it).
    pub opset: (i64, i64),
    /// Findings that concern tensors rather than nodes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Findings that make the model worse than the user asked for (a weight left float because
    /// it holds NaN or infinite values): printed last, after the counts, so they are seen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Where static quantization's activation ranges came from: which engine calibrated, how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
    /// What SmoothQuant did before calibration (`--smooth-quant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<SmoothReport>,
    /// What cross-layer equalization did before calibration (`--equalize`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equalization: Option<EqualizeReport>,
    /// What empirical bias correction did after quantization (`--bias-correction`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias_correction: Option<BiasCorrectionReport>,
    /// The measured search that chose this model (`--auto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchReport>,
}

impl Report {
    /// Number of quantized nodes.
    pub fn quantized(&self) -> usize {
        self.quantized_nodes().count()
    }

    /// Quantized nodes.
    pub fn quantized_nodes(&self) -> impl Iterator<Item = &Entry> {
        self.nodes
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Quantized { .. }))
    }

    /// Skipped nodes.
    pub fn skipped(&self) -> impl Iterator<Item = &Entry> {
        self.nodes
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Skipped { .. }))
    }
}

impl Report {
    /// The quantized node whose weights lost the most, with its SQNR in dB.
    pub fn worst_weight(&self) -> Option<(&Entry, f64)> {
        self.nodes
            .iter()
            .filter_map(|e| e.weight_sqnr_db.map(|s| (e, s)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// What smoothing did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SmoothReport {
    /// One entry per smoothed activation, in graph order.
    pub smoothed: Vec<Smoothed>,
    /// The Mul nodes inserted (to keep float).
    pub inserted: Vec<String>,
    /// Candidate nodes left alone: (node, reason).
    pub skipped: Vec<(String, String)>,
}

/// One smoothed activation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Smoothed {
    /// The activation.
    pub tensor: String,
    /// The nodes whose weights took `s`.
    pub consumers: Vec<String>,
    /// Where `1/s` went: "folded into LayerNormalization `ln`", or "Mul `x_smooth_mul` (why)".
    pub inverse: String,
    /// The largest and smallest scale.
    pub scale_range: (f32, f32),
}

/// What cross-layer equalization did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EqualizeReport {
    /// Head → tail pairs rescaled.
    pub pairs: usize,
    /// Sweeps over the pairs until the scales settled.
    pub sweeps: usize,
    /// Clips between equalized layers turned into Relus (`relu6`).
    pub clips_made_relu: usize,
    /// Pairs whose head bias moved into the tail (bias absorption).
    pub absorbed: usize,
    /// Candidate tails left alone: (node, reason).
    pub skipped: Vec<(String, String)>,
}

/// What bias correction did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BiasCorrectionReport {
    /// Layers whose bias took the measured shift.
    pub corrected: usize,
    /// The largest shift moved, relative to its channel's largest `|value|` on the data.
    pub largest_relative_shift: f64,
    /// Quantized layers left alone: (node, reason).
    pub skipped: Vec<(String, String)>,
}

/// What `--auto`'s search tried and chose.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SearchReport {
    /// The accuracy asked for, e.g. "cos=0.99".
    pub target: String,
    /// Whether the chosen model meets it on the held-out samples.
    pub met: bool,
    /// Samples calibrated on, and held out to judge the candidates.
    pub calibrated_on: usize,
    /// See `calibrated_on`.
    pub held_out: usize,
    /// The largest share of Conv / MatMul / Gemm nodes allowed float.
    pub max_float: f64,
    /// Every candidate measured, in the order tried.
    pub decisions: Vec<Decision>,
    /// What the search did not try.
    pub not_tried: Vec<String>,
    /// Wall time of the search, seconds.
    pub seconds: f64,
}

/// One measured candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The configuration, e.g. "QUInt8 activations, per-channel, Conv/MatMul/Gemm only".
    pub config: String,
    /// Nodes kept float on top of the configuration.
    pub excluded: Vec<String>,
    /// Activations quantized to 16 bits on top of the configuration (type overrides).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sixteen_bit: Vec<String>,
    /// The lowest output cosine and SQNR against the float model on the held-out samples.
    pub cosine: f64,
    /// See `cosine`.
    pub sqnr_db: f64,
    /// The first number `--eval-cmd` printed for it, when a metric script judges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<f64>,
    /// Median latency of the float model over this one's (ONNX Runtime, 1 thread), when timed.
    pub speedup: Option<f64>,
    /// Model size in bytes.
    pub bytes: u64,
    /// Share of the model's Conv / MatMul / Gemm nodes left float.
    pub float_share: f64,
    /// Whether this is the model written.
    pub chosen: bool,
}
