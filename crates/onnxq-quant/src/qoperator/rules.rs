//! The QOperator pattern rules: for each float op type, how its QDQ form is lowered (a quantized
//! operator and how its inputs are laid out, the op itself on quantized data, or the op reading
//! the quantized input). Adding a lowering is one row in [`RULES`].

/// How a float op is lowered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lowering {
    /// A quantized operator: `op` in `domain`, inputs (x, scale, zero point) per float input,
    /// then the output's (scale, zero point); `bias` when a third input is an int32 bias.
    Linear {
        op: &'static str,
        domain: &'static str,
        /// Leading inputs passed through as they are (Where's condition).
        lead: usize,
        /// Float inputs after those that must be dequantized tensors (the rest are copied as they
        /// are).
        inputs: usize,
        /// Output parameters come first (QLinearConcat).
        output_first: bool,
        /// A third input is an int32 bias passed through quantized (Conv, Gemm).
        bias: bool,
    },
    /// The op runs unchanged on quantized data (input and outputs share one scale and zero point).
    Direct,
    /// The op reads the quantized input and has a non-float output (ArgMax: quantization keeps
    /// the order of values).
    ReadsQuantized,
}

/// The pattern rules, by float op type.
pub(crate) const RULES: &[(&str, Lowering)] = &[
    ("Conv", linear("QLinearConv", "", 2, true)),
    ("MatMul", linear("QLinearMatMul", "", 2, false)),
    ("Gemm", linear("QGemm", "com.microsoft", 2, true)),
    ("Add", linear("QLinearAdd", "com.microsoft", 2, false)),
    ("Mul", linear("QLinearMul", "com.microsoft", 2, false)),
    (
        "Sigmoid",
        linear("QLinearSigmoid", "com.microsoft", 1, false),
    ),
    (
        "LeakyRelu",
        linear("QLinearLeakyRelu", "com.microsoft", 1, false),
    ),
    (
        "AveragePool",
        linear("QLinearAveragePool", "com.microsoft", 1, false),
    ),
    (
        "GlobalAveragePool",
        linear("QLinearGlobalAveragePool", "com.microsoft", 1, false),
    ),
    (
        "Concat",
        Lowering::Linear {
            op: "QLinearConcat",
            domain: "com.microsoft",
            lead: 0,
            inputs: usize::MAX,
            output_first: true,
            bias: false,
        },
    ),
    (
        "Softmax",
        linear("QLinearSoftmax", "com.microsoft", 1, false),
    ),
    (
        "Where",
        Lowering::Linear {
            op: "QLinearWhere",
            domain: "com.microsoft",
            lead: 1,
            inputs: 2,
            output_first: false,
            bias: false,
        },
    ),
    ("Reshape", Lowering::Direct),
    ("Transpose", Lowering::Direct),
    ("Squeeze", Lowering::Direct),
    ("Unsqueeze", Lowering::Direct),
    ("Flatten", Lowering::Direct),
    ("MaxPool", Lowering::Direct),
    ("Resize", Lowering::Direct),
    ("Split", Lowering::Direct),
    ("Gather", Lowering::Direct),
    ("Pad", Lowering::Direct),
    ("ArgMax", Lowering::ReadsQuantized),
];

const fn linear(op: &'static str, domain: &'static str, inputs: usize, bias: bool) -> Lowering {
    Lowering::Linear {
        op,
        domain,
        lead: 0,
        inputs,
        output_first: false,
        bias,
    }
}
