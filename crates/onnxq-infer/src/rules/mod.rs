//! The op rules: one table from (domain, op type) to the function that computes a node's output
//! facts from its input facts and attributes. Adding an op is one function and one row. A rule
//! that cannot tell (an input's rank unknown, an attribute it does not handle) returns why, and
//! the driver reports it and leaves the outputs unknown.

mod basic;
mod more;
mod ms;
mod nn;
mod shape;

pub(crate) use basic::broadcast as broadcast_dims;

use onnxq_ir::Node;
use onnxq_ir::proto as pb;

use crate::fact::Fact;

/// What a rule sees of one node.
pub(crate) struct Ctx<'a> {
    pub(crate) node: &'a Node,
    /// Input facts in order (`None` for an omitted optional input).
    pub(crate) inputs: Vec<Option<&'a Fact>>,
    /// The opset version of the node's domain.
    pub(crate) opset: i64,
    /// Set by a rule that finds the node itself wrong (known dims that cannot meet), which
    /// ONNX Runtime refuses at load: the driver reports it as a problem, not just an unknown.
    pub(crate) invalid: std::cell::RefCell<Option<String>>,
}

/// A rule's answer: one fact per output, or why it cannot tell.
pub(crate) type Outcome = Result<Vec<Fact>, String>;

/// A rule.
pub(crate) type Rule = fn(&Ctx<'_>) -> Outcome;

impl<'a> Ctx<'a> {
    /// Records that the node is invalid and returns the reason, for `return Err(c.invalid(..))`.
    pub(crate) fn invalid(&self, why: String) -> String {
        *self.invalid.borrow_mut() = Some(why.clone());
        why
    }

    /// Input `i`, which must be present.
    pub(crate) fn input(&self, i: usize) -> Result<&'a Fact, String> {
        self.inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| format!("input {i} is missing"))
    }

    /// Input `i`'s dims, which must be known.
    pub(crate) fn shape(&self, i: usize) -> Result<&'a [crate::dim::Dim], String> {
        self.input(i)?
            .shape
            .as_deref()
            .ok_or_else(|| format!("the rank of input {i} is unknown"))
    }

    /// An attribute's proto.
    pub(crate) fn attr(&self, name: &str) -> Option<&'a pb::AttributeProto> {
        self.node.attribute(name).map(|a| &a.proto)
    }

    /// An integer attribute, or `default`.
    pub(crate) fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(|a| a.i).unwrap_or(default)
    }

    /// An integer-list attribute.
    pub(crate) fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    /// The known float contents of input `i` (Resize's scales), if present and known.
    pub(crate) fn ints_of_floats(&self, i: usize) -> Option<Vec<f32>> {
        self.inputs.get(i).copied().flatten()?.floats.clone()
    }

    /// The known integer contents of input `i` (an axes or shape input), if present.
    pub(crate) fn const_ints(&self, i: usize) -> Result<Option<Vec<i64>>, String> {
        match self.inputs.get(i).copied().flatten() {
            None => Ok(None),
            Some(f) => f
                .ints()
                .map(Some)
                .ok_or_else(|| format!("input {i}'s values are not known")),
        }
    }
}

/// An axis in `-rank..rank`, made non-negative.
pub(crate) fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    if a < -r || a >= r {
        return Err(format!("axis {a} is out of range for rank {rank}"));
    }
    Ok(if a < 0 { a + r } else { a } as usize)
}

