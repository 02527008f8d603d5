//! The static (QDQ) op registry: which tensors of a node get quantize/dequantize pairs, per op type,
//! with ONNX Runtime's `QDQQuantizer` rules (reference §5.5). Adding an op whose tensors follow an
//! existing rule is one row in [`STATIC_OPS`] (or [`ON_REQUEST_OPS`]); a new rule is a [`Rule`]
//! variant here and its arm in `mark_node` (`qdq/mark.rs`).

/// How a node's tensors are marked for quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Every float input and output, as activations (ORT's generic `QDQOperatorBase`).
    Generic,
    /// Input 0 and output 0 as activations, input 1 as the weight (per-channel along
    /// `weight_axis`), input 2 as an int32 bias.
    Conv {
        /// Default per-channel axis of the weight: 0 for Conv, 1 for ConvTranspose.
        weight_axis: usize,
    },
    /// Like `Conv`, with the weight axis from `transB` and the bias only when it is a constant.
    Gemm,
    /// Constant inputs as weights (per-channel along axis 1), others as activations; output 0.
    MatMul,
    /// Relu/Clip: removed when the producer's quantized output can clip instead (asymmetric
    /// activations, the producer's only consumer), else input and output as activations.
    Removable,
    /// An op that moves values without computing new ones: output 0 shares input 0's scale and
    /// zero point, when input 0 is quantized (or always, with `force_quantize_no_input_check`).
    /// Only from opset `min_opset` on (Resize 11, MaxPool 12).
    Direct8Bit {
        /// The first opset where ORT quantizes the op.
        min_opset: i64,
    },
    /// Input 0 as an activation; every output shares its parameters.
    Split,
    /// Gather/GatherElements: a constant data input is quantized (as an activation); output 0 shares
    /// the data's parameters.
    Gather,
    /// Where: output 0 quantized when both value inputs are.
    Where,
    /// Instance/Layer/BatchNormalization: input 0 as activation, the scale as weight (per-channel
    /// along axis 1 where that exists), the bias int32, the outputs as activations.
    Normalization,
    /// Pad: the inputs as activations; the output shares input 0's parameters when padding adds no
    /// new value (reflect/edge/wrap, or a constant 0).
    Pad,
}

/// Op types the static quantizer knows, with their rule. By default every one of them is
/// quantized (ONNX Runtime's default op list for `quantize_static`: its QDQ and QOperator
/// registries together); op types asked for explicitly but missing here get [`Rule::Generic`].
pub const STATIC_OPS: &[(&str, Rule)] = &[
    ("Conv", Rule::Conv { weight_axis: 0 }),
    ("ConvTranspose", Rule::Conv { weight_axis: 1 }),
    ("Gemm", Rule::Gemm),
    ("MatMul", Rule::MatMul),
    ("Relu", Rule::Removable),
    ("Clip", Rule::Removable),
    ("Reshape", Rule::Direct8Bit { min_opset: 0 }),
    ("Transpose", Rule::Direct8Bit { min_opset: 0 }),
    ("Squeeze", Rule::Direct8Bit { min_opset: 0 }),
    ("Unsqueeze", Rule::Direct8Bit { min_opset: 0 }),
    ("Flatten", Rule::Direct8Bit { min_opset: 0 }),
    ("AveragePool", Rule::Direct8Bit { min_opset: 0 }),
    ("Slice", Rule::Direct8Bit { min_opset: 0 }),
    ("TopK", Rule::Direct8Bit { min_opset: 0 }),
    ("Resize", Rule::Direct8Bit { min_opset: 11 }),
    ("MaxPool", Rule::Direct8Bit { min_opset: 12 }),
    ("Split", Rule::Split),
    ("Gather", Rule::Gather),
    ("GatherElements", Rule::Gather),
    ("Where", Rule::Where),
    ("InstanceNormalization", Rule::Normalization),
    ("LayerNormalization", Rule::Normalization),
    ("BatchNormalization", Rule::Normalization),
    ("Pad", Rule::Pad),
    ("CumSum", Rule::Generic),
    ("ArgMax", Rule::Generic),
    ("Add", Rule::Generic),
    ("Mul", Rule::Generic),
    ("LeakyRelu", Rule::Generic),
    ("Sigmoid", Rule::Generic),
    ("GlobalAveragePool", Rule::Generic),
    ("Concat", Rule::Generic),
    ("Softmax", Rule::Generic),
    ("EmbedLayerNormalization", Rule::Generic),
];

/// Op types with a rule that are quantized only when asked for (`--op-types`), because ONNX
/// Runtime's default list leaves them float: data-movement ops whose outputs share their input's
/// parameters, and reductions (ReduceMax/ReduceMin pick input values; ReduceMean computes new ones
/// and gets its own).
pub const ON_REQUEST_OPS: &[(&str, Rule)] = &[
    ("GatherND", Rule::Gather),
    ("Expand", Rule::Direct8Bit { min_opset: 0 }),
    ("Tile", Rule::Direct8Bit { min_opset: 0 }),
    ("DepthToSpace", Rule::Direct8Bit { min_opset: 0 }),
    ("SpaceToDepth", Rule::Direct8Bit { min_opset: 0 }),
    ("ReduceMax", Rule::Direct8Bit { min_opset: 0 }),
    ("ReduceMin", Rule::Direct8Bit { min_opset: 0 }),
    ("ReduceMean", Rule::Generic),
];

/// The rule for `op_type` ([`Rule::Generic`] for op types not in the registry).
pub fn rule(op_type: &str) -> Rule {
    STATIC_OPS
        .iter()
        .chain(ON_REQUEST_OPS)
        .find(|(t, _)| *t == op_type)
        .map_or(Rule::Generic, |(_, r)| *r)
}

/// Whether the registry has a rule for `op_type` (quantized by default or on request).
pub(crate) fn known(op_type: &str) -> bool {
    STATIC_OPS
        .iter()
        .chain(ON_REQUEST_OPS)
        .any(|(t, _)| *t == op_type)
}

/// Ops ORT's QOperator format has no quantized form of: they stay float.
const QDQ_ONLY: &[&str] = &[
    "ConvTranspose",
    "Slice",
    "TopK",
    "CumSum",
    "GatherElements",
    "InstanceNormalization",
    "LayerNormalization",
    "BatchNormalization",
];

/// The rule a node of `op_type` is marked with, following ORT's QOperator choices when
/// `qoperator` is set; `None` when it is not marked at all.
pub(crate) fn rule_for(op_type: &str, qoperator: bool) -> Option<Rule> {
    if qoperator && QDQ_ONLY.contains(&op_type) {
        return None;
    }
    Some(match op_type {
        // ORT's QOperator AveragePool (QLinearAveragePool) has its own output parameters.
        "AveragePool" if qoperator => Rule::Generic,
        op => rule(op),
    })
}