/// The rule table.
const RULES: &[(&str, &[&str], Rule)] = &[
    ("", basic::UNARY, basic::same_as_input),
    ("", basic::BINARY, basic::broadcast_op),
    ("", basic::COMPARE, basic::compare),
    ("", &["Where"], basic::where_op),
    ("", &["Cast"], basic::cast),
    ("", &["MatMul"], basic::matmul),
    ("", &["Gemm"], basic::gemm),
    ("", &["Einsum"], more::einsum),
    ("", &["Transpose"], basic::transpose),
    ("", basic::REDUCE, basic::reduce),
    ("", &["Dropout"], basic::dropout),
    ("", &["LayerNormalization"], basic::layer_norm),
    ("", &["Shape"], shape::shape),
    ("", &["Size"], shape::size),
    ("", &["Constant"], shape::constant),
    ("", &["ConstantOfShape"], shape::constant_of_shape),
    ("", &["Gather"], shape::gather),
    ("", &["Unsqueeze"], shape::unsqueeze),
    ("", &["Squeeze"], shape::squeeze),
    ("", &["Concat"], shape::concat),
    ("", &["Reshape"], shape::reshape),
    ("", &["Flatten"], shape::flatten),
    ("", &["Expand"], shape::expand),
    ("", &["Slice"], shape::slice),
    ("", &["Split"], shape::split),
    ("", &["Range"], shape::range),
    ("", &["Conv", "ConvInteger"], nn::conv),
    ("", &["ConvTranspose"], nn::conv_transpose),
    ("", &["MaxPool", "AveragePool", "LpPool"], nn::pool),
    (
        "",
        &["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"],
        nn::global_pool,
    ),
    ("", more::LIKE_DATA, more::like_data),
    ("", &["Pad"], more::pad),
    ("", &["Tile"], more::tile),
    ("", &["Resize", "Upsample"], more::resize),
    ("", &["LSTM", "GRU", "RNN"], more::recurrent),
    ("", &["TopK"], more::top_k),
    ("", &["GatherElements"], more::gather_elements),
    ("", &["GatherND"], more::gather_nd),
    ("", &["OneHot"], more::one_hot),
    ("", &["DepthToSpace", "SpaceToDepth"], more::depth_space),
    (
        "",
        &["NonZero", "NonMaxSuppression", "Compress"],
        more::data_dependent,
    ),
    ("", &["DynamicQuantizeLinear"], more::dynamic_quantize),
    (
        "",
        &["MatMulInteger", "QLinearMatMul"],
        more::matmul_integer,
    ),
    ("com.microsoft", ms::LIKE_INPUT, ms::like_input),
    (
        "com.microsoft",
        &["QuantizeLinear", "DequantizeLinear"],
        basic::same_as_input,
    ),
    ("com.microsoft", ms::QLINEAR_BINARY, ms::qlinear_binary),
    ("", &["QLinearConv"], ms::qlinear_conv),
    (
        "com.microsoft",
        &["QLinearAveragePool"],
        ms::qlinear_average_pool,
    ),
    ("com.microsoft", &["QGemm"], ms::qgemm),
    ("com.microsoft", &["QLinearConcat"], ms::qlinear_concat),
    ("com.microsoft", &["MatMulNBits"], ms::matmul_nbits),
    (
        "com.microsoft",
        &["GatherBlockQuantized"],
        ms::gather_block_quantized,
    ),
    (
        "com.microsoft",
        &["SkipLayerNormalization"],
        ms::skip_layer_norm,
    ),
    (
        "com.microsoft",
        &["Attention", "QAttention", "MultiHeadAttention"],
        ms::attention,
    ),
    (
        "com.microsoft",
        &["DynamicQuantizeMatMul", "MatMulIntegerToFloat"],
        ms::matmul_to_float,
    ),
    (
        "com.microsoft",
        &["EmbedLayerNormalization"],
        ms::embed_layer_norm,
    ),
    (
        "com.microsoft",
        &["GroupQueryAttention"],
        ms::group_query_attention,
    ),
    ("com.microsoft", &["DynamicQuantizeLSTM"], more::recurrent),
];

/// The rule for an op, if there is one.
pub(crate) fn rule(domain: &str, op: &str) -> Option<Rule> {
    let domain = if domain == "ai.onnx" { "" } else { domain };
    RULES
        .iter()
        .find(|(d, ops, _)| *d == domain && ops.contains(&op))
        .map(|r| r.2)
}
